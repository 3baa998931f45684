"""The one runner: complete records, exact resume, NaN handling, growth with optimizer carry-over,
run identity, validation before work, records that are never lost nor written twice, SIGTERM."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
import types
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from adagrow.config import RECIPES, RunConfig
from adagrow.engine import runner
from adagrow.engine.checkpoint import save_checkpoint
from adagrow.engine.method import Method, ModelChange
from adagrow.engine.runner import Interrupted, run
from adagrow.errors import AdaGrowError, TrainingDiverged
from adagrow.methods import METHODS, MethodEntry, load_builtin_methods
from adagrow.records.store import read_records
from tests.conftest import tiny_run_config

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")


@dataclass(frozen=True)
class TinyConfig:
    grow_at: int = -1  # epoch (0-based) after which one conv layer is added; -1 never
    nan_at_epoch: int = -1
    recalibrate: bool = False  # what ``recalibrate`` answers
    pause_at: int = -1  # epoch after which the method sleeps a while (wall time of a resumed run)
    term_at: int = -1  # epoch after which the process gets SIGTERM


class TinyMethod(Method):
    """A small CNN that can grow one layer: exercises the runner's hooks without a big model."""

    name = "tiny-test"

    def __init__(self, cfg: TinyConfig):
        self.cfg, self.grown = cfg, False

    def build_model(self, ctx):
        c = ctx.input_size[0]
        layers = [nn.Conv2d(c, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
        if self.grown:
            layers += [nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, ctx.num_classes))

    def on_epoch_end(self, ctx, epoch, model, metrics):
        self.epoch = epoch
        if epoch == self.cfg.pause_at:
            time.sleep(1.5)
        if epoch == self.cfg.term_at:
            os.kill(os.getpid(), signal.SIGTERM)
        if epoch != self.cfg.grow_at:
            return None
        self.grown = True
        new = self.build_model(ctx)
        # keep the old parameter objects where the layers coincide, so their momentum carries over
        new[0], new[1] = model[0], model[1]
        new[-1] = model[-1]
        return ModelChange(new, {"kind": "depth", "where": "layer 1", "params_before":
                                 sum(p.numel() for p in model.parameters())})

    def recalibrate(self, ctx, model):
        return self.cfg.recalibrate

    def extra_loss(self, model):
        if getattr(self, "epoch", -1) + 1 == self.cfg.nan_at_epoch:
            return torch.tensor(float("nan"))
        return None

    def arch(self, model):
        return "grown" if self.grown else "seed"

    def state_dict(self):
        return {"grown": self.grown}

    def load_state_dict(self, state):
        self.grown = state["grown"]


load_builtin_methods()
if "tiny-test" not in METHODS:
    METHODS.register("tiny-test", MethodEntry(TinyConfig, TinyMethod, "test-only"))


def _cfg(data_dir, out, **kw) -> RunConfig:
    return tiny_run_config(data_dir, out, **{"method": "tiny-test", "method_config": TinyConfig(), **kw})


def _run_dir(cfg: RunConfig):
    return runner.Path(cfg.output_dir) / "runs" / cfg.run_name


def test_record_is_complete(tiny_mnist, tmp_path):
    rec = run(_cfg(tiny_mnist, tmp_path / "out", epochs=2))
    required = {"method", "dataset", "model", "arch", "recipe", "seed", "profile", "status", "error", "val_acc",
                "test_acc", "params", "macs", "latency_ms", "gpu_seconds", "wall_seconds", "device", "versions",
                "git_commit", "config", "run_name", "segments"}
    assert required <= set(rec)
    assert rec["status"] == "ok" and rec["error"] is None and rec["segments"] == 1
    assert rec["data"]["val_size"] == 100
    assert rec["config"]["recipe"]["lr"] == 0.05
    assert {"train", "eval", "test"} <= set(rec["gpu_seconds"])
    assert read_records(tmp_path / "out" / "adhoc.jsonl")[0]["test_acc"] == rec["test_acc"]
    assert (tmp_path / "out" / "runs").is_dir()


def test_a_finished_run_keeps_its_deploy_model_and_record_not_its_checkpoint(tiny_mnist, tmp_path):
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=1))
    run_dir = runner.Path(rec["run_dir"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "deploy.pt", "job.lock", "record.json"]  # job.lock: the one-process lock
    assert json.loads((run_dir / "record.json").read_text())["test_acc"] == rec["test_acc"]
    kept = run(_cfg(tiny_mnist, tmp_path, epochs=1, keep_checkpoint=True))
    assert kept["run_name"] == rec["run_name"]  # keeping the checkpoint is not another run...
    assert not (run_dir / "last.pt").exists()  # ...so the finished one is returned, not re-run
    other = run(_cfg(tiny_mnist, tmp_path, epochs=1, seed=1, keep_checkpoint=True))
    assert (runner.Path(other["run_dir"]) / "last.pt").exists()


def test_resumed_run_equals_uninterrupted_run(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path / "a", method_config=TinyConfig(grow_at=0), keep_checkpoint=True)
    full = run(cfg)
    cfg_b = dataclasses.replace(cfg, output_dir=str(tmp_path / "b"))
    with pytest.raises(Interrupted):
        run(cfg_b, interrupt_after=1)  # stopped right after the growth at epoch 1
    assert not (tmp_path / "b" / "adhoc.jsonl").exists()
    resumed = run(dataclasses.replace(cfg_b, resume=True))
    assert resumed["arch"] == full["arch"] == "grown"
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
    assert resumed["test_acc"] == full["test_acc"]
    assert (full["segments"], resumed["segments"]) == (1, 2)
    a = torch.load(tmp_path / "a" / "runs" / cfg.run_name / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "runs" / cfg.run_name / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_records_the_wall_time_of_all_its_segments(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path, method_config=TinyConfig(pause_at=0))
    with pytest.raises(Interrupted):
        run(cfg, interrupt_after=2)
    first = torch.load(_run_dir(cfg) / "last.pt", weights_only=False)["state"]["wall_seconds"]
    assert first >= 1.5  # the pause after epoch 1 is part of the first segment
    t0 = time.perf_counter()
    rec = run(dataclasses.replace(cfg, resume=True))
    second = time.perf_counter() - t0
    assert rec["segments"] == 2
    assert first < rec["wall_seconds"] <= first + second


def test_growth_carries_momentum_and_the_model_keeps_learning(tiny_mnist, tmp_path, monkeypatch):
    built, carried = [], []
    real_build = runner.build_optimizer

    def build(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(runner, "build_optimizer", build)
    monkeypatch.setattr(TinyMethod, "after_optimizer_transfer", lambda self, opt: carried.append(
        {p: {k: v.clone() for k, v in s.items()} for p, s in opt.state.items()}))
    rec = run(_cfg(tiny_mnist, tmp_path, method_config=TinyConfig(grow_at=0), epochs=4))
    (event,) = rec["growth_events"]
    assert event["params_after"] > event["params_before"]
    assert {"val_acc_before", "val_acc_after", "epoch"} <= set(event)
    # the first optimizer is not stepped after the change: its state is the state at the change
    old_state, (new_state,) = built[0].state, carried
    kept = [p for p in built[1].param_groups[0]["params"] if p in old_state]
    assert len(kept) == 6  # conv, BN and classifier weights and biases are the same objects after growth
    for p in kept:
        assert torch.count_nonzero(old_state[p]["momentum_buffer"]) > 0
        assert torch.equal(new_state[p]["momentum_buffer"], old_state[p]["momentum_buffer"])
    assert {id(p) for p in new_state} == {id(p) for p in kept}, "a new parameter was given state it never had"
    losses = [h["train_loss"] for h in rec["history"]]
    assert losses[-1] < losses[1], "the grown model did not keep learning"


@pytest.mark.parametrize("recalibrates", [True, False])
def test_a_recalibrated_change_is_validated_again(tiny_mnist, tmp_path, monkeypatch, recalibrates):
    calls = []

    def numbered_evaluate(model, batches, **kwargs):  # accuracy = the number of the call
        calls.append(model)
        return {"loss": 1.0, "acc": float(len(calls))}

    monkeypatch.setattr(runner, "evaluate", numbered_evaluate)
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=2, method_config=TinyConfig(grow_at=0, recalibrate=recalibrates)))
    (event,) = rec["growth_events"]
    # calls: 1 validation of epoch 1, 2 after the change, (3 after recalibrating), then epoch 2, test
    assert event["val_acc_before"] == 1.0 and event["val_acc_after_raw"] == 2.0
    assert event["val_acc_after"] == (3.0 if recalibrates else 2.0)
    assert len(calls) == (5 if recalibrates else 4)


@pytest.mark.parametrize("phase", [None, "prune"])
def test_a_method_names_the_phase_its_model_change_is_timed_under(tiny_mnist, tmp_path, monkeypatch, phase):
    if phase:
        monkeypatch.setattr(TinyMethod, "change_phase", lambda self, epoch: phase)
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=1, method_config=TinyConfig(grow_at=0)))
    assert (phase or "grow") in rec["gpu_seconds"]
    assert phase is None or "grow" not in rec["gpu_seconds"]


