"""What a dataset is, as the rest of the code sees it: :class:`DatasetSpec`, and the registry of them.

Everything about one dataset -- its facts (input shape, classes, published split sizes, normalisation,
augmentation), its accepted file layouts and their checksums, where ``--download`` fetches it from and
how its files are read -- is ONE ``DatasetSpec``, defined in one module of ``adagrow/data/sets/``
(which registers it on import).  The machinery around it (``validation``, ``download``, ``staging``,
``vision``, ``text``, ``resident``, ``streaming``) reads those fields and knows no dataset by name.
Adding a dataset is adding one file to ``adagrow/data/sets/`` (docs/datasets.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adagrow.errors import DatasetError
from adagrow.registry import Registry


@dataclass(frozen=True)
class Augment:
    """The standard training augmentation of a vision dataset (evaluation uses none of it).

    Small images (32², 64²) get a random crop from the image zero-padded by ``crop_pad`` pixels
    and, if ``flip``, a horizontal flip with probability ½.  ImageNet-style subsets
    (``resized_crop``) get RandomResizedCrop to ``size`` plus the flip for training and
    resize-to-``eval_resize`` + centre crop to ``size`` for evaluation.
    """

    crop_pad: int = 0
    flip: bool = False
    resized_crop: bool = False
    size: int = 32
    eval_resize: int | None = None

    def describe(self) -> str:
        """A short text for the result record, e.g. ``"pad-4 random crop 32 + hflip"``."""
        if self.resized_crop:
            train = f"random-resized-crop {self.size}" + (" + hflip" if self.flip else "")
            return f"{train}; eval resize {self.eval_resize} + centre crop {self.size}"
        if self.crop_pad == 0 and not self.flip:
            return "none"
        parts = []
        if self.crop_pad:
            parts.append(f"pad-{self.crop_pad} random crop {self.size}")
        if self.flip:
            parts.append("hflip")
        return " + ".join(parts)


@dataclass(frozen=True)
class Checksums:
    """Published checksums of one layout: ``md5`` maps a path to its md5.

    Paths are relative to the data directory, or, with ``archive`` (a path relative to the data
    directory), member names inside that archive (whose own md5 may differ from the original's).
    ``note`` says why there are none, when there are none.
    """

    md5: dict[str, str] = field(default_factory=dict)
    archive: str | None = None
    note: str = "no published checksum"


@dataclass(frozen=True)
class DatasetSpec:
    """Everything about one dataset.

    ``files`` are the paths (relative to the data directory; a trailing ``/`` marks a directory)
    of the primary layout.  ``alternatives`` are other accepted layouts, each complete on its own
    (e.g. the original archive instead of the extracted folder).  These are exactly the layouts the
    reader accepts (tests/test_data_messages.py checks it), so the messages built from them are true.
    ``howto`` says how to obtain the files by hand; ``source`` (``adagrow.data.sources``) where
    ``--download`` fetches them from, and lays them out as one of the layouts.

    Hooks (plain functions of the dataset's module, called by the generic machinery):

    - ``read(spec, data_dir, cache_dir)`` -> ``(train, test)``: for vision, datasets of
      ``(image, label)`` (uint8 ``ArraySplit`` s, or PIL images that the resident loader decodes once);
      for text a ``RawText``.  Called only once a layout is present.
    - ``checksums(layout)`` -> :class:`Checksums` for a present layout (default: none known).
    """

    name: str
    kind: Literal["vision", "text"]
    # The (C, H, W) an example is fed to the model with; (seq_len,) for text.
    input_size: tuple[int, ...]
    num_classes: int
    train_size: int  # published sizes (SPEC §2); the validation split is carved out of train
    test_size: int
    files: tuple[str, ...]
    howto: str
    alternatives: tuple[tuple[str, ...], ...] = ()
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # Small enough to keep the whole uint8 training set in device memory (see resident.py).
    resident_ok: bool = False
    augment: Augment = Augment()
    source: Any = None  # an adagrow.data.sources source; None: no --download
    read: Callable[..., Any] | None = None
    checksums: Callable[[tuple[str, ...]], Checksums] | None = None
    # Text only: the default vocabulary size of the tokenizer trained on the training split.
    vocab_size: int | None = None

    @property
    def downloadable(self) -> bool:
        return self.source is not None

    def checks(self, layout: tuple[str, ...]) -> Checksums:
        """The published checksums of a present layout (none known: an empty :class:`Checksums`)."""
        return self.checksums(layout) if self.checksums else Checksums()

    @property
    def layouts(self) -> tuple[tuple[str, ...], ...]:
        """Every accepted layout, the primary one first."""
        return (self.files, *self.alternatives)

    def present_layout(self, data_dir: Path) -> tuple[str, ...] | None:
        """The first layout whose paths all exist under ``data_dir``, or None."""
        for layout in self.layouts:
            if all((data_dir / rel).exists() for rel in layout):
                return layout
        return None

    def expected_files(self) -> str:
        """The accepted layouts as one human-readable phrase, for error messages."""
        return " or ".join(", ".join(layout) for layout in self.layouts)

    @property
    def how_to_get(self) -> str:
        """How to obtain the files: by hand, and with ``--download`` where a source is known."""
        if self.downloadable:
            return (f"{self.howto} Or run `adagrow datasets --download {self.name}` (or pass --download) to fetch "
                    f"it from {self.source.describe()} (needs a connection).")
        return f"{self.howto} (There is no automatic download for it.)"

    def missing(self, data_dir: Path) -> DatasetError:
        """The one error for a dataset that is not there: what, where, and how to get it."""
        return DatasetError(
            f"dataset {self.name!r} not found: expected {self.expected_files()} under the data "
            f"dir {shown_path(data_dir)} (--data-dir, else $ADAGROW_DATA, else ./data). {self.how_to_get}"
        )

    def corrupt(self, path: Path | str, why: str) -> DatasetError:
        """The one error for a damaged file: which file, why, and how to replace it."""
        return DatasetError(
            f"dataset {self.name!r}: {path} is corrupt ({why}). Delete it and obtain it again. "
            f"{self.how_to_get}"
        )


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def shown_path(path: Path) -> str:
    """A path as the user typed it, made absolute when it was relative (``data (/home/me/data)``); never
    with symlinks resolved: the user knows the link they typed, not where it points."""
    return str(path) if path.is_absolute() else f"{path} ({os.path.abspath(path)})"


def resolve_data_dir(option: str | Path | None = None) -> Path:
    """The data directory: the command-line option, else ``$ADAGROW_DATA``, else ``./data``."""
    return Path(option or os.environ.get("ADAGROW_DATA") or "data").expanduser()


def resolve_cache_dir(option: str | Path | None = None) -> Path:
    """A writable directory for extracted archives and decoded arrays (created on demand).

    The option, else ``$ADAGROW_CACHE``, else ``~/.cache/adagrow``.  The data directory itself may be
    read-only, so nothing derived is ever written there except where noted.
    """
    path = Path(option or os.environ.get("ADAGROW_CACHE") or "~/.cache/adagrow").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


# The definitions register themselves on import (after everything above exists: they import it).
import adagrow.data.sets  # noqa: E402,F401
