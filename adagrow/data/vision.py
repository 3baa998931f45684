"""``load_vision``: one call from a dataset name to train / val / test batch loaders.

The validation split is held out of the training set by a permutation seeded with the run's seed
(model selection never sees the test split); ``train_subset`` then takes a seeded subset of what
remains (the smoke profile).  Datasets marked ``resident_ok`` use the device-resident loader by
default, on every device; the others stream through a torch DataLoader.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from adagrow.data.bundle import DataBundle
from adagrow.data.registry import DATASETS, DatasetSpec, resolve_cache_dir
from adagrow.data.seeding import epoch_seed, generator
from adagrow.errors import AdaGrowError

# Streams of the split permutations (the loaders' per-epoch draws use stream 0).
_SPLIT_STREAM, _TEST_STREAM = 1, 2


def load_vision(
    name: str,
    data_dir: Path,
    *,
    batch_size: int,
    device: torch.device,
    seed: int,
    val_size: int | float = 0.1,
    train_subset: int | None = None,
    test_subset: int | None = None,
    download: bool = False,
    resident: bool | None = None,
    num_workers: int = 2,
    eval_batch_size: int | None = None,
    cache_dir: Path | None = None,
    randaugment: int | None = None,
) -> DataBundle:
    """Load a vision dataset of the registry as a :class:`DataBundle`.

    ``val_size`` is a count or a fraction of the training set.  ``resident`` defaults to the
    dataset's ``resident_ok``.  ``download`` fetches the files from the dataset's source when they
    are absent (``adagrow.data.download``).  ``cache_dir`` (default ``resolve_cache_dir()``) receives extracted archives
    and decoded arrays.  ``randaugment=m`` adds RandAugment (2 ops, magnitude m) to the training
    augmentation (the released AdaGrow code's recipe).  Raises :class:`DatasetError` if the files are
    missing or corrupt.
    """
    spec = DATASETS.get(name)
    if spec.kind != "vision":
        raise AdaGrowError(f"dataset {name!r} is not a vision dataset")
    if resident is None:
        resident = spec.resident_ok
    if resident and not spec.resident_ok:
        raise AdaGrowError(
            f"dataset {name!r} is too large for the device-resident loader; use resident=False"
        )
    data_dir = Path(data_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else resolve_cache_dir()
    device = torch.device(device)

    train_set, test_set = _load_source(spec, data_dir, cache_dir, download, resident)
    train_idx, val_idx = split_indices(len(train_set), val_size, seed, train_subset)
    test_idx = _subset(len(test_set), test_subset, seed)
    eval_bs = eval_batch_size or batch_size
    make = _resident_loader if resident else _streaming_loader
    common = dict(spec=spec, seed=seed, device=device, num_workers=num_workers)
    return DataBundle(
        name=name,
        train=make(train_set, train_idx, batch_size=batch_size, train=True, randaugment=randaugment, **common),
        val=make(train_set, val_idx, batch_size=eval_bs, train=False, **common),
        test=make(test_set, test_idx, batch_size=eval_bs, train=False, **common),
        input_size=spec.input_size,
        num_classes=spec.num_classes,
        calibration=lambda n: make(train_set, train_idx[:n], batch_size=eval_bs, train=False, **common),
        meta={
            "train_size": len(train_idx),
            "val_size": len(val_idx),
            "test_size": len(test_idx),
            "resident": resident,
            "augmentation": spec.augment.describe() + (f" + RandAugment n2 m{randaugment}" if randaugment else ""),
            "normalisation": {"mean": list(spec.mean or ()), "std": list(spec.std or ())},
        },
    )


def split_indices(
    n: int, val_size: int | float, seed: int, train_subset: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices) of an ``n``-example training set.

    A permutation seeded by ``seed``: its first ``val_size`` entries (a count, or a fraction of
    ``n``) are validation, the rest training, of which ``train_subset`` keeps the first entries.
    """
    n_val = round(val_size * n) if isinstance(val_size, float) else int(val_size)
    if not 0 <= n_val < n:
        raise AdaGrowError(f"val_size={val_size} leaves no training data out of {n} examples")
    perm = torch.randperm(n, generator=generator(epoch_seed(seed, 0, _SPLIT_STREAM)))
    val, train = perm[:n_val], perm[n_val:]
    if train_subset is not None:
        train = train[:train_subset]
    return train, val


def _subset(n: int, size: int | None, seed: int) -> torch.Tensor:
    """All of ``range(n)`` in order, or a seeded subset of ``size`` kept in order."""
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=generator(epoch_seed(seed, 0, _TEST_STREAM)))[:size].sort().values


def _load_source(
    spec: DatasetSpec, data_dir: Path, cache_dir: Path, download: bool, resident: bool
) -> tuple[Any, Any]:
    """(train, test): uint8 ArraySplits for the resident loader, else what the dataset's reader gives."""
    from adagrow.data.arrays import load_arrays

    if resident:
        return load_arrays(spec, data_dir, cache_dir, download)
    if spec.present_layout(data_dir) is None:
        if not download:
            raise spec.missing(data_dir)
        from adagrow.data.download import download as fetch

        fetch(spec, data_dir, cache_dir)
    return spec.read(spec, data_dir, cache_dir)


def _resident_loader(
    source: Any, indices: torch.Tensor, *, spec: DatasetSpec, batch_size: int, train: bool,
    seed: int, device: torch.device, num_workers: int, randaugment: int | None = None,
):
    from adagrow.data.resident import ResidentLoader

    return ResidentLoader(
        source.images[indices], source.labels[indices],
        batch_size=batch_size, mean=spec.mean, std=spec.std, seed=seed, device=device,
        train=train, crop_pad=spec.augment.crop_pad, flip=spec.augment.flip, randaugment=randaugment,
    )


def _streaming_loader(
    source: Sequence[tuple[Any, int]], indices: torch.Tensor, *, spec: DatasetSpec,
    batch_size: int, train: bool, seed: int, device: torch.device, num_workers: int,
    randaugment: int | None = None,
):
    from adagrow.data.streaming import StreamingLoader, build_transform

    return StreamingLoader(
        source, indices.tolist(), build_transform(spec.augment, spec.mean, spec.std, train, randaugment),
        batch_size=batch_size, seed=seed, device=device, train=train, num_workers=num_workers,
    )
