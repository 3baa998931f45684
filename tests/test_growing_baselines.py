"""The growing baselines (RandGrow, SplitGrow, MoGrow): their decisions on constructed accuracy curves,
function preservation, the EMA, optimizer alignment, and resume through the real runner."""

import copy
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


def test_randgrow_ema_starts_at_zero_as_autogrow():
    # AutoGrow's utils.ExponentialMovingAverage: avg = 0 at first, avg <- d·avg + (1 - d)·acc, so with
    # d = 0.5 the accuracies 10, 20 give 5, 12.5 (the running maximum starts at the first value: 10, 20)
    ema = RandGrowMethod(RandGrowConfig(stop="none", stop_metric="ema", ema=0.5))
    running_max = RandGrowMethod(RandGrowConfig(stop="none", stop_metric="max"))
    for method in (ema, running_max):
        model = method.build_model(ctx())
        for e, acc in enumerate((10.0, 20.0)):
            method.on_epoch_end(ctx(), e, model, {"val_acc": acc})
    assert ema.metric == [5.0, 12.5]
    assert running_max.metric == [10.0, 20.0]


def autogrow_decisions(accs, k, j, tau, metric, groups=3, decay=0.95):
    """AutoGrow's growing loop (cifar10/main_gradual.py with --growing-mode group, utils.py), written out
    here as the oracle: after every K epochs, if the metric gained < τ over the last J epochs (against 0
    when fewer than J + 1 values exist: ``delta``'s IndexError branch), the group grown last stops; then
    the group picked after the previous growth grows, and the next open group after it is picked.
    Returns ([(epoch, group grown)], {group: epoch it stopped}, epoch growth ended or None)."""
    data, value = [], 0.0
    arch, limit = [1] * groups, [200] * groups
    growing, grown = 0, None
    grows, stops = [], {}
    for interval in range(len(accs) // k):
        for acc in accs[interval * k:(interval + 1) * k]:
            if metric == "max":
                value = acc if not data else max(value, acc)
            else:
                value = decay * value + (1 - decay) * acc
            data.append(value)
        epoch = (interval + 1) * k
        delta = data[-1] - data[-1 - j] if len(data) > j else data[-1]
        if delta < tau and grown is not None:
            limit[grown] = arch[grown]
            stops[grown] = epoch
        if not any(m > a for m, a in zip(limit, arch)):
            return grows, stops, epoch
        arch[growing] += 1
        grows.append((epoch, growing))
        grown = growing
        growing = next((g % groups for g in range(growing + 1, growing + 1 + groups) if limit[g % groups] > arch[g % groups]), -1)
    return grows, stops, None


def random_curve(rng, epochs):
    """A noisy saturating validation-accuracy curve (percent), some flat early, some still rising."""
    top, tau, noise = rng.uniform(20, 95), rng.uniform(1, 40), rng.uniform(0, 1.5)
    return [min(100.0, max(0.0, top * (1 - math.exp(-t / tau)) + rng.gauss(0, noise))) for t in range(1, epochs + 1)]


@pytest.mark.parametrize("metric", ["max", "ema"])
def test_randgrow_stopping_decisions_equal_autogrow_on_random_curves(metric, monkeypatch):
    import random

    import baselines.grow.randgrow as rg

    # the decisions alone: a growth appends an empty layer (building and initialising real layers would
    # take ~10 s a curve; the real growth path is exercised by the tests above)
    def grow_depth(model, stage):
        model.blocks[stage].append(nn.Identity())
        model.last_grown_block = stage
        return {"block": stage}

    monkeypatch.setattr(rg, "grow_depth", grow_depth)
    monkeypatch.setattr(rg, "snapshot", lambda model: None)
    monkeypatch.setattr(rg, "growth_record", lambda model, epoch, metrics, before, event: dict(event))
    monkeypatch.setattr(rg.RandGrowMethod, "_init_new_layer", lambda self, *args: {})
    stop_epochs = set()
    for i in range(200):
        accs = random_curve(random.Random(i), 150)
        method = RandGrowMethod(RandGrowConfig(stop_metric=metric, window=12, tau=0.05, grow_interval=3))
        _, changes = drive(method, ctx(epochs=len(accs) + 1), accs)
        ours = ([(e, c.event["block"]) for e, c in changes], method.stopped_stages, method.stopped_at)
        assert ours == autogrow_decisions(accs, 3, 12, 0.05, metric), i
        stop_epochs.update(method.stopped_stages.values())
    assert len(stop_epochs) > 10  # the curves exercise many different stopping points


def test_randgrow_gauinit_draws_the_last_bn_of_a_residual_layer():
    method = RandGrowMethod(RandGrowConfig(stop="none"))
    model = method.build_model(ctx())
    change = None
    for e in range(3):
        change = method.on_epoch_end(ctx(), e, model, {"val_acc": 10.0})
    layer = model.blocks[0][-1]
    assert change is not None and len(model.blocks[0]) == 2 and change.event["reinit"] == "last BN"
    gamma = layer.unit2.bn.weight.detach()
    assert gamma.std() > 0.5 and gamma.abs().mean() < 1.5  # N(0, 1), not the default γ = 1
    assert torch.all(layer.unit1.bn.weight == 1)  # only the last BN


@pytest.mark.parametrize("init", ["gauinit", "zeroinit", "adaminit"])
def test_randgrow_plain_layers_keep_the_default_init(init):
    # AutoGrow's load_all re-initialises nothing in PlainNet / CifarPlainNet ("UseDefaultInitialization"),
    # and its AdamInit then has no parameters to train
    batches = [(torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,)))] * 3
    c = ctx(family="vgg", batches=lambda: iter(batches))
    method = RandGrowMethod(RandGrowConfig(family="vgg", stop="none", init=init))
    model = method.build_model(c)
    for e in range(3):
        change = method.on_epoch_end(c, e, model, {"val_acc": 10.0, "train_acc": 50.0})
    bn = model.blocks[0][-1].units()[-1].bn
    assert change.event["reinit"].startswith("none") and "adam_init_batches" not in change.event
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)  # the model's own BN init


