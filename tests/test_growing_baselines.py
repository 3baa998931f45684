"""The growing baselines (RandGrow, SplitGrow, MoGrow): their decisions on constructed accuracy curves,
function preservation, the EMA, optimizer alignment, and resume through the real runner."""

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from adagrow.engine.method import RunContext
from adagrow.engine.optim import build_optimizer, set_lr, transfer_state
from adagrow.engine.runner import Interrupted, run
from adagrow.errors import AdaGrowError
from adagrow.methods import load_builtin_methods
from baselines.grow.mogrow import MoGrowConfig, MoGrowMethod, copy_index
from baselines.grow.randgrow import RandGrowConfig, RandGrowMethod
from baselines.grow.splitgrow import SplitGrowConfig, SplitGrowMethod, round2, width_steps
from tests.test_runner import _cfg

FAMILIES = ("vgg", "resnet", "bottleneck", "mobilenetv3")


def ctx(epochs=60, family="resnet", chans=3, batches=None):
    return RunContext(config=SimpleNamespace(seed=0, model=family, dataset="synthetic"), dataset=None,
                      input_size=(chans, 16, 16), num_classes=10, device=torch.device("cpu"), epochs=epochs,
                      steps_per_epoch=1, train_batches=batches)


def drive(method, c, accs, model=None, start=0):
    """Feed a validation-accuracy curve; return the final model and the changes (epoch, change)."""
    model = model if model is not None else method.build_model(c)
    changes = []
    for epoch in range(start, len(accs)):
        change = method.on_epoch_end(c, epoch, model, {"val_acc": accs[epoch]})
        if change is not None:
            model = change.model
            changes.append((epoch + 1, change))
    return model, changes


def test_registered_with_their_configs():
    methods = load_builtin_methods()
    for name, cls in (("randgrow", RandGrowConfig), ("splitgrow", SplitGrowConfig), ("mogrow", MoGrowConfig)):
        assert methods.get(name).config_cls is cls


@pytest.mark.parametrize("make", [lambda: RandGrowConfig(init="nope"), lambda: RandGrowConfig(seed_arch="1-1"),
                                  lambda: SplitGrowConfig(rate=0), lambda: MoGrowConfig(target_arch="1-4-4"),
                                  lambda: MoGrowConfig(family="lenet")])
def test_bad_options_end_in_one_clear_error(make):
    with pytest.raises(AdaGrowError):
        make()


# ------------------------------------------------------------------------------------------ RandGrow
def test_randgrow_grows_stages_round_robin_every_k_epochs():
    method = RandGrowMethod(RandGrowConfig(stop="none"))
    model = method.build_model(ctx())
    assert model.depths == (1, 1, 1)  # AutoGrow's seed
    model, changes = drive(method, ctx(epochs=19), [10.0 + e for e in range(19)], model)
    assert [e for e, _ in changes] == [3, 6, 9, 12, 15, 18]
    assert [c.event["block"] for _, c in changes] == [0, 1, 2, 0, 1, 2]
    assert all(c.event["position"] == int(c.event["arch_before"].split("-")[c.event["block"]]) for _, c in changes)  # appended
    assert model.depths == (3, 3, 3)


def test_randgrow_stops_each_stage_on_a_flat_curve_and_not_before():
    cfg = RandGrowConfig(window=6, tau=0.05)
    method = RandGrowMethod(cfg)
    rising = [10.0 + e for e in range(15)]  # +1 point per epoch up to epoch 15
    flat = [rising[-1] + 0.005 * (e + 1) for e in range(25)]  # then +0.03 points per 6 epochs < τ
    model, changes = drive(method, ctx(epochs=40), rising + flat)
    grown = [(e, c.event["block"]) for e, c in changes]
    # the first due growth with a flat window (epochs 15-21) stops the stage grown last (2 at epoch 18),
    # and the next open stage grows instead; each later due growth stops the stage grown before it
    assert grown == [(3, 0), (6, 1), (9, 2), (12, 0), (15, 1), (18, 2), (21, 0), (24, 1)]
    assert method.stopped_stages == {2: 21, 0: 24, 1: 27}
    assert method.stopped_at == 27 and model.depths == (4, 4, 3)
    # a curve that keeps rising by τ over the window never stops a stage
    steady = RandGrowMethod(cfg)
    drive(steady, ctx(epochs=40), [10.0 + 0.01 * e for e in range(40)])
    assert steady.stopped_stages == {}


