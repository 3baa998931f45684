"""Concurrent runs, torn checkpoints, file-system faults and interrupts (issue 20, items 12-16).

* Two processes never run one configuration at once: the second is refused in one line naming the
  holder (item 12), and checkpoint temporary files are per process.
* A checkpoint write killed before its rename is said, never silently ignored (item 13).
* A fault during a run ends in warning lines and the finished record lands wherever it can, the summary
  saying where (item 14).
* An interrupt before the first checkpoint does not promise one (item 15).
* Evaluation prints progress like training (item 16).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from adagrow.cli import interrupted_message, main
from adagrow.engine import runner
from adagrow.engine.checkpoint import load_checkpoint, save_checkpoint
from adagrow.engine.runner import run
from adagrow.errors import AdaGrowError
from adagrow.records.store import read_records
from tests.test_runner import _cfg, _run_dir

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")


# ---- item 12 --------------------------------------------------------------------------------------------
def test_a_second_process_on_the_same_run_is_refused_naming_the_holder(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path, epochs=1)
    run_dir = _run_dir(cfg.resolved())
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from adagrow.engine.runlock import claim
        with claim(Path({str(run_dir)!r})) as ok:
            print("held" if ok else "refused", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AdaGrowError, match=f"another process \\(pid {holder.pid} on .*\\) is running this "
                                               "configuration") as refused:
            run(cfg, log=lambda _: None)
        assert "\n" not in str(refused.value)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "adhoc.jsonl").exists() and (run_dir / "config.json").exists()  # the holder's, kept
    assert run(cfg, log=lambda _: None)["status"] == "ok"  # the lock of a dead process holds nobody back


def _save_many(path, n):
    for i in range(n):
        save_checkpoint(path, {"i": torch.tensor(i), "pid": os.getpid()})


def test_concurrent_checkpoint_saves_never_share_a_temporary_file(tmp_path):
    """Before: both wrote ``.last.pt.tmp``; one renamed it away under the other (FileNotFoundError)."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_save_many, args=(tmp_path / "last.pt", 40)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert load_checkpoint(tmp_path / "last.pt")["i"].item() == 39
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# ---- item 13 --------------------------------------------------------------------------------------------
def test_a_torn_checkpoint_write_is_said_and_removed(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path, epochs=1, resume=True)
    run_dir = _run_dir(cfg.resolved())
    run_dir.mkdir(parents=True)
    torn = run_dir / ".last.pt.4242.tmp"
    torn.write_bytes(b"")  # killed between the temporary write and the rename, before any complete checkpoint
    lines = []
    assert run(cfg, log=lines.append)["status"] == "ok"
    assert any("checkpoint write was interrupted (.last.pt.4242.tmp, 0 bytes, removed)" in s
               and "starts from the first epoch" in s for s in lines), lines
    assert not torn.exists()
    assert any(s.startswith("--resume: ") and "has no checkpoint to continue from" in s for s in lines)


# ---- item 14 --------------------------------------------------------------------------------------------
def test_unwritable_run_directory_mid_run_still_records(tiny_mnist, tmp_path, monkeypatch):
    def refused(path, payload):  # what torch.save says for a read-only directory (root ignores chmod)
        raise RuntimeError(f"File {path} cannot be opened.")

    monkeypatch.setattr(runner, "save_checkpoint", refused)
    lines = []
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=2), log=lines.append)
    assert rec["status"] == "ok" and rec["deploy_model"] is None
    warnings = [s for s in lines if s.startswith("warning: could not write")]
    assert len(warnings) == 3 and all("\n" not in w for w in warnings)  # two checkpoints, the deploy model
    assert [r["run_name"] for r in read_records(tmp_path / "adhoc.jsonl")] == [rec["run_name"]]


def test_unwritable_output_directory_the_summary_says_where_the_record_went(tiny_mnist, tmp_path, monkeypatch):
    def refused(path, record):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runner, "append_record", refused)
    lines = []
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=1), log=lines.append)
    (line,) = [line for line in "\n".join(lines).splitlines() if "record -> " in line]
    where = line.split("record -> ")[1]
    assert rec["status"] == "ok" and where == str(_run_dir(_cfg(tiny_mnist, tmp_path, epochs=1).resolved()) / "record.json")


def test_runs_deleted_mid_run_gets_its_config_back(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path, epochs=2)
    run_dir = _run_dir(cfg.resolved())

    def log(line):
        if line.startswith("epoch   1/"):
            shutil.rmtree(tmp_path / "runs")

    rec = run(cfg, log=log)
    assert rec["status"] == "ok" and (run_dir / "config.json").exists() and (run_dir / "record.json").exists()


# ---- item 15 --------------------------------------------------------------------------------------------
def test_an_interrupt_before_the_first_checkpoint_promises_none(tiny_mnist, tmp_path, monkeypatch, capsys):
    def terminated(*args, **kwargs):
        raise runner.Terminated("terminated (SIGTERM)")

    monkeypatch.setattr(runner, "train_one_epoch", terminated)
    cfg = _cfg(tiny_mnist, tmp_path, epochs=1)
    with pytest.raises(KeyboardInterrupt) as exc:
        run(cfg, log=lambda _: None)
    assert exc.value.checkpoint is None
    message = interrupted_message("train", exc.value)
    assert "before the first checkpoint" in message and "is kept" not in message
    assert "continues from its checkpoint" not in interrupted_message("suite", exc.value)
    kept = KeyboardInterrupt()
    kept.checkpoint = _run_dir(cfg.resolved()) / "last.pt"
    assert "the last checkpoint is kept" in interrupted_message("train", kept)


def test_the_command_line_says_so_too(tmp_path, monkeypatch, capsys):
    from tests.conftest import make_tiny_mnist

    def terminated(*args, **kwargs):
        raise runner.Terminated("terminated (SIGTERM)")

    monkeypatch.setattr(runner, "train_one_epoch", terminated)
    data = make_tiny_mnist(tmp_path / "data", n_train=1100, n_test=50)
    rc = main(["train", "--dataset", "mnist", "--model", "resnet18", "--profile", "smoke", "--train-subset", "64",
               "--data-dir", str(data), "--output", str(tmp_path / "out"), "--device", "cpu", "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 130 and len(err) == 1 and "before the first checkpoint" in err[0]


# ---- item 16 --------------------------------------------------------------------------------------------
def test_evaluation_prints_progress_lines_in_a_log(tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGROW_PROGRESS_EVERY", "0")
    lines = []
    run(_cfg(tiny_mnist, tmp_path, epochs=1), log=lines.append)
    assert any(s.startswith("  evaluating val  batch 1/") and "img/s" in s for s in lines), lines
    assert any(s.startswith("  evaluating test  batch") for s in lines)
