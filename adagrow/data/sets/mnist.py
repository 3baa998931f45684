"""MNIST: torchvision's ``MNIST/raw/`` idx files, fed at 32x32; downloaded by torchvision."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

from adagrow.data.registry import DATASETS, Augment, Checksums, DatasetSpec
from adagrow.data.sources import TorchvisionSource

_STEMS = ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
GZ = tuple(f"MNIST/raw/{f}-ubyte.gz" for f in _STEMS)
UNPACKED = tuple(f"MNIST/raw/{f}-ubyte" for f in _STEMS)


def md5s() -> dict[str, str]:
    """torchvision's md5s of the four .gz originals, keyed by their path under the data dir."""
    from torchvision.datasets import MNIST

    return {f"MNIST/raw/{f}": md5 for f, md5 in MNIST.resources}


def checksums(layout: tuple[str, ...]) -> Checksums:
    if layout == GZ:
        return Checksums(md5s())
    return Checksums(note="unpacked; md5s are known only for the .gz originals")


def read(spec: DatasetSpec, data_dir: Path, cache_dir: Path):
    import torch
    import torch.nn.functional as F
    from torchvision.datasets import MNIST

    from adagrow.data.arrays import ArraySplit, gunzip_once, read_torchvision
    from adagrow.data.validation import md5_file

    if spec.present_layout(data_dir) == UNPACKED:
        root = data_dir  # already-unpacked idx files, torchvision's own layout
    else:
        # The .gz originals only, possibly read-only: gunzip them into the cache.
        expected = md5s()
        actual = {rel: md5_file(data_dir / rel) for rel in GZ}
        mismatch = [rel for rel in GZ if actual[rel] != expected[rel]]
        if mismatch:
            # Not the official files (e.g. a synthetic test set).  torchvision never checks the
            # unpacked files either, so load them if they parse, but say so; truncated or
            # malformed files still fail below.  `adagrow datasets` reports them as corrupt.
            warnings.warn(f"MNIST: md5 of {', '.join(mismatch)} differs from torchvision's; "
                          "these are not the official files", stacklevel=4)
        # A fresh cache folder per content, so replaced .gz files are never shadowed by old ones.
        root = cache_dir / "mnist" / hashlib.md5("".join(actual.values()).encode()).hexdigest()[:12]
        for gz in GZ:
            gunzip_once(data_dir / gz, root / gz[: -len(".gz")], spec)

    def split(train: bool) -> ArraySplit:
        # torchvision checks no md5 of the unpacked files: blame the folder they were read from.
        ds = read_torchvision(spec, lambda: MNIST(str(root), train=train), blame=data_dir / "MNIST" / "raw",
                              root=root, expected={})
        # Zero-pad 28x28 -> 32x32 (see input_size): the border is background, like the digit's.
        images = F.pad(ds.data.unsqueeze(1), (2, 2, 2, 2))
        return ArraySplit(images.contiguous(), ds.targets.to(torch.int64))

    return split(True), split(False)


DATASETS.register("mnist", DatasetSpec(
    name="mnist", kind="vision",
    # Fed at 32x32: the 28x28 digits are zero-padded by 2 px on each side, because the MACs the
    # thesis reports for MNIST (Table 3-22) are those of a 32x32 input.
    input_size=(1, 32, 32), num_classes=10, train_size=60_000, test_size=10_000,
    files=GZ, alternatives=(UNPACKED,),
    howto="Put the four idx .gz files from http://yann.lecun.com/exdb/mnist/ in <data>/MNIST/raw/.",
    # Statistics of the 28x28 digits; the zero border shifts them slightly, which only
    # rescales the input and is the common practice.
    mean=(0.1307,), std=(0.3081,), resident_ok=True,
    augment=Augment(crop_pad=4, flip=False, size=32),  # digits are not mirror-symmetric
    source=TorchvisionSource("MNIST", ({"train": True}, {"train": False})),
    read=read, checksums=checksums,
))
