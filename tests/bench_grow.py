"""Benchmarks: a model as AdaGrow grows it vs the same architecture built directly, and fused vs
un-fused inference.  Run with ``pytest tests/bench_grow.py`` (not collected by default)."""

import pytest
import torch
import torch.nn.functional as F

from adagrow.api import create_model, fuse

ARCH = "1-2-2"
BRANCHES_PER_UNIT = 3


def grown_model():
    """VGG grown to ``ARCH`` with several branches per unit, as AdaGrow builds it."""
    torch.manual_seed(0)
    model = create_model("vgg", "0-0-0", num_classes=10, seed=0)
    while model.arch() != ARCH:
        model.grow_depth(stage=next(i for i, (d, t) in enumerate(zip(model.depths, (1, 2, 2))) if d < t))
    for _ in range(BRANCHES_PER_UNIT):
        model.grow_width(units=[n for n, _ in model.units()])
    return model


def train_step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()


@pytest.mark.parametrize("how", ["grown", "direct"])
def test_train_step(benchmark, how):
    model = grown_model() if how == "grown" else create_model("vgg", ARCH, num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    benchmark(train_step, model, opt, x, y)


@pytest.mark.parametrize("fused", [False, True])
def test_inference_latency(benchmark, fused):
    model = grown_model().eval()
    model = fuse(model) if fused else model
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        benchmark(model, x)
