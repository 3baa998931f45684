"""The re-parameterisable unit: every branch mix fuses into one conv that equals it in eval mode."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from adagrow.errors import ArchitectureError
from adagrow.models.reparam import BRANCH_SPACES, GREEDY_ORDER, BranchSpec, RepUnit, fuse_model, set_branch_compute
from adagrow.quant.coverage import column_coverage


def randomise_bn(module: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BN statistics and affine terms (RepVGG's verification step)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen))
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=gen))
            m.bias.data.copy_(torch.randn(n, generator=gen))


def check_fused_equal(unit: RepUnit, gen: torch.Generator, hw: int = 9) -> nn.Conv2d:
    randomise_bn(unit, gen)
    unit.eval()
    x = torch.randn(2, unit.in_ch, hw, hw, generator=gen)
    fused = unit.fuse()
    with torch.no_grad():
        ref, out = unit(x), fused(x)
    assert out.shape == ref.shape
    rel = (out - ref).norm() / ref.norm()
    assert rel <= 1e-4, f"relative error {rel:.2e} for branches {[s.name for s in unit.branch_specs]}"
    return fused


CASES = [  # (in, out, kernel, stride, groups, max_branch_kernel)
    (8, 8, 3, 1, 1, None),
    (8, 8, 3, 2, 1, None),
    (8, 12, 3, 2, 1, None),
    (8, 8, 3, 1, 8, None),  # depth-wise
    (8, 8, 5, 1, 8, None),  # MobileNetV3 5×5 depth-wise
    (8, 8, 3, 1, 1, 5),
    (8, 8, 3, 2, 2, 5),
]


def make_unit(case, space: str = "thesis") -> RepUnit:
    return RepUnit(*case[:3], stride=case[3], groups=case[4], max_branch_kernel=case[5], branch_space=space)


def all_branch_cases():
    """Every (unit, branch) pair of both branch spaces, each pair once."""
    seen = set()
    for space in BRANCH_SPACES:
        for case in CASES:
            for spec in make_unit(case, space).candidate_branches():
                if (case, spec) not in seen:
                    seen.add((case, spec))
                    yield case, space, spec


@pytest.mark.parametrize("case,space,spec", list(all_branch_cases()), ids=lambda v: str(getattr(v, "name", v)))
def test_each_branch_fuses_exactly(case, space, spec):
    gen = torch.Generator().manual_seed(0)
    unit = make_unit(case, space)
    unit.add_branch(spec)
    fused = check_fused_equal(unit, gen)
    assert fused.branch_kernels == [(case[2], case[2]), (spec.kh, spec.kw)]


def test_the_fusion_cases_cover_every_branch_kind():
    kinds = {spec.name for _, _, spec in all_branch_cases()}
    convs = {f"{h}x{w}" for h in (1, 3, 5) for w in (1, 3, 5)}
    assert kinds == convs | {"bn", "pool3x3", "pool5x5"}


def test_the_thesis_branch_space_is_fig_3_5_and_full_is_an_option():
    fig_3_5 = [s.name for s in GREEDY_ORDER]  # the thesis' example order lists its whole space
    assert sorted(s.name for s in RepUnit(8, 8, 3, max_branch_kernel=5).candidate_branches()) == sorted(fig_3_5)
    assert sorted(s.name for s in RepUnit(8, 8, 3).candidate_branches()) == ["1x1", "1x3", "3x1", "3x3", "bn", "pool3x3"]
    full = {s.name for s in RepUnit(8, 8, 3, max_branch_kernel=5, branch_space="full").candidate_branches()}
    assert full - set(fig_3_5) == {"1x5", "5x1", "5x5", "pool3x3"}
    with pytest.raises(ArchitectureError):
        RepUnit(8, 8, 3, max_branch_kernel=5).add_branch(BranchSpec("conv", 5, 5))  # outside Fig. 3-5
    with pytest.raises(ArchitectureError):
        RepUnit(8, 8, 3, branch_space="diverse")


@settings(max_examples=15, deadline=None)
@given(case=st.sampled_from(CASES), space=st.sampled_from(BRANCH_SPACES),
       picks=st.lists(st.integers(0, 100), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_random_branch_mixes_fuse_exactly(case, space, picks, seed):
    unit = make_unit(case, space)
    candidates = unit.candidate_branches()
    for p in picks:
        unit.add_branch(candidates[p % len(candidates)])
    fused = check_fused_equal(unit, torch.Generator().manual_seed(seed))
    k = max(max(s.kh, s.kw) for s in unit.branch_specs)
    assert tuple(fused.weight.shape[-2:]) == (k, k)
    assert len(fused.branch_kernels) == 1 + len(picks)


def _batched_twin(unit: RepUnit) -> RepUnit:
    twin = copy.deepcopy(unit)
    set_branch_compute(twin, "batched")
    return twin


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / a.detach().norm().clamp_min(1e-30))


def assert_same_state(a: nn.Module, b: nn.Module, tol: float) -> None:
    """Same parameters, gradients and BN buffers (running statistics and batch counts), name by name."""
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert rel_err(p, q) <= tol and rel_err(p.grad, q.grad) <= tol, name
    for (name, u), (_, v) in zip(a.named_buffers(), b.named_buffers()):
        assert rel_err(u.double(), v.double()) <= tol, name


@settings(max_examples=15, deadline=None)
@given(case=st.sampled_from(CASES), space=st.sampled_from(BRANCH_SPACES),
       picks=st.lists(st.integers(0, 100), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_batched_branches_equal_the_branch_by_branch_computation(case, space, picks, seed):
    """One padded conv + one BN over all conv branches (and one over identity/pooling) is the loop's sum:
    outputs, gradients and running statistics, over training steps, then in eval mode and fused.
    In float64: BN's backward amplifies rounding where a branch's output barely varies (a small
    depth-wise 1×1 kernel), so float32 would test the conditioning, not the computation."""
    torch.manual_seed(seed)
    loop = make_unit(case, space).double()
    candidates = loop.candidate_branches()
    for p in picks:
        loop.add_branch(candidates[p % len(candidates)])
    batched = _batched_twin(loop)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (loop, batched)]
    for _ in range(3):
        x = torch.randn(4, loop.in_ch, 7, 7, dtype=torch.float64)
        outs = [loop(x), batched(x)]
        assert rel_err(outs[0], outs[1]) <= 1e-10
        r = torch.randn_like(outs[0])
        for out, opt in zip(outs, opts):
            opt.zero_grad()
            (out * r).sum().backward()
        assert_same_state(loop, batched, tol=1e-9)
        for opt in opts:
            opt.step()
    loop.eval(), batched.eval()
    x = torch.randn(2, loop.in_ch, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        assert rel_err(loop(x), batched(x)) <= 1e-9
    fused = check_fused_equal(batched.float(), torch.Generator().manual_seed(seed))  # eval-mode batched path vs fused
    assert len(column_coverage(fused)) == fused.weight[0].numel()  # the quantizer reads its branch coverage


def test_batched_path_computes_one_conv_and_falls_back_where_bns_differ():
    unit = RepUnit(8, 8, 3)
    for name in ("1x1", "3x1", "pool3x3", "bn", "pool3x3"):
        unit.add_branch(BranchSpec.parse(name))
    set_branch_compute(unit, "batched")
    calls = []
    conv2d = torch.nn.functional.conv2d
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.functional, "conv2d", lambda x, w, *a: calls.append(tuple(w.shape)) or conv2d(x, w, *a))
        unit(torch.randn(2, 8, 5, 5))
    assert calls == [(3 * 8, 8, 3, 3)]  # main 3x3, 1x1 and 3x1 padded to 3x3: one conv with 3·C outputs
    # BN recalibration: the model in eval mode, only the new BN training with a cumulative average
    reference = copy.deepcopy(unit)
    set_branch_compute(reference, "loop")
    for m in (unit, reference):
        m.eval()
        m.branches[-1].bn.train()
        m.branches[-1].bn.momentum = None
        m(torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(0)))
    for (name, u), (_, v) in zip(unit.named_buffers(), reference.named_buffers()):
        assert torch.equal(u, v), name
    with pytest.raises(ArchitectureError):
        set_branch_compute(unit, "parallel")


def test_identity_and_pooling_are_refused_where_invalid():
    with pytest.raises(ArchitectureError):
        RepUnit(8, 8, 3, stride=2).add_branch(BranchSpec("bn"))
    with pytest.raises(ArchitectureError):
        RepUnit(8, 12, 3).add_branch(BranchSpec("pool", 3, 3))
    with pytest.raises(ArchitectureError):
        RepUnit(8, 8, 3).add_branch(BranchSpec("conv", 5, 5))  # beyond max_branch_kernel
    with pytest.raises(ArchitectureError):
        BranchSpec.parse("2by2")


def test_fuse_model_replaces_every_unit():
    model = nn.Sequential(RepUnit(3, 8, 3), nn.ReLU(), RepUnit(8, 8, 3))
    model[2].add_branch(BranchSpec("bn"))
    randomise_bn(model, torch.Generator().manual_seed(1))
    fused = fuse_model(model)
    assert not any(isinstance(m, RepUnit) for m in fused.modules())
    assert fused[2].branch_kernels == [(3, 3), (1, 1)]
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    assert torch.allclose(fused(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[3], CASES[6]], ids=str)
def test_the_orepa_form_is_one_conv_of_scaled_branches_then_one_bn_and_fuses_exactly(case):
    """Training form "orepa": BN(main conv + Σ γ_i · branch_i without its BN), computed as ONE conv of
    the folded kernel; the branch BNs' β and statistics are not used; it fuses exactly."""
    torch.manual_seed(0)
    unit = RepUnit(*case[:3], stride=case[3], groups=case[4], max_branch_kernel=case[5], train_form="orepa")
    for spec in unit.candidate_branches():
        unit.add_branch(spec)
    for br in unit.branches:
        br.bn.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(4, unit.in_ch, 7, 7)

    def linear(br):  # a branch's output before its BN
        return br.conv(x) if br.spec.kind == "conv" else (br.pool(x) if br.spec.kind == "pool" else x)

    with torch.no_grad():
        total = unit.conv(x) + sum(br.bn.weight.reshape(1, -1, 1, 1) * linear(br) for br in unit.branches)
        ref = torch.nn.functional.batch_norm(total, None, None, unit.bn.weight, unit.bn.bias, training=True)
    calls = []
    conv2d = torch.nn.functional.conv2d
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.functional, "conv2d", lambda *a: calls.append(1) or conv2d(*a))
        out = unit(x)
    assert len(calls) == 1 and rel_err(ref, out) <= 1e-5
    out.square().mean().backward()
    assert all(br.bn.bias.grad is None and br.bn.weight.grad is not None for br in unit.branches)
    assert all(br.conv.weight.grad is not None for br in unit.branches if br.spec.kind == "conv")
    assert all(int(br.bn.num_batches_tracked) == 0 for br in unit.branches)  # no per-branch statistics
    fused = check_fused_equal(unit, torch.Generator().manual_seed(1))
    assert fused.branch_kernels == [(s.kh, s.kw) for s in unit.branch_specs]
    with pytest.raises(ArchitectureError):
        RepUnit(8, 8, 3, train_form="dbb")
