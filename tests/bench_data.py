"""Images per second: device-resident loader vs torch DataLoader on CIFAR-sized synthetic data.

Run with ``pytest tests/bench_data.py --benchmark-enable`` (add ``-k cuda`` on a GPU machine).
"""

from __future__ import annotations

import pytest
import torch

from adagrow.data.registry import Augment
from adagrow.data.resident import ResidentLoader
from adagrow.data.streaming import StreamingLoader, build_transform

N, BATCH = 10_000, 128
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
AUGMENT = Augment(crop_pad=4, flip=True, size=32)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _cifar_like():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(N) % 10


def _epoch(loader, device) -> int:
    """One epoch; returns images seen (synchronising so GPU time is counted)."""
    seen = 0
    for x, _ in loader:
        seen += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen


@pytest.mark.parametrize("device", DEVICES)
def test_resident_epoch(benchmark, device):
    device = torch.device(device)
    x, y = _cifar_like()
    loader = ResidentLoader(x, y, batch_size=BATCH, mean=MEAN, std=STD, seed=0, device=device,
                            train=True, crop_pad=4, flip=True)
    seen = benchmark(_epoch, loader, device)
    benchmark.extra_info["images_per_s"] = seen / benchmark.stats.stats.mean


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("device", DEVICES)
def test_dataloader_epoch(benchmark, device, num_workers):
    device = torch.device(device)
    x, y = _cifar_like()
    loader = StreamingLoader(list(zip(x, y.tolist())), list(range(N)),
                             build_transform(AUGMENT, MEAN, STD, train=True), batch_size=BATCH,
                             seed=0, device=device, train=True, num_workers=num_workers)
    seen = benchmark.pedantic(_epoch, args=(loader, device), rounds=2, iterations=1)
    benchmark.extra_info["images_per_s"] = seen / benchmark.stats.stats.mean
