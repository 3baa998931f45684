"""The AdaGrow Method: schedule, stop rules on constructed accuracy curves, BN recalibration after a
growth, the released-code variant and its recipe, resume (also through the real runner), registration."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from adagrow.config import resolve_recipe
from adagrow.data import load_dataset
from adagrow.data.resident import ResidentLoader
from adagrow.engine.loop import train_one_epoch
from adagrow.engine.method import RunContext
from adagrow.engine.optim import lr_at
from adagrow.engine.runner import Interrupted, run
from adagrow.errors import AdaGrowError, ArchitectureError
from adagrow.grow.method import AdaGrowConfig, AdaGrowMethod, parse_pattern
from adagrow.grow.stop import PlateauRule, ReleasedPlateauRule
from adagrow.measure.profile import count_params
from adagrow.models.cnn_count import fused_params
from adagrow.models.reparam import fuse_model
from tests.test_runner import _cfg


def ctx(epochs=60, seed=0, model=None, chans=1):
    return RunContext(config=SimpleNamespace(seed=seed, model=model, dataset="synthetic"), dataset=None, input_size=(chans, 8, 8),
                      num_classes=10, device=torch.device("cpu"), epochs=epochs, steps_per_epoch=1)


def drive(method, c, accs, model=None, start=0):
    """Feed a validation-accuracy curve; return the model and the epochs at which growth happened."""
    model = model if model is not None else method.build_model(c)
    grown = []
    for epoch in range(start, len(accs)):
        change = method.on_epoch_end(c, epoch, model, {"val_acc": accs[epoch]})
        if change is not None:
            assert change.model is model
            grown.append(epoch + 1)
    return model, grown


def test_pattern_parsing():
    assert parse_pattern("W1D2") == ["width", "depth", "depth"]
    assert parse_pattern("w3d1") == ["width"] * 3 + ["depth"]
    for bad in ("", "W0D1", "X1", "W1D"):
        with pytest.raises(AdaGrowError):
            parse_pattern(bad)


def test_schedule_follows_interval_and_pattern():
    method = AdaGrowMethod(AdaGrowConfig(stop="none"))
    model, grown = drive(method, ctx(epochs=20), [10.0 * (1 + i) for i in range(20)])
    assert grown == [3, 6, 9, 12, 15, 18]
    assert [e["kind"] for e in method.events] == ["width", "depth", "depth"] * 2
    assert model.arch() == method.summary()["arch"] and sum(model.depths) == 4
    e = method.events[1]
    assert {"epoch", "kind", "where", "what", "params_before", "params_after", "val_acc_before"} <= set(e)
    assert e["params_after"] > e["params_before"]


def test_plateau_rule_fires_on_the_second_miss_only():
    rule = PlateauRule(threshold=3.0, tolerance=1, decay=0.0)  # no smoothing: gains are raw
    fired = []
    for acc in [50, 60, 70, 71, 80, 81]:
        rule.update(acc)
        fired.append(rule.miss_fires())
    # gains: +10, +10, +1 (miss 1, tolerated), +9, +1 (miss 2 > tolerance: fire)
    assert fired == [False, False, False, False, False, True]
    assert rule.misses == 2 and rule.gains == [10.0, 10.0, 1.0, 9.0, 1.0]


# rising 5 points per epoch for 15 epochs, then flat
PLATEAU = [min(5.0 * (e + 1), 75.0) for e in range(40)]


def test_auto_stop_fires_on_a_plateau_and_not_before():
    config = AdaGrowConfig()  # the defaults: auto stop, threshold 3, tolerance 1, EMA 0.6
    assert (config.stop_rule("cifar10"), config.threshold, config.tolerance, config.ema) == ("auto", 3.0, 1, 0.6)
    method = AdaGrowMethod(config)
    _, grown = drive(method, ctx(epochs=40), PLATEAU)
    stopped = method.summary()["stopped_growing_at"]
    assert stopped is not None and 15 < stopped <= 27
    assert all(g < stopped for g in grown) and len(grown) >= 5
    # a larger tolerance stops later, a larger threshold earlier
    later = AdaGrowMethod(AdaGrowConfig(tolerance=3))
    drive(later, ctx(epochs=40), PLATEAU)
    assert later.summary()["stopped_growing_at"] > stopped
    earlier = AdaGrowMethod(AdaGrowConfig(threshold=20.0))
    drive(earlier, ctx(epochs=40), PLATEAU)
    assert earlier.summary()["stopped_growing_at"] < stopped


def _first_firing(rule, curve, interval=3):
    """Epoch (1-based) at which ``rule`` fires when fed ``curve`` with a check every ``interval``."""
    for epoch, acc in enumerate(curve, 1):
        rule.update(acc)
        if epoch % interval == 0 and rule.miss_fires():
            return epoch
    return None


def test_released_code_plateau_rule_never_fires_where_the_thesis_rule_does():
    flat = [50.0] * 60
    assert _first_firing(ReleasedPlateauRule(), PLATEAU + flat) is None
    assert _first_firing(ReleasedPlateauRule(), flat) is None
    assert _first_firing(PlateauRule(), PLATEAU + flat) is not None
    # through the method: the released-code variant keeps growing on a flat curve, the thesis' stops
    released = AdaGrowMethod(AdaGrowConfig(variant="released-code", stop="auto"))
    _, grown = drive(released, ctx(epochs=30), [50.0] * 30)
    assert released.summary()["stopped_growing_at"] is None and len(grown) == 9
    assert released.summary()["plateau_gains"] == [0.0] * 8  # it did test every interval, and failed it
    thesis = AdaGrowMethod(AdaGrowConfig(stop="auto"))
    drive(thesis, ctx(epochs=30), [50.0] * 30)
    assert thesis.summary()["stopped_growing_at"] is not None


def test_target_stop_reaches_exactly_the_target():
    method = AdaGrowMethod(AdaGrowConfig(stop="target", target_arch="2-1-1"))
    model, grown = drive(method, ctx(epochs=60), [50.0] * 60)
    assert model.arch() == "2-1-1"
    stopped = method.summary()["stopped_growing_at"]
    assert stopped == grown[-1] and all(g <= stopped for g in grown)


def test_budget_stop_keeps_the_model_within_budget():
    budget = 400_000
    method = AdaGrowMethod(AdaGrowConfig(stop="budget", param_budget=budget))
    model, grown = drive(method, ctx(epochs=90), [50.0] * 90)
    assert method.summary()["stopped_growing_at"] is not None
    assert fused_params(model) <= budget and count_params(model) <= 1.5 * budget
    assert fused_params(model) == count_params(fuse_model(model))
    assert fused_params(model) > budget - 160_000  # it did grow close to the budget (one VGG layer ≤ 148K)


def test_resume_rebuilds_the_grown_model_and_continues_identically():
    cfg = AdaGrowConfig(stop="none", depth_policy="random", branch_policy="random")
    curve = [float(e) for e in range(24)]
    torch.manual_seed(0)
    full = AdaGrowMethod(cfg)
    full_model, _ = drive(full, ctx(epochs=24, seed=5), curve)

    torch.manual_seed(0)
    first = AdaGrowMethod(cfg)
    model, _ = drive(first, ctx(epochs=24, seed=5), curve[:10])
    saved_state, saved_weights = first.state_dict(), model.state_dict()
    resumed = AdaGrowMethod(cfg)
    resumed.load_state_dict(saved_state)
    rebuilt = resumed.build_model(ctx(epochs=24, seed=5))
    rebuilt.load_state_dict(saved_weights)  # strict: same architecture, branches included
    drive(resumed, ctx(epochs=24, seed=5), curve, model=rebuilt, start=10)
    assert rebuilt.structure() == full_model.structure()
    assert resumed.summary()["growth_events"] == full.summary()["growth_events"]
    w_full, w_res = full_model.state_dict(), rebuilt.state_dict()
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)


def test_fresh_optimizer_is_requested():
    method = AdaGrowMethod(AdaGrowConfig(stop="none", optimizer_transfer="fresh"))
    c = ctx(epochs=10)
    model = method.build_model(c)
    change = None
    for epoch in range(3):
        change = method.on_epoch_end(c, epoch, model, {"val_acc": 10.0}) or change
    assert change is not None and change.inherit_optimizer is False


def test_family_from_run_config_and_deploy_model():
    method = AdaGrowMethod(AdaGrowConfig(blocks=4))
    model = method.build_model(ctx(model="mobilenetv3", chans=3))
    assert model.family == "mobilenetv3" and model.arch() == "0-0-0-0"
    assert method.arch(model) == "0-0-0-0"
    fused = method.deploy_model(model)
    assert count_params(fused) == fused_params(model)
    with pytest.raises(AdaGrowError):
        AdaGrowMethod().build_model(ctx(model="vit"))


def test_config_validation():
    with pytest.raises(AdaGrowError):
        AdaGrowConfig(stop="target")
    with pytest.raises(AdaGrowError):
        AdaGrowConfig(variant="nope")
    with pytest.raises(AdaGrowError):
        AdaGrowConfig(depth_policy="nope").policy()
    with pytest.raises(ArchitectureError):
        AdaGrowConfig(stop="target", target_arch="3-x-3").policy()


def test_registered_in_method_registry():
    from adagrow.methods import METHODS

    entry = METHODS.get("adagrow")
    assert entry.config_cls is AdaGrowConfig and isinstance(entry.factory(AdaGrowConfig()), AdaGrowMethod)


def test_local_learning_init_uses_training_batches():
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(4, 1, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g))]
    calls = []

    def batches():
        calls.append(1)
        while True:
            yield from data

    c = ctx(epochs=10)
    c.train_batches = batches
    method = AdaGrowMethod(AdaGrowConfig(stop="none", init="local-learning", local_learning_steps=2, pattern="D1"))
    model = method.build_model(c)
    method.on_epoch_end(c, 0, model, {"val_acc": 1.0})
    method.on_epoch_end(c, 1, model, {"val_acc": 1.0})
    assert method.on_epoch_end(c, 2, model, {"val_acc": 1.0}) is not None and calls


def test_released_code_variant_settings():
    policy = AdaGrowConfig(variant="released-code").policy()
    assert (policy.width_ratio, policy.init, policy.init_scale) == (0.3, "gaussian", 0.2)
    assert policy.signed_importance and policy.conv_branches_only and policy.entry_bn_only
    model = AdaGrowMethod(AdaGrowConfig(variant="released-code")).build_model(ctx())
    assert not model.transitions[0].bn_on_path
    # branch kinds: the released code's (every odd kh×kw conv), the thesis' Fig. 3-5 by default
    assert model.branch_space == "full" and model.transitions[0].unit.branch_space == "full"
    thesis = AdaGrowMethod(AdaGrowConfig()).build_model(ctx())
    assert thesis.branch_space == "thesis" and all(u.branch_space == "thesis" for _, u in thesis.units(False))
    assert AdaGrowMethod(AdaGrowConfig(branch_space="full")).build_model(ctx()).branch_space == "full"
    with pytest.raises(AdaGrowError):
        AdaGrowConfig(branch_space="nope")


# ------------------------------------------------------------------------ the released code's recipe


def test_the_released_code_variant_names_its_recipe():
    recipe = resolve_recipe("adagrow", "vgg", method_config=AdaGrowConfig(variant="released-code"))
    assert recipe.name == "released-code" and recipe.optimizer == "sgd" and recipe.batch_size == 128
    assert (recipe.lr, recipe.min_lr) == (0.1, 1e-5)
    assert (recipe.weight_decay, recipe.min_weight_decay) == (5e-4, 5e-6)
    assert recipe.randaugment == 9
    assert resolve_recipe("adagrow", "vgg", method_config=AdaGrowConfig()).name == "adagrow"
    named = resolve_recipe("adagrow", "vgg", "standard", method_config=AdaGrowConfig(variant="released-code"))
    assert named.name == "standard"  # a recipe the user names wins
    assert resolve_recipe("adagrow", "vgg", min_lr=1e-4).min_lr == 1e-4  # --min-lr


def test_weight_decay_follows_its_own_cosine_per_step():
    model = nn.Linear(4, 3)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(4)]
    seen = []

    def run_epoch(**kw):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        step = opt.step
        opt.step = lambda: (seen.append((opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"])), step())[1]
        seen.clear()
        train_one_epoch(model, batches, opt, step=4, total_steps=8, base_lr=0.1, min_lr=1e-5, **kw)
        return list(seen)

    scheduled = run_epoch(weight_decay=5e-4, min_weight_decay=5e-6)
    assert [wd for _, wd in scheduled] == pytest.approx([lr_at(s, 8, 5e-4, 0, 5e-6) for s in range(4, 8)])
    assert [lr for lr, _ in scheduled] == pytest.approx([lr_at(s, 8, 0.1, 0, 1e-5) for s in range(4, 8)])
    assert 5e-6 < scheduled[-1][1] < scheduled[0][1] < 5e-4
    assert [wd for _, wd in run_epoch()] == [5e-4] * 4  # without the schedule the optimizer's stays


def _uint8_images(n=32, chans=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, chans, 16, 16), generator=g, dtype=torch.uint8), torch.arange(n) % 10


def _loader(images, labels, train=True, **kw):
    return ResidentLoader(images, labels, batch_size=8, mean=(0.5,) * 3, std=(0.25,) * 3, seed=3,
                          device=torch.device("cpu"), train=train, crop_pad=2, flip=True, **kw)


def test_randaugment_changes_training_batches_reproducibly():
    images, labels = _uint8_images()
    plain, augmented = _loader(images, labels), _loader(images, labels, randaugment=9)
    rng = torch.get_rng_state()
    a = list(augmented)
    assert torch.equal(torch.get_rng_state(), rng)  # the global generator is untouched
    b = list(plain)
    assert all(torch.equal(ya, yb) for (_, ya), (_, yb) in zip(a, b))  # same order, same labels
    changed = sum(int(not torch.equal(xa[i], xb[i])) for (xa, _), (xb, _) in zip(a, b) for i in range(len(xa)))
    assert changed > 0.8 * len(images)  # per image: two random ops at magnitude 9
    again = list(_loader(images, labels, randaugment=9))
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, again))  # (seed, epoch) fix every draw
    augmented.set_epoch(1)
    assert not all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, augmented))
    evaluation = _loader(images, labels, train=False, randaugment=9)
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(evaluation, _loader(images, labels, train=False)))


@pytest.mark.filterwarnings("ignore:MNIST. md5")
def test_the_record_names_the_augmentation_that_ran(tiny_mnist):
    kw = dict(batch_size=64, device="cpu", seed=0, val_size=100)
    assert load_dataset("mnist", tiny_mnist, randaugment=9, **kw).meta["augmentation"].endswith("RandAugment n2 m9")
    assert "RandAugment" not in load_dataset("mnist", tiny_mnist, **kw).meta["augmentation"]


def test_mnist_grows_each_block_at_most_once_unless_told_otherwise():
    c = ctx()
    c.config.dataset = "mnist"
    method = AdaGrowMethod(AdaGrowConfig(pattern="D1", grow_interval=1, stop="none"))
    model, _ = drive(method, c, [50.0 + i for i in range(8)])
    assert model.arch() == "1-1-1"  # capped, as the thesis' Table 3-22 protocol
    free = AdaGrowMethod(AdaGrowConfig(pattern="D1", grow_interval=1, stop="none", layers_per_block_cap=3))
    free_model, _ = drive(free, c, [50.0 + i for i in range(8)])
    assert max(free_model.depths) > 1


def test_mnist_stops_by_the_cap_alone():
    """Table 3-18: MNIST's growth is controlled by the one-layer-per-block cap, not the automatic rule."""
    c = ctx(epochs=60)
    c.config.dataset = "mnist"
    assert AdaGrowConfig().stop_rule("mnist") == "none"
    method = AdaGrowMethod(AdaGrowConfig())  # the defaults, on the plateauing curve that stops CIFAR runs
    model, _ = drive(method, c, PLATEAU + [75.0] * 20)
    assert model.arch() == "1-1-1"
    assert method.summary()["stop_reason"] == "every block is full"


