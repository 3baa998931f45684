"""Growth operations and policies: optimizer state, greedy choice, branch sampling, init, training."""

import random

import pytest
import torch
import torch.nn.functional as F

from adagrow.engine.optim import build_optimizer, transfer_state
from adagrow.errors import ArchitectureError
from adagrow.grow.init import local_learning
from adagrow.grow.policies import GrowthPolicy, choose_branch, choose_depth, choose_units
from adagrow.models.cnn import GrowableCNN
from adagrow.models.reparam import RepUnit
from tests.conftest import train_steps


def batch(chans=3, n=4, hw=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, chans, hw, hw, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("op", ["depth", "width"])
def test_growth_keeps_old_params_and_their_momentum(op):
    torch.manual_seed(0)
    model = GrowableCNN("resnet", "1-1-0", seed=0)
    opt = build_optimizer("sgd", model.parameters(), lr=0.05, weight_decay=5e-4)
    x, y = batch()
    train_steps(model, opt, x, y, 2)
    old = list(model.parameters())
    momentum = {p: opt.state[p]["momentum_buffer"].clone() for p in old}
    event = model.grow_depth() if op == "depth" else model.grow_width()
    assert event is not None and event["new_params"] > 0
    new_opt = build_optimizer("sgd", model.parameters(), lr=0.05, weight_decay=5e-4)
    carried = transfer_state(opt, new_opt, {})
    params = list(model.parameters())
    assert all(any(p is q for q in params) for p in old)  # same objects survive
    assert carried == len(old)
    new = [p for p in params if not any(p is q for q in old)]
    assert sum(p.numel() for p in new) == event["new_params"]
    assert new_opt.param_groups[0]["params"] == params
    for p in old:
        assert torch.equal(new_opt.state[p]["momentum_buffer"], momentum[p])
    assert all(p not in new_opt.state for p in new)
    # the grown model still trains: the loss falls on a tiny batch
    losses = train_steps(model, new_opt, x, y, 5)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("family", ["vgg", "bottleneck", "mobilenetv3"])
def test_grown_families_train(family):
    torch.manual_seed(0)
    model = GrowableCNN(family, "0-0-0", in_chans=1, seed=1)
    for _ in range(2):
        model.grow_depth()
        model.grow_width()
    x, y = batch(chans=1, hw=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = train_steps(model, opt, x, y, 5)
    assert losses[-1] < losses[0]


def set_gamma(module, value):
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.fill_(value)


def test_greedy_depth_picks_block_and_position_with_largest_gamma():
    model = GrowableCNN("vgg", "1-3-1")
    set_gamma(model, 0.5)
    set_gamma(model.blocks[1][1], 2.0)  # the middle layer of block 2
    assert choose_depth(model, GrowthPolicy(), random.Random(0)) == (1, 2)
    set_gamma(model.blocks[2], 3.0)
    assert choose_depth(model, GrowthPolicy(), random.Random(0)) == (2, 1)


def test_greedy_depth_scores_an_empty_block_by_its_transition_bn():
    model = GrowableCNN("vgg", "1-0-1")
    set_gamma(model, 0.5)
    model.transitions[0].bn.weight.data.fill_(-4.0)  # |γ| counts, not the sign
    assert choose_depth(model, GrowthPolicy(), random.Random(0)) == (1, 0)
    # the released code scores with the signed mean and would not pick it
    released = GrowthPolicy(signed_importance=True, entry_bn_only=True)
    assert choose_depth(model, released, random.Random(0))[0] != 1


def test_sequential_is_round_robin_and_caps_are_respected():
    model = GrowableCNN("vgg", "0-0-0", policy=GrowthPolicy(depth_policy="sequential", layers_per_block_cap=1))
    archs = []
    while (event := model.grow_depth()) is not None:
        archs.append(event["arch"])
    assert archs == ["1-0-0", "1-1-0", "1-1-1"]


def test_random_policies_are_reproducible_from_the_seed():
    def run(seed):
        torch.manual_seed(0)  # the seed model comes from the global RNG (the runner seeds it)
        model = GrowableCNN("vgg", "0-0-0", policy=GrowthPolicy(depth_policy="random"), seed=seed)
        for _ in range(4):
            model.grow_depth()
            model.grow_width()
        return model.structure(), model.state_dict()

    (s1, w1), (s2, w2), (s3, _) = run(3), run(3), run(4)
    assert s1 == s2 and s1 != s3
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_width_ratio_picks_the_most_important_units():
    model = GrowableCNN("vgg", "2-2-2")  # 6 layer units + 2 transitions
    set_gamma(model, 1.0)
    set_gamma(model.blocks[2][1], 5.0)
    names = choose_units(model, GrowthPolicy(width_ratio=0.7))
    assert len(names) == 6 and names[0] == "blocks.2.1.unit"
    assert choose_units(model, GrowthPolicy(width_ratio=0.0)) == []


def test_branch_policies():
    unit = RepUnit(8, 8, 3)
    greedy = GrowthPolicy(branch_policy="greedy")
    order = []
    while (spec := choose_branch(unit, greedy, random.Random(0))) is not None:
        unit.add_branch(spec)
        order.append(spec.name)
    # the thesis' maximal-difference order, restricted to a 3×3 unit's space, then the rest
    assert order[:5] == ["bn", "3x3", "1x3", "3x1", "1x1"] and sorted(order[5:]) == ["pool3x3"]
    no_rep = GrowthPolicy(branch_policy="random-no-replace")
    unit2, rng = RepUnit(8, 8, 3), random.Random(0)
    picked = []
    while (spec := choose_branch(unit2, no_rep, rng)) is not None:
        unit2.add_branch(spec)
        picked.append(spec.name)
    assert sorted(picked) == sorted(s.name for s in unit2.candidate_branches())
    conv_only = GrowthPolicy(conv_branches_only=True)
    assert all(choose_branch(RepUnit(8, 8, 3), conv_only, random.Random(i)).kind == "conv" for i in range(30))


@pytest.mark.parametrize("scheme,check", [
    ("zeros", lambda ps: all(torch.count_nonzero(p) == 0 for p in ps)),
    ("gaussian", lambda ps: abs(torch.cat([p.flatten() for p in ps]).std().item() - 0.1) < 0.01),
    ("uniform", lambda ps: all(p.abs().max() <= 0.1 for p in ps)),
])
def test_init_schemes(scheme, check):
    model = GrowableCNN("vgg", "1-0-0", policy=GrowthPolicy(init=scheme, init_scale=0.1))
    old = {id(p) for p in model.parameters()}
    model.grow_depth(stage=0, position=1)
    new = [p for p in model.parameters() if id(p) not in old]
    assert new and check(new)


def _distinct_statistics(model) -> None:
    """Give the first layer of block 1 (the neighbour of a layer inserted after it) statistics unlike
    every other tensor's, so a fit to the neighbour and a fit to all weights tell apart."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            local = name.startswith("blocks.0.0.")
            if p.dim() == 4:  # conv weights
                mean, std = (2.0, 0.01) if local else (-1.0, 0.5)
            else:
                mean, std = (3.0, 0.2) if local else (0.5, 0.1)
            p.copy_(torch.randn(p.shape, generator=g) * std + mean)


def _stats(tensors) -> tuple[float, float]:
    flat = torch.cat([t.detach().flatten() for t in tensors])
    return flat.mean().item(), flat.std().item()


def _kind(name: str) -> str:
    return ".".join(name.split(".")[-2:])  # "conv.weight", "bn.weight", "bn.bias"


@pytest.mark.parametrize("scheme", ["gaussian-local", "gaussian-global"])
def test_gaussian_fits_draw_from_the_statistics_they_claim(scheme):
    """gaussian-local: each new tensor ~ N(mean, std) of the same tensor kind in the neighbour layer;
    gaussian-global: ~ N(mean, std) of that kind over every existing parameter."""
    model = GrowableCNN("vgg", "1-0-0", policy=GrowthPolicy(init=scheme))
    _distinct_statistics(model)
    before = dict(model.named_parameters())
    model.grow_depth(stage=0, position=1)
    new = {n: p for n, p in model.named_parameters() if n.startswith("blocks.0.1.")}
    assert {_kind(n) for n in new} == {"conv.weight", "bn.weight", "bn.bias"}
    for name, p in new.items():
        pool = [q for n, q in before.items() if _kind(n) == _kind(name)
                and (n.startswith("blocks.0.0.") or scheme == "gaussian-global")]
        want_mean, want_std = _stats(pool)
        mean, std = _stats([p])
        n = p.numel()  # 4 standard errors of the sample mean / sample std
        assert mean == pytest.approx(want_mean, abs=4 * want_std / n**0.5), name
        assert std == pytest.approx(want_std, rel=4 / (2 * n) ** 0.5), name
    if scheme == "gaussian-global":  # the fit pools many tensors: it is not the neighbour's
        assert _stats([new["blocks.0.1.unit.conv.weight"]])[0] < 0


def test_gaussian_local_fits_the_unit_a_branch_joins():
    model = GrowableCNN("vgg", "1-1-0", policy=GrowthPolicy(init="gaussian-local"))
    _distinct_statistics(model)
    unit = model.blocks[0][0].unit
    model.grow_width(units=["blocks.0.0.unit"], branches=["3x3"])
    w = unit.branches[0].conv.weight
    assert abs(w.mean().item() - 2.0) < 0.01 and abs(w.std().item() - 0.01) < 0.002


def test_multi_layer_depth_growth_stops_at_the_target_and_the_cap():
    """Table 3-2: a step of 3-6 layers still ends at VGG-2-2-2, never beyond a block's cap."""
    for step in range(2, 7):
        model = GrowableCNN("vgg", "0-0-0", policy=GrowthPolicy(layers_per_growth=step, max_depths=(2, 2, 2)))
        archs = []
        while (event := model.grow_depth()) is not None:
            archs.append(event["arch"])
            assert event["layers"] == 2  # only what fits in the empty block
        assert archs[-1] == "2-2-2" and len(archs) == 3, step
    capped = GrowableCNN("vgg", "0-1-0", policy=GrowthPolicy(layers_per_growth=4, layers_per_block_cap=1))
    while capped.grow_depth() is not None:
        pass
    assert capped.arch() == "1-1-1"
    with pytest.raises(ArchitectureError, match="full"):
        capped.grow_depth(stage=1)  # an explicit request cannot break the cap either


def test_local_learning_trains_only_new_params():
    torch.manual_seed(0)
    model = GrowableCNN("vgg", "1-0-0")
    old = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.grow_depth(stage=0, position=1)
    new = [p for n, p in model.named_parameters() if n.startswith("blocks.0.1.")]
    before = [p.detach().clone() for p in new]
    x, y = batch()
    assert local_learning(model, new, [(x, y)] * 5, steps=3) == 3
    names = dict(model.named_parameters())
    # old parameters kept their values although they now live at shifted names only if inserted before
    assert all(torch.equal(names[n], v) for n, v in old.items() if n in names and not n.startswith("blocks.0.1."))
    assert any(not torch.equal(a, b) for a, b in zip(new, before))
    assert all(p.requires_grad for p in model.parameters())


def test_transition_bn_on_and_off_the_forward_path():
    x, y = batch()
    for on_path in (True, False):
        model = GrowableCNN("vgg", "1-1-1", transition_bn_on_path=on_path)
        F.cross_entropy(model(x), y).backward()
        grad = model.transitions[0].bn.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == on_path


def test_bad_growth_requests_raise():
    model = GrowableCNN("vgg", "1-1-1")
    with pytest.raises(ArchitectureError):
        model.grow_depth(stage=5)
    with pytest.raises(ArchitectureError):
        model.grow_depth(stage=0, position=9)
    with pytest.raises(ArchitectureError):
        model.grow_width(units=["nope"])
    with pytest.raises(ArchitectureError):
        model.grow_width(units=["transitions.0.unit"], branches=["bn"])  # identity at stride 2
