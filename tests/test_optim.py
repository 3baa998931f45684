"""The cosine schedule and carrying optimizer state across a model change."""

import math

import pytest
import torch
from torch import nn

from adagrow.engine.optim import build_optimizer, lr_at, transfer_state


def test_cosine_schedule_endpoints_and_warmup():
    assert lr_at(0, 100, 0.1) == pytest.approx(0.1)
    assert lr_at(50, 100, 0.1) == pytest.approx(0.05)
    assert lr_at(100, 100, 0.1) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(0, 100, 0.1, warmup_steps=10) == pytest.approx(0.01)
    assert lr_at(10, 100, 0.1, warmup_steps=10) == pytest.approx(0.1)
    assert lr_at(55, 100, 0.1, warmup_steps=10) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.5)))


def _step(opt, params):
    opt.zero_grad()
    sum((p ** 2).sum() for p in params).backward()
    opt.step()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_same_parameters_keep_their_state_and_new_ones_start_empty(name):
    old_p = nn.Parameter(torch.randn(4, 3))
    opt = build_optimizer(name, [old_p], lr=0.1, weight_decay=0.0)
    _step(opt, [old_p])
    saved = {k: v.clone() for k, v in opt.state[old_p].items()}
    new_p = nn.Parameter(torch.randn(2))
    new_opt = build_optimizer(name, [old_p, new_p], lr=0.1, weight_decay=0.0)
    assert transfer_state(opt, new_opt) == 1
    for k, v in saved.items():
        assert torch.equal(new_opt.state[old_p][k], v)
    assert new_p not in new_opt.state


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_widened_parameter_gets_old_state_in_its_slice_and_zeros_elsewhere(name):
    old_p = nn.Parameter(torch.randn(4, 3))
    opt = build_optimizer(name, [old_p], lr=0.1, weight_decay=0.0)
    _step(opt, [old_p])
    wide = nn.Parameter(torch.zeros(6, 5))
    new_opt = build_optimizer(name, [wide], lr=0.1, weight_decay=0.0)
    transfer_state(opt, new_opt, {wide: (old_p, (slice(0, 4), slice(0, 3)))})
    for key, value in opt.state[old_p].items():
        got = new_opt.state[wide][key]
        if value.dim() == 0:
            assert torch.equal(got, value)  # Adam's step count
            continue
        assert got.shape == wide.shape
        assert torch.equal(got[:4, :3], value)
        mask = torch.ones_like(got, dtype=torch.bool)
        mask[:4, :3] = False
        assert torch.count_nonzero(got[mask]) == 0
    _step(new_opt, [wide])  # and the optimizer accepts the carried state
