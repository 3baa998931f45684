"""AdaGrow for Transformers: growth ops, optimizer-state inheritance, the Method's schedule and resume."""

import pytest
import torch

from adagrow.engine.method import RunContext
from adagrow.engine.optim import build_optimizer, transfer_state
from adagrow.errors import AdaGrowError
from adagrow.grow.transformer import TransformerGrowConfig, TransformerGrowMethod, parse_pattern
from adagrow.grow.transformer_ops import (
    deepen,
    fill_new_optimizer_slots,
    layer_importance,
    train_new_values,
    widen,
)
from adagrow.models.transformer import create_transformer
from tests.conftest import train_steps


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny_bert(arch="D1W128", seed=0):
    return create_transformer("bert", arch, 2, vocab_size=40, max_len=12, generator=gen(seed))


def tiny_batch(n=16, seed=0):
    g = gen(seed)
    ids = torch.randint(5, 40, (n, 10), generator=g)
    ids[:, 0] = 2
    labels = (ids[:, 1] > 22).long()  # learnable from one token
    return ids, labels


# ------------------------------------------------------------------------------------ width growth


def test_width_growth_widens_every_tensor_and_keeps_old_slices():
    old = tiny_bert()
    growth = widen(old, "normal0.1", gen(1))
    new = growth.model
    assert new.arch == "D1W192" and new.spec.heads == 3
    old_p = dict(old.named_parameters())
    for name, p in new.named_parameters():
        o = old_p[name]
        if name == "head.bias":
            assert p.shape == o.shape
        else:  # every hidden-size dimension grew from 128 (or 512 in the MLP) to 192 (768)
            assert p.shape != o.shape
            assert all(n in (m, m * 3 // 2) for n, m in zip(p.shape, o.shape)), name
        src, slices = growth.param_map[p]
        assert src is o
        region = p[slices] if slices is not None else p
        assert torch.equal(region, o), name
    # new slots are N(0, 0.1): look at the big MLP weight
    fc1 = new.blocks[0].fc1.weight
    fresh = fc1[growth.new_masks["blocks.0.fc1.weight"]]
    assert fresh.numel() == 768 * 192 - 512 * 128
    assert abs(fresh.std().item() - 0.1) < 0.005 and abs(fresh.mean().item()) < 0.005


@pytest.mark.parametrize("scheme,check", [
    ("zeros", lambda v, ref: torch.all(v == 0)),
    ("uniform0.3", lambda v, ref: v.abs().max() <= 0.3 and v.abs().max() > 0.25),
    ("fit_global", lambda v, ref: abs(v.std() - ref.std()) < 0.1 * ref.std()),
])
def test_width_init_schemes(scheme, check):
    old = tiny_bert()
    growth = widen(old, scheme, gen(2))
    values = growth.model.tok_embed.weight[growth.new_masks["tok_embed.weight"]]
    assert check(values, old.tok_embed.weight.detach())


def test_inherit_init_uses_the_models_own_initialiser():
    growth = widen(tiny_bert(), "inherit", gen(3))
    gamma = growth.model.blocks[0].norm2.weight
    assert torch.all(gamma[128:] == 1)  # LayerNorm γ starts at 1
    w = growth.model.blocks[0].fc1.weight[growth.new_masks["blocks.0.fc1.weight"]]
    assert w.abs().max() <= 0.04 + 1e-6 and w.std() > 0.01  # truncated N(0, 0.02)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizer_state_is_inherited_into_old_slices_and_new_slots_are_zero(optimizer):
    lr = 3e-3
    model = tiny_bert()
    opt = build_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=0.0)
    train_steps(model, opt, *tiny_batch(), 3)
    growth = widen(model, "normal0.1", gen(4))
    new_opt = build_optimizer(optimizer, growth.model.parameters(), lr=lr, weight_decay=0.0)
    carried = transfer_state(opt, new_opt, growth.param_map)
    assert carried == len(list(growth.model.parameters()))
    keys = ("momentum_buffer",) if optimizer == "sgd" else ("exp_avg", "exp_avg_sq")
    for p in growth.model.parameters():
        src, slices = growth.param_map[p]
        state = new_opt.state[p]
        for key in keys:
            buf, old_buf = state[key], opt.state[src][key]
            assert buf.shape == p.shape
            region = buf[slices] if slices is not None else buf
            assert torch.equal(region, old_buf)
            if slices is not None:
                outside = torch.ones_like(buf, dtype=torch.bool)
                outside[slices] = False
                assert torch.all(buf[outside] == 0)
        if optimizer != "sgd":
            assert int(state["step"]) == 3


def _assert_adamw_state_carried(old_opt, new_opt, growth) -> int:
    """Every parameter that continues an old one holds the old AdamW moments in its old slice and zeros
    elsewhere; parameters without a predecessor (a new layer) have no state.  Returns how many carried."""
    carried = 0
    for p in growth.model.parameters():
        if p not in growth.param_map:
            assert p not in new_opt.state
            continue
        src, slices = growth.param_map[p]
        for key in ("exp_avg", "exp_avg_sq"):
            buf, old = new_opt.state[p][key], old_opt.state[src][key]
            assert torch.equal(buf[slices] if slices is not None else buf, old)
            outside = torch.ones_like(buf, dtype=torch.bool)
            if slices is not None:
                outside[slices] = False
            else:
                outside[...] = False
            assert torch.all(buf[outside] == 0)
        assert int(new_opt.state[p]["step"]) == int(old_opt.state[src]["step"])
        carried += 1
    return carried


def test_the_grown_model_trains_on_with_the_inherited_adamw_state():
    model = tiny_bert()
    opt = build_optimizer("adamw", model.parameters(), lr=3e-3, weight_decay=0.01)
    train_steps(model, opt, *tiny_batch(), 3)
    wide = widen(model, "normal0.1", gen(4))
    wide_opt = build_optimizer("adamw", wide.model.parameters(), lr=3e-3, weight_decay=0.01)
    transfer_state(opt, wide_opt, wide.param_map)
    assert _assert_adamw_state_carried(opt, wide_opt, wide) == len(list(wide.model.parameters()))
    train_steps(wide.model, wide_opt, *tiny_batch(), 2)  # the widened model trains: its own state
    deep = deepen(wide.model, 0, "normal0.1", gen(5))
    deep_opt = build_optimizer("adamw", deep.model.parameters(), lr=3e-3, weight_decay=0.01)
    transfer_state(wide_opt, deep_opt, deep.param_map)
    new_layer = list(deep.model.blocks[1].parameters())
    assert _assert_adamw_state_carried(wide_opt, deep_opt, deep) == len(list(deep.model.parameters())) - len(new_layer)
    losses = train_steps(deep.model, deep_opt, *tiny_batch(), 15)
    assert losses[-1] < 0.5 * losses[0]


def test_new_optimizer_slots_can_be_filled_and_second_moments_stay_positive():
    model = tiny_bert()
    opt = build_optimizer("adam", model.parameters(), lr=1e-3, weight_decay=0.0)
    train_steps(model, opt, *tiny_batch(), 2)
    growth = widen(model, "normal0.1", gen(5))
    new_opt = build_optimizer("adam", growth.model.parameters(), lr=1e-3, weight_decay=0.0)
    transfer_state(opt, new_opt, growth.param_map)
    p = growth.model.blocks[0].fc1.weight
    before = {k: v.clone() for k, v in new_opt.state[p].items()}
    assert fill_new_optimizer_slots(new_opt, growth.param_map, "normal0.01", gen(6)) > 0
    mask = growth.new_masks["blocks.0.fc1.weight"]
    for key in ("exp_avg", "exp_avg_sq"):
        buf = new_opt.state[p][key]
        assert torch.equal(buf[~mask], before[key][~mask])  # inherited values untouched
    assert abs(new_opt.state[p]["exp_avg"][mask].std().item() - 0.01) < 0.001
    second = new_opt.state[p]["exp_avg_sq"]
    assert torch.all(second >= 0)
    assert abs(second[mask].mean().item() - 0.01 * (2 / torch.pi) ** 0.5) < 0.001  # |N(0, σ)|


# ------------------------------------------------------------------------------------ depth growth


def test_depth_growth_with_zero_init_preserves_the_function():
    model = tiny_bert("D2W128").eval()
    x, _ = tiny_batch()
    growth = deepen(model, 0, "zeros", gen(7))
    assert growth.model.arch == "D3W128"
    torch.testing.assert_close(growth.model.eval()(x), model(x), atol=1e-5, rtol=1e-5)
    # old layers are the same values, shifted past the inserted one
    assert torch.equal(growth.model.blocks[2].fc1.weight, model.blocks[1].fc1.weight)
    assert growth.param_map[growth.model.blocks[2].fc1.weight][0] is model.blocks[1].fc1.weight
    assert not any(p in growth.param_map for p in growth.model.blocks[1].parameters())


def test_greedy_depth_picks_the_layer_with_the_largest_layernorm_gamma():
    model = tiny_bert("D3W128")
    with torch.no_grad():
        for i, g in enumerate((0.5, 2.0, 1.0)):
            model.blocks[i].norm2.weight.fill_(g)
            model.blocks[i].norm1.weight.fill_(3.0 - g)
    assert layer_importance(model) == [0.5, 2.0, 1.0]
    method = TransformerGrowMethod(TransformerGrowConfig(family="bert", pattern="D1"))
    method.generator = gen(0)
    assert method._depth_position(model) == 1
    by_norm1 = TransformerGrowMethod(TransformerGrowConfig(family="bert", importance_norm="norm1"))
    assert by_norm1._depth_position(model) == 0
    growth = deepen(model, 1, "normal0.1", gen(8))
    assert torch.all(growth.model.blocks[1].norm2.weight == 2.0)  # the important layer stays in place
    assert torch.all(growth.model.blocks[3].norm2.weight == 1.0)  # later layers shift by one
    new_gamma = growth.model.blocks[2].norm2.weight
    assert abs(new_gamma.std().item() - 0.1) < 0.03  # the inserted layer is N(0, 0.1)


def test_local_learning_moves_only_new_values():
    model = tiny_bert()
    growth = widen(model, "normal0.1", gen(9))
    snapshot = {n: p.detach().clone() for n, p in growth.model.named_parameters()}
    batch = tiny_batch()
    train_new_values(growth.model, growth.new_masks, iter([batch] * 5), steps=5)
    changed_new = 0
    for name, p in growth.model.named_parameters():
        mask = growth.new_masks.get(name)
        if mask is None:
            assert torch.equal(p, snapshot[name])
            continue
        assert torch.equal(p[~mask], snapshot[name][~mask]), name
        changed_new += int(not torch.equal(p[mask], snapshot[name][mask]))
    assert changed_new > 10
    assert all(p.requires_grad for p in growth.model.parameters())


# ------------------------------------------------------------------------------------ the Method


def ctx_for(epochs=100, seed=0):
    cfg = type("Cfg", (), {"seed": seed})()
    return RunContext(config=cfg, dataset=None, input_size=(3, 8, 8), num_classes=4, device=torch.device("cpu"),
                      epochs=epochs, steps_per_epoch=1, train_batches=None)


def run_growth(method, ctx, model, epochs, val=lambda e: 50.0):
    archs = []
    for epoch in range(epochs):
        change = method.on_epoch_end(ctx, epoch, model, {"val_acc": val(epoch)})
        if change is not None:
            model = change.model
            archs.append(model.arch)
    return model, archs


def test_pattern_parsing():
    assert parse_pattern("W2D1") == ["W", "W", "D"]
    assert parse_pattern("W1D3") == ["W", "D", "D", "D"]
    with pytest.raises(AdaGrowError):
        parse_pattern("X2")


def test_method_grows_w2d1_every_interval_up_to_the_target():
    cfg = TransformerGrowConfig(family="vit", grow_interval=2, stop="target", target_arch="D3W256")
    method = TransformerGrowMethod(cfg)
    model = method.build_model(ctx_for())
    assert model.arch == "D1W128"
    model, archs = run_growth(method, ctx_for(), model, 30)
    # W W D, then width is capped at 4 heads, so depth replaces the next W; then growth stops
    assert archs == ["D1W192", "D1W256", "D2W256", "D3W256"]
    assert method.stopped == "target" and method.arch(model) == "D3W256"
    assert [e["epoch"] for e in method.events] == [2, 4, 6, 8]
    assert method.summary()["final_arch"] == "D3W256"


def test_no_growth_after_the_last_epoch_and_fresh_optimizer_option():
    method = TransformerGrowMethod(TransformerGrowConfig(grow_interval=5, optimizer_transfer="fresh"))
    ctx = ctx_for(epochs=10)
    model = method.build_model(ctx)
    change = method.on_epoch_end(ctx, 4, model, {"val_acc": 10.0})
    assert change is not None and change.inherit_optimizer is False
    assert method.on_epoch_end(ctx, 9, change.model, {"val_acc": 10.0}) is None


def test_auto_stop_fires_when_accuracy_stalls():
    cfg = TransformerGrowConfig(grow_interval=1, stop="auto", auto_threshold=3.0, auto_tolerance=1)
    method = TransformerGrowMethod(cfg)
    ctx = ctx_for()
    model, archs = run_growth(method, ctx, method.build_model(ctx), 10, val=lambda e: 40.0)
    assert method.stopped == "auto"
    assert len(archs) == 2  # the first growth has no baseline; then two misses > tolerance 1


def test_auto_stop_keeps_growing_while_accuracy_climbs():
    method = TransformerGrowMethod(TransformerGrowConfig(grow_interval=1, stop="auto", max_heads=4, max_layers=3))
    ctx = ctx_for()
    _, archs = run_growth(method, ctx, method.build_model(ctx), 10, val=lambda e: 10.0 * e)
    assert method.stopped == "caps" and archs[-1] == "D3W256"


def test_growth_stops_automatically_by_default_on_a_plateau():
    """Table 3-18: every task but MNIST stops growing automatically; the thesis' grown Transformers are
    D3-D6.  A curve that climbs 10 points per growth interval for 30 epochs, then stays flat."""
    cfg = TransformerGrowConfig()
    assert cfg.stop == "auto" and (cfg.auto_threshold, cfg.auto_tolerance, cfg.auto_ema) == (3.0, 1, 0.6)
    method = TransformerGrowMethod(cfg)
    ctx = ctx_for(epochs=200)
    model, archs = run_growth(method, ctx, method.build_model(ctx), 200, val=lambda e: min(20.0 + 2.0 * e, 80.0))
    assert method.stopped == "auto"
    assert 5 <= len(archs) <= 8  # grew while accuracy climbed, stopped within a few intervals of the plateau
    assert method.events[-1]["epoch"] <= 45
    assert model.spec.depth <= 4 and model.spec.heads <= 8  # nowhere near the caps (D12W768)


def test_budget_stop():
    method = TransformerGrowMethod(TransformerGrowConfig(grow_interval=1, stop="budget", param_budget=400_000))
    ctx = ctx_for()
    model, _ = run_growth(method, ctx, method.build_model(ctx), 10)
    assert method.stopped == "budget"
    assert sum(p.numel() for p in model.parameters()) <= 400_000


def test_resume_rebuilds_the_architecture_and_repeats_the_same_growth():
    cfg = TransformerGrowConfig(grow_interval=1, depth_policy="random", stop="none")
    ctx = ctx_for(seed=3)
    a = TransformerGrowMethod(cfg)
    model_a, _ = run_growth(a, ctx, a.build_model(ctx), 2)  # W, W
    saved_state, saved_weights = a.state_dict(), {k: v.clone() for k, v in model_a.state_dict().items()}

    b = TransformerGrowMethod(cfg)
    b.load_state_dict(saved_state)
    model_b = b.build_model(ctx)
    assert model_b.arch == model_a.arch == "D1W256"
    model_b.load_state_dict(saved_weights)
    for method, model in ((a, model_a), (b, model_b)):
        change = method.on_epoch_end(ctx, 2, model, {"val_acc": 1.0})  # the depth growth
        method.grown = change.model
    assert a.grown.arch == b.grown.arch == "D2W256"
    for pa, pb in zip(a.grown.parameters(), b.grown.parameters()):
        assert torch.equal(pa, pb)


def test_bert_method_reads_vocab_from_the_data_meta():
    ctx = ctx_for()
    ctx.input_size, ctx.data_meta = (16,), {"vocab_size": 30, "max_len": 16}
    model = TransformerGrowMethod(TransformerGrowConfig(family="bert")).build_model(ctx)
    assert model.tok_embed.num_embeddings == 30 and model.spec.max_len == 16


@pytest.mark.parametrize("bad", [
    dict(family="gpt"), dict(arch="D1W100"), dict(stop="target"), dict(depth_policy="middle"),
    dict(init="normal"), dict(optimizer_transfer="inherit_lognormal"), dict(pattern="W2X1"),
])
def test_config_validation(bad):
    with pytest.raises(AdaGrowError):
        TransformerGrowConfig(**bad)
