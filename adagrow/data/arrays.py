"""Images as uint8 tensors: ``ArraySplit``, the generic readers that produce them, and a decode cache.

- ``load_arrays``: (train, test) of any vision dataset as uint8 tensors -- the dataset's own reader
  (``spec.read``) gives them directly (MNIST, CIFAR, SVHN through torchvision) or gives images that are
  decoded once into ``.npy`` arrays in the cache (``decode_cached``: Tiny-ImageNet's 110,000 JPEGs take
  minutes to decode, seconds to read back).
- ``read_torchvision``: a torchvision dataset class read from a root, any failure turned into one
  :class:`DatasetError` naming the file (torchvision's md5 checks and parsers stay in force).
- ``gunzip_once``: read-only ``.gz`` originals decompressed once into the writable cache.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adagrow.data.registry import DatasetSpec
from adagrow.data.validation import diagnose, md5_file

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
    spec: DatasetSpec, data_dir: Path, cache_dir: Path, download: bool = False
) -> tuple[ArraySplit, ArraySplit]:
    """(train, test) of a vision dataset as uint8 tensors on the CPU (fetched first if ``download``)."""
    if spec.present_layout(data_dir) is None:
        if not download:
            raise spec.missing(data_dir)
        from adagrow.data.download import download as fetch

        fetch(spec, data_dir, cache_dir)
    train, test = spec.read(spec, data_dir, cache_dir)
    if isinstance(train, ArraySplit):
        return train, test
    arrays_dir = cache_dir / spec.name / "arrays"
    return (decode_cached(train, arrays_dir / "train", spec, _fingerprint(train)),
            decode_cached(test, arrays_dir / "test", spec, _fingerprint(test)))


def read_torchvision(spec: DatasetSpec, make: Callable[[], Any], *, blame: Path, root: Path,
                     expected: dict[str, str]) -> Any:
    """``make()`` (a torchvision dataset constructor); a failure becomes one message naming the file
    (``expected``: the md5s under ``root`` that torchvision checks, see :func:`validation.diagnose`)."""
    try:
        return make()
    except _READ_ERRORS as e:
        raise diagnose(spec, blame, root, expected, e) from e


def content_key(data_dir: Path, files: Sequence[str]) -> str:
    """A short key naming the content of ``files`` (their md5s): cache folders per content, so replaced
    files are never shadowed by what was derived from the old ones."""
    return hashlib.md5("".join(md5_file(data_dir / rel) for rel in files).encode()).hexdigest()[:12]


def gunzip_once(src: Path, dest: Path, spec: DatasetSpec) -> None:
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


def _fingerprint(samples: Any) -> dict[str, Any]:
    """What identifies a file-backed dataset's content cheaply: its (path, label) list's length and ends."""
    listing = samples.samples
    return {"n": len(listing), "first": str(listing[0][0]) if listing else "",
            "last": str(listing[-1][0]) if listing else ""}


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