def test_a_method_evaluates_a_model_with_the_runners_own_evaluation(tiny_mnist, tmp_path, monkeypatch):
    seen = []

    def on_epoch_end(self, ctx, epoch, model, metrics):
        model.train()
        seen.append((metrics["val_acc"], ctx.evaluate(model, "val")["acc"], ctx.evaluate(model, "test")["acc"],
                     model.training))

    monkeypatch.setattr(TinyMethod, "on_epoch_end", on_epoch_end)
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=1))
    [(val, val_again, test, still_training)] = seen
    assert val_again == val and test == rec["test_acc"]  # the run's own splits and settings
    assert still_training  # the model is left in the mode it was in


def test_nested_phases_book_each_second_to_the_innermost_one():
    """A prune (its change phase) evaluates its result as "eval": the prune's seconds exclude those."""
    timer = runner.PhaseTimer(torch.device("cpu"))
    with timer.phase("prune"):
        time.sleep(0.05)
        with timer.phase("eval"):
            time.sleep(0.2)
    assert timer.wall["eval"] >= 0.2 and 0.05 <= timer.wall["prune"] < 0.2
    assert timer.seconds["prune"] >= 0 and set(timer.seconds) == {"prune", "eval"}


def test_nan_loss_fails_cleanly_and_keeps_earlier_records(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    run(_cfg(tiny_mnist, out, epochs=1))
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        run(_cfg(tiny_mnist, out, method_config=TinyConfig(nan_at_epoch=1)))
    records = read_records(out / "adhoc.jsonl")
    assert [r["status"] for r in records] == ["ok", "failed"]
    assert "nan" in records[1]["error"] and len(records[1]["history"]) == 1


# ---- identity: one directory per configuration -------------------------------------------------
def test_the_run_name_is_the_resolved_config(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path)
    same = [dataclasses.replace(cfg, **{k: v}) for k, v in (
        ("resume", True), ("wandb", "offline"), ("output_dir", "elsewhere"), ("data_dir", "x"), ("num_workers", 0),
        ("keep_checkpoint", True), ("download", True), ("method_config", None))]  # None: the defaults, resolved
    assert {c.run_name for c in same} == {cfg.run_name}
    other = [dataclasses.replace(cfg, method_config=TinyConfig(grow_at=0)), dataclasses.replace(cfg, epochs=4),
             dataclasses.replace(cfg, recipe=dataclasses.replace(cfg.recipe, lr=0.01)), dataclasses.replace(cfg, device="cpu"),
             dataclasses.replace(cfg, tag="mine")]
    assert len({cfg.run_name, *(c.run_name for c in other)}) == 1 + len(other)
    assert "-mine-" in other[-1].run_name


def test_runs_that_differ_in_a_method_option_never_share_files(tiny_mnist, tmp_path):
    a = run(_cfg(tiny_mnist, tmp_path, epochs=1))
    deploy_a = runner.Path(a["deploy_model"]).read_bytes()
    b = run(_cfg(tiny_mnist, tmp_path, epochs=1, method_config=TinyConfig(grow_at=0)))
    assert a["run_dir"] != b["run_dir"] and a["deploy_model"] != b["deploy_model"]
    assert runner.Path(a["deploy_model"]).read_bytes() == deploy_a, "another run overwrote this run's model"
    assert [r["run_name"] for r in read_records(tmp_path / "adhoc.jsonl")] == [a["run_name"], b["run_name"]]


def test_resume_refuses_a_run_of_other_options(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path, method_config=TinyConfig(grow_at=0))
    with pytest.raises(Interrupted):
        run(cfg, interrupt_after=1)
    ckpt = _run_dir(cfg) / "last.pt"
    before = ckpt.read_bytes()
    other = dataclasses.replace(cfg, method_config=TinyConfig(grow_at=1), resume=True)
    with pytest.raises(AdaGrowError, match=r"grow_at: 0 there, 1 here"):
        run(other)
    assert ckpt.read_bytes() == before and not _run_dir(other).exists()
    # a directory holding another configuration's files (copied, or a name clash) is never written into
    _run_dir(cfg).rename(_run_dir(other))
    with pytest.raises(AdaGrowError, match="belongs to a different configuration"):
        run(other)
    (_run_dir(other) / "config.json").unlink()  # ...and without it, the checkpoint's own config is compared
    with pytest.raises(AdaGrowError, match="belongs to a different configuration"):
        run(other)


# ---- checks before any work; nothing recorded twice; SIGTERM ------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"epochs": -1}, "epochs must be at least 1"),
    ({"train_subset": 0}, "train_subset must be at least 1"),
    ({"recipe": dataclasses.replace(RECIPES.get("adagrow"), batch_size=0)}, "batch_size"),
    ({"recipe": dataclasses.replace(RECIPES.get("adagrow"), lr=float("nan"))}, "lr must be above 0"),
    ({"device": "tpu7"}, "device must be"),
    ({"tag": ""}, "tag"),
])
def test_invalid_settings_fail_before_any_work(tmp_path, change, message):
    cfg = _cfg(tmp_path / "no-data", tmp_path / "out", **change)
    with pytest.raises(AdaGrowError, match=message):
        run(cfg)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["tpu7", "cuda:x", "cuda:99"])
