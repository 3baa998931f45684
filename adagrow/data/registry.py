"""The ten datasets of the benchmark (SPEC §2, thesis Table 3-17) and where their files live.

One :class:`DatasetSpec` per dataset says everything the rest of the code needs to know about it
without opening a file: the shape the model is fed, the class count, the published split sizes,
the files expected under the data directory, how to obtain them, normalisation statistics and the
standard training augmentation.  Adding a dataset is one entry here plus a source in
``adagrow.data.sources``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
class DatasetSpec:
    """Static facts about one dataset.

    ``files`` are the paths (relative to the data directory; a trailing ``/`` marks a directory)
    of the primary layout.  ``alternatives`` are other accepted layouts, each complete on its own
    (e.g. the original archive instead of the extracted folder).  These are exactly the layouts the
    loaders read (tests/test_data_messages.py checks it), so the messages built from them are true.
    ``howto`` says how to obtain the files by hand; ``downloadable`` whether ``--download`` can
    fetch them (torchvision's MNIST / CIFAR / SVHN).
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
    downloadable: bool = False
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # Small enough to keep the whole uint8 training set in device memory (see resident.py).
    resident_ok: bool = False
    augment: Augment = Augment()

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
        """How to obtain the files: by hand, and with ``--download`` where torchvision can fetch them."""
        if self.downloadable:
            return f"{self.howto} Or pass --download to let torchvision fetch it (needs a connection)."
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

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGENET_AUG = Augment(flip=True, resized_crop=True, size=224, eval_resize=256)


def _fastai(name: str, folder: str, train: int, test: int, what: str) -> DatasetSpec:
    """ImageWoof / Imagenette: fast.ai's ImageFolder layouts at full, 320 or 160 px."""
    url = f"https://s3.amazonaws.com/fast-ai-imageclas/{folder}.tgz"
    return DatasetSpec(
        name=name, kind="vision", input_size=(3, 224, 224), num_classes=10,
        train_size=train, test_size=test,
        files=(f"{folder}/train/", f"{folder}/val/"),
        alternatives=tuple(
            (f"{folder}-{px}/train/", f"{folder}-{px}/val/") for px in (320, 160)
        ),
        howto=f"{what}: download {url} (or the -320/-160 variant) and extract it into the data dir.",
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, augment=_IMAGENET_AUG,
    )


for _spec in (
    DatasetSpec(
        name="mnist", kind="vision",
        # Fed at 32x32: the 28x28 digits are zero-padded by 2 px on each side, because the MACs the
        # thesis reports for MNIST (Table 3-22) are those of a 32x32 input.
        input_size=(1, 32, 32), num_classes=10, train_size=60_000, test_size=10_000,
        files=tuple(f"MNIST/raw/{f}-ubyte.gz" for f in (
            "train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")),
        alternatives=(tuple(f"MNIST/raw/{f}-ubyte" for f in (
            "train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")),),
        howto="Put the four idx .gz files from http://yann.lecun.com/exdb/mnist/ in <data>/MNIST/raw/.",
        downloadable=True,
        # Statistics of the 28x28 digits; the zero border shifts them slightly, which only
        # rescales the input and is the common practice.
        mean=(0.1307,), std=(0.3081,), resident_ok=True,
        augment=Augment(crop_pad=4, flip=False, size=32),  # digits are not mirror-symmetric
    ),
    DatasetSpec(
        name="cifar10", kind="vision", input_size=(3, 32, 32), num_classes=10,
        train_size=50_000, test_size=10_000,
        files=("cifar-10-python.tar.gz",), alternatives=(("cifar-10-batches-py/",),),
        howto="Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
              "into the data dir (it is extracted once into the cache).",
        downloadable=True,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), resident_ok=True,
        augment=Augment(crop_pad=4, flip=True, size=32),
    ),
    DatasetSpec(
        name="cifar100", kind="vision", input_size=(3, 32, 32), num_classes=100,
        train_size=50_000, test_size=10_000,
        files=("cifar-100-python.tar.gz",), alternatives=(("cifar-100-python/",),),
        howto="Download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
              "into the data dir (it is extracted once into the cache).",
        downloadable=True,
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), resident_ok=True,
        augment=Augment(crop_pad=4, flip=True, size=32),
    ),
    DatasetSpec(
        name="svhn", kind="vision", input_size=(3, 32, 32), num_classes=10,
        train_size=73_257, test_size=26_032,
        files=("svhn/train_32x32.mat", "svhn/test_32x32.mat"),
        howto="Download train_32x32.mat and test_32x32.mat from "
              "http://ufldl.stanford.edu/housenumbers/ into <data>/svhn/.",
        downloadable=True,
        mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970), resident_ok=True,
        augment=Augment(crop_pad=4, flip=False, size=32),  # house numbers are not mirror-symmetric
    ),
    _fastai("imagewoof", "imagewoof2", 9_025, 3_929, "ImageWoof"),
    _fastai("imagenette", "imagenette2", 9_469, 3_925, "Imagenette"),
    DatasetSpec(
        name="tinyimagenet", kind="vision", input_size=(3, 64, 64), num_classes=200,
        train_size=100_000, test_size=10_000,  # the labelled val split serves as test
        files=("tiny-imagenet-200/wnids.txt", "tiny-imagenet-200/train/",
               "tiny-imagenet-200/val/images/", "tiny-imagenet-200/val/val_annotations.txt"),
        howto="Download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into the "
              "data dir.",
        mean=(0.4802, 0.4481, 0.3975), std=(0.2302, 0.2265, 0.2262), resident_ok=True,
        augment=Augment(crop_pad=4, flip=True, size=64),
    ),
    DatasetSpec(
        name="miniimagenet", kind="vision", input_size=(3, 224, 224), num_classes=100,
        # The thesis' 48,000 / 12,000: all 60,000 images of the three split CSVs, 480 / 120 per
        # class (see sources.py).
        train_size=48_000, test_size=12_000,
        files=("mini-imagenet/images/", "mini-imagenet/train.csv", "mini-imagenet/val.csv",
               "mini-imagenet/test.csv"),
        howto="Get Mini-ImageNet (an images/ folder plus Ravi & Larochelle's train.csv, val.csv "
              "and test.csv with columns filename,label) and put it in <data>/mini-imagenet/.",
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, augment=_IMAGENET_AUG,
    ),
    DatasetSpec(
        name="imdb", kind="text",
        input_size=(256,),  # the text loader owns max_len; bundle.input_size is authoritative
        num_classes=2, train_size=25_000, test_size=25_000,
        # a tarball is read in one streaming pass, the tree file by file (see text.py)
        files=("imdb/aclImdb_repacked.tar.gz",),
        alternatives=(("aclImdb/train/", "aclImdb/test/"), ("aclImdb_v1.tar.gz",)),
        howto="Download aclImdb_v1.tar.gz from https://ai.stanford.edu/~amaas/data/sentiment/ into "
              "the data dir (extracting it, into aclImdb/, is optional).",
    ),
    DatasetSpec(
        name="sst2", kind="text",
        input_size=(64,),  # the text loader owns max_len; bundle.input_size is authoritative
        num_classes=2, train_size=67_349, test_size=872,  # GLUE dev serves as test
        files=("sst2/train.tsv", "sst2/dev.tsv"), alternatives=(("SST-2/train.tsv", "SST-2/dev.tsv"),),
        howto="Download https://dl.fbaipublicfiles.com/glue/data/SST-2.zip and unzip it into the data "
              "dir (it makes SST-2/), or put its train.tsv and dev.tsv in <data>/sst2/.",
    ),
):
    DATASETS.register(_spec.name, _spec)


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
