"""SST-2: GLUE's ``train.tsv`` (67,349 rows) and ``dev.tsv`` (872 rows; dev is the test split: GLUE's test has
no labels); downloaded from the Hugging Face hub copy ``stanfordnlp/sst2`` (GLUE's split: train / validation
/ unlabelled test; features ``idx``, ``sentence``, ``label``) and written back as the two TSVs.

The files contain stray quote characters, so they are read with quoting off.  Their md5s are torchtext's
(as quoted in shared/data/README.md).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

from adagrow.data.registry import DATASETS, Checksums, DatasetSpec
from adagrow.data.sources import HubSource
from adagrow.errors import DatasetError

FILES = ("sst2/train.tsv", "sst2/dev.tsv")
GLUE_FILES = ("SST-2/train.tsv", "SST-2/dev.tsv")
MD5 = {"train.tsv": "da409a0a939379ed32a470bc0f7fe99a", "dev.tsv": "268856b487b2a31a28c0a93daaff7288"}


def checksums(layout: tuple[str, ...]) -> Checksums:
    return Checksums({rel: MD5[rel.rsplit("/", 1)[1]] for rel in layout})  # the same files in either folder


def _read_tsv(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != ["sentence", "label"]:
            raise DatasetError(f"{path}: expected the GLUE header 'sentence<TAB>label', found {header!r}")
        for row in reader:
            texts.append(row[0])
            labels.append(int(row[1]))
    return texts, labels


def read_sst2(data_dir: Path):
    """SST-2 from ``<data_dir>/sst2/`` (or ``SST-2/``): train.tsv and dev.tsv."""
    from adagrow.data.text import RawText
    from adagrow.data.tokenizer import sha256_file

    spec = DATASETS.get("sst2")
    layout = spec.present_layout(data_dir)
    if layout is None:
        raise spec.missing(data_dir)
    train, dev = (data_dir / rel for rel in layout)
    data_hash = hashlib.sha256((sha256_file(train) + sha256_file(dev)).encode()).hexdigest()
    return RawText(*_read_tsv(train), *_read_tsv(dev), data_hash=data_hash, test_split="dev")


def write(splits: Any, staging: Path) -> None:
    for split, rel in (("train", FILES[0]), ("test", FILES[1])):
        lines = ["sentence\tlabel"] + [f"{row['sentence']}\t{row['label']}" for row in splits[split]]
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text("\n".join(lines) + "\n", encoding="utf-8")


DATASETS.register("sst2", DatasetSpec(
    name="sst2", kind="text",
    input_size=(64,),  # the text loader owns max_len; bundle.input_size is authoritative
    num_classes=2, train_size=67_349, test_size=872,  # GLUE dev serves as test
    files=FILES, alternatives=(GLUE_FILES,),
    howto="Download https://dl.fbaipublicfiles.com/glue/data/SST-2.zip and unzip it into the data "
          "dir (it makes SST-2/), or put its train.tsv and dev.tsv in <data>/sst2/.",
    # Its longest sentence is 52 words; 64 WordPiece tokens hold more than 99.9% of them whole.
    vocab_size=8192,
    source=HubSource("stanfordnlp/sst2", revision="8d51e7e4887a4caaa95b3fbebbf53c0490b58bbb",
                     data_files={"train": "data/train-*.parquet", "test": "data/validation-*.parquet"}, write=write),
    read=lambda spec, data_dir, cache_dir: read_sst2(data_dir), checksums=checksums,
))
