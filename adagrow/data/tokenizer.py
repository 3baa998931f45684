"""A WordPiece tokenizer trained on a dataset's training text, cached on disk, and batch encoding.

The default needs no download, and a from-scratch BERT needs no pretrained vocabulary: we train a
lower-casing, accent-stripping WordPiece vocabulary (BERT's normaliser and pre-tokeniser) with the
``tokenizers`` library.  HTML line breaks (``<br />``, frequent in IMDB reviews) become spaces.
Every encoding is ``[CLS] tokens… [SEP]``, truncated to ``max_len`` and right-padded with id 0.

The trained tokenizer is saved as JSON under a path keyed by the data's hash and the vocabulary size,
so a second run (or another process) reuses it instead of retraining; its own SHA-256 is recorded
with every result.

Optionally (``load_pretrained``), a pretrained tokenizer is fetched by name from the Hugging Face hub,
once, and cached as JSON the same way; it must pad with id 0, as the models' attention masks assume
(BERT's tokenizers do).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from adagrow.data.validation import file_digest

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, so padding is id 0

PAD_ID = 0


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return file_digest(path, "sha256")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so concurrent readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train_wordpiece(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train a BERT-style WordPiece tokenizer on ``texts`` with at most ``vocab_size`` entries."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"<br\s*/?>"), " "), normalizers.BertNormalizer(lowercase=True)]
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                        show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tok


def load_or_train(path: Path, texts: Callable[[], Iterable[str]], vocab_size: int) -> tuple[Tokenizer, str]:
    """The tokenizer cached at ``path``, trained on ``texts()`` first if absent; returns (tokenizer, sha256).

    ``texts`` is a callable so that the corpus is only materialised when training is needed.
    """
    if not path.exists():
        atomic_write_bytes(path, train_wordpiece(texts(), vocab_size).to_str().encode())
    return Tokenizer.from_file(str(path)), sha256_file(path)


def encode(tokenizer: Tokenizer, texts: Sequence[str], max_len: int) -> torch.Tensor:
    """Token ids ``[N, max_len]`` (int32): ``[CLS] … [SEP]``, truncated, right-padded with 0."""
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=PAD_ID, pad_token=SPECIAL_TOKENS[PAD_ID], length=max_len)
    ids = [e.ids for e in tokenizer.encode_batch(list(texts))]
    return torch.tensor(ids, dtype=torch.int32).reshape(len(ids), max_len)


def load_pretrained(name: str, cache: Path) -> tuple[Tokenizer, str]:
    """The pretrained tokenizer ``name`` (``<hub model id>[@revision]``), cached under ``cache``; (tokenizer, sha256).

    Fetched once with ``tokenizers.Tokenizer.from_pretrained`` (needs a connection); later runs read the
    cached JSON, offline.
    """
    from adagrow.errors import DatasetError

    model, _, revision = name.partition("@")
    path = cache / (model.replace("/", "--") + (f"@{revision}" if revision else "") + ".json")
    if not path.exists():
        try:
            tok = Tokenizer.from_pretrained(model, revision=revision or "main")
        except Exception as e:  # noqa: BLE001 -- offline, unknown name: one line
            raise DatasetError(f"tokenizer {name!r}: could not fetch it from the Hugging Face hub "
                               f"({' '.join(str(e).split())[:200]}); leave --tokenizer out for the offline WordPiece") from e
        atomic_write_bytes(path, tok.to_str().encode())
    tok = Tokenizer.from_file(str(path))
    if tok.token_to_id(SPECIAL_TOKENS[PAD_ID]) != PAD_ID:
        raise DatasetError(f"tokenizer {name!r} does not pad with id 0 ([PAD]), which the models' attention masks "
                           "assume; use a BERT-style tokenizer")
    return tok, sha256_file(path)