@pytest.mark.parametrize("train_acc,batches,steps", [(-100.0, 2, None), (101.0, 20, None), (101.0, 5, 5)])
def test_randgrow_adaminit_trains_until_the_training_accuracy_recovers(train_acc, batches, steps):
    # AutoGrow: Adam on the new γ, β epoch by epoch until an epoch's training accuracy exceeds the one
    # before the growth less 0.5, at most 10 epochs: recovered after the first epoch (2 batches here),
    # or never (10 epochs = 20 batches); the named option adam_init_steps trains a fixed number instead
    data = [(torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2,))) for _ in range(2)]
    c = dataclasses.replace(ctx(batches=lambda: iter(data * 100)), steps_per_epoch=2, input_size=(3, 8, 8))
    method = RandGrowMethod(RandGrowConfig(stop="none", init="adaminit", adam_init_steps=steps))
    model = method.build_model(c)
    change = None
    for e in range(3):
        change = method.on_epoch_end(c, e, model, {"val_acc": 10.0, "train_acc": train_acc})
    assert change.event["adam_init_batches"] == batches
    assert not torch.all(model.blocks[0][-1].unit2.bn.weight == 1)  # trained
    assert torch.all(model.blocks[0][-1].unit1.bn.weight == 1)  # nothing else


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


def test_splitgrow_variance_transfer_and_twins():
    torch.manual_seed(0)
    c = ctx()
    method = SplitGrowMethod(SplitGrowConfig(grow_interval=1, arch="1-1-1"))
    model = method.build_model(c)
    old_w = model.blocks[0][0].unit1.conv.weight.detach().clone()
    new = method.on_epoch_end(c, 0, model, {"val_acc": 10.0}).model
    w = new.blocks[0][0].unit1.conv.weight.detach()
    ratio = old_w.shape[1] / w.shape[1]
    torch.testing.assert_close(w[: old_w.shape[0], : old_w.shape[1]], old_w * ratio)  # C_t / C_{t+1}
    # twins: the new fan-out columns cancel pairwise
    cols = w[: old_w.shape[0], old_w.shape[1]:]
    torch.testing.assert_close(cols[:, 0::2], -cols[:, 1::2])


