"""`adagrow suite`: trains on a fresh clone, resumes by config (not by name), reruns on --force, survives a
failing entry, stops on Ctrl-C, prints a summary; and training progress reaches a log file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import suites
from adagrow.cli import main
from adagrow.errors import DatasetError, TrainingDiverged
from adagrow.records.store import append_record, read_records
from adagrow.registry import Registry
from suites import Entry, _done, run_config_for
from tests.conftest import make_tiny_mnist
from tests.test_suites import fake_args

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")
REPO = Path(__file__).resolve().parents[1]


def use_suite(monkeypatch, entries: list[Entry], name: str = "tiny") -> None:
    """Make ``adagrow suite <name>`` run ``entries`` instead of a registered suite."""
    registry: Registry[list[Entry]] = Registry("suite")
    registry.register(name, entries)
    monkeypatch.setattr(suites, "_load", lambda: registry)


def fake_runs(monkeypatch, outcome=lambda cfg: None) -> list:
    """Replace the runner: each run appends a record as the real one does (or ``outcome(cfg)`` raises)."""
    import adagrow.engine.runner as runner

    calls = []

    def run(cfg):
        calls.append(cfg)
        outcome(cfg)
        run_dir = Path(cfg.output_dir) / "runs" / cfg.run_name
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "deploy.pt").write_text(f"run {len(calls)}")
        record = {"status": "ok", "tag": cfg.tag, "run_dir": str(run_dir),
                  "config": cfg.resolved().to_dict(), "test_acc": 97.5, "params": 1_234_000, "macs": 5_600_000,
                  "wall_seconds": 12.0}
        append_record(Path(cfg.output_dir) / f"{cfg.suite}.jsonl", record)
        return record

    monkeypatch.setattr(runner, "run", run)
    return calls


ENTRY = Entry("fixed-tiny", "mnist", "fixed", "resnet18", epochs=1)


def test_suite_trains_then_skips_the_same_config_and_logs_progress(monkeypatch, tmp_path, capsys):
    """A real run: on a fresh output it trains (printing progress lines, stdout being no terminal), and
    the record it writes counts as done for the same config, wherever its data lies."""
    use_suite(monkeypatch, [ENTRY])
    monkeypatch.setenv("ADAGROW_PROGRESS_EVERY", "0")  # a line after every step
    data = make_tiny_mnist(tmp_path / "data", n_train=300, n_test=50)
    argv = ["suite", "tiny", "--data-dir", str(data), "--output", str(tmp_path / "out"), "--threads", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "loading mnist" in out
    assert "epoch 1/1  step 1/" in out and "img/s" in out and "left: epoch" in out  # progress in a log
    (record,) = read_records(tmp_path / "out" / "tiny.jsonl")
    assert record["status"] == "ok"
    assert "fixed-tiny" in out and "1 ran, 0 done before" in out

    elsewhere = make_tiny_mnist(tmp_path / "copy", n_train=300, n_test=50)
    assert main([*argv, "--data-dir", str(elsewhere)]) == 0  # the same data elsewhere: the same experiment
    out = capsys.readouterr().out
    assert "fixed-tiny: done" in out and "skipped" in out and "0 ran, 1 done before" in out
    assert len(read_records(tmp_path / "out" / "tiny.jsonl")) == 1


def test_done_means_an_ok_record_of_the_same_resolved_config():
    cfg = run_config_for(ENTRY, fake_args(profile="smoke"), "tiny")
    config = json.loads(json.dumps(cfg.resolved().to_dict()))  # as a record stores it
    record = {"status": "ok", "run_dir": f"runs/runs/{cfg.run_name}", "config": config}
    assert _done([record], cfg) is record
    assert _done([{**record, "config": {**config, "data_dir": "/elsewhere"}}], cfg) is not None
    older_profile = {**record, "config": {**config, "epochs": 8, "total_epochs": 8}}
    assert _done([older_profile], cfg) is None  # the issue: an 8-epoch smoke record counted as done
    assert _done([{**record, "status": "failed"}], cfg) is None
    assert _done([{**record, "run_dir": "runs/runs/another-run"}], cfg) is None
    assert _done([record], run_config_for(ENTRY, fake_args(profile="smoke", seed=1), "tiny")) is None


def test_default_output_is_the_git_ignored_runs_folder(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [ENTRY])
    monkeypatch.chdir(tmp_path)
    assert main(["suite", "tiny", "--list"]) == 0
    assert "records in runs/tiny.jsonl" in capsys.readouterr().out
    paths = ["runs/mnist.jsonl", "runs/runs/x/last.pt"]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip(f"git cannot tell: {ignored.stderr.strip()}")
    assert ignored.stdout.split() == paths


def test_force_reruns_a_done_entry_afresh_and_keeps_the_old_files(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [ENTRY])
    calls = fake_runs(monkeypatch)
    argv = ["suite", "tiny", "--output", str(tmp_path)]
    assert main(argv) == 0 and main(argv) == 0
    assert len(calls) == 1 and not calls[0].resume  # nothing to resume on a fresh output
    assert main([*argv, "--force"]) == 0
    assert len(calls) == 2 and not calls[1].resume
    assert len(read_records(tmp_path / "tiny.jsonl")) == 2  # the old record is kept
    (aside,) = (tmp_path / "runs").glob(f"{calls[0].run_name}.replaced-*")
    assert (aside / "deploy.pt").read_text() == "run 1"  # and the old run's files, under another name
    assert (tmp_path / "runs" / calls[0].run_name / "deploy.pt").read_text() == "run 2"


def test_an_interrupted_entry_continues_from_its_checkpoint(monkeypatch, tmp_path):
    use_suite(monkeypatch, [ENTRY])
    calls = fake_runs(monkeypatch)
    cfg = run_config_for(ENTRY, fake_args(output=str(tmp_path), device="auto"), "tiny")
    (tmp_path / "runs" / cfg.run_name).mkdir(parents=True)
    (tmp_path / "runs" / cfg.run_name / "last.pt").write_text("checkpoint")
    assert main(["suite", "tiny", "--output", str(tmp_path)]) == 0
    assert calls[0].run_name == cfg.run_name and calls[0].resume


def test_a_failing_entry_does_not_stop_the_suite(monkeypatch, tmp_path, capsys):
    names = ["ok-first", "no-data", "diverges", "bug", "ok-last"]
    use_suite(monkeypatch, [Entry(n, "mnist", "fixed", "resnet18") for n in names])

    def outcome(cfg):
        if cfg.tag == "no-data":
            raise DatasetError("dataset 'mnist' not found: expected MNIST/raw/...")
        if cfg.tag == "diverges":
            raise TrainingDiverged("the training loss became nan at step 3")
        if cfg.tag == "bug":
            raise ZeroDivisionError("division by zero")

    calls = fake_runs(monkeypatch, outcome)
    assert main(["suite", "tiny", "--output", str(tmp_path)]) == 1
    assert [c.tag for c in calls] == names  # every entry was tried
    captured = capsys.readouterr()
    assert "Traceback" in captured.err and "ZeroDivisionError" in captured.err  # a bug keeps its traceback
    summary = captured.out[captured.out.index("suite tiny:"):]
    assert "2 ran, 0 done before (skipped), 3 failed" in summary
    rows = {line.split()[0]: line for line in summary.splitlines()[2:]}
    assert "FAILED" in rows["no-data"] and "not found" in rows["no-data"]
    assert "FAILED" in rows["diverges"] and "nan" in rows["diverges"]
    assert "FAILED" in rows["bug"] and "ZeroDivisionError" in rows["bug"]
    assert rows["ok-last"].split()[1:5] == ["ok", "97.50%", "1.234M", "5.60M"]


def test_ctrl_c_stops_the_whole_suite(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [Entry(n, "mnist", "fixed", "resnet18") for n in ("first", "second")])

    def outcome(cfg):
        raise KeyboardInterrupt

    calls = fake_runs(monkeypatch, outcome)
    assert main(["suite", "tiny", "--output", str(tmp_path)]) == 130
    assert len(calls) == 1
    assert "run the same command again" in capsys.readouterr().err


def test_only_matching_nothing_is_one_clear_error(monkeypatch, capsys):
    use_suite(monkeypatch, [ENTRY])
    assert main(["suite", "tiny", "--only", "vgg"]) == 2
    assert "no entry of suite 'tiny' has 'vgg' in its name; its entries: fixed-tiny" in capsys.readouterr().err


def test_only_takes_several_comma_separated_parts(monkeypatch, tmp_path):
    use_suite(monkeypatch, [Entry(n, "mnist", "fixed", "resnet18") for n in ("fixed-a", "grown-b", "other-c")])
    calls = fake_runs(monkeypatch, lambda cfg: None)
    assert main(["suite", "tiny", "--output", str(tmp_path), "--only", "fixed-a, grown"]) == 0
    assert [cfg.tag for cfg in calls] == ["fixed-a", "grown-b"]


def test_the_quickstart_selects_one_fixed_reference_and_one_grown_model():
    """The README's main job: exactly the MNIST suite's smoke fixed ResNet-18 and AdaGrow-VGG."""
    import argparse

    import noxfile
    from suites import _select

    args = argparse.Namespace(name=noxfile.QUICKSTART[0], only=noxfile.QUICKSTART[-1], profile="smoke", all=False)
    assert [(e.method, e.model) for e in _select(args)] == [("fixed", "resnet18"), ("adagrow", "vgg")]


def test_a_record_under_other_settings_is_named_not_silently_rerun(monkeypatch, tmp_path, capsys):
    """Forgetting one option of the recorded run (here --threads) makes it another experiment: --status and the
    run itself name the setting that differs, so hours of finished work are not redone without a word."""
    use_suite(monkeypatch, [ENTRY])
    calls = fake_runs(monkeypatch)
    base = ["suite", "tiny", "--output", str(tmp_path / "out")]
    assert main([*base, "--threads", "2"]) == 0
    capsys.readouterr()
    assert main([*base, "--status"]) == 0
    assert "pending  ~12s (its entry's records); a record of this entry and seed differs in threads: recorded 2, here default" \
        in capsys.readouterr().out
    assert main([*base, "--threads", "2", "--status"]) == 0
    assert "differs" not in capsys.readouterr().out  # the same settings: done, nothing to say
    assert main([*base, "--seed", "1", "--status"]) == 0
    assert "differs" not in capsys.readouterr().out  # another seed is another row, not a near miss
    assert main(base) == 0
    assert "fixed-tiny: runs again: a record of this entry and seed differs in threads" in capsys.readouterr().out
    assert len(calls) == 2


def test_a_record_older_than_the_methods_numerics_is_not_said_to_come_back_with_an_option():
    """A numerics version is bumped when a method's computation was fixed (BAMC version 3): its older records run
    again by design, and no option reuses them, so the message says so instead of 'pass the recorded settings'."""
    from types import SimpleNamespace

    from suites.outcomes import near_miss

    entry = {"tag": "bamc-ref", "suite": "bamc-mnist", "dataset": "mnist", "profile": "reference", "seed": 0}
    cfg = SimpleNamespace(identity=lambda: {**entry, "numerics": 1, "threads": 2, "method_numerics": 3})
    old = {"status": "ok", "config": {**entry, "threads": 2, "method_numerics": 1}}
    other_threads = {"status": "ok", "config": {**entry, "threads": 1, "method_numerics": 3}}
    assert near_miss([old], cfg) == ("its record of this entry and seed predates the method's numerics version here "
                                     "(method_numerics: recorded 1, here 3)")
    assert near_miss([other_threads], cfg) == ("a record of this entry and seed differs in threads: recorded 1, here 2; "
                                               "pass the recorded settings to reuse that record")


def test_status_tells_how_long_a_pending_run_takes_from_its_entrys_other_seeds(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [ENTRY, Entry("fixed-other", "mnist", "fixed", "resnet18", epochs=1)])
    fake_runs(monkeypatch)  # each record says wall_seconds 12.0
    base = ["suite", "tiny", "--output", str(tmp_path / "out")]
    assert main([*base, "--only", "fixed-tiny"]) == 0
    capsys.readouterr()
    assert main([*base, "--seeds", "0,1", "--status"]) == 0
    out = capsys.readouterr().out
    assert "fixed-tiny/s1   pending  ~12s (its entry's records)" in out
    assert "fixed-other/s1  pending  \n" in out + "\n"  # never run under any seed: no estimate
    assert "about 12s for the pending runs whose entry has a record, 2 more not yet measured" in out
    assert main([*base, "--seeds", "5", "--only", "fixed-other", "--status"]) == 0
    assert "1 pending run, none of whose entries has run yet: no time to go by" in capsys.readouterr().out