def test_an_unknown_device_is_one_message(name):  # adagrow bench / quantize resolve it without a RunConfig
    with pytest.raises(AdaGrowError, match="--device"):
        runner.resolve_device(name)


def test_an_unusable_output_location_fails_before_any_work(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(AdaGrowError, match="--output .* cannot be written"):
        run(_cfg(tmp_path / "no-data", tmp_path / "file" / "out"))  # not the missing data: the output first
    (tmp_path / "out" / "adhoc.jsonl").mkdir(parents=True)
    with pytest.raises(AdaGrowError, match="not a writable file"):
        run(_cfg(tmp_path / "no-data", tmp_path / "out"))


def test_a_finished_run_is_never_run_or_recorded_twice(tiny_mnist, tmp_path, monkeypatch):
    cfg = _cfg(tiny_mnist, tmp_path, epochs=1)
    first = run(cfg)
    monkeypatch.setattr(runner, "load_dataset", None)  # a second run must not even load the data
    lines = []
    for again in (dataclasses.replace(cfg, resume=True), cfg):
        assert run(again, log=lines.append) == first
    assert all("already finished" in line for line in lines)
    assert len(read_records(tmp_path / "adhoc.jsonl")) == 1
    (tmp_path / "adhoc.jsonl").unlink()  # the process died between record.json and the suite's file
    assert run(cfg, log=lines.append) == first
    assert [r["run_name"] for r in read_records(tmp_path / "adhoc.jsonl")] == [first["run_name"]]


def test_sigterm_ends_a_run_like_ctrl_c_and_keeps_the_checkpoint(tiny_mnist, tmp_path):
    class Sentinel(Exception):
        pass

    def sentinel(signum, frame):  # stands for the default action, which would kill the test process
        raise Sentinel

    cfg = _cfg(tiny_mnist, tmp_path, method_config=TinyConfig(term_at=1))
    old = signal.signal(signal.SIGTERM, sentinel)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(cfg)
        assert signal.getsignal(signal.SIGTERM) is sentinel, "the previous SIGTERM handler was not restored"
    finally:
        signal.signal(signal.SIGTERM, old)
    state = torch.load(_run_dir(cfg) / "last.pt", weights_only=False)["state"]
    assert state["epoch"] == 1  # epoch 2 ended at the signal; epoch 1's checkpoint is kept
    assert not list(_run_dir(cfg).glob(".*.tmp"))
    assert not (tmp_path / "adhoc.jsonl").exists()


def test_an_interrupt_during_a_checkpoint_save_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "last.pt", {"epoch": 1})

    def killed_save(payload, f):  # save_checkpoint hands torch.save its open temporary file
        f.write(b"half a checkpoint")
        raise runner.Terminated

    monkeypatch.setattr(torch, "save", killed_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "last.pt", {"epoch": 2})
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.load(tmp_path / "last.pt")["epoch"] == 1


