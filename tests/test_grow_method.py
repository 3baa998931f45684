"""The AdaGrow Method: schedule, stop rules on constructed accuracy curves, resume, registration."""

from types import SimpleNamespace

import pytest
import torch

from adagrow.engine.method import RunContext
from adagrow.errors import AdaGrowError, ArchitectureError
from adagrow.grow.method import AdaGrowConfig, AdaGrowMethod, parse_pattern
from adagrow.grow.stop import PlateauRule
from adagrow.measure.profile import count_params
from adagrow.models.cnn_count import fused_params
from adagrow.models.reparam import fuse_model


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


def test_auto_stop_fires_on_a_plateau_and_not_before():
    # rising 5 points per epoch for 15 epochs, then flat
    curve = [min(5.0 * (e + 1), 75.0) for e in range(40)]
    method = AdaGrowMethod(AdaGrowConfig(stop="auto", threshold=3.0, tolerance=1, ema=0.3))
    _, grown = drive(method, ctx(epochs=40), curve)
    stopped = method.summary()["stopped_growing_at"]
    assert stopped is not None and 15 < stopped <= 27
    assert all(g < stopped for g in grown) and len(grown) >= 4
    # a larger tolerance stops later, a larger threshold earlier
    later = AdaGrowMethod(AdaGrowConfig(stop="auto", threshold=3.0, tolerance=3, ema=0.3))
    drive(later, ctx(epochs=40), curve)
    assert later.summary()["stopped_growing_at"] > stopped
    earlier = AdaGrowMethod(AdaGrowConfig(stop="auto", threshold=20.0, tolerance=1, ema=0.3))
    drive(earlier, ctx(epochs=40), curve)
    assert earlier.summary()["stopped_growing_at"] < stopped


def test_released_code_plateau_never_fires():
    method = AdaGrowMethod(AdaGrowConfig(variant="released-code", stop="auto"))
    _, grown = drive(method, ctx(epochs=30), [50.0] * 30)
    assert method.summary()["stopped_growing_at"] is None and len(grown) == 9


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


def test_mnist_grows_each_block_at_most_once_unless_told_otherwise():
    c = ctx()
    c.config.dataset = "mnist"
    method = AdaGrowMethod(AdaGrowConfig(pattern="D1", grow_interval=1, stop="none"))
    model, _ = drive(method, c, [50.0 + i for i in range(8)])
    assert model.arch() == "1-1-1"  # capped, as the thesis' Table 3-22 protocol
    free = AdaGrowMethod(AdaGrowConfig(pattern="D1", grow_interval=1, stop="none", layers_per_block_cap=3))
    free_model, _ = drive(free, c, [50.0 + i for i in range(8)])
    assert max(free_model.depths) > 1


def test_grow_until_leaves_the_last_epochs_to_fine_tuning():
    method = AdaGrowMethod(AdaGrowConfig(pattern="W1D2", grow_interval=1, stop="none", grow_until=0.5))
    _, grown = drive(method, ctx(epochs=10), [50.0 + i for i in range(10)])
    assert grown == [1, 2, 3, 4]  # growth after epochs 1-4 only (epoch + 1 < 0.5 * 10)
