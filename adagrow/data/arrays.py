"""Small-image datasets as uint8 tensors, read through torchvision's own dataset classes.

MNIST, CIFAR-10/100 and SVHN are loaded with ``torchvision.datasets`` so that torchvision's md5
checks and parsers are the ones in force.  What this module adds is the staging torchvision lacks:
a data directory that holds only the original archive (CIFAR ``.tar.gz``) or only read-only
``.gz`` files (MNIST) is extracted once into the writable cache, and any failure becomes one
:class:`DatasetError` that names the file.  Tiny-ImageNet's JPEGs are decoded once into ``.npy``
arrays in the cache so that later runs load them in seconds.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from adagrow.data.registry import DatasetSpec
from adagrow.data.staging import extract_once, is_writable
from adagrow.data.validation import diagnose, md5_file, torchvision_md5s
from adagrow.errors import DatasetError

# What torchvision's parsers raise on truncated or malformed files.
_READ_ERRORS = (RuntimeError, ValueError, OSError, EOFError, AssertionError, KeyError, IndexError)


@dataclass
class ArraySplit:
    """One split as tensors: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,).

    Indexing gives ``(image, label)`` like a torchvision dataset, so the same object also feeds
    the DataLoader path.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


def load_arrays(
    spec: DatasetSpec, data_dir: Path, cache_dir: Path, download: bool
) -> tuple[ArraySplit, ArraySplit]:
    """(train, test) of a ``resident_ok`` dataset as uint8 tensors on the CPU."""
    if spec.name == "mnist":
        return _mnist(spec, data_dir, cache_dir, download)
    if spec.name in ("cifar10", "cifar100"):
        return _cifar(spec, data_dir, cache_dir, download)
    if spec.name == "svhn":
        return _svhn(spec, data_dir, cache_dir, download)
    if spec.name == "tinyimagenet":
        from adagrow.data.folders import load_folders

        train, test = load_folders(spec, data_dir, cache_dir)
        arrays_dir = cache_dir / spec.name / "arrays"
        return (
            decode_cached(train, arrays_dir / "train", spec, _fingerprint(train)),
            decode_cached(test, arrays_dir / "test", spec, _fingerprint(test)),
        )
    raise DatasetError(f"dataset {spec.name!r} has no array loader; load it with resident=False")


def _download_root(data_dir: Path, fallback: Path) -> Path:
    """Where a download goes: the data dir if it is writable (so the next run finds it), else the cache."""
    return data_dir if is_writable(data_dir) else fallback


def _mnist(spec: DatasetSpec, data_dir: Path, cache_dir: Path, download: bool):
    from torchvision.datasets import MNIST

    fetch = False
    if all((data_dir / rel).is_file() for rel in spec.alternatives[0]):
        root = data_dir  # already-unpacked idx files, torchvision's own layout
    elif spec.present_layout(data_dir) == spec.files:
        # The .gz originals only, possibly read-only: gunzip them into the cache.
        expected = torchvision_md5s("mnist")
        actual = {rel: md5_file(data_dir / rel) for rel in spec.files}
        mismatch = [rel for rel in spec.files if actual[rel] != expected[rel]]
        if mismatch:
            # Not the official files (e.g. a synthetic test set).  torchvision never checks the
            # unpacked files either, so load them if they parse, but say so; truncated or
            # malformed files still fail below.  `adagrow datasets` reports them as corrupt.
            warnings.warn(f"MNIST: md5 of {', '.join(mismatch)} differs from torchvision's; "
                          "these are not the official files", stacklevel=3)
        # A fresh cache folder per content, so replaced .gz files are never shadowed by old ones.
        content = hashlib.md5("".join(actual.values()).encode()).hexdigest()[:12]
        root = cache_dir / "mnist" / content
        for gz in spec.files:
            _gunzip_once(data_dir / gz, root / gz[: -len(".gz")], spec)
    elif download:
        root, fetch = _download_root(data_dir, cache_dir / "mnist"), True
    else:
        raise spec.missing(data_dir)
    try:
        train = MNIST(str(root), train=True, download=fetch)
        test = MNIST(str(root), train=False)
    except _READ_ERRORS as e:
        raise diagnose(spec, data_dir, root, fetch, e) from e

    def to_split(ds: Any) -> ArraySplit:
        # Zero-pad 28x28 -> 32x32 (see the registry): the border is background, like the digit's.
        images = F.pad(ds.data.unsqueeze(1), (2, 2, 2, 2))
        return ArraySplit(images.contiguous(), ds.targets.to(torch.int64))

    return to_split(train), to_split(test)


