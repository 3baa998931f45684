"""IMDB (Maas et al.): the ``aclImdb`` tree (``{train,test}/{pos,neg}/<id>_<rating>.txt``, 25,000 + 25,000
reviews) or a tarball of it; downloaded from the Hugging Face hub copy ``stanfordnlp/imdb`` (train / test /
unsupervised; features ``text``, ``label`` neg/pos), written back as ``imdb/aclImdb_repacked.tar.gz``.

A tarball is read once, in one streaming pass over the labelled members, into a single JSON file in the
cache dir: much faster than writing and re-reading 100,008 small files (the unlabelled ``train/unsup``
reviews are skipped).  The hub copy has no ratings: its members are named ``<n>_0.txt``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

from adagrow.data.registry import DATASETS, DatasetSpec
from adagrow.data.sources import HubSource

REPACKED = "imdb/aclImdb_repacked.tar.gz"
_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/\d+_\d+\.txt$")


def _from_tree(root: Path) -> tuple[dict, str]:
    files = sorted(p for p in root.glob("*/*/*.txt") if _REVIEW.search(p.relative_to(root).as_posix()))
    # Fingerprint by (path, size): hashing 50,000 files' bytes on every load would defeat the cache.
    listing = "".join(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n" for p in files)
    data_hash = hashlib.sha256(listing.encode()).hexdigest()
    splits: dict = {"train": ([], []), "test": ([], [])}
    for p in files:
        split, polarity = _REVIEW.search(p.relative_to(root).as_posix()).groups()
        splits[split][0].append(p.read_text(encoding="utf-8"))
        splits[split][1].append(int(polarity == "pos"))
    return splits, data_hash


def _from_tarball(tarball: Path, cache: Path, spec: DatasetSpec) -> tuple[dict, str]:
    from adagrow.data.tokenizer import atomic_write_bytes, sha256_file

    data_hash = sha256_file(tarball)
    extracted = cache / f"imdb-{data_hash[:16]}" / "reviews.json"
    if not extracted.exists():
        splits: dict = {"train": ([], []), "test": ([], [])}
        try:
            with tarfile.open(tarball, "r:*") as archive:
                for member in archive:
                    found = _REVIEW.search(member.name) if member.isfile() else None
                    if found:
                        split, polarity = found.groups()
                        splits[split][0].append(archive.extractfile(member).read().decode("utf-8"))
                        splits[split][1].append(int(polarity == "pos"))
        except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as e:
            raise spec.corrupt(tarball, f"not a readable tar archive of aclImdb: {e}") from e
        atomic_write_bytes(extracted, json.dumps(splits).encode())
    return json.loads(extracted.read_text(encoding="utf-8")), data_hash


def read_imdb(data_dir: Path, cache: Path):
    """IMDB from a tarball or an ``aclImdb`` tree under ``data_dir`` (the spec's layouts)."""
    from adagrow.data.text import RawText

    spec = DATASETS.get("imdb")
    layout = spec.present_layout(data_dir)
    if layout is None:
        raise spec.missing(data_dir)
    first = data_dir / layout[0]
    splits, data_hash = _from_tree(first.parent) if first.is_dir() else _from_tarball(first, cache, spec)
    return RawText(*splits["train"], *splits["test"], data_hash=data_hash)


def write(splits: Any, staging: Path) -> None:
    (staging / REPACKED).parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(staging / REPACKED, "w:gz") as tar:
        for split in ("train", "test"):
            names = splits[split].features["label"].names  # ["neg", "pos"]
            for i, row in enumerate(splits[split]):
                blob = row["text"].encode("utf-8")
                info = tarfile.TarInfo(f"aclImdb/{split}/{names[row['label']]}/{i}_0.txt")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))


DATASETS.register("imdb", DatasetSpec(
    name="imdb", kind="text",
    # 256 tokens keep the opening of every review (the median review is ~230 words), where most of the
    # sentiment is stated, and match the ~256 tokens implied by the thesis' BERT MACs (Table 3-28).
    input_size=(256,),  # the text loader owns max_len; bundle.input_size is authoritative
    num_classes=2, train_size=25_000, test_size=25_000,
    # a tarball is read in one streaming pass, the tree file by file
    files=(REPACKED,), alternatives=(("aclImdb/train/", "aclImdb/test/"), ("aclImdb_v1.tar.gz",)),
    howto="Download aclImdb_v1.tar.gz from https://ai.stanford.edu/~amaas/data/sentiment/ into "
          "the data dir (extracting it, into aclImdb/, is optional).",
    vocab_size=16384,
    source=HubSource("stanfordnlp/imdb", revision="c7743a2e86b71e22f1d104c6e67193cd427ad38f",
                     data_files={"train": "plain_text/*train*.parquet", "test": "plain_text/*test*.parquet"},
                     write=write),
    read=lambda spec, data_dir, cache_dir: read_imdb(data_dir, cache_dir),
))