def test_randgrow_ema_metric_and_gauinit_draws_the_last_bn():
    method = RandGrowMethod(RandGrowConfig(stop="none", stop_metric="ema", ema=0.5))
    model = method.build_model(ctx())
    method.on_epoch_end(ctx(), 0, model, {"val_acc": 10.0})
    method.on_epoch_end(ctx(), 1, model, {"val_acc": 20.0})
    assert method.metric == [10.0, 15.0]
    change = method.on_epoch_end(ctx(), 2, model, {"val_acc": 20.0})
    layer = model.blocks[0][-1]
    assert change is not None and len(model.blocks[0]) == 2
    gamma = layer.unit2.bn.weight.detach()
    assert gamma.std() > 0.5 and gamma.abs().mean() < 1.5  # N(0, 1), not the default γ = 1
    assert torch.all(layer.unit1.bn.weight == 1)  # only the last BN


def test_randgrow_zeroinit_makes_the_new_residual_block_the_identity():
    method = RandGrowMethod(RandGrowConfig(stop="none", init="zeroinit"))
    model = method.build_model(ctx()).eval()
    x = torch.randn(2, 3, 16, 16)
    before = model(x)
    for e in range(3):
        method.on_epoch_end(ctx(), e, model, {"val_acc": 10.0})
    assert model.depths == (2, 1, 1)
    torch.testing.assert_close(model.eval()(x), before)


def test_randgrow_thesis_init_draws_every_new_tensor_from_n_0_02():
    method = RandGrowMethod(RandGrowConfig(stop="none", init="thesis"))
    model = method.build_model(ctx())
    for e in range(3):
        method.on_epoch_end(ctx(), e, model, {"val_acc": 10.0})
    w = model.blocks[0][1].unit1.conv.weight.detach()
    assert abs(float(w.std()) - 0.2) < 0.01


# ------------------------------------------------------------------------------------------ SplitGrow
def test_width_schedule_is_x1_2_in_even_steps():
    assert round2(3.2) == 4 and round2(4.8) == 4 and round2(5.6) == 6
    assert width_steps(64) == [16, 20, 24, 28, 34, 40, 48, 58, 64]
    for c in (64, 96, 128, 256, 16):
        steps = width_steps(c)
        assert steps[0] == round2(c / 4) and steps[-1] == c
        assert all(b - a == max(2, round2(0.2 * a)) or b == c for a, b in zip(steps, steps[1:]))
        assert all(w % 2 == 0 for w in steps)


def test_geometric_stages_fit_the_budget():
    cfg = SplitGrowConfig()
    when = cfg.growth_epochs(8, 100)
    assert when == sorted(when) and when[-1] < 100
    lengths = [b - a for a, b in zip([0] + when, when)]
    assert lengths[-1] > lengths[0]  # stages lengthen
    assert SplitGrowConfig(grow_interval=2).growth_epochs(3, 100) == [2, 4, 6]
    long = SplitGrowConfig().growth_epochs(2, 1000)  # room enough: T0 = 8 as written, then 8·1.2
    assert long == [8, round(8 + 9.6)]


@pytest.mark.parametrize("family", FAMILIES)
def test_splitgrow_growth_preserves_the_logits_and_follows_the_schedule(family):
    torch.manual_seed(0)
    c = ctx(family=family)
    method = SplitGrowMethod(SplitGrowConfig(grow_interval=1, arch="1-1-1"))
    model = method.build_model(c)
    x = torch.randn(6, 3, 16, 16)
    schedule = method.widths
    for epoch in range(len(schedule) - 1):
        with torch.no_grad():
            model.train()(x)  # non-trivial BN statistics
        before = model.eval()(x)
        change = method.on_epoch_end(c, epoch, model, {"val_acc": 10.0})
        assert change is not None and change.model.widths == schedule[epoch + 1]
        model = change.model
        after = model.eval()(x)
        assert float((after - before).detach().norm() / before.detach().norm()) <= 1e-5
    assert model.widths == (schedule[-1]) and method.on_epoch_end(c, 20, model, {"val_acc": 10.0}) is None