def _grown_twice():
    """A SplitGrow model grown twice, with each weight's per-entry lr multiplier computed here from the
    paper's rule (η_t/η₀ = ‖W_Δt‖_F/‖W₀‖_F, W₀ the layer's seed weight, W_Δt the entries growth t added,
    as initialised; seed entries 1; BN parameters and biases 1)."""
    torch.manual_seed(0)
    c = ctx()
    method = SplitGrowMethod(SplitGrowConfig(grow_interval=1, arch="1-1-1"))
    model = method.build_model(c)
    seed = {n: p.detach().clone() for n, p in model.named_parameters()}
    first = method.on_epoch_end(c, 0, model, {"val_acc": 10.0}).model
    after1 = {n: p.detach().clone() for n, p in first.named_parameters()}
    second = method.on_epoch_end(c, 1, first, {"val_acc": 10.0}).model
    expected = {}
    for n, p in second.named_parameters():
        lr = torch.ones(p.shape)
        if p.dim() > 1:
            s0, s1 = tuple(seed[n].shape), tuple(after1[n].shape)
            new1 = torch.ones(s1, dtype=torch.bool)
            new1[tuple(slice(0, k) for k in s0)] = False
            new2 = torch.ones(p.shape, dtype=torch.bool)
            new2[tuple(slice(0, k) for k in s1)] = False
            w0 = float(seed[n].norm())
            r1 = float(after1[n][new1].norm()) / w0
            r2 = float(p.detach()[new2].norm()) / w0
            lr[tuple(slice(0, k) for k in s1)] = torch.where(new1, r1, 1.0)
            lr[new2] = r2
        expected[n] = lr
    return second, expected


def test_splitgrow_each_part_has_its_own_learning_rate():
    model, expected = _grown_twice()
    w = "blocks.0.0.unit1.conv.weight"
    assert len(set(expected[w].flatten().tolist())) == 3  # seed, growth 1, growth 2
    for n, p in model.named_parameters():
        torch.testing.assert_close(getattr(p, "lr_mask", torch.ones(p.shape)), expected[n], rtol=1e-5, atol=0)
    # the seed's entries keep η₀, the head's new inputs and the convs' new entries differ from it
    assert float(expected[w][0, 0, 0, 0]) == 1.0 and float(expected["head.fc.weight"][0, -1]) != 1.0


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_splitgrow_step_of_each_part_is_the_step_at_its_learning_rate(name):
    """Two optimizer steps on the grown model: every entry moves as the optimizer run at that entry's
    part's learning rate moves it.  SGD's oracle is the step written out (buffer b ← μb + g + λθ,
    θ ← θ − η_t·b); Adam's and AdamW's, torch's own optimizer at η_t on a copy."""
    model, lrs = _grown_twice()
    base, wd, mom = 0.1, 5e-4, 0.9
    params = dict(model.named_parameters())
    opt = build_optimizer(name, params.values(), base, wd, mom)
    set_lr(opt, base)
    gen = torch.Generator().manual_seed(1)
    grads = [{n: torch.randn(p.shape, generator=gen) for n, p in params.items()} for _ in range(2)]
    start = {n: p.detach().clone() for n, p in params.items()}
    for g in grads:
        for n, p in params.items():
            p.grad = g[n].clone()
        opt.step()
    for n, p in params.items():
        expected = torch.empty(p.shape)
        for lr in lrs[n].unique().tolist():
            if name == "sgd":
                theta, buf = start[n].clone(), None
                for g in grads:
                    d = g[n] + wd * theta
                    buf = d if buf is None else mom * buf + d
                    theta = theta - base * lr * buf
            else:
                ref = nn.Parameter(start[n].clone())
                ref_opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]([ref], lr=base * lr, weight_decay=wd)
                for g in grads:
                    ref.grad = g[n].clone()
                    ref_opt.step()
                theta = ref.detach()
            where = lrs[n] == lr
            expected[where] = theta[where]
        # atol: float rounding of steps of size ~1; a wrong learning rate is off by its ratio (≥ 10 %)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-5, msg=lambda m, n=n: f"{n}: {m}")
    moved = {n: (p.detach() - start[n]).abs() for n, p in params.items()}
    assert all(float(m.max()) > 0 for m in moved.values())


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
    assert cfg.boundaries(100) == [25, 50, 75]


