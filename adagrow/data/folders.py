"""Image-file datasets, generically: class folders, file lists, and the images a hub copy delivers.

Readers return datasets that yield ``(PIL RGB image, class index)``; the transforms are applied later
(``streaming.py``), or the images are decoded once into arrays (``arrays.decode_cached``) for the
device-resident loader.  A damaged image becomes a :class:`DatasetError` naming the file.

- ``ClassFolder``: torchvision ``ImageFolder`` (``<root>/<class>/<image>``), optionally with a fixed
  class list so that train and test indices agree.
- ``FileList``: a list of (image path, label).
- ``reorganise_by_class``: a flat folder of images plus a (image, class) listing turned once into class
  folders of symbolic links.
- ``write_image``: an image of a Hugging Face ``datasets`` row written to a file as its original bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder

from adagrow.data.registry import DatasetSpec


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


def reorganise_by_class(spec: DatasetSpec, listing: list[tuple[Path, str]], dest: Path) -> Path:
    """Build ``dest/<class>/<image name>`` links to each (image path, class) of ``listing`` once; return ``dest``.

    Built in a temporary sibling and renamed into place, so a finished tree is always complete.
    """
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for src, label in listing:
            if not src.is_file():
                raise spec.corrupt(src.parent, f"{src.name} is listed but missing")
            (tmp / label).mkdir(exist_ok=True)
            _link_or_copy(src.resolve(), tmp / label / src.name)
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


def write_image(value: dict[str, Any], path: Path) -> None:
    """Write a ``datasets.Image(decode=False)`` value (``{"bytes", "path"}``) as its original bytes (no re-encoding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if value.get("bytes") is not None:
        path.write_bytes(value["bytes"])
    else:
        shutil.copyfile(value["path"], path)
