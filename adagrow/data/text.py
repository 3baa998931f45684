"""Text datasets, generically: a dataset's labelled text -> token ids -> tensors resident on the device.

The dataset's own reader (``spec.read``, ``adagrow/data/sets/``) returns a :class:`RawText`; its published
split sizes are checked; the tokenizer is trained on the training split (WordPiece, offline: the default)
or, with ``tokenizer="<hub name>[@revision]"``, a pretrained one is fetched from the Hugging Face hub
(``tokenizer.py``); the texts are encoded once.

Everything derived is cached under ``$ADAGROW_CACHE`` (default ``~/.cache/adagrow``), in a folder keyed
by the data's hash: the trained tokenizer (``wordpiece-v<vocab>.json``) and the encoded id tensors (keyed
further by the tokenizer's hash and ``max_len``).  An epoch is then pure tensor indexing.  The default
sequence length is the spec's ``input_size`` and the default vocabulary its ``vocab_size``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from adagrow.data.bundle import DataBundle
from adagrow.data.registry import DATASETS, DatasetSpec, resolve_cache_dir
from adagrow.data.tokenizer import PAD_ID, encode, load_or_train, load_pretrained
from adagrow.errors import DatasetError


@dataclass(frozen=True)
class RawText:
    """The labelled text of one dataset, as read from its files."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    data_hash: str  # identifies the source files; keys every cache entry
    test_split: str = "test"  # which published split serves as the test split (SST-2: "dev")


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


def _encoded(raw: RawText, folder: Path, vocab_size: int, max_len: int, tokenizer_name: str | None,
             cache: Path) -> tuple[dict, str]:
    """Train/load the tokenizer and the encoded id tensors, both cached in ``folder``."""
    if tokenizer_name:
        tokenizer, tok_hash = load_pretrained(tokenizer_name, cache / "tokenizers")
    else:
        tokenizer, tok_hash = load_or_train(folder / f"wordpiece-v{vocab_size}.json", lambda: raw.train_texts,
                                            vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
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


def _check_rows(spec: DatasetSpec, raw: RawText) -> None:
    name, expected = spec.name, (spec.train_size, spec.test_size)
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
    tokenizer: str | None = None,
    **_,
) -> DataBundle:
    """A text dataset (IMDB, SST-2) as a :class:`DataBundle` of id tensors on ``device``.

    The validation split is held out of the training file (``val_size``: below 1 a fraction of the
    training examples used, else a count), chosen by ``seed``; ``train_subset`` / ``test_subset`` keep seeded
    random subsets (IMDB's files are sorted by label, so a prefix would be one class).  The tokenizer
    is trained on the whole training file, so it does not depend on the seed or the split.
    ``download`` fetches the files first when they are missing.  ``tokenizer``: None for the WordPiece
    trained here on the training split, else a pretrained tokenizer's hub name (``bert-base-uncased``,
    optionally ``@revision``), fetched once (needs a connection) and cached.
    """
    spec = DATASETS.get(name) if name in DATASETS else None
    if spec is None or spec.kind != "text":
        texts = [n for n in DATASETS if DATASETS.get(n).kind == "text"]
        raise DatasetError(f"unknown text dataset {name!r}; known: {', '.join(texts)}")
    vocab_size = vocab_size or spec.vocab_size
    max_len = max_len or spec.input_size[0]
    data_dir = Path(data_dir)
    root = resolve_cache_dir(cache_dir)
    cache = root / "text"
    if spec.present_layout(data_dir) is None:
        if not download:
            raise spec.missing(data_dir)
        from adagrow.data.download import download as fetch

        fetch(spec, data_dir, root)
    raw = spec.read(spec, data_dir, cache)
    if check_rows:
        _check_rows(spec, raw)
    t, tok_hash = _encoded(raw, cache / f"{name}-{raw.data_hash[:16]}", vocab_size, max_len, tokenizer, root)

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
        "tokenizer": tokenizer or "wordpiece",
        "tokenizer_hash": tok_hash,
        "data_hash": raw.data_hash,
        "train_size": len(train.labels),
        "val_size": len(val.labels),
        "test_size": len(test.labels),
        "test_split": raw.test_split,
        "truncated_fraction": round(filled, 4),  # training texts that fill max_len (i.e. were cut)
        "resident": True,
    }
    return DataBundle(name=name, train=train, val=val, test=test, input_size=(max_len,), num_classes=2, meta=meta)
