"""Suites on a cluster (suites/executors.py), with real engines: a local Ray instance runs two entries at
once; submitit runs an entry as real subprocesses (its local executor, and a real Slurm when one answers
here), and a job preempted mid-run is requeued and finishes from its checkpoint with the result of an
uninterrupted run; one process per run directory; --status; --seeds and a missing package are one clear
message.  (Concurrent appends to one suite file: tests/test_records.py.)"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adagrow.cli import main
from adagrow.config import RECIPES, RunConfig
from adagrow.engine.runner import Interrupted, run
from adagrow.records.store import read_records
from suites import Entry, run_config_for
from suites.executors import ExecutorOptions, Job, claim, job_state, run_slurm
from tests.conftest import make_tiny_mnist
from tests.test_cli_suite import use_suite
from tests.test_suites import fake_args

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")
MODEL = "mobilenetv3_small"  # a real timm model that trains an epoch of the tiny MNIST in about a second


def tiny_entry(name: str, dataset: str = "mnist") -> Entry:
    return Entry(name, dataset, "fixed", MODEL, epochs=1)


def suite_argv(data: Path, out: Path, *more: str) -> list[str]:
    return ["suite", "tiny", "--data-dir", str(data), "--output", str(out), "--threads", "1", "--device", "cpu", *more]


# ---- options ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds,message", [
    ("0,x", "--seeds takes comma-separated non-negative whole numbers, e.g. --seeds 0,1,2 (got '0,x')"),
    ("0,,1", "--seeds takes comma-separated"),
    ("-1", "--seeds takes comma-separated"),
    ("1,1", "--seeds 1,1: a seed is repeated"),
])
def test_malformed_seeds_are_one_message_before_any_work(monkeypatch, tmp_path, capsys, seeds, message):
    use_suite(monkeypatch, [tiny_entry("a")])
    assert main(["suite", "tiny", "--output", str(tmp_path), "--seeds", seeds]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module,executor", [("ray", "ray"), ("submitit", "slurm")])
def test_a_missing_cluster_package_is_one_message(monkeypatch, tmp_path, capsys, module, executor):
    use_suite(monkeypatch, [tiny_entry("a")])
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the package sees
    assert main(["suite", "tiny", "--output", str(tmp_path), "--executor", executor]) == 2
    err = capsys.readouterr().err
    assert f"--executor {executor} needs {module}, which is not installed: pip install -e '.[cluster]'" in err
    assert len(err.strip().splitlines()) == 1


def test_options_of_another_executor_are_refused(monkeypatch, capsys):
    use_suite(monkeypatch, [tiny_entry("a")])
    assert main(["suite", "tiny", "--partition", "gpu", "--address", "auto"]) == 2
    assert "--partition applies to --executor slurm; --address applies to --executor ray" in capsys.readouterr().err


# ---- one process per run, and --status ---------------------------------------------------------------
def test_status_says_done_failed_running_and_pending_and_a_running_job_is_never_run_twice(monkeypatch, tmp_path, capsys):
    """Real runs: one entry trains under seeds 0 and 1, one fails for want of its dataset; then seed 2 is
    pending, and while another process holds its run directory a second suite run leaves it alone."""
    use_suite(monkeypatch, [tiny_entry("ok"), tiny_entry("no-data", dataset="cifar10")])
    data, out = make_tiny_mnist(tmp_path / "data", n_train=200, n_test=20), tmp_path / "out"
    assert main(suite_argv(data, out, "--seeds", "0,1")) == 1  # the failing entry does not stop the other
    assert main(suite_argv(data, out, "--seeds", "0,1,2", "--status")) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines if line.strip() and "/s" in line.split()[0]}
    assert rows["ok/s0"][0] == rows["ok/s1"][0] == "done" and rows["ok/s0"][1].startswith("test ")
    assert rows["no-data/s0"][0] == "failed" and "not found" in rows["no-data/s0"][1]
    assert rows["ok/s2"][0] == "pending" and rows["ok/s2"][1].endswith("(its entry's records)")  # seeds 0-1's time

    argv = suite_argv(data, out, "--seeds", "2", "--only", "ok")
    cfg = run_config_for(tiny_entry("ok"), fake_args(output=str(out), threads=1, seed=2), "tiny")
    seed2 = out / "runs" / cfg.run_name
    with claim(seed2) as claimed:  # as a job of an earlier submission, still running, would
        assert claimed
        assert main([*argv, "--status"]) == 0
        assert "running  on " in capsys.readouterr().out
        assert main(argv) == 0
        assert "0 ran, 0 done before (skipped), 0 failed, 1 running elsewhere" in capsys.readouterr().out
    assert len(read_records(out / "tiny.jsonl")) == 2  # seed 2 was not trained by the second process


# ---- Ray ---------------------------------------------------------------------------------------------
@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_runs_two_entries_at_once_and_both_records_land(local_ray, monkeypatch, tmp_path, capsys):
    """...and the one a local run left half done continues from its checkpoint: whichever executor
    started a run, another can finish it."""
    entries = [dataclasses.replace(tiny_entry(name), epochs=2) for name in ("first", "second")]
    use_suite(monkeypatch, entries)
    data, out = make_tiny_mnist(tmp_path / "data", n_train=200, n_test=20), tmp_path / "out"
    half_done = run_config_for(entries[1], fake_args(output=str(out), data_dir=str(data), threads=1), "tiny")
    with pytest.raises(Interrupted):
        run(half_done, interrupt_after=1)
    assert main(suite_argv(data, out, "--executor", "ray")) == 0
    assert "2 run(s) as Ray tasks (0 GPU, 1 CPU each) on 2 CPUs" in capsys.readouterr().out
    records = read_records(out / "tiny.jsonl")
    assert sorted((r["tag"], r["segments"]) for r in records) == [("first", 1), ("second", 2)]
    assert {r["status"] for r in records} == {"ok"}
    a, b = (json.loads((Path(r["run_dir"]) / "job.json").read_text()) for r in records)
    assert os.getpid() not in (a["pid"], b["pid"]) and a["pid"] != b["pid"]  # two Ray workers, not this process
    assert a["started"] < b["ended"] and b["started"] < a["ended"]  # at the same time
    assert main(suite_argv(data, out, "--executor", "ray")) == 0  # done: nothing is submitted again
    assert "0 ran, 2 done before (skipped)" in capsys.readouterr().out


# ---- Slurm through submitit ----------------------------------------------------------------------------
def _slurm_answers() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


SLURM = _slurm_answers()  # asked once: sinfo takes ~10 s to give up on a controller that is down


def _preempt(note: dict) -> None:
    """What a scheduler does to preempt a job, or to warn it of its time limit: SIGUSR2 to the job."""
    if note.get("slurm_job"):  # a real Slurm job
        subprocess.run(["scancel", "--signal=USR2", note["slurm_job"]], check=True, timeout=30)
    else:  # submitit's local executor: the job's own process
        os.kill(note["pid"], signal.SIGUSR2)


@pytest.mark.parametrize("cluster", [
    "local",  # submitit's local executor: real subprocesses, the same pickles, signals and requeue as on Slurm
    # a real Slurm (README: a one-node cluster from Debian's slurm-wlm); slow: Slurm holds a requeued job ~2 minutes
    pytest.param("slurm", marks=[pytest.mark.slow,
                                 pytest.mark.skipif(not SLURM, reason="no Slurm cluster answers here")]),
])
def test_submitit_runs_entries_and_a_preempted_job_continues_from_its_checkpoint(tmp_path, cluster):
    """Two jobs of the same configuration in two output folders, run at once through submitit: one is
    preempted after its first epoch's checkpoint, requeued and resumed; both end with the same result."""
    pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[cluster]')")
    data = make_tiny_mnist(tmp_path / "data", n_train=400, n_test=50)
    cfg = RunConfig(dataset="mnist", method="fixed", model=MODEL, recipe=dataclasses.replace(RECIPES.get("thesis"), batch_size=64),
                    epochs=3, data_dir=str(data), output_dir=str(tmp_path / "preempted"), suite="tiny", tag="fixed-tiny",
                    deterministic=True, threads=1, device="cpu", latency_repeats=3, val_size=50)
    preempted = Job("fixed-tiny", "tiny/fixed-tiny/s0", cfg)
    whole = Job("fixed-tiny", "tiny/fixed-tiny/s0", dataclasses.replace(cfg, output_dir=str(tmp_path / "whole")))
    opts = ExecutorOptions("slurm", cluster=cluster, gpus_per_job=0, cpus_per_job=1, time_min=30, poll_s=0.5)
    outcomes = []
    waiting = threading.Thread(target=lambda: outcomes.extend(run_slurm([preempted, whole], opts)))
    waiting.start()
    deadline = time.monotonic() + 240
    while not (preempted.run_dir / "last.pt").exists() and waiting.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (preempted.run_dir / "last.pt").exists(), "the job never wrote its first checkpoint"
    assert job_state(preempted, [])[0] == "running"
    note = json.loads((preempted.run_dir / "job.json").read_text())
    assert note["pid"] != os.getpid()
    _preempt(note)
    waiting.join(timeout=300)
    assert [o.status for o in outcomes] == ["ok", "ok"], outcomes
    resumed, uninterrupted = (o.record for o in outcomes)
    assert (resumed["segments"], uninterrupted["segments"]) == (2, 1)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in uninterrupted["history"]]
    assert resumed["test_acc"] == uninterrupted["test_acc"]
    logs = "".join(p.read_text() for p in (tmp_path / "preempted" / "slurm").glob("*/*_log.out"))
    assert f"resuming {cfg.run_name} after epoch" in logs and "SIGUSR2" in logs
    assert [r["segments"] for r in read_records(tmp_path / "preempted" / "tiny.jsonl")] == [2]  # recorded once


@pytest.mark.skipif(not SLURM, reason="no Slurm cluster answers here (tests/slurm-one-node.sh starts one)")
def test_a_tiny_suite_submitted_to_slurm_runs_every_seed_as_an_array_task(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [tiny_entry("ok")])
    data, out = make_tiny_mnist(tmp_path / "data", n_train=200, n_test=20), tmp_path / "out"
    argv = suite_argv(data, out, "--executor", "slurm", "--seeds", "0,1", "--gpus-per-job", "0", "--cpus-per-job", "1",
                      "--time-min", "10")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "tiny/ok/s0" in printed and "tiny/ok/s1" in printed  # which array task runs which seed
    assert sorted(r["seed"] for r in read_records(out / "tiny.jsonl")) == [0, 1]
    notes = [json.loads(p.read_text()) for p in (out / "runs").glob("*/job.json")]
    assert all("_" in n["slurm_job"] for n in notes)  # array tasks, <array id>_<index>
    assert len(list((out / "slurm").glob("*/*_0_log.out"))) == 2
