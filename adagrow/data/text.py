"""The text datasets IMDB and SST-2: local files -> WordPiece ids -> tensors resident on the device.

Sources (nothing is downloaded):

* SST-2: the GLUE files ``sst2/train.tsv`` (67,349 rows) and ``sst2/dev.tsv`` (872 rows), or the same in
  ``SST-2/`` as the GLUE zip unpacks; header ``sentence\\tlabel``.  They contain stray quote characters,
  so they are read with quoting off.  GLUE's test split has no labels: dev serves as the test split.
* IMDB: the ``aclImdb`` tree (``{train,test}/{pos,neg}/*.txt``, 25,000 + 25,000 reviews), or a tarball
  of it (``imdb/aclImdb_repacked.tar.gz`` or the official ``aclImdb_v1.tar.gz``).  A tarball is read
  once, in one streaming pass over the labelled members, into a single JSON file in the cache dir: that
  is much faster than writing and re-reading 100,008 small files (the unlabelled ``train/unsup``
  reviews are skipped).

The accepted layouts are the registry's (``DATASETS.get(name).layouts``), so the "not found" message
lists exactly what is read.

The files are read with the standard library rather than the ``datasets`` library: they are two small
TSVs and one tarball, and ``datasets`` would add seconds of import time plus an Arrow cache of its own.

Everything derived is cached under ``$ADAGROW_CACHE`` (default ``~/.cache/adagrow``), in a folder
keyed by the data's hash: the trained tokenizer (``wordpiece-v<vocab>.json``) and the encoded id
tensors (keyed further by the tokenizer's hash and ``max_len``).  An epoch is then pure tensor
indexing.  Default sequence lengths: SST-2 64 (its longest sentence is 52 words; 64 WordPiece
tokens hold more than 99.9% of them whole), IMDB 256 (the median review is ~230 words; 256 keeps the
opening of every review, where most of the sentiment is stated, and matches the ~256 tokens implied by
the thesis' BERT MACs in Table 3-28, while attention cost grows with the square of the length).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from adagrow.data.bundle import DataBundle
from adagrow.data.registry import DATASETS, DatasetSpec, resolve_cache_dir
from adagrow.data.tokenizer import PAD_ID, atomic_write_bytes, encode, load_or_train, sha256_file
from adagrow.errors import DatasetError

# Published sizes (torchtext NUM_LINES / the IMDB README); a mismatch means a wrong or partial file.
EXPECTED_ROWS = {"sst2": (67_349, 872), "imdb": (25_000, 25_000)}


@dataclass(frozen=True)
class TextDefaults:
    max_len: int
    vocab_size: int


DEFAULTS = {"sst2": TextDefaults(max_len=64, vocab_size=8192), "imdb": TextDefaults(max_len=256, vocab_size=16384)}
TEXT_DATASETS = tuple(DEFAULTS)


@dataclass(frozen=True)
class RawText:
    """The labelled text of one dataset, as read from its files."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    data_hash: str  # identifies the source files; keys every cache entry


def _present(name: str, data_dir: Path) -> tuple[DatasetSpec, list[Path]]:
    """The dataset's spec and the paths of its first layout present under ``data_dir`` (else the
    registry's "not found" error, which lists every layout)."""
    spec = DATASETS.get(name)
    layout = spec.present_layout(data_dir)
    if layout is None:
        raise spec.missing(data_dir)
    return spec, [data_dir / rel for rel in layout]


# ---------------------------------------------------------------------------------------------- SST-2


def _read_sst2_tsv(path: Path) -> tuple[list[str], list[int]]:
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


def read_sst2(data_dir: Path) -> RawText:
    """SST-2 from ``<data_dir>/sst2/`` (or ``SST-2/``): train.tsv and dev.tsv."""
    _, (train, dev) = _present("sst2", data_dir)
    data_hash = hashlib.sha256((sha256_file(train) + sha256_file(dev)).encode()).hexdigest()
    return RawText(*_read_sst2_tsv(train), *_read_sst2_tsv(dev), data_hash=data_hash)


# ----------------------------------------------------------------------------------------------- IMDB

_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/\d+_\d+\.txt$")


def _imdb_from_tree(root: Path) -> tuple[dict, str]:
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


def _imdb_from_tarball(tarball: Path, cache: Path, spec: DatasetSpec) -> tuple[dict, str]:
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


def read_imdb(data_dir: Path, cache: Path) -> RawText:
    """IMDB from a tarball or an ``aclImdb`` tree under ``data_dir`` (the registry's layouts)."""
    spec, paths = _present("imdb", data_dir)
    if paths[0].is_dir():  # aclImdb/train/, aclImdb/test/
        splits, data_hash = _imdb_from_tree(paths[0].parent)
    else:
        splits, data_hash = _imdb_from_tarball(paths[0], cache, spec)
    return RawText(*splits["train"], *splits["test"], data_hash=data_hash)


# -------------------------------------------------------------------------------------------- loaders


