"""Mini-ImageNet: Vinyals et al.'s 100 ImageNet classes x 600 images with Ravi & Larochelle's split CSVs;
downloaded from the Hugging Face hub copy ``GATE-engine/mini_imagenet`` (the same 60,000 images in the same
class-disjoint 64 / 16 / 20 splits: 38,400 / 9,600 / 12,000), written back as ``images/`` plus the CSVs.

Those splits have disjoint classes (for few-shot learning), so they cannot serve a 100-way classifier as
they are.  Our reading of the thesis' "100 classes, 48,000 train / 12,000 validation": pool the 60,000
images of the three splits (600 per class) and hold out 120 per class (every fifth image in filename
order) as the test split, leaving 480 per class for training.  The split is fixed (it does not depend on
the run's seed), so every run is scored on the same images.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from adagrow.data.registry import DATASETS, Augment, DatasetSpec
from adagrow.data.sources import HubSource

ROOT = "mini-imagenet"
TEST_EVERY = 5  # every 5th image of a class (600 -> 480 train / 120 test)
SPLITS = ("train", "val", "test")


def read(spec: DatasetSpec, data_dir: Path, cache_dir: Path) -> tuple[Any, Any]:
    from adagrow.data.folders import FileList

    root = data_dir / ROOT
    by_class: dict[str, list[str]] = {}
    for split in SPLITS:
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
            (test if i % TEST_EVERY == TEST_EVERY - 1 else train).append((str(path), label))
    return FileList(spec, train, classes), FileList(spec, test, classes)


def write(splits: Any, staging: Path) -> None:
    import datasets
    from tqdm.auto import tqdm

    from adagrow.data.folders import write_image

    root = staging / ROOT
    for hub_split, ours in zip(("train", "validation", "test"), SPLITS):
        rows = splits[hub_split]
        label = rows.features["label"]
        # Class names: the hub's ClassLabel names where it has them; else its integer labels, which
        # name a class only within a split (the splits' classes are disjoint), hence the prefix.
        name = (label.names.__getitem__ if isinstance(label, datasets.ClassLabel)
                else lambda k, s=ours: f"{s}{int(k):03d}")
        rows = rows.cast_column("image", datasets.Image(decode=False))
        lines = ["filename,label"]
        for i, row in enumerate(tqdm(rows, desc=f"miniimagenet {ours}", unit="img")):
            cls = name(row["label"])
            filename = f"{cls}_{ours}{i:05d}.jpg"
            write_image(row["image"], root / "images" / filename)
            lines.append(f"{filename},{cls}")
        (root / f"{ours}.csv").write_text("\n".join(lines) + "\n")


DATASETS.register("miniimagenet", DatasetSpec(
    name="miniimagenet", kind="vision", input_size=(3, 224, 224), num_classes=100,
    # The thesis' 48,000 / 12,000: all 60,000 images of the three split CSVs, 480 / 120 per class.
    train_size=48_000, test_size=12_000,
    files=(f"{ROOT}/images/", f"{ROOT}/train.csv", f"{ROOT}/val.csv", f"{ROOT}/test.csv"),
    howto="Get Mini-ImageNet (an images/ folder plus Ravi & Larochelle's train.csv, val.csv "
          "and test.csv with columns filename,label) and put it in <data>/mini-imagenet/.",
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    augment=Augment(flip=True, resized_crop=True, size=224, eval_resize=256),
    source=HubSource("GATE-engine/mini_imagenet", revision="f4fd85af7140e29002fdf9c121e38cc0bb7b3a1a",
                     data_files={"train": "data/train-*.parquet", "validation": "data/validation-*.parquet",
                                 "test": "data/test-*.parquet"}, write=write),
    read=read,
))
