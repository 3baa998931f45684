"""Branch coverage counts of fused kernels (SPEC §8 example)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adagrow.errors import ArchitectureError
from adagrow.quant import column_coverage, coverage_map

SPEC_EXAMPLE = [(5, 5), (3, 3), (1, 1), (1, 3), (3, 1)]


def test_spec_example_counts():
    cov = coverage_map(SPEC_EXAMPLE, (5, 5))
    assert cov[2, 2] == 5                                            # centre
    assert [cov[2, 1], cov[2, 3], cov[1, 2], cov[3, 2]] == [3, 3, 3, 3]  # axis neighbours
    assert [cov[1, 1], cov[1, 3], cov[3, 1], cov[3, 3]] == [2, 2, 2, 2]  # 3×3 corners
    ring = torch.ones(5, 5, dtype=torch.bool)
    ring[1:4, 1:4] = False
    assert (cov[ring] == 1).all() and ring.sum() == 16                # outer ring


def test_identity_and_pool_branches():
    cov = coverage_map(SPEC_EXAMPLE + [(1, 1)], (5, 5))  # identity / BN-only branch
    assert cov[2, 2] == 6 and cov.sum() == coverage_map(SPEC_EXAMPLE, (5, 5)).sum() + 1
    assert (coverage_map([(3, 3), (3, 3)], (3, 3)) == 2).all()  # 3×3 conv + 3×3 avg-pool


def test_columns_follow_weight_flatten_order():
    conv = nn.Conv2d(3, 4, 5)
    conv.branch_kernels = SPEC_EXAMPLE
    cols = column_coverage(conv)
    assert cols.shape == (3 * 25,)
    assert cols.view(3, 5, 5).eq(coverage_map(SPEC_EXAMPLE, (5, 5))).all()
    assert column_coverage(nn.Conv2d(3, 4, 3)) is None and column_coverage(nn.Linear(3, 4)) is None
    depthwise = nn.Conv2d(6, 6, 3, groups=6)
    depthwise.branch_kernels = [(3, 3), (1, 1)]
    assert column_coverage(depthwise).tolist() == [1, 1, 1, 1, 2, 1, 1, 1, 1]


@pytest.mark.parametrize("bad", [(7, 7), (2, 2), (5, 3)])
def test_branches_that_cannot_be_centred_are_rejected(bad):
    with pytest.raises(ArchitectureError):
        coverage_map([bad], (5, 5) if bad != (5, 3) else (3, 3))
