"""Text datasets: WordPiece tokenizer (round trip, cache), SST-2 / IMDB readers, loaders, real row counts."""

import io
import tarfile

import pytest
import torch

from adagrow.data.sets.imdb import read_imdb
from adagrow.data.sets.sst2 import read_sst2
from adagrow.data.text import load_text
from adagrow.data.tokenizer import encode, load_or_train
from adagrow.errors import DatasetError

POSITIVE = ["a great and moving film", "wonderful acting , truly great", "I loved it , great fun"]
NEGATIVE = ['a dull "boring mess', "terrible plot and awful acting", "I hated it , boring"]


def write_sst2(folder, n=40):
    folder.mkdir(parents=True)
    for name, rows in (("train.tsv", n), ("dev.tsv", n // 4)):
        lines = ["sentence\tlabel"]
        for i in range(rows):
            text = (POSITIVE if i % 2 else NEGATIVE)[i % 3]
            lines.append(f"{text} {i}\t{i % 2}")
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def imdb_members(n=6):
    for split in ("train", "test"):
        for polarity, texts in (("pos", POSITIVE), ("neg", NEGATIVE)):
            for i in range(n):
                yield f"aclImdb/{split}/{polarity}/{i}_{7 if polarity == 'pos' else 2}.txt", \
                    f"{texts[i % 3]}<br /><br />review {i}"
    yield "aclImdb/train/unsup/0_0.txt", "unlabelled"


def test_tokenizer_round_trip_and_cache(tmp_path):
    path = tmp_path / "tok.json"
    tok, digest = load_or_train(path, lambda: POSITIVE + NEGATIVE, vocab_size=200)
    ids = encode(tok, ["Great acting<br />boring plot"], max_len=12)[0]
    assert ids[0] == 2 and 3 in ids.tolist() and ids[-1] == 0  # [CLS] … [SEP] then padding
    assert tok.decode(ids.tolist()) == "great acting boring plot"

    def must_not_retrain():
        raise AssertionError("the cached tokenizer should have been reused")

    mtime = path.stat().st_mtime_ns
    again, digest2 = load_or_train(path, must_not_retrain, vocab_size=200)
    assert digest2 == digest and path.stat().st_mtime_ns == mtime
    assert encode(again, ["great acting"], 8).tolist() == encode(tok, ["great acting"], 8).tolist()


def test_encode_truncates_to_max_len(tmp_path):
    tok, _ = load_or_train(tmp_path / "t.json", lambda: POSITIVE, vocab_size=100)
    ids = encode(tok, ["great " * 50], max_len=8)
    assert ids.shape == (1, 8) and ids[0, -1] == 3  # truncated, still ends with [SEP]


def test_sst2_reads_stray_quotes_and_builds_loaders(tmp_path):
    data = tmp_path / "data"
    write_sst2(data / "sst2")
    raw = read_sst2(data)
    assert raw.train_texts[0].startswith('a dull "boring mess')  # quoting off: the quote is text
    bundle = load_text("sst2", data, batch_size=8, device="cpu", seed=1, val_size=0.25, check_rows=False,
                       vocab_size=120, max_len=16, cache_dir=tmp_path / "cache")
    meta = bundle.meta
    assert (meta["train_size"], meta["val_size"], meta["test_size"]) == (30, 10, 10)
    assert bundle.input_size == (16,) and bundle.num_classes == 2 and meta["max_len"] == 16
    assert meta["vocab_size"] <= 120 and len(meta["tokenizer_hash"]) == 64 and len(meta["data_hash"]) == 64
    x, y = next(iter(bundle.train))
    assert x.dtype == torch.int64 and y.dtype == torch.int64 and x.shape[0] == 8 and x.shape[1] <= 16
    assert torch.all(x[:, 0] == 2)
    assert len(bundle.train) == 4 and sum(len(b[1]) for b in bundle.train) == 30


def test_shuffling_depends_on_seed_and_epoch_only(tmp_path):
    data = tmp_path / "data"
    write_sst2(data / "sst2", n=200)
    kwargs = dict(batch_size=16, device="cpu", seed=0, check_rows=False, vocab_size=120, cache_dir=tmp_path / "c")

    def labels_of_epoch(bundle, epoch):
        bundle.train.set_epoch(epoch)
        return torch.cat([torch.cat([x[:, 1], y]) for x, y in bundle.train])

    a, b = load_text("sst2", data, **kwargs), load_text("sst2", data, **kwargs)
    assert torch.equal(labels_of_epoch(a, 3), labels_of_epoch(b, 3))
    assert not torch.equal(labels_of_epoch(a, 3), labels_of_epoch(a, 4))
    val = torch.cat([y for _, y in a.val])
    assert torch.equal(val, torch.cat([y for _, y in a.val]))  # evaluation order is fixed


def test_subsets_are_seeded_and_mixed(tmp_path):
    data = tmp_path / "data"
    write_sst2(data / "sst2", n=200)
    bundle = load_text("sst2", data, batch_size=64, device="cpu", seed=0, check_rows=False, vocab_size=120,
                       train_subset=100, test_subset=20, val_size=10, cache_dir=tmp_path / "c")
    assert (bundle.meta["train_size"], bundle.meta["val_size"], bundle.meta["test_size"]) == (90, 10, 20)
    test_labels = torch.cat([y for _, y in bundle.test])
    assert 0 < test_labels.sum() < 20


@pytest.mark.parametrize("packed", [False, True])
def test_imdb_from_tree_or_tarball(tmp_path, packed):
    data = tmp_path / "data"
    if packed:
        (data / "imdb").mkdir(parents=True)
        with tarfile.open(data / "imdb" / "aclImdb_repacked.tar.gz", "w:gz") as tar:
            for name, text in imdb_members():
                blob = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        for name, text in imdb_members():
            (data / name).parent.mkdir(parents=True, exist_ok=True)
            (data / name).write_text(text)
    raw = read_imdb(data, tmp_path / "cache")
    assert len(raw.train_labels) == len(raw.test_labels) == 12  # unsup skipped
    assert sum(raw.train_labels) == 6
    assert "unlabelled" not in raw.train_texts
    bundle = load_text("imdb", data, batch_size=8, device="cpu", seed=0, check_rows=False, vocab_size=120,
                       max_len=32, cache_dir=tmp_path / "cache")
    assert bundle.meta["test_split"] == "test" and bundle.meta["test_size"] == 12


def test_missing_files_raise_dataset_error_naming_them(tmp_path):
    with pytest.raises(DatasetError, match="train.tsv and dev.tsv"):
        load_text("sst2", tmp_path, batch_size=8, device="cpu", seed=0, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="aclImdb"):
        load_text("imdb", tmp_path, batch_size=8, device="cpu", seed=0, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="unknown text dataset"):
        load_text("yelp", tmp_path, batch_size=8, device="cpu", seed=0)


def test_row_count_check_rejects_partial_files(tmp_path):
    write_sst2(tmp_path / "sst2")
    with pytest.raises(DatasetError, match="67349"):
        load_text("sst2", tmp_path, batch_size=8, device="cpu", seed=0, cache_dir=tmp_path / "c")


# ------------------------------------------------------------------------------------- real files


def test_real_sst2_row_counts(shared_data):
    raw = read_sst2(shared_data)
    assert (len(raw.train_labels), len(raw.test_labels)) == (67_349, 872)
    assert sum(raw.train_labels) == 37_569 and sum(raw.test_labels) == 444


@pytest.fixture(scope="session")
def real_imdb(shared_data, tmp_path_factory):
    # one streaming pass over the 56 MB tarball: ~5 s on an idle 2-core machine
    return read_imdb(shared_data, tmp_path_factory.mktemp("imdb-cache"))


def test_real_imdb_row_counts(real_imdb):
    raw = real_imdb
    assert (len(raw.train_labels), len(raw.test_labels)) == (25_000, 25_000)
    assert sum(raw.train_labels) == sum(raw.test_labels) == 12_500
    assert raw.train_texts[raw.train_labels.index(1)]  # non-empty text


def test_pretrained_tokenizer_is_cached_and_in_the_run_identity(tmp_path, monkeypatch):
    """--tokenizer NAME: fetched once through tokenizers' hub loader (here replaced by a local BERT-style
    tokenizer, offline), reused from the cache, named in the bundle and in the run's identity."""
    from tokenizers import Tokenizer

    from adagrow.config import RunConfig
    from adagrow.data.tokenizer import train_wordpiece

    fetched = []

    def from_pretrained(name, revision="main"):
        fetched.append((name, revision))
        return train_wordpiece(POSITIVE + NEGATIVE, vocab_size=120)

    monkeypatch.setattr(Tokenizer, "from_pretrained", staticmethod(from_pretrained))
    write_sst2(tmp_path / "data" / "sst2")
    kw = dict(batch_size=8, device="cpu", seed=0, check_rows=False, cache_dir=tmp_path / "cache")
    bundle = load_text("sst2", tmp_path / "data", tokenizer="org/bert-tiny@abc123", **kw)
    again = load_text("sst2", tmp_path / "data", tokenizer="org/bert-tiny@abc123", **kw)
    assert fetched == [("org/bert-tiny", "abc123")]  # the second load reads the cached JSON
    assert bundle.meta["tokenizer"] == "org/bert-tiny@abc123" and again.meta["tokenizer_hash"] == bundle.meta["tokenizer_hash"]
    default = load_text("sst2", tmp_path / "data", **kw)
    assert default.meta["tokenizer"] == "wordpiece"

    base = RunConfig(dataset="sst2", method="fixed", model="bert_small")
    assert "tokenizer" not in base.identity()  # the default keeps the identities of earlier runs
    named = RunConfig(dataset="sst2", method="fixed", model="bert_small", tokenizer="org/bert-tiny@abc123")
    assert named.identity()["tokenizer"] == "org/bert-tiny@abc123" and named.run_name != base.run_name


def test_pretrained_tokenizer_offline_is_one_clear_error(tmp_path, monkeypatch):
    from tokenizers import Tokenizer

    def offline(name, revision="main"):
        raise OSError("no network")

    monkeypatch.setattr(Tokenizer, "from_pretrained", staticmethod(offline))
    write_sst2(tmp_path / "data" / "sst2")
    with pytest.raises(DatasetError, match="could not fetch it from the Hugging Face hub .*no network"):
        load_text("sst2", tmp_path / "data", batch_size=8, device="cpu", seed=0, check_rows=False,
                  cache_dir=tmp_path / "cache", tokenizer="bert-base-uncased")