def test_splitgrow_variance_transfer_and_lr_adaptation_formula():
    torch.manual_seed(0)
    c = ctx()
    method = SplitGrowMethod(SplitGrowConfig(grow_interval=1, arch="1-1-1"))
    model = method.build_model(c)
    old_w = model.blocks[0][0].unit1.conv.weight.detach().clone()
    seed_norm = float(old_w.norm())
    new = method.on_epoch_end(c, 0, model, {"val_acc": 10.0}).model
    w = new.blocks[0][0].unit1.conv.weight.detach()
    ratio = old_w.shape[1] / w.shape[1]
    torch.testing.assert_close(w[: old_w.shape[0], : old_w.shape[1]], old_w * ratio)  # C_t / C_{t+1}
    mask = torch.ones_like(w, dtype=torch.bool)
    mask[: old_w.shape[0], : old_w.shape[1]] = False
    expected = float(w[mask].norm()) / seed_norm
    p = new.blocks[0][0].unit1.conv.weight
    assert p.lr_scale == pytest.approx(expected)
    assert not hasattr(new.blocks[0][0].unit1.bn.weight, "lr_scale")  # BN parameters keep η₀
    opt = build_optimizer("sgd", new.parameters(), 0.1, 5e-4)
    set_lr(opt, 0.1)
    group = next(g for g in opt.param_groups if any(q is p for q in g["params"]))
    assert group["lr"] == pytest.approx(0.1 * expected)
    # twins: the new fan-out columns cancel pairwise
    cols = w[: old_w.shape[0], old_w.shape[1]:]
    torch.testing.assert_close(cols[:, 0::2], -cols[:, 1::2])


def test_splitgrow_optimizer_state_stays_aligned_with_the_parameters():
    torch.manual_seed(0)
    c = ctx()
    method = SplitGrowMethod(SplitGrowConfig(grow_interval=1, arch="1-1-1"))
    model = method.build_model(c)
    opt = build_optimizer("sgd", model.parameters(), 0.1, 5e-4)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    change = method.on_epoch_end(c, 0, model, {"val_acc": 10.0})
    new_opt = build_optimizer("sgd", change.model.parameters(), 0.1, 5e-4)
    assert transfer_state(opt, new_opt, change.param_map) == len(list(model.parameters()))
    for p in change.model.parameters():
        old, slices = change.param_map[p]
        buf = new_opt.state[p]["momentum_buffer"]
        assert buf.shape == p.shape
        torch.testing.assert_close(buf[slices], opt.state[old]["momentum_buffer"])
        assert torch.count_nonzero(buf) == torch.count_nonzero(buf[slices])  # new slots zero


# ------------------------------------------------------------------------------------------ MoGrow
def test_mogrow_depth_schedule_and_copy_index():
    cfg = MoGrowConfig()
    assert [cfg.depths_at(k) for k in range(4)] == [(2, 2, 2), (3, 3, 3), (3, 3, 3), (4, 4, 4)]
    assert [MoGrowConfig(target_arch="18-18-18").depths_at(k)[0] for k in range(4)] == [9, 12, 15, 18]  # AutoProg's VOLO
    assert copy_index(2, 4) == [0, 0, 1, 1] and copy_index(9, 18)[:4] == [0, 0, 1, 1] and copy_index(2, 3) == [0, 0, 1]
    assert cfg.boundaries(100) == [25, 50, 75]


def test_mogrow_ema_update_is_exact():
    method = MoGrowMethod(MoGrowConfig(ema_decay=0.9))
    model = method.build_model(ctx())
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model.train()(torch.randn(4, 3, 16, 16))  # BN buffers move too
    method.after_step(model)
    now = model.state_dict()
    for k, v in start.items():
        if v.is_floating_point():
            torch.testing.assert_close(method.ema[k], 0.9 * v + 0.1 * now[k])
        else:
            assert torch.equal(method.ema[k], now[k])


