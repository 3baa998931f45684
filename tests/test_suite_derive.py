"""Suite entries that take options from another entry's run of the same seed (``Entry.derive``, issue 19):
one invocation runs the source first and the derived entry after it, each seed from its own seed's source;
a derived entry whose source has no record waits (one line, the command that would produce it, exit 1);
a base whose checkpoint is gone is said before anything runs; a finished derived run counts as done again."""

from __future__ import annotations

from pathlib import Path

from adagrow.cli import main
from adagrow.records.store import append_record, read_records
from suites import Entry
from tests.test_cli_suite import use_suite

SOURCE = Entry("source", "mnist", "adagrow", "vgg", options={"blocks": 3}, epochs=1)
# AdaGrow options stand in for the real consumers (the growers' max_params, a fixed model's arch, a pipeline's
# base run): the plumbing is the same, and these fields take any value without training
CAPPED = Entry("capped", "mnist", "adagrow", "vgg", epochs=1, options={"blocks": 3, "stop": "budget"},
               derive={"param_budget": ("params_cap", "tiny", "source")})
SAME_ARCH = Entry("same-arch", "mnist", "adagrow", "vgg", epochs=1, options={"blocks": 3},
                  derive={"seed_arch": ("arch", "tiny", "source")})
ON_BASE = Entry("on-base", "mnist", "adagrow", "vgg", epochs=1, options={"blocks": 3},
                derive={"target_arch": ("run", "tiny", "source")})
ARCH_OF_SEED = {0: "1-0-0", 1: "0-1-1"}
PARAMS_OF_SEED = {0: 100_000, 1: 250_000}


def fake_runs(monkeypatch) -> list:
    """The runner replaced: each run writes a deploy.pt and an ok record whose size and architecture depend on
    the seed, as a growing run's would."""
    import adagrow.engine.runner as runner

    calls = []

    def run(cfg):
        calls.append(cfg)
        run_dir = Path(cfg.output_dir) / "runs" / cfg.run_name
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "deploy.pt").write_text("weights")
        record = {"status": "ok", "tag": cfg.tag, "run_dir": str(run_dir), "config": cfg.resolved().to_dict(),
                  "test_acc": 99.0, "params": PARAMS_OF_SEED[cfg.seed], "arch": ARCH_OF_SEED[cfg.seed],
                  "wall_seconds": 1.0}
        append_record(Path(cfg.output_dir) / f"{cfg.suite}.jsonl", record)
        return record

    monkeypatch.setattr(runner, "run", run)
    return calls


def argv(tmp_path, *more: str) -> list[str]:
    return ["suite", "tiny", "--output", str(tmp_path / "out"), "--seeds", "0,1", "--device", "cpu", *more]


def test_one_invocation_runs_each_source_then_its_derived_runs_with_that_seeds_values(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [CAPPED, SAME_ARCH, SOURCE])  # derived entries listed first: order must not matter
    calls = fake_runs(monkeypatch)
    assert main(argv(tmp_path)) == 0
    assert [(c.tag, c.seed) for c in calls][:2] == [("source", 0), ("source", 1)]
    derived = {(c.tag, c.seed): c.method_config for c in calls[2:]}
    # the cap is the source's final parameter count plus 10%: 100,000 -> 110,000 and 250,000 -> 275,000
    assert derived[("capped", 0)].param_budget == 110_000
    assert derived[("capped", 1)].param_budget == 275_000
    assert derived[("same-arch", 0)].seed_arch == "1-0-0"
    assert derived[("same-arch", 1)].seed_arch == "0-1-1"
    assert "6 ran, 0 done before" in capsys.readouterr().out
    assert len(read_records(tmp_path / "out" / "tiny.jsonl")) == 6

    calls.clear()  # the same command again: every run, derived ones included, is done
    assert main(argv(tmp_path)) == 0
    assert calls == []
    assert "0 ran, 6 done before" in capsys.readouterr().out


def test_a_derived_entry_waits_for_a_source_that_has_no_record(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [CAPPED, SOURCE])
    calls = fake_runs(monkeypatch)
    assert main(argv(tmp_path, "--only", "capped")) == 1  # the source is not selected: nothing produces it
    out = capsys.readouterr().out
    assert calls == []
    assert "capped/s0" in out and "WAITING" in out
    assert "waits for tiny/source/s0: run `adagrow suite tiny --only source --seeds 0` with this command's other options" in out
    assert "2 waiting for another run" in out

    assert main(argv(tmp_path, "--only", "capped", "--list")) == 0
    assert "waiting  waits for tiny/source/s1" in capsys.readouterr().out


def test_a_base_whose_checkpoint_is_gone_is_said_before_anything_runs(monkeypatch, tmp_path, capsys):
    use_suite(monkeypatch, [SOURCE, ON_BASE])
    calls = fake_runs(monkeypatch)
    assert main(argv(tmp_path, "--only", "source")) == 0
    capsys.readouterr()
    for run_dir in (tmp_path / "out" / "runs").iterdir():  # a fresh machine: records committed, runs/ not
        (run_dir / "deploy.pt").unlink()
    calls.clear()
    assert main(argv(tmp_path)) == 1
    out = capsys.readouterr().out
    assert calls == []
    assert "on-base/s0" in out and "deploy.pt is gone" in out and "--force" in out

    assert main(argv(tmp_path, "--status")) == 0
    assert "waiting  the base's deploy.pt is gone" in capsys.readouterr().out


def test_the_base_run_option_is_the_sources_run_name(monkeypatch, tmp_path):
    """A run name, not a path: the derived run's identity is the same under any --output spelling."""
    use_suite(monkeypatch, [SOURCE, ON_BASE])
    calls = fake_runs(monkeypatch)
    assert main(argv(tmp_path)) == 0
    names = {c.seed: c.run_name for c in calls if c.tag == "source"}
    for c in calls:
        if c.tag == "on-base":
            assert c.method_config.target_arch == names[c.seed]
            assert "/" not in c.method_config.target_arch


def test_a_malformed_derive_is_one_message(monkeypatch, tmp_path, capsys):
    bad = Entry("bad", "mnist", "adagrow", "vgg", epochs=1, derive={"seed_arch": ("size", "tiny", "source")})
    use_suite(monkeypatch, [SOURCE, bad])
    fake_runs(monkeypatch)
    assert main(argv(tmp_path, "--only", "bad")) == 2
    err = capsys.readouterr().err
    assert "derive['seed_arch'] must be (what, suite, entry)" in err
