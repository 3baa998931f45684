"""Image-file datasets: ImageWoof, Imagenette, Tiny-ImageNet and Mini-ImageNet.

Each loader returns ``(train, test)`` datasets that yield ``(PIL RGB image, class index)``; the
transforms are applied later (``streaming.py``), or the images are decoded once into arrays
(``arrays.decode_cached``) for the device-resident loader.

- ImageWoof / Imagenette: torchvision ``ImageFolder`` over fast.ai's ``{train,val}`` folders; val
  is the test split, as in the thesis.
- Tiny-ImageNet: ``ImageFolder`` over ``train/``.  The labelled ``val/`` (the test split) keeps all
  images in one folder with labels in ``val_annotations.txt``; it is reorganised ONCE into class
  folders of symbolic links, inside the dataset folder when it is writable, else in the cache.
- Mini-ImageNet: from Ravi & Larochelle's split CSVs (``filename,label``).  Those splits have
  disjoint classes (64/16/20, for few-shot learning), so they cannot serve a 100-way classifier as
  they are.  Our reading of the thesis' "100 classes, 48,000 train / 12,000 validation": pool the
  60,000 images of the three CSVs (600 per class) and hold out 120 per class (every fifth image in
  filename order) as the test split, leaving 480 per class for training.  The split is fixed (it
  does not depend on the run's seed), so every run is scored on the same images.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder

from adagrow.data.registry import DatasetSpec
from adagrow.data.staging import is_writable
from adagrow.errors import DatasetError

MINI_TEST_EVERY = 5  # every 5th image of a class (600 -> 480 train / 120 test)


def load_folders(spec: DatasetSpec, data_dir: Path, cache_dir: Path) -> tuple[Any, Any]:
    """(train, test) datasets of (PIL image, label) for an image-file dataset."""
    layout = spec.present_layout(data_dir)
    if layout is None:
        raise spec.missing(data_dir)
    if spec.name in ("imagewoof", "imagenette"):
        root = data_dir / Path(layout[0]).parent
        return ClassFolder(spec, root / "train"), ClassFolder(spec, root / "val")
    if spec.name == "tinyimagenet":
        return _tiny_imagenet(spec, data_dir / "tiny-imagenet-200", cache_dir)
    if spec.name == "miniimagenet":
        return _mini_imagenet(spec, data_dir / "mini-imagenet")
    raise DatasetError(f"dataset {spec.name!r} is not an image-folder dataset")


def _read_rgb(spec: DatasetSpec, path: str) -> Image.Image:
    """Open an image as RGB, turning a damaged file into a DatasetError that names it."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise spec.corrupt(path, f"not a readable image: {e}") from e


class _RGBLoader:
    """The image loader as a picklable object (DataLoader workers may pickle the dataset)."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec

    def __call__(self, path: str) -> Image.Image:
        return _read_rgb(self.spec, path)


class ClassFolder(ImageFolder):
    """torchvision ImageFolder, optionally with a fixed class list so train and test indices agree."""

    def __init__(self, spec: DatasetSpec, root: Path, classes: list[str] | None = None):
        self._fixed_classes = classes
        try:
            super().__init__(str(root), loader=_RGBLoader(spec), allow_empty=classes is not None)
        except (FileNotFoundError, OSError) as e:
            raise spec.corrupt(root, f"not a usable class-folder tree: {e}") from e

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        if self._fixed_classes is None:
            return super().find_classes(directory)
        return self._fixed_classes, {c: i for i, c in enumerate(self._fixed_classes)}


def _tiny_imagenet(spec: DatasetSpec, root: Path, cache_dir: Path) -> tuple[Any, Any]:
    train = ClassFolder(spec, root / "train")
    parent = root if is_writable(root) else cache_dir / spec.name
    val_root = _tiny_val_by_class(spec, root / "val", parent / "val_by_class")
    return train, ClassFolder(spec, val_root, classes=train.classes)


def _tiny_val_by_class(spec: DatasetSpec, val: Path, dest: Path) -> Path:
    """Build ``dest/<wnid>/<image>`` links from ``val_annotations.txt`` once; return ``dest``.

    Built in a temporary sibling and renamed into place, so a finished tree is always complete.
    """
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".val_by_class-", dir=dest.parent))
    try:
        with open(val / "val_annotations.txt") as f:
            for line_no, line in enumerate(f, 1):
                fields = line.split("\t")
                if len(fields) < 2:
                    raise spec.corrupt(val / "val_annotations.txt", f"line {line_no} has no label")
                image, wnid = fields[0], fields[1]
                src = (val / "images" / image).resolve()
                if not src.is_file():
                    raise spec.corrupt(val / "images", f"{image} listed in val_annotations.txt is missing")
                (tmp / wnid).mkdir(exist_ok=True)
                _link_or_copy(src, tmp / wnid / image)
        try:
            os.replace(tmp, dest)
        except OSError:  # a concurrent run finished first
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        dst.symlink_to(src)
    except OSError:  # file systems without symbolic links
        shutil.copyfile(src, dst)


class FileList(torch.utils.data.Dataset):
    """A list of (image path, label) pairs read as RGB PIL images."""

    def __init__(self, spec: DatasetSpec, samples: list[tuple[str, int]], classes: list[str]):
        self.spec, self.samples, self.classes = spec, samples, classes

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        path, label = self.samples[i]
        return _read_rgb(self.spec, path), label


def _mini_imagenet(spec: DatasetSpec, root: Path) -> tuple[FileList, FileList]:
    by_class: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        csv_path = root / f"{split}.csv"
        with open(csv_path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["filename", "label"]:
                raise spec.corrupt(csv_path, "its header is not 'filename,label'")
            for row in reader:
                if len(row) >= 2:
                    by_class.setdefault(row[1].strip(), []).append(row[0].strip())
    classes = sorted(by_class)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for label, wnid in enumerate(classes):
        for i, name in enumerate(sorted(by_class[wnid])):
            path = root / "images" / name
            if not path.is_file():
                raise spec.corrupt(root / "images", f"{name} listed in the split CSVs is missing")
            (test if i % MINI_TEST_EVERY == MINI_TEST_EVERY - 1 else train).append((str(path), label))
    return FileList(spec, train, classes), FileList(spec, test, classes)
