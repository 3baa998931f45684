"""ImageWoof: fast.ai's ``imagewoof2`` class folders (full size, 320 px or 160 px); downloaded from the
Hugging Face hub copy ``frgfm/imagewoof``.

That repository holds a loading script (which ``datasets`` no longer runs); its ``refs/convert/parquet``
branch holds the same data as parquet, per size (``320px/train``, ``320px/validation``: 9,025 / 3,929, the
imagewoof2 split).  We pin a commit of that branch and write the images back, byte for byte, as fast.ai's
``imagewoof2-320/{train,val}/<wnid>/`` tree.  The hub copy names classes by breed; ImageNet's wnids (fast.ai's
folder names) are restored so that class indices (sorted wnids) are those of fast.ai's own archive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adagrow.data.registry import DATASETS, Augment, DatasetSpec
from adagrow.data.sets._fastai import fastai_layouts, read_fastai
from adagrow.data.sources import HubSource

LAYOUTS = fastai_layouts("imagewoof2")
# The ten breeds of ImageWoof and their ImageNet wnids (fast.ai's imagenette README).
WNID = {
    "Australian terrier": "n02096294", "Border terrier": "n02093754", "Samoyed": "n02111889",
    "Beagle": "n02088364", "Shih-Tzu": "n02086240", "English foxhound": "n02089973",
    "Rhodesian ridgeback": "n02087394", "Dingo": "n02115641", "Golden retriever": "n02099601",
    "Old English sheepdog": "n02105641",
}


def write(splits: Any, staging: Path) -> None:
    import datasets
    from tqdm.auto import tqdm

    from adagrow.data.folders import write_image
    from adagrow.errors import DatasetError

    for split, folder in (("train", "train"), ("test", "val")):
        rows = splits[split]
        names = rows.features["label"].names
        unknown = sorted(set(names) - set(WNID))
        if unknown:
            raise DatasetError(f"imagewoof: the hub copy has classes {unknown} that are not ImageWoof's breeds")
        rows = rows.cast_column("image", datasets.Image(decode=False))
        for i, row in enumerate(tqdm(rows, desc=f"imagewoof {split}", unit="img")):
            write_image(row["image"], staging / "imagewoof2-320" / folder / WNID[names[row["label"]]] / f"{i:05d}.JPEG")


DATASETS.register("imagewoof", DatasetSpec(
    name="imagewoof", kind="vision", input_size=(3, 224, 224), num_classes=10,
    train_size=9_025, test_size=3_929,
    files=LAYOUTS[0], alternatives=LAYOUTS[1:],
    howto="ImageWoof: download https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2.tgz (or the -320/-160 "
          "variant) and extract it into the data dir.",
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    augment=Augment(flip=True, resized_crop=True, size=224, eval_resize=256),
    source=HubSource(
        "frgfm/imagewoof", revision="af6c57baa87510beab1f205fa6bd0d90b5ef2a71",  # on refs/convert/parquet
        data_files={"train": "320px/train/*.parquet", "test": "320px/validation/*.parquet"}, write=write),
    read=read_fastai,
))
