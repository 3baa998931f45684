"""CIFAR-10 and CIFAR-100: torchvision's python pickles (the archive, or its extracted folder); downloaded by
torchvision."""

from __future__ import annotations

from pathlib import Path

from adagrow.data.registry import DATASETS, Augment, Checksums, DatasetSpec
from adagrow.data.sources import TorchvisionSource

_CLASS = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def _cls(name: str):
    from torchvision import datasets as tvd

    return getattr(tvd, _CLASS[name])


def md5s(name: str) -> dict[str, str]:
    """torchvision's md5s of the extracted files, keyed ``<base folder>/<file>`` (as in the archive)."""
    cls = _cls(name)
    files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    return {f"{cls.base_folder}/{f}": md5 for f, md5 in files}


def _checksums(name: str):
    def checksums(layout: tuple[str, ...]) -> Checksums:
        # The archive's members are checked (a rebuilt archive with the original members is fine).
        archive = layout[0] if layout[0].endswith(".tar.gz") else None
        return Checksums(md5s(name), archive=archive)

    return checksums


def read(spec: DatasetSpec, data_dir: Path, cache_dir: Path):
    import torch

    from adagrow.data.arrays import ArraySplit, read_torchvision
    from adagrow.data.staging import extract_once

    cls = _cls(spec.name)
    expected = md5s(spec.name)
    if (data_dir / cls.base_folder).is_dir():
        root = data_dir
    else:
        # torchvision only accepts the archive with the official md5 (a rebuilt archive with
        # identical members is refused), but it checks each extracted file's md5 on every load.
        root = extract_once(data_dir / cls.filename, cache_dir / spec.name / "extracted", expected, spec)

    def split(train: bool) -> ArraySplit:
        ds = read_torchvision(spec, lambda: cls(str(root), train=train), blame=root, root=root, expected=expected)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        return ArraySplit(images, torch.tensor(ds.targets, dtype=torch.int64))

    return split(True), split(False)


def _cifar(name: str, archive: str, folder: str, num_classes: int, mean, std) -> DatasetSpec:
    return DatasetSpec(
        name=name, kind="vision", input_size=(3, 32, 32), num_classes=num_classes,
        train_size=50_000, test_size=10_000,
        files=(archive,), alternatives=((f"{folder}/",),),
        howto=f"Download {archive} from https://www.cs.toronto.edu/~kriz/cifar.html "
              "into the data dir (it is extracted once into the cache).",
        mean=mean, std=std, resident_ok=True,
        augment=Augment(crop_pad=4, flip=True, size=32),
        source=TorchvisionSource(_CLASS[name], ({"train": True}, {"train": False})),
        read=read, checksums=_checksums(name),
    )


DATASETS.register("cifar10", _cifar("cifar10", "cifar-10-python.tar.gz", "cifar-10-batches-py", 10,
                                    (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)))
DATASETS.register("cifar100", _cifar("cifar100", "cifar-100-python.tar.gz", "cifar-100-python", 100,
                                     (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)))
