"""SVHN: the Stanford ``.mat`` files (train and test); downloaded by torchvision."""

from __future__ import annotations

from pathlib import Path

from adagrow.data.registry import DATASETS, Augment, Checksums, DatasetSpec
from adagrow.data.sources import TorchvisionSource

FILES = ("svhn/train_32x32.mat", "svhn/test_32x32.mat")


def md5s() -> dict[str, str]:
    from torchvision.datasets import SVHN

    return {f"svhn/{SVHN.split_list[s][1]}": SVHN.split_list[s][2] for s in ("train", "test")}


def read(spec: DatasetSpec, data_dir: Path, cache_dir: Path):
    import torch
    from torchvision.datasets import SVHN

    from adagrow.data.arrays import ArraySplit, read_torchvision

    def split(name: str) -> ArraySplit:
        # torchvision maps label 10 (digit 0) to 0 and checks each file's md5.
        ds = read_torchvision(spec, lambda: SVHN(str(data_dir / "svhn"), split=name), blame=data_dir / "svhn",
                              root=data_dir, expected=md5s())
        return ArraySplit(torch.from_numpy(ds.data).contiguous(), torch.from_numpy(ds.labels).to(torch.int64))

    return split("train"), split("test")


DATASETS.register("svhn", DatasetSpec(
    name="svhn", kind="vision", input_size=(3, 32, 32), num_classes=10,
    train_size=73_257, test_size=26_032,
    files=FILES,
    howto="Download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into <data>/svhn/.",
    mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970), resident_ok=True,
    augment=Augment(crop_pad=4, flip=False, size=32),  # house numbers are not mirror-symmetric
    # torchvision's SVHN keeps its files directly in its root: give it <staging>/svhn.
    source=TorchvisionSource("SVHN", ({"split": "train"}, {"split": "test"}), subdir="svhn"),
    read=read, checksums=lambda layout: Checksums(md5s()),
))
