"""Tiny datasets written in the exact on-disk formats of the real ones, for tests.

Every image of class ``k`` has the value ``class_value(k)`` on its left half and 0 on its right
half, so a test can check after shuffling and augmentation that images still match their labels
(the bright value) and whether they were mirrored (the bright side).  Writers return the md5 of
each file they wrote, keyed like the md5 tables of the dataset definitions (``adagrow/data/sets/``), because
torchvision checks CIFAR / SVHN files against its own md5 tables: tests install these values in
place of torchvision's.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from adagrow.data.validation import md5_file


def class_value(label: int) -> int:
    """The pixel value of class ``label``'s bright half (distinct for up to 12 classes)."""
    return 10 + 20 * (label % 12)


def images(labels: np.ndarray, channels: int, size: int) -> np.ndarray:
    """uint8 (N, C, size, size): left half ``class_value(label)``, right half 0."""
    out = np.zeros((len(labels), channels, size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        out[i, :, :, : size // 2] = class_value(int(label))
    return out


def _labels(n: int, num_classes: int) -> np.ndarray:
    return np.arange(n) % num_classes


def write_mnist(data_dir: Path, n_train: int = 60, n_test: int = 20, gz: bool = True) -> dict[str, str]:
    """``MNIST/raw/`` idx files (gzipped like the originals, or unpacked like torchvision leaves them)."""
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = _labels(n, 10)
        pixels = images(labels, 1, 28)[:, 0]
        for kind, payload in (
            ("images-idx3", struct.pack(">IIII", 2051, n, 28, 28) + pixels.tobytes()),
            ("labels-idx1", struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes()),
        ):
            name = f"{prefix}-{kind}-ubyte" + (".gz" if gz else "")
            (raw / name).write_bytes(gzip.compress(payload) if gz else payload)
            md5s[f"MNIST/raw/{name}"] = md5_file(raw / name)
    return md5s


def write_cifar(
    data_dir: Path, which: str = "cifar10", per_batch: int = 20, n_test: int = 20,
    archive: bool = False,
) -> dict[str, str]:
    """torchvision's ``cifar-10-batches-py`` / ``cifar-100-python`` pickles, or their ``.tar.gz``.

    Returns the md5s of the member files (``<folder>/<file>``), in both cases.
    """
    ten = which == "cifar10"
    folder = "cifar-10-batches-py" if ten else "cifar-100-python"
    num_classes = 10 if ten else 100
    label_key = "labels" if ten else "fine_labels"
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if ten else ["train", "test"]
    root = data_dir / folder
    root.mkdir(parents=True, exist_ok=True)
    for name in batches:
        n = n_test if "test" in name else per_batch * (1 if ten else 5)
        labels = _labels(n, num_classes)
        entry = {"batch_label": name, label_key: labels.tolist(),
                 "data": images(labels, 3, 32).reshape(n, -1), "filenames": [f"{i}.png" for i in range(n)]}
        (root / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta_name, meta_key = ("batches.meta", "label_names") if ten else ("meta", "fine_label_names")
    (root / meta_name).write_bytes(
        pickle.dumps({meta_key: [f"class{i}" for i in range(num_classes)]}, protocol=2))
    md5s = {f"{folder}/{f}": md5_file(root / f) for f in [*batches, meta_name]}
    if archive:
        tar_name = "cifar-10-python.tar.gz" if ten else "cifar-100-python.tar.gz"
        with tarfile.open(data_dir / tar_name, "w:gz") as tar:
            tar.add(root, arcname=folder)
        for f in root.iterdir():
            f.unlink()
        root.rmdir()
    return md5s


def write_svhn(data_dir: Path, n_train: int = 40, n_test: int = 20) -> dict[str, str]:
    """``svhn/{train,test}_32x32.mat`` as the Stanford files: X (32, 32, 3, N), y (N, 1) in 1..10."""
    from scipy.io import savemat

    root = data_dir / "svhn"
    root.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = _labels(n, 10)
        x = images(labels, 3, 32).transpose(2, 3, 1, 0)  # N,C,H,W -> H,W,C,N
        # Digit 0 is stored as label 10 in the .mat files.
        y = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
        md5s[f"svhn/{split}_32x32.mat"] = md5_file(root / f"{split}_32x32.mat")
    return md5s


def _save_image(path: Path, label: int, size: int, fmt: str) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = images(np.array([label]), 3, size)[0].transpose(1, 2, 0)
    Image.fromarray(pixels).save(path, format=fmt)


def write_fastai(
    data_dir: Path, folder: str = "imagewoof2", num_classes: int = 3, n_train: int = 4,
    n_val: int = 2, size: int = 40,
) -> None:
    """fast.ai's ``<folder>/{train,val}/<wnid>/*.JPEG`` layout (PNG-encoded for exact pixels)."""
    for split, n in (("train", n_train), ("val", n_val)):
        for k in range(num_classes):
            for i in range(n):
                _save_image(data_dir / folder / split / f"n{k:08d}" / f"{k}_{i}.JPEG", k, size, "PNG")


def write_tiny_imagenet(data_dir: Path, num_classes: int = 3, n_train: int = 4, n_val: int = 2) -> None:
    """``tiny-imagenet-200/``: wnids.txt, ``train/<wnid>/images/``, flat ``val/images`` + annotations."""
    root = data_dir / "tiny-imagenet-200"
    wnids = [f"n{k:08d}" for k in range(num_classes)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    for k, wnid in enumerate(wnids):
        (root / "train" / wnid).mkdir(parents=True, exist_ok=True)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(n_train):
            _save_image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", k, 64, "PNG")
    lines = []
    for i in range(n_val * num_classes):
        k = i % num_classes
        _save_image(root / "val" / "images" / f"val_{i}.JPEG", k, 64, "PNG")
        lines.append(f"val_{i}.JPEG\t{wnids[k]}\t0\t0\t63\t63\n")
    (root / "val" / "val_annotations.txt").write_text("".join(lines))


def write_mini_imagenet(data_dir: Path, classes_per_split: int = 2, per_class: int = 10, size: int = 40) -> None:
    """``mini-imagenet/images/`` + train/val/test CSVs with disjoint classes, as Ravi & Larochelle's."""
    root = data_dir / "mini-imagenet"
    k = 0
    for split in ("train", "val", "test"):
        rows = ["filename,label"]
        for _ in range(classes_per_split):
            wnid = f"n{k:08d}"
            for i in range(per_class):
                name = f"{wnid}{i:08d}.jpg"
                _save_image(root / "images" / name, k, size, "PNG")
                rows.append(f"{name},{wnid}")
            k += 1
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to a fraction of its size (a download that stopped half-way)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


__all__ = [
    "class_value", "images", "truncate", "write_cifar", "write_fastai", "write_mini_imagenet",
    "write_mnist", "write_svhn", "write_tiny_imagenet",
]