def test_mogrow_growth_loads_the_ema_and_copies_neighbours():
    c = ctx(epochs=12)
    method = MoGrowMethod(MoGrowConfig(grow_interval=2, ema_decay=0.5))
    model = method.build_model(c)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    method.after_step(model)
    ema = {k: v.clone() for k, v in method.ema.items()}
    assert method.on_epoch_end(c, 0, model, {"val_acc": 10.0}) is None
    change = method.on_epoch_end(c, 1, model, {"val_acc": 10.0})
    assert change is not None and change.inherit_optimizer is False and model.depths == (3, 3, 3)
    grown = model.state_dict()
    # old layer 0 -> new 0 and 1; old layer 1 -> new 2; all from the EMA
    for j, i in enumerate(copy_index(2, 3)):
        for name in ("unit1.conv.weight", "unit2.bn.weight", "unit2.bn.running_var"):
            torch.testing.assert_close(grown[f"blocks.1.{j}.{name}"], ema[f"blocks.1.{i}.{name}"])
    assert model.blocks[1][0].unit1.conv.weight is not model.blocks[1][1].unit1.conv.weight  # copies, not shared
    torch.testing.assert_close(grown["head.fc.weight"], ema["head.fc.weight"])
    assert method.ema.keys() == grown.keys()  # the EMA grew the same way
    assert method.recalibrate(c, model) is False  # no batches here; with batches every BN is re-estimated
    assert len(method._new_bns) == 0


# ------------------------------------------------------------------------------------------ through the runner
@pytest.mark.filterwarnings("ignore:MNIST. md5")
@pytest.mark.parametrize("method,config,interrupt", [
    ("randgrow", RandGrowConfig(family="vgg", grow_interval=1, stop="none", recalibrate_batches=2), 1),
    ("splitgrow", SplitGrowConfig(family="vgg", arch="1-1-1", grow_interval=1), 1),
    ("mogrow", MoGrowConfig(family="vgg", target_arch="2-2-2", stages=2, grow_interval=1, ema_decay=0.9,
                            recalibrate_batches=2), 1),
])
def test_resumed_right_after_a_growth_equals_the_uninterrupted_run(tiny_mnist, tmp_path, method, config, interrupt):
    kw = dict(method=method, model="vgg", method_config=config, epochs=3)
    full = run(_cfg(tiny_mnist, tmp_path / "a", **kw), log=lambda *_: None)
    cfg = _cfg(tiny_mnist, tmp_path / "b", **kw)
    with pytest.raises(Interrupted):
        run(cfg, interrupt_after=interrupt, log=lambda *_: None)
    resumed = run(dataclasses.replace(cfg, resume=True), log=lambda *_: None)
    assert full["growth_events"] and full["growth_events"][0]["epoch"] == interrupt
    assert resumed["arch"] == full["arch"] and resumed["growth_events"] == full["growth_events"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
    assert resumed["test_acc"] == full["test_acc"] and math.isfinite(full["test_acc"])
    a, b = (torch.load(Path(r["run_dir"]) / "deploy.pt", weights_only=False)["model"].state_dict() for r in (full, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------ suites
def test_table_3_31_suite_has_an_entry_per_thesis_row_and_each_builds_its_method_config():
    from reports.thesis_reference import TABLES
    from suites import _load, run_config_for
    from tests.test_suites import fake_args

    entries = _load().get("table3-31")
    assert {e.name for e in entries} == {row.key[1] for row in TABLES["3-31"].rows}
    assert sorted(e.method for e in entries if e.smoke) == ["adagrow", "mogrow", "randgrow", "splitgrow"]
    configs = {"randgrow": RandGrowConfig, "splitgrow": SplitGrowConfig, "mogrow": MoGrowConfig}
    for e in entries:
        cfg = run_config_for(e, fake_args(), "table3-31")
        assert cfg.dataset == "cifar10" and cfg.recipe.name == "adagrow" and cfg.tag == e.name
        assert cfg.method_config.family == e.model and cfg.method_config.blocks == int(e.name[-2])
        if e.method in configs:
            assert isinstance(cfg.method_config, configs[e.method])


def test_every_vision_dataset_suite_runs_the_growing_baselines_one_smoke_entry_each():
    from suites import _load
    from suites.datasets import VISION

    for dataset in VISION:
        entries = [e for e in _load().get(dataset) if e.method in ("randgrow", "splitgrow", "mogrow")]
        assert len(entries) == 3 * 4 * 2, dataset
        assert sorted(e.method for e in entries if e.smoke) == ["mogrow", "randgrow", "splitgrow"]