# ---- records always reach the disk --------------------------------------------------------------
def test_a_results_file_with_undecodable_bytes_still_gets_the_record(tiny_mnist, tmp_path, capsys):
    (tmp_path / "adhoc.jsonl").write_bytes(b'{"run": "\xff"}\n')
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=1))
    assert [r["run_name"] for r in read_records(tmp_path / "adhoc.jsonl")] == [rec["run_name"]]
    assert "not valid UTF-8" in capsys.readouterr().out


def test_a_failed_append_leaves_the_record_where_reports_find_it(tiny_mnist, tmp_path, monkeypatch):
    real_append = runner.append_record

    def failing_append(path, record):
        if path.name == "adhoc.jsonl":
            raise OSError(28, "No space left on device")
        real_append(path, record)

    monkeypatch.setattr(runner, "append_record", failing_append)
    lines = []
    rec = run(_cfg(tiny_mnist, tmp_path, epochs=1), log=lines.append)
    assert [r["run_name"] for r in read_records(tmp_path)] == [rec["run_name"]]  # what the reports read
    assert [r["run_name"] for r in read_records(tmp_path / "adhoc.recovered.jsonl")] == [rec["run_name"]]
    assert json.loads((runner.Path(rec["run_dir"]) / "record.json").read_text())["test_acc"] == rec["test_acc"]
    (warning,) = [line for line in lines if line.startswith("warning:")]
    assert "No space left" in warning and "adhoc.recovered.jsonl" in warning