class TensorLoader:
    """Batches of (ids [B, L] int64, labels [B] int64) from tensors resident on the device.

    Shuffling draws a permutation from ``(seed, epoch)`` alone (see ``BatchLoader``).  With
    ``trim=True`` each batch is cut to its longest sequence: padding is masked anyway, so results are
    unchanged and short-text datasets (SST-2 averages ~13 tokens of 64) run several times faster.
    """

    def __init__(self, ids: torch.Tensor, labels: torch.Tensor, batch_size: int, *, shuffle: bool,
                 seed: int, device: torch.device | str, trim: bool = True):
        self.lengths = (ids != PAD_ID).sum(1)  # on the CPU: batch lengths never force a device sync
        self.ids = ids.to(device=device, dtype=torch.int64)
        self.labels = labels.to(device=device, dtype=torch.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.trim = trim
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        else:
            order = torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.ids[idx.to(self.ids.device)]
            if self.trim:
                x = x[:, : int(self.lengths[idx].max())]
            yield x, self.labels[idx.to(self.labels.device)]


# ------------------------------------------------------------------------------------------ load_text


def _encoded(raw: RawText, folder: Path, vocab_size: int, max_len: int) -> tuple[dict, str]:
    """Train/load the tokenizer and the encoded id tensors, both cached in ``folder``."""
    tokenizer, tok_hash = load_or_train(folder / f"wordpiece-v{vocab_size}.json", lambda: raw.train_texts, vocab_size)
    path = folder / f"encoded-{tok_hash[:16]}-L{max_len}.pt"
    if path.exists():
        return torch.load(path, weights_only=True), tok_hash  # tensors only: never unpickle code
    tensors = {
        "train_ids": encode(tokenizer, raw.train_texts, max_len),
        "train_labels": torch.tensor(raw.train_labels, dtype=torch.int64),
        "test_ids": encode(tokenizer, raw.test_texts, max_len),
        "test_labels": torch.tensor(raw.test_labels, dtype=torch.int64),
        "vocab_size": tokenizer.get_vocab_size(),
    }
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(tensors, tmp)
    os.replace(tmp, path)
    return tensors, tok_hash


def _check_rows(name: str, raw: RawText) -> None:
    expected = EXPECTED_ROWS[name]
    found = (len(raw.train_labels), len(raw.test_labels))
    if found != expected:
        raise DatasetError(f"{name}: found {found[0]} train / {found[1]} test rows, expected "
                           f"{expected[0]} / {expected[1]}: the files are incomplete or not the published ones")


def _seeded_subset(n: int, k: int | None, seed: int) -> torch.Tensor:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order if k is None else order[: min(k, n)]


def load_text(
    name: str,
    data_dir: str | Path,
    *,
    batch_size: int,
    device: torch.device | str,
    seed: int,
    val_size: float | int = 0.1,
    train_subset: int | None = None,
    test_subset: int | None = None,
    download: bool = False,
    vocab_size: int | None = None,
    max_len: int | None = None,
    cache_dir: str | Path | None = None,
    check_rows: bool = True,
    **_,
) -> DataBundle:
    """IMDB or SST-2 as a :class:`DataBundle` of id tensors on ``device``.

    The validation split is held out of the training file (``val_size``: below 1 a fraction of the
    training examples used, else a count), chosen by ``seed``; ``train_subset`` / ``test_subset`` keep seeded
    random subsets (IMDB's files are sorted by label, so a prefix would be one class).  The tokenizer
    is trained on the whole training file, so it does not depend on the seed or the split.
    ``download`` is accepted for interface compatibility; the files must already be present.
    """
    if name not in DEFAULTS:
        raise DatasetError(f"unknown text dataset {name!r}; known: {', '.join(TEXT_DATASETS)}")
    vocab_size = vocab_size or DEFAULTS[name].vocab_size
    max_len = max_len or DEFAULTS[name].max_len
    cache = resolve_cache_dir(cache_dir) / "text"
    raw = read_sst2(Path(data_dir)) if name == "sst2" else read_imdb(Path(data_dir), cache)
    if check_rows:
        _check_rows(name, raw)
    t, tok_hash = _encoded(raw, cache / f"{name}-{raw.data_hash[:16]}", vocab_size, max_len)

    order = _seeded_subset(len(t["train_labels"]), None, seed)
    n_used = min(train_subset, len(order)) if train_subset else len(order)
    n_val = int(round(val_size * n_used)) if val_size < 1 else int(val_size)
    if not 0 < n_val < len(order):
        raise DatasetError(f"val_size={val_size} leaves no validation or no training examples")
    val_idx, train_idx = order[:n_val], order[n_val:][: n_used - n_val if train_subset else None]
    test_idx = _seeded_subset(len(t["test_labels"]), test_subset, seed + 1) if test_subset else None

    def loader(ids: torch.Tensor, labels: torch.Tensor, shuffle: bool) -> TensorLoader:
        return TensorLoader(ids, labels, batch_size, shuffle=shuffle, seed=seed, device=device)

    test_ids, test_labels = t["test_ids"], t["test_labels"]
    if test_idx is not None:
        test_ids, test_labels = test_ids[test_idx], test_labels[test_idx]
    train = loader(t["train_ids"][train_idx], t["train_labels"][train_idx], True)
    val = loader(t["train_ids"][val_idx], t["train_labels"][val_idx], False)
    test = loader(test_ids, test_labels, False)
    filled = float((t["train_ids"][:, -1] != PAD_ID).float().mean())
    meta = {
        "vocab_size": int(t["vocab_size"]),
        "vocab_size_requested": vocab_size,
        "max_len": max_len,
        "tokenizer": "wordpiece",
        "tokenizer_hash": tok_hash,
        "data_hash": raw.data_hash,
        "train_size": len(train.labels),
        "val_size": len(val.labels),
        "test_size": len(test.labels),
        "test_split": "dev" if name == "sst2" else "test",
        "truncated_fraction": round(filled, 4),  # training texts that fill max_len (i.e. were cut)
        "resident": True,
    }
    return DataBundle(name=name, train=train, val=val, test=test, input_size=(max_len,), num_classes=2, meta=meta)
