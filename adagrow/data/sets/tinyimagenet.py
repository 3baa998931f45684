"""Tiny-ImageNet: Stanford's ``tiny-imagenet-200`` (64x64, 200 classes); downloaded from the Hugging Face hub
copy ``zh-plus/tiny-imagenet`` (train 100,000 / valid 10,000, labels named by wnid), written back as the
original tree.

The labelled ``val/`` (our test split, as in the thesis) keeps all images in one folder with labels in
``val_annotations.txt``; it is reorganised ONCE into class folders of symbolic links, inside the dataset
folder when it is writable, else in the cache.  Small enough to be decoded once into uint8 arrays and
kept on the device (``resident_ok``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adagrow.data.registry import DATASETS, Augment, DatasetSpec
from adagrow.data.sources import HubSource

ROOT = "tiny-imagenet-200"
FILES = (f"{ROOT}/wnids.txt", f"{ROOT}/train/", f"{ROOT}/val/images/", f"{ROOT}/val/val_annotations.txt")


def read(spec: DatasetSpec, data_dir: Path, cache_dir: Path) -> tuple[Any, Any]:
    from adagrow.data.folders import ClassFolder, reorganise_by_class
    from adagrow.data.staging import is_writable

    root = data_dir / ROOT
    train = ClassFolder(spec, root / "train")
    annotations = root / "val" / "val_annotations.txt"
    listing = []
    with open(annotations) as f:
        for line_no, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                raise spec.corrupt(annotations, f"line {line_no} has no label")
            listing.append((root / "val" / "images" / fields[0], fields[1]))
    parent = root if is_writable(root) else cache_dir / spec.name
    val_root = reorganise_by_class(spec, listing, parent / "val_by_class")
    return train, ClassFolder(spec, val_root, classes=train.classes)


def write(splits: Any, staging: Path) -> None:
    import datasets
    from tqdm.auto import tqdm

    from adagrow.data.folders import write_image

    root = staging / ROOT
    wnids = splits["train"].features["label"].names
    root.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    train = splits["train"].cast_column("image", datasets.Image(decode=False))
    for i, row in enumerate(tqdm(train, desc="tinyimagenet train", unit="img")):
        wnid = wnids[row["label"]]
        write_image(row["image"], root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG")
    val = splits["test"].cast_column("image", datasets.Image(decode=False))
    lines = []
    for i, row in enumerate(tqdm(val, desc="tinyimagenet val", unit="img")):
        write_image(row["image"], root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[row['label']]}\n")  # the hub copy has no boxes: two columns
    (root / "val" / "val_annotations.txt").write_text("".join(lines))


DATASETS.register("tinyimagenet", DatasetSpec(
    name="tinyimagenet", kind="vision", input_size=(3, 64, 64), num_classes=200,
    train_size=100_000, test_size=10_000,  # the labelled val split serves as test
    files=FILES,
    howto="Download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into the data dir.",
    mean=(0.4802, 0.4481, 0.3975), std=(0.2302, 0.2265, 0.2262), resident_ok=True,
    augment=Augment(crop_pad=4, flip=True, size=64),
    source=HubSource("zh-plus/tiny-imagenet", revision="7d7dcc553c5102021e2ef6b4666f3462bd803626",
                     data_files={"train": "data/train-*.parquet", "test": "data/valid-*.parquet"}, write=write),
    read=read,
))
