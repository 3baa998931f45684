"""How runs train fast (engine/speed.py): the branch computation chosen per device and kept after each
growth, torch.compile recompiled once per growth with its seconds recorded, both recorded and neither
changing what is learned."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from adagrow.config import RunConfig
from adagrow.engine import speed
from adagrow.engine.method import Method, ModelChange
from adagrow.engine.runner import run
from adagrow.methods import METHODS, MethodEntry, load_builtin_methods
from adagrow.models.reparam import BranchSpec, RepUnit
from tests.conftest import tiny_run_config

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")


@dataclass(frozen=True)
class UnitNetConfig:
    grow_at: int = 0  # epoch (0-based) after which a unit gets branches and a new unit is inserted


class UnitNet(Method):
    """Two re-parameterisable units; a growth adds branches (pooling, identity, convs) and a new unit,
    so the batched path, its fallback-free BN and the new unit's mode are all exercised."""

    name = "unitnet-test"
    last: UnitNet | None = None  # the latest instance, for the tests to inspect

    def __init__(self, cfg: UnitNetConfig):
        self.cfg, self.seen_modes = cfg, []  # per epoch: the modes of the model's units
        UnitNet.last = self

    def build_model(self, ctx):
        torch.manual_seed(0)
        c = ctx.input_size[0]
        return nn.Sequential(RepUnit(c, 8, 3, stride=2), nn.ReLU(), RepUnit(8, 8, 3), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, ctx.num_classes))

    def on_epoch_end(self, ctx, epoch, model, metrics):
        self.seen_modes.append(sorted({m.compute for m in model.modules() if isinstance(m, RepUnit)}))
        if epoch != self.cfg.grow_at:
            return None
        for name in ("1x1", "pool3x3", "bn", "3x3"):
            model[2].add_branch(BranchSpec.parse(name))
        layers = list(model)
        layers[3:3] = [RepUnit(8, 8, 3).to(next(model.parameters()).device), nn.ReLU()]
        return ModelChange(nn.Sequential(*layers), {"kind": "width"})

    def arch(self, model):
        return f"{len(model)} layers"


load_builtin_methods()
if "unitnet-test" not in METHODS:
    METHODS.register("unitnet-test", MethodEntry(UnitNetConfig, UnitNet, "test-only"))


def _cfg(data_dir, out, **kw) -> RunConfig:
    return tiny_run_config(data_dir, out, **{"method": "unitnet-test", "method_config": UnitNetConfig(), "epochs": 2, **kw})


def test_the_branch_computation_is_kept_after_growth_recorded_and_learns_the_same(tiny_mnist, tmp_path):
    loop = run(_cfg(tiny_mnist, tmp_path / "loop", branch_compute="loop"))
    assert loop["branch_compute"] == {"requested": "loop", "mode": "loop"}
    batched = run(_cfg(tiny_mnist, tmp_path / "batched", branch_compute="batched"))
    assert batched["branch_compute"] == {"requested": "batched", "mode": "batched"}
    assert UnitNet.last.seen_modes == [["batched"], ["batched"]]  # the unit the growth inserted too
    assert loop["run_name"] == batched["run_name"]  # the same run, computed another way
    for a, b in zip(loop["history"], batched["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=1.0)
    assert batched["compile"] == {"used": False, "compiles": 0, "seconds": 0.0}


def test_auto_keeps_the_faster_mode_by_its_probe(monkeypatch):
    def timer_of(loop_ms, batched_ms):
        times = iter([loop_ms] * (speed.PROBE_WARMUP + speed.PROBE_STEPS) + [batched_ms] * 99)
        return lambda run: (run(), next(times))[1]

    cpu = torch.device("cpu")
    fast_batched = speed.probe_branch_compute(cpu, (3, 8, 8), 4, timer=timer_of(5.0, 2.0))
    assert fast_batched == {"mode": "batched", "probe_ms": {"loop": 5.0, "batched": 2.0}}
    assert speed.probe_branch_compute(cpu, (3, 8, 8), 4, timer=timer_of(2.0, 5.0))["mode"] == "loop"
    state = torch.get_rng_state()
    probed = speed.probe_branch_compute(cpu, (3, 8, 8), 4)  # the real clock
    assert probed["mode"] in probed["probe_ms"] and all(probed["probe_ms"].values())
    assert torch.equal(torch.get_rng_state(), state)  # the run's random numbers are untouched
    # a clock never chooses on a CPU or in a deterministic run: two runs of one config compute alike
    assert speed.choose_branch_compute("auto", cpu, (3, 8, 8), 4)["mode"] == "loop"
    assert speed.choose_branch_compute("auto", cpu, (3, 8, 8), 4, deterministic=True)["mode"] == "loop"
    monkeypatch.setattr(speed, "probe_branch_compute", lambda *a, **k: {"mode": "batched", "probe_ms": {}})
    monkeypatch.setattr(speed, "device_name", lambda device: "a GPU")
    assert speed.choose_branch_compute("auto", torch.device("cuda"), (3, 8, 8), 4)["mode"] == "batched"


def test_compile_compiles_once_per_model_and_learns_the_same(tiny_mnist, tmp_path, monkeypatch):
    compiled = []
    real = torch.compile

    def fast_compile(model, **kw):  # the same plumbing (AOTAutograd, graphs) without C++ code generation
        compiled.append(model)
        return real(model, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", fast_compile)
    eager = run(_cfg(tiny_mnist, tmp_path / "eager", branch_compute="batched", epochs=3))
    rec = run(_cfg(tiny_mnist, tmp_path / "compiled", branch_compute="batched", epochs=3, compile=True))
    assert len(compiled) == 2  # at the start and once after the growth, not per epoch
    assert rec["compile"]["used"] and rec["compile"]["compiles"] == 2 and rec["compile"]["seconds"] > 0
    assert "compile" in rec["gpu_seconds"]
    for a, b in zip(eager["history"], rec["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_the_compile_warm_up_leaves_no_trace():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 36, 3))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 8, 8)
    rng = torch.get_rng_state()
    speed.warm_up(model, model, x, amp=False, channels_last=False)  # trains BN and draws dropout masks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and not model.training
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_orepa_form_is_part_of_the_model_and_of_the_run_identity():
    from adagrow.grow.method import AdaGrowConfig
    from adagrow.models.cnn import GrowableCNN

    model = GrowableCNN("vgg", "1-1-1", train_form="orepa")
    model.grow_width(units=[n for n, _ in model.units()])
    model.grow_depth()  # a new layer's units train in the model's form too
    assert {u.train_form for _, u in model.units(False) if u is not model.stem.unit} == {"orepa"}
    rebuilt = GrowableCNN.from_structure(model.structure())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model.eval()(x), rebuilt.eval()(x))
    thesis = RunConfig(dataset="mnist", method="adagrow", model="vgg", method_config=AdaGrowConfig())
    orepa = dataclasses.replace(thesis, method_config=AdaGrowConfig(train_form="orepa"))
    assert orepa.identity()["method_config"]["train_form"] == "orepa" and orepa.run_name != thesis.run_name
