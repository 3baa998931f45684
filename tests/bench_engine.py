"""Runner overhead: one epoch through ``train_one_epoch`` vs a bare hand-written loop, same model and
batches (target: the harness costs at most ~3% more).  Run with ``nox -s bench``."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adagrow.data.resident import ResidentLoader
from adagrow.engine.loop import train_one_epoch
from adagrow.engine.optim import build_optimizer


def _setup():
    torch.manual_seed(0)
    images = torch.randint(0, 255, (2048, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (2048,))
    loader = ResidentLoader(images, labels, batch_size=128, mean=(0.5,) * 3, std=(0.25,) * 3, seed=0,
                            device=torch.device("cpu"), train=True, crop_pad=4, flip=True)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(4),
                          nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    return loader, model, build_optimizer("sgd", model.parameters(), 0.1, 5e-4)


def _bare_epoch(model, loader, opt):
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("loop", ["bare", "runner"])
def test_epoch_time(benchmark, loop):
    loader, model, opt = _setup()
    loader.set_epoch(0)
    if loop == "bare":
        benchmark.pedantic(_bare_epoch, args=(model, loader, opt), rounds=5, warmup_rounds=1)
    else:
        benchmark.pedantic(lambda: train_one_epoch(model, loader, opt, step=0, total_steps=10_000, base_lr=0.1),
                           rounds=5, warmup_rounds=1)
