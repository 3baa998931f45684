"""The re-parameterisable unit: every branch mix fuses into one conv that equals it in eval mode."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from adagrow.errors import ArchitectureError
from adagrow.models.reparam import BranchSpec, RepUnit, fuse_model


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


def all_branch_cases():
    for case in CASES:
        for spec in RepUnit(*case[:3], stride=case[3], groups=case[4], max_branch_kernel=case[5]).candidate_branches():
            yield case, spec


@pytest.mark.parametrize("case,spec", list(all_branch_cases()), ids=lambda v: str(getattr(v, "name", v)))
def test_each_branch_fuses_exactly(case, spec):
    gen = torch.Generator().manual_seed(0)
    unit = RepUnit(*case[:3], stride=case[3], groups=case[4], max_branch_kernel=case[5])
    unit.add_branch(spec)
    fused = check_fused_equal(unit, gen)
    assert fused.branch_kernels == [(case[2], case[2]), (spec.kh, spec.kw)]


@settings(max_examples=15, deadline=None)
@given(case=st.sampled_from(CASES), picks=st.lists(st.integers(0, 100), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_random_branch_mixes_fuse_exactly(case, picks, seed):
    unit = RepUnit(*case[:3], stride=case[3], groups=case[4], max_branch_kernel=case[5])
    candidates = unit.candidate_branches()
    for p in picks:
        unit.add_branch(candidates[p % len(candidates)])
    fused = check_fused_equal(unit, torch.Generator().manual_seed(seed))
    k = max(max(s.kh, s.kw) for s in unit.branch_specs)
    assert tuple(fused.weight.shape[-2:]) == (k, k)
    assert len(fused.branch_kernels) == 1 + len(picks)


def test_stacked_training_forward_equals_per_branch_forward():
    """The one-conv-of-stacked-weights path computes exactly the per-branch sum (train mode, groups)."""
    torch.manual_seed(0)
    unit = RepUnit(8, 8, 3, groups=2)
    for name in ["3x3", "1x1", "3x3", "pool3x3", "bn", "1x1"]:
        unit.add_branch(BranchSpec.parse(name))
    x = torch.randn(4, 8, 6, 6)
    out = unit(x)
    ref = unit.bn(unit.conv(x)) + sum(b(x) for b in unit.branches)
    assert torch.allclose(out, ref, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for p in unit.parameters())


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
