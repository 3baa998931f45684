"""Imagenette: fast.ai's ``imagenette2`` class folders (full size, 320 px or 160 px); downloaded by torchvision
(its ``Imagenette`` class fetches and md5-checks fast.ai's archive; we take the 320 px one, enough for the
256 px resize + 224 px crop)."""

from __future__ import annotations

from adagrow.data.registry import DATASETS, Augment, DatasetSpec
from adagrow.data.sets._fastai import fastai_layouts, read_fastai
from adagrow.data.sources import TorchvisionSource

LAYOUTS = fastai_layouts("imagenette2")

DATASETS.register("imagenette", DatasetSpec(
    name="imagenette", kind="vision", input_size=(3, 224, 224), num_classes=10,
    train_size=9_469, test_size=3_925,
    files=LAYOUTS[0], alternatives=LAYOUTS[1:],
    howto="Imagenette: download https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz (or the -320/-160 "
          "variant) and extract it into the data dir.",
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    augment=Augment(flip=True, resized_crop=True, size=224, eval_resize=256),
    source=TorchvisionSource("Imagenette", ({"split": "train", "size": "320px"},)),
    read=read_fastai,
))
