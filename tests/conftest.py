"""Shared fixtures: W&B off, the real data folder, and tiny datasets in their on-disk formats."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")

SHARED_DATA = Path(os.environ.get("ADAGROW_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("ADAGROW_CACHE", str(tmp_path_factory.getbasetemp() / "adagrow-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set ADAGROW_TEST_DATA)")
    return SHARED_DATA


def train_steps(model, opt, x, y, n: int) -> list[float]:
    """``n`` plain optimisation steps on one batch; the losses, to check a model still trains."""
    losses = []
    for _ in range(n):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in the idx format MNIST uses, gzipped."""
    magic = 0x0800 | array.ndim  # 0x08: unsigned byte
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_tiny_mnist(root: Path, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Path:
    """A learnable MNIST look-alike: each class is a bright square at its own place, plus noise."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = divmod(int(c), 5)
            images[i, 4 + r * 10: 12 + r * 10, 2 + col * 5: 6 + col * 5] = 255
        write_idx(raw / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    return make_tiny_mnist(tmp_path / "data")


def tiny_run_config(data_dir: Path, out: Path, **kw):
    """A RunConfig for a few fast, deterministic CPU epochs on ``make_tiny_mnist`` data; ``kw`` (at least
    ``method`` and ``method_config``) sets or overrides its fields."""
    import dataclasses

    from adagrow.config import RECIPES, RunConfig

    recipe = dataclasses.replace(RECIPES.get("adagrow"), lr=0.05, batch_size=64)
    base = dict(dataset="mnist", recipe=recipe, epochs=3,
                data_dir=str(data_dir), output_dir=str(out), deterministic=True, threads=1, latency_repeats=3,
                val_size=100)
    return RunConfig(**{**base, **kw})
