"""The one runner: complete records, exact resume, NaN handling, growth with optimizer carry-over."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from adagrow.config import RECIPES, RunConfig
from adagrow.engine.method import Method, ModelChange
from adagrow.engine.runner import Interrupted, run
from adagrow.errors import TrainingDiverged
from adagrow.methods import METHODS, MethodEntry, load_builtin_methods
from adagrow.records.store import read_records

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")


@dataclass(frozen=True)
class TinyConfig:
    grow_at: int = -1  # epoch (0-based) after which one conv layer is added; -1 never
    nan_at_epoch: int = -1


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
        if epoch != self.cfg.grow_at:
            return None
        self.grown = True
        new = self.build_model(ctx)
        # keep the old parameter objects where the layers coincide, so their momentum carries over
        new[0], new[1] = model[0], model[1]
        new[-1] = model[-1]
        return ModelChange(new, {"kind": "depth", "where": "layer 1", "params_before":
                                 sum(p.numel() for p in model.parameters())})

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
    recipe = dataclasses.replace(RECIPES.get("adagrow"), lr=0.05, batch_size=64)
    base = dict(dataset="mnist", method="tiny-test", recipe=recipe, method_config=TinyConfig(), epochs=3,
                data_dir=str(data_dir), output_dir=str(out), deterministic=True, threads=1, latency_repeats=3,
                val_size=100)
    base.update(kw)
    return RunConfig(**base)


def test_record_is_complete(tiny_mnist, tmp_path):
    rec = run(_cfg(tiny_mnist, tmp_path / "out", epochs=2))
    required = {"method", "dataset", "model", "arch", "recipe", "seed", "profile", "status", "error", "val_acc",
                "test_acc", "params", "macs", "latency_ms", "gpu_seconds", "wall_seconds", "device", "versions",
                "git_commit", "config"}
    assert required <= set(rec)
    assert rec["status"] == "ok" and rec["error"] is None
    assert rec["data"]["val_size"] == 100
    assert rec["config"]["recipe"]["lr"] == 0.05
    assert {"train", "eval", "test"} <= set(rec["gpu_seconds"])
    assert read_records(tmp_path / "out" / "adhoc.jsonl")[0]["test_acc"] == rec["test_acc"]
    assert (tmp_path / "out" / "runs").is_dir()


def test_resumed_run_equals_uninterrupted_run(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path / "a", method_config=TinyConfig(grow_at=0))
    full = run(cfg)
    cfg_b = _cfg(tiny_mnist, tmp_path / "b", method_config=TinyConfig(grow_at=0))
    with pytest.raises(Interrupted):
        run(cfg_b, interrupt_after=1)  # stopped right after the growth at epoch 1
    assert not (tmp_path / "b" / "adhoc.jsonl").exists()
    resumed = run(dataclasses.replace(cfg_b, resume=True))
    assert resumed["arch"] == full["arch"] == "grown"
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
    assert resumed["test_acc"] == full["test_acc"]
    a = torch.load(tmp_path / "a" / "runs" / cfg.run_name / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "runs" / cfg.run_name / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_growth_carries_momentum_and_the_model_keeps_learning(tiny_mnist, tmp_path):
    rec = run(_cfg(tiny_mnist, tmp_path, method_config=TinyConfig(grow_at=0), epochs=4))
    (event,) = rec["growth_events"]
    assert event["params_after"] > event["params_before"]
    assert {"val_acc_before", "val_acc_after", "epoch"} <= set(event)
    losses = [h["train_loss"] for h in rec["history"]]
    assert losses[-1] < losses[1], "the grown model did not keep learning"


def test_nan_loss_fails_cleanly_and_keeps_earlier_records(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    run(_cfg(tiny_mnist, out, epochs=1))
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        run(_cfg(tiny_mnist, out, method_config=TinyConfig(nan_at_epoch=1)))
    records = read_records(out / "adhoc.jsonl")
    assert [r["status"] for r in records] == ["ok", "failed"]
    assert "nan" in records[1]["error"] and len(records[1]["history"]) == 1