@pytest.mark.parametrize("step", [3, 4, 5, 6])
def test_multi_layer_depth_steps_end_at_the_target(step):
    """Table 3-2: every depth step ends at VGG-2-2-2, the table's fixed architecture."""
    method = AdaGrowMethod(AdaGrowConfig(stop="target", target_arch="2-2-2", layers_per_growth=step, pattern="D1"))
    model, grown = drive(method, ctx(epochs=60), [50.0] * 60)
    assert model.arch() == "2-2-2" and len(grown) == 3
    assert method.summary()["stop_reason"] == "reached the target architecture 2-2-2"


# ------------------------------------------------------------------------ BN recalibration after a growth


def _batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = [(torch.randn(6, 1, 8, 8, generator=g) * (i + 1) + i, torch.randint(0, 10, (6,), generator=g))
            for i in range(n)]

    def batches():
        while True:
            yield from data

    return batches


def _bn_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("pattern", ["W1", "D1"])
def test_recalibration_estimates_the_new_bns_from_training_batches_only(pattern):
    c = ctx(epochs=10)
    c.train_batches = _batches()
    method = AdaGrowMethod(AdaGrowConfig(seed_arch="1-1-1", pattern=pattern, grow_interval=1, stop="none",
                                         recalibrate_batches=3))
    model = method.build_model(c)
    model(next(c.train_batches())[0])  # old BNs get statistics of their own (train mode)
    old_bns = {id(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    before = _bn_state(model)
    assert method.on_epoch_end(c, 0, model, {"val_acc": 10.0}) is not None
    new = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in old_bns]
    assert new
    seen = {name: [] for name, _ in new}
    hooks = [m.register_forward_hook(lambda m, inp, out, name=name: seen[name].append(inp[0].detach()))
             for name, m in new]
    model.eval()
    assert method.recalibrate(c, model) is True
    for h in hooks:
        h.remove()
    assert not model.training and not any(m.training for m in model.modules())  # the mode is restored
    for name, bn in new:
        xs = seen[name]
        assert len(xs) == 3  # one forward per calibration batch
        mean = torch.stack([x.mean((0, 2, 3)) for x in xs]).mean(0)
        var = torch.stack([x.var((0, 2, 3), unbiased=True) for x in xs]).mean(0)
        torch.testing.assert_close(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_var, var, rtol=1e-4, atol=1e-5)
        assert bn.momentum == 0.1
    after = _bn_state(model)
    untouched = [k for k in before if k in after]
    assert untouched and all(torch.equal(before[k], after[k]) for k in untouched)  # old BNs: as they were
    assert method.recalibrate(c, model) is False  # nothing new since


def test_recalibration_can_be_switched_off():
    c = ctx(epochs=10)
    c.train_batches = _batches()
    method = AdaGrowMethod(AdaGrowConfig(seed_arch="1-1-1", pattern="W1", grow_interval=1, stop="none",
                                         recalibrate_batches=0))
    model = method.build_model(c)
    method.on_epoch_end(c, 0, model, {"val_acc": 10.0})
    assert method.recalibrate(c, model) is False
    assert all(torch.all(b.bn.running_var == 1) for _, u in model.units() for b in u.branches)


# ------------------------------------------------------------------------ resume through the runner


@pytest.mark.filterwarnings("ignore:MNIST. md5")
def test_runner_resumes_a_growing_run_mid_growth_to_the_same_result(tiny_mnist, tmp_path):
    config = AdaGrowConfig(grow_interval=1, stop="none")  # a width growth after epoch 1, a depth growth after 2
    kw = dict(method="adagrow", model="vgg", method_config=config, epochs=3)
    full = run(_cfg(tiny_mnist, tmp_path / "a", **kw), log=lambda *_: None)
    cfg = _cfg(tiny_mnist, tmp_path / "b", **kw)
    with pytest.raises(Interrupted):
        run(cfg, interrupt_after=1, log=lambda *_: None)  # between the two growths
    resumed = run(dataclasses.replace(cfg, resume=True), log=lambda *_: None)
    assert [e["kind"] for e in full["growth_events"]] == ["width", "depth"]
    assert resumed["arch"] == full["arch"] and resumed["test_acc"] == full["test_acc"]
    assert resumed["growth_events"] == full["growth_events"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
    a, b = (torch.load(Path(r["run_dir"]) / "deploy.pt", weights_only=False)["model"].state_dict()
            for r in (full, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_grow_until_leaves_the_last_epochs_to_fine_tuning():
    method = AdaGrowMethod(AdaGrowConfig(pattern="W1D2", grow_interval=1, stop="none", grow_until=0.5))
    _, grown = drive(method, ctx(epochs=10), [50.0 + i for i in range(10)])
    assert grown == [1, 2, 3, 4]  # growth after epochs 1-4 only (epoch + 1 < 0.5 * 10)


def test_the_smoke_profile_grows_the_pattern_once_then_fine_tunes():
    """The main job's grown model (README): the smoke profile must still show one width and two depth growths
    (W1D2 once) and leave epochs to fine-tune; an off-by-one in grow_until once left it two growths."""
    from adagrow.config import RunConfig

    cfg = RunConfig(dataset="mnist", method="adagrow", model="vgg", method_config=AdaGrowConfig(),
                    profile="smoke").with_profile()
    method = AdaGrowMethod(cfg.method_config)
    _, grown = drive(method, ctx(epochs=cfg.total_epochs), [50.0 + i for i in range(cfg.total_epochs)])
    assert grown == [1, 2, 3] and cfg.total_epochs >= 6
    assert [e["kind"] for e in method.summary()["growth_events"]] == ["width", "depth", "depth"]