def test_wandb_offline_writes_under_the_output_folder(tiny_mnist, tmp_path, monkeypatch):
    inits = []
    fake_run = types.SimpleNamespace(id="x1", summary={}, log=lambda *a, **k: None, finish=lambda: None)
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=lambda **kw: inits.append(kw) or fake_run))
    run(_cfg(tiny_mnist, tmp_path / "out", epochs=1, wandb="offline"))
    (kwargs,) = inits
    assert kwargs["mode"] == "offline" and runner.Path(kwargs["dir"]) == tmp_path / "out"


def test_latency_is_measured_with_the_pinned_thread_count_not_the_training_one(tiny_mnist, tmp_path):
    # training on 2 threads (a local run's default here), latency pinned to 1: the record says 1, and the
    # config's latency_threads, so that runs from different executors compare (issue 20, item 20)
    rec = run(_cfg(tiny_mnist, tmp_path / "out", epochs=1, threads=2))
    (latency,) = rec["latency_ms"].values()
    assert latency["threads"] == 1 and rec["config"]["latency_threads"] == 1 and rec["config"]["threads"] == 2
    # and the machine's load over the run, so that seconds measured on a shared machine are flagged
    assert rec["machine_load"]["cores"] >= 1 and rec["machine_load"]["busy"] in (True, False)
    assert runner.load_summary([1.0, 3.0]) | {"cores": 2} == {"cores": 2, "mean_1min": 2.0, "max_1min": 3.0,
                                                              "busy": runner.load_summary([1.0, 3.0])["busy"]}
    assert "1 thread" in runner.summary_line(rec)
    rec2 = run(_cfg(tiny_mnist, tmp_path / "out2", epochs=1, threads=1, latency_threads=2))
    assert next(iter(rec2["latency_ms"].values()))["threads"] == 2