def _gunzip_once(src: Path, dest: Path, spec: DatasetSpec) -> None:
    """Decompress ``src`` to ``dest`` unless it is there; atomic via a temporary file."""
    if dest.is_file():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}-", dir=dest.parent)
    try:
        with gzip.open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            try:
                shutil.copyfileobj(fin, fout, 1 << 20)
            except (OSError, EOFError) as e:  # truncated or not gzip at all
                raise spec.corrupt(src, f"cannot be decompressed: {e}") from e
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cifar(spec: DatasetSpec, data_dir: Path, cache_dir: Path, download: bool):
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if spec.name == "cifar10" else CIFAR100
    fetch = False
    if (data_dir / cls.base_folder).is_dir():
        root = data_dir
    elif (data_dir / cls.filename).is_file():
        # torchvision only accepts the archive with the official md5 (a rebuilt archive with
        # identical members is refused), but it checks each extracted file's md5 on every load.
        root = extract_once(
            data_dir / cls.filename, cache_dir / spec.name / "extracted",
            torchvision_md5s(spec.name), spec,
        )
    elif download:
        root, fetch = _download_root(data_dir, cache_dir / spec.name / "extracted"), True
    else:
        raise spec.missing(data_dir)
    try:
        train = cls(str(root), train=True, download=fetch)
        test = cls(str(root), train=False)
    except _READ_ERRORS as e:
        raise diagnose(spec, data_dir, root, fetch, e) from e

    def to_split(ds: Any) -> ArraySplit:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        return ArraySplit(images, torch.tensor(ds.targets, dtype=torch.int64))

    return to_split(train), to_split(test)


def _svhn(spec: DatasetSpec, data_dir: Path, cache_dir: Path, download: bool):
    from torchvision.datasets import SVHN

    root, fetch = data_dir / "svhn", False
    if spec.present_layout(data_dir) is None:
        if not download:
            raise spec.missing(data_dir)
        root, fetch = _download_root(root, cache_dir / "svhn"), True
    try:
        # torchvision maps label 10 (digit 0) to 0 and checks each file's md5.
        train = SVHN(str(root), split="train", download=fetch)
        test = SVHN(str(root), split="test", download=fetch)
    except _READ_ERRORS as e:
        raise diagnose(spec, data_dir, root.parent, fetch, e) from e

    def to_split(ds: Any) -> ArraySplit:
        return ArraySplit(torch.from_numpy(ds.data).contiguous(), torch.from_numpy(ds.labels).to(torch.int64))

    return to_split(train), to_split(test)


def _fingerprint(samples: Any) -> dict[str, Any]:
    """What identifies an image folder's content cheaply: its file list."""
    return {"root": str(samples.root), "n": len(samples.samples),
            "first": str(samples.samples[0][0]), "last": str(samples.samples[-1][0])}


def decode_cached(
    samples: Sequence[tuple[Any, int]], out: Path, spec: DatasetSpec, fingerprint: dict[str, Any],
    num_workers: int = 2,
) -> ArraySplit:
    """Decode every (PIL image, label) of ``samples`` into uint8 arrays, cached as ``.npy`` in ``out``.

    Decoding 110,000 Tiny-ImageNet JPEGs takes minutes; reading the arrays back takes seconds.  The
    cache is rebuilt when the fingerprint (source file list) changes.
    """
    meta_path = out / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()) == fingerprint:
        return ArraySplit(torch.from_numpy(np.load(out / "images.npy")),
                          torch.from_numpy(np.load(out / "labels.npy")))
    from torch.utils.data import DataLoader

    to_tensor = functools.partial(_pil_to_uint8, size=spec.input_size[1:])
    loader = DataLoader(_Mapped(samples, to_tensor), batch_size=256, num_workers=num_workers)
    images, labels = zip(*loader)
    split = ArraySplit(torch.cat(images).contiguous(), torch.cat(labels).to(torch.int64))
    out.mkdir(parents=True, exist_ok=True)
    for name, tensor in (("images", split.images), ("labels", split.labels)):
        tmp = out / f".{name}.tmp.npy"
        np.save(tmp, tensor.numpy())
        os.replace(tmp, out / f"{name}.npy")
    meta_path.write_text(json.dumps(fingerprint))
    return split


def _pil_to_uint8(image: Any, size: tuple[int, ...]) -> torch.Tensor:
    """A PIL image as uint8 (C, H, W), resized only if it is not already ``size``."""
    from torchvision.transforms import v2

    tensor = v2.functional.pil_to_tensor(image)
    if tuple(tensor.shape[1:]) != tuple(size):
        tensor = v2.functional.resize(tensor, list(size), antialias=True)
    return tensor


class _Mapped(torch.utils.data.Dataset):
    """``samples`` with ``fn`` applied to each image (a picklable wrapper for DataLoader workers)."""

    def __init__(self, samples: Sequence[tuple[Any, int]], fn: Any):
        self.samples, self.fn = samples, fn

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.samples[i]
        return self.fn(image), label