# AutoProg's prog/helpers.py: [new_idx(i, old, new) for i in range(new)], run on its own code
AUTOPROG_NEW_IDX = {
    (2, 3): [0, 1, 1], (3, 4): [0, 1, 2, 2], (2, 4): [0, 0, 1, 1], (1, 2): [0, 0], (1, 3): [0, 0, 0],
    (2, 2): [0, 1], (3, 5): [0, 1, 1, 2, 2], (3, 6): [0, 0, 1, 1, 2, 2], (3, 7): [0, 0, 1, 1, 2, 2, 2],
    (4, 7): [0, 1, 1, 2, 2, 3, 3], (5, 8): [0, 1, 2, 2, 3, 3, 4, 4], (4, 10): [0, 0, 1, 1, 2, 2, 2, 3, 3, 3],
    (9, 12): [0, 1, 2, 3, 4, 5, 6, 6, 7, 7, 8, 8],
    (12, 15): [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 10, 11, 11],
    (15, 18): [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 13, 13, 14, 14],
    (9, 18): [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8],
}


@pytest.mark.parametrize("old,new", sorted(AUTOPROG_NEW_IDX))
def test_mogrow_copy_index_is_autoprogs_new_idx(old, new):
    assert copy_index(old, new) == AUTOPROG_NEW_IDX[old, new]


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
    # AutoProg's new_idx for 2 -> 3 layers: old layer 0 -> new 0; old layer 1 -> new 1 and 2; all from the EMA
    for j, i in enumerate([0, 1, 1]):
        for name in ("unit1.conv.weight", "unit2.bn.weight", "unit2.bn.running_var"):
            torch.testing.assert_close(grown[f"blocks.1.{j}.{name}"], ema[f"blocks.1.{i}.{name}"])
    assert model.blocks[1][1].unit1.conv.weight is not model.blocks[1][2].unit1.conv.weight  # copies, not shared
    torch.testing.assert_close(grown["head.fc.weight"], ema["head.fc.weight"])
    assert method.ema.keys() == grown.keys()  # the EMA grew the same way


def test_mogrow_recalibrates_every_bn_of_the_grown_model_on_training_batches():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 3, 16, 16, generator=gen) * 2 + 1, torch.randint(0, 10, (8,), generator=gen))
            for _ in range(3)]
    c = ctx(epochs=12, batches=lambda: iter(data * 10))
    method = MoGrowMethod(MoGrowConfig(grow_interval=2, ema_decay=0.5, recalibrate_batches=3))
    model = method.build_model(c)
    method.on_epoch_end(c, 0, model, {"val_acc": 10.0})
    assert method.on_epoch_end(c, 1, model, {"val_acc": 10.0}) is not None and model.depths == (3, 3, 3)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    stale = [bn.running_mean.clone() for bn in bns]
    # oracle: the statistics of each BN's input over the three batches, every BN normalising with its
    # batch statistics as it is re-estimated (the mean of the per-batch means and unbiased variances)
    seen = {bn: [] for bn in bns}
    probe = copy.deepcopy(model)
    hooks = [pb.register_forward_pre_hook(lambda m, args, bn=bn: seen[bn].append(args[0].detach()))
             for bn, pb in zip(bns, (m for m in probe.modules() if isinstance(m, nn.BatchNorm2d)))]
    with torch.no_grad():
        for x, _ in data:
            probe.train()(x)
    for h in hooks:
        h.remove()
    assert method.recalibrate(c, model) is True
    for bn, mean0 in zip(bns, stale):
        means = torch.stack([a.mean((0, 2, 3)) for a in seen[bn]]).mean(0)
        varis = torch.stack([a.transpose(0, 1).flatten(1).var(1, unbiased=True) for a in seen[bn]]).mean(0)
        torch.testing.assert_close(bn.running_mean, means, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_var, varis, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(bn.running_mean, mean0)  # it really changed


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
        capped = [e for e in entries if "max_params" in e.derive]  # issue 19: MNIST's reference selection only
        assert len(entries) - len(capped) == 3 * 4 * 2, dataset
        assert sorted(e.name for e in capped) == (
            ["mogrow-vgg-3b-capped", "randgrow-vgg-3b-capped", "splitgrow-vgg-3b-capped"] if dataset == "mnist" else [])
        assert sorted(e.method for e in entries if e.smoke) == ["mogrow", "randgrow", "splitgrow"]
