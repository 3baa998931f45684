"""Rescaling BatchNorm-fed convolutions to their initialisation scale (BAMC's ``--rescale init``): the network's
function is kept, including where a tiny layer's BatchNorm runs in the ε-dominated regime; only direct conv → BN
pairs are touched; a rescale that would change the function is refused and undone."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adagrow.errors import AdaGrowError
from baselines.quant.rescale import conv_bn_pairs, rescale_to_init


def trained_like(tiny: float = 1e-5) -> nn.Module:
    """conv(3→8, 3×3) → BN → ReLU → conv(8→4, 3×3) → BN → pool → linear, the first conv shrunk to ``tiny`` std as L2
    under Adam leaves such layers, with running statistics gathered in train mode."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 4, 3, padding=1), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.mul_(tiny / net[0].weight.std())
        for bn in (net[1], net[4]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.momentum = None  # running statistics: the plain average over the batches below
            bn.reset_running_stats()
        net.train()
        for _ in range(20):
            net(torch.randn(16, 3, 8, 8))
    return net.eval()


def test_the_function_is_kept_and_each_conv_ends_at_he_normal_std():
    net = trained_like()
    x = torch.randn(32, 3, 8, 8)
    with torch.no_grad():
        before = net(x)
    assert net[1].running_var.max() < net[1].eps  # the ε-dominated regime: BN scales here, it does not normalise
    factors = rescale_to_init(net, torch.randn(4, 3, 8, 8))
    assert set(factors) == {"0", "3"}
    with torch.no_grad():
        after = net(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    # He-normal: std = sqrt(2 / fan_in), fan_in = in_channels · kernel area
    assert float(net[0].weight.detach().std()) == pytest.approx(math.sqrt(2 / (3 * 9)), rel=1e-5)
    assert float(net[3].weight.detach().std()) == pytest.approx(math.sqrt(2 / (8 * 9)), rel=1e-5)


def test_ignoring_epsilon_would_have_changed_the_function():
    """The oracle that ε matters: the textbook rescale (running mean × c, variance × c², γ unchanged) moves the
    output of the tiny layer's network, so the test above can fail."""
    net = trained_like()
    x = torch.randn(32, 3, 8, 8)
    with torch.no_grad():
        before = net(x)
        c = math.sqrt(2 / 27) / float(net[0].weight.std())
        net[0].weight.mul_(c)
        net[1].running_mean.mul_(c)
        net[1].running_var.mul_(c * c)
        assert (net(x) - before).abs().max() > 1e-2


def test_an_in_place_op_between_conv_and_bn_makes_no_pair():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    net(torch.randn(2, 1, 6, 6))
    assert conv_bn_pairs(net, torch.randn(2, 1, 6, 6)) == []
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True))
    assert conv_bn_pairs(plain, torch.randn(2, 1, 6, 6)) == [("0", "1")]


class Leaky(nn.Module):
    """The conv's output feeds its BatchNorm and, unnormalised, the output too: not scale-free."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return (self.bn(y) + y).mean((2, 3))


def test_a_rescale_that_would_change_the_function_is_refused_and_undone():
    net = Leaky()
    with torch.no_grad():
        net.conv.weight.mul_(1e-3)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(AdaGrowError, match="changed the model's output"):
        rescale_to_init(net, torch.randn(4, 1, 6, 6))
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
