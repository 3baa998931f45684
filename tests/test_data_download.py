"""`--download` for all ten datasets, offline: the real download-and-prepare code on fixtures in each source's
real format (torchvision's archives and files served to torchvision's own downloader; parquet shards with the
hub copies' features, read by ``datasets.load_dataset`` from a local mirror), with the network blocked.

Oracles: the thesis' protocol (SPEC §2 / Table 3-17: class counts, which split is the test split, Mini-ImageNet's
480 / 120 per class), fast.ai's ImageNet wnids for ImageWoof's breeds, and the rows the fixtures were built with.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
from pathlib import Path

os.environ["HF_DATASETS_OFFLINE"] = "1"  # before `datasets` is imported anywhere: it reads these once
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from adagrow.cli import main  # noqa: E402
from adagrow.data import DATASETS, dataset_status, download_dataset, load_dataset, synthetic  # noqa: E402

datasets = pytest.importorskip("datasets")


class NetworkBlocked(OSError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every network connection attempt fails, as on a machine without a network (local Unix sockets,
    which DataLoader workers use, still work)."""
    connect = socket.socket.connect

    def refuse(*args, **kwargs):
        raise NetworkBlocked("network blocked by the test")

    def connect_local_only(sock, address):
        if sock.family == socket.AF_UNIX:
            return connect(sock, address)
        refuse()

    monkeypatch.setattr(socket.socket, "connect", connect_local_only)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def status(data_dir):
    return {row["name"]: row for row in dataset_status(data_dir)}


def load(name, data_dir, cache, **kw):
    kw = {"batch_size": 4, "device": torch.device("cpu"), "seed": 0, "val_size": 0, "num_workers": 0,
          "cache_dir": cache, **kw}
    return load_dataset(name, data_dir, **kw)


def png(label: int, size: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(synthetic.images(np.array([label]), 3, size)[0].transpose(1, 2, 0)).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet(path: Path, columns: dict, features) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))


# ---- hub copies: parquet shards with the features of each copy, at the paths its definition reads ----
def image_rows(labels, size):
    return {"image": [{"bytes": png(k % 12, size), "path": None} for k in labels], "label": list(labels)}


def hub_tiny(mirror: Path, classes: int = 200) -> list[str]:
    wnids = [f"n{1443537 + 7 * k:08d}" for k in range(classes)]  # the copy's ClassLabel names are wnids
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=wnids)})
    repo = mirror / "zh-plus" / "tiny-imagenet" / "data"
    write_parquet(repo / "train-00000-of-00001-1359597a978bc4fa.parquet", image_rows([k for k in range(classes) for _ in range(2)], 64), features)
    write_parquet(repo / "valid-00000-of-00001-70d52db3c749a935.parquet", image_rows(list(range(classes))[::-1], 64), features)
    return wnids


WOOF_BREEDS = ["Australian terrier", "Border terrier", "Samoyed", "Beagle", "Shih-Tzu", "English foxhound",
               "Rhodesian ridgeback", "Dingo", "Golden retriever", "Old English sheepdog"]  # the copy's order
WOOF_WNIDS = {  # fast.ai's imagewoof2 folder names (ImageNet wnids)
    "Shih-Tzu": "n02086240", "Rhodesian ridgeback": "n02087394", "Beagle": "n02088364",
    "English foxhound": "n02089973", "Border terrier": "n02093754", "Australian terrier": "n02096294",
    "Golden retriever": "n02099601", "Old English sheepdog": "n02105641", "Samoyed": "n02111889", "Dingo": "n02115641"}


def hub_woof(mirror: Path) -> None:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=WOOF_BREEDS)})
    repo = mirror / "frgfm" / "imagewoof" / "320px"
    write_parquet(repo / "train" / "0000.parquet", image_rows([k for k in range(10) for _ in range(3)], 40), features)
    write_parquet(repo / "validation" / "0000.parquet", image_rows(list(range(10)), 40), features)


def hub_mini(mirror: Path, per_class: int = 5) -> None:
    """Ravi & Larochelle's class-disjoint 64 / 16 / 20 splits; labels as plain integers per split (the
    harder case: a label names a class only within its split)."""
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    repo = mirror / "GATE-engine" / "mini_imagenet" / "data"
    for split, classes in (("train", 64), ("validation", 16), ("test", 20)):
        write_parquet(repo / f"{split}-00000-of-00001-abc.parquet",
                      image_rows([k for k in range(classes) for _ in range(per_class)], 24), features)


REVIEWS = {0: "a dull boring mess", 1: "a wonderful moving film"}


def hub_imdb(mirror: Path, n: int = 6) -> None:
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    repo = mirror / "stanfordnlp" / "imdb" / "plain_text"
    for split in ("train", "test"):
        labels = [i % 2 for i in range(n)]
        write_parquet(repo / f"imdb-{split}.parquet", {"text": [f"{REVIEWS[k]} {i}" for i, k in enumerate(labels)],
                                                       "label": labels}, features)
    write_parquet(repo / "imdb-unsupervised.parquet", {"text": ["unlabelled"] * 3, "label": [-1] * 3}, features)


def hub_sst2(mirror: Path) -> None:
    features = datasets.Features({"idx": datasets.Value("int32"), "sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    repo = mirror / "stanfordnlp" / "sst2" / "data"
    for split, n, label in (("train", 8, None), ("validation", 4, None), ("test", 3, -1)):
        labels = [label if label is not None else i % 2 for i in range(n)]
        write_parquet(repo / f"{split}-00000-of-00001.parquet",
                      {"idx": list(range(n)), "sentence": [f'a "quoted {REVIEWS[max(k, 0)]} {i} ' for i, k in enumerate(labels)],
                       "label": labels}, features)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    monkeypatch.setenv("ADAGROW_HUB_MIRROR", str(root))
    return root


def test_tinyimagenet_from_the_hub_copy(tmp_path, mirror):
    wnids = hub_tiny(mirror)
    data, cache = tmp_path / "data", tmp_path / "cache"
    assert "downloaded from the Hugging Face hub (zh-plus/tiny-imagenet" in download_dataset("tinyimagenet", data)
    assert status(data)["tinyimagenet"]["status"] == "verified"
    bundle = load("tinyimagenet", data, cache)
    assert bundle.num_classes == 200 and bundle.input_size == (3, 64, 64) and bundle.meta["resident"]
    assert (bundle.meta["train_size"], bundle.meta["test_size"]) == (400, 200)
    # val (the test split) is reorganised into one folder per class, labelled like train (sorted wnids)
    val_tree = data / "tiny-imagenet-200" / "val_by_class"
    assert sorted(p.name for p in val_tree.iterdir()) == sorted(wnids)
    # the fixture's val row j is class 199 - j: label mapping kept through the hub copy's ClassLabel
    sorted_index = {w: i for i, w in enumerate(sorted(wnids))}
    expected = sorted(sorted_index[wnids[199 - j]] for j in range(200))
    assert sorted(bundle.test.labels.tolist()) == expected
    assert torch.equal(bundle.test.labels.bincount(), torch.ones(200, dtype=torch.int64))


def test_imagewoof_from_the_hub_copy_keeps_fastai_class_indices(tmp_path, mirror):
    hub_woof(mirror)
    data, cache = tmp_path / "data", tmp_path / "cache"
    download_dataset("imagewoof", data)
    assert status(data)["imagewoof"]["status"] == "verified"
    assert sorted(p.name for p in (data / "imagewoof2-320" / "train").iterdir()) == sorted(WOOF_WNIDS.values())
    bundle = load("imagewoof", data, cache)
    assert (bundle.meta["train_size"], bundle.meta["test_size"], bundle.num_classes) == (30, 10, 10)
    # each test image's class index is its breed's wnid's rank, as in fast.ai's archive
    rank = {w: i for i, w in enumerate(sorted(WOOF_WNIDS.values()))}
    samples = [(Path(p).parent.name, k) for p, k in bundle.test._loader.dataset.base.samples]
    assert all(rank[w] == k for w, k in samples)
    breed_of = {v: k for k, v in WOOF_WNIDS.items()}
    assert {breed_of[w] for w, _ in samples} == set(WOOF_BREEDS)


def test_miniimagenet_from_the_hub_copy_is_100_classes_480_120(tmp_path, mirror):
    hub_mini(mirror, per_class=5)
    data, cache = tmp_path / "data", tmp_path / "cache"
    download_dataset("miniimagenet", data)
    bundle = load("miniimagenet", data, cache)
    assert bundle.num_classes == 100
    # 600 per class -> 480 / 120 in the thesis; here 5 per class -> 4 / 1, the same one-in-five rule
    assert (bundle.meta["train_size"], bundle.meta["test_size"]) == (400, 100)
    spec = DATASETS.get("miniimagenet")
    assert (spec.train_size, spec.test_size) == (100 * 600 * 4 // 5, 100 * 600 // 5)
    test_labels = torch.cat([y for _, y in bundle.test])
    assert torch.equal(test_labels.bincount(), torch.ones(100, dtype=torch.int64))


def test_imdb_from_the_hub_copy(tmp_path, mirror):
    hub_imdb(mirror)
    data, cache = tmp_path / "data", tmp_path / "cache"
    download_dataset("imdb", data)
    assert (data / "imdb" / "aclImdb_repacked.tar.gz").is_file() and status(data)["imdb"]["status"] == "verified"
    from adagrow.data.sets.imdb import read_imdb

    raw = read_imdb(data, cache)
    assert (len(raw.train_labels), len(raw.test_labels)) == (6, 6)  # the unsupervised split is not read
    assert all((label == 1) == text.startswith(REVIEWS[1]) for text, label in zip(raw.train_texts, raw.train_labels))
    bundle = load_dataset("imdb", data, batch_size=4, device="cpu", seed=0, check_rows=False, vocab_size=60,
                          max_len=16, cache_dir=cache)
    assert bundle.num_classes == 2 and bundle.meta["test_split"] == "test"


def test_sst2_from_the_hub_copy_dev_is_the_test_split(tmp_path, mirror):
    hub_sst2(mirror)
    data = tmp_path / "data"
    download_dataset("sst2", data)
    assert status(data)["sst2"]["status"] == "verified"  # against the SHA-256 recorded at download
    from adagrow.data.sets.sst2 import read_sst2

    raw = read_sst2(data)
    assert (len(raw.train_labels), len(raw.test_labels)) == (8, 4)  # validation -> dev -> test; unlabelled test unused
    assert raw.train_texts[1].startswith('a "quoted a wonderful') and raw.train_labels[1] == 1  # stray quote kept
    assert raw.test_split == "dev"


def test_a_damaged_download_is_reported_corrupt(tmp_path, mirror):
    hub_sst2(mirror)
    download_dataset("sst2", tmp_path)
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\nchanged\t1\n")
    row = status(tmp_path)["sst2"]
    assert row["status"] == "corrupt" and "sst2/dev.tsv" in row["detail"]


# ---- torchvision: its own downloader, served from local files in the originals' formats -------------------
@pytest.fixture
def served(tmp_path, monkeypatch):
    """torchvision's downloader fetching from a local folder by file name (its md5 checks stay in force)."""
    from torchvision.datasets import utils

    folder = tmp_path / "served"
    folder.mkdir()

    def urlretrieve(url, filename, chunk_size=None):
        source = folder / url.rsplit("/", 1)[1]
        if not source.is_file():
            raise NetworkBlocked(f"no such file served: {url}")
        shutil.copyfile(source, filename)

    monkeypatch.setattr(utils, "_urlretrieve", urlretrieve)
    monkeypatch.setattr(utils, "_get_redirect_url", lambda url, max_hops=3: url)
    return folder


def test_mnist_cifar_svhn_through_torchvision(tmp_path, served, monkeypatch):
    from torchvision import datasets as tvd

    from adagrow.data.validation import md5_file

    originals = tmp_path / "originals"
    md5s = synthetic.write_mnist(originals, gz=True)
    for f in (originals / "MNIST" / "raw").iterdir():
        shutil.copy(f, served / f.name)
    monkeypatch.setattr(tvd.MNIST, "resources", [(name, md5s[f"MNIST/raw/{name}"]) for name, _ in tvd.MNIST.resources])
    members = synthetic.write_cifar(originals, "cifar10", archive=True)
    shutil.copy(originals / "cifar-10-python.tar.gz", served)
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", md5_file(served / "cifar-10-python.tar.gz"))
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f, members[f"cifar-10-batches-py/{f}"]] for f, _ in tvd.CIFAR10.train_list])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [[f, members[f"cifar-10-batches-py/{f}"]] for f, _ in tvd.CIFAR10.test_list])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": members["cifar-10-batches-py/batches.meta"]})
    svhn = synthetic.write_svhn(originals)
    table = {k: list(v) for k, v in tvd.SVHN.split_list.items()}
    for split in ("train", "test"):
        shutil.copy(originals / "svhn" / f"{split}_32x32.mat", served)
        table[split][2] = svhn[f"svhn/{split}_32x32.mat"]
    monkeypatch.setattr(tvd.SVHN, "split_list", table)

    data, cache = tmp_path / "data", tmp_path / "cache"
    for name, train, test in (("mnist", 60, 20), ("cifar10", 100, 20), ("svhn", 40, 20)):
        assert "downloaded from torchvision" in download_dataset(name, data)
        assert status(data)[name]["status"] == "verified"
        bundle = load(name, data, cache)
        assert (bundle.meta["train_size"], bundle.meta["test_size"], bundle.num_classes) == (train, test, 10)
        assert bundle.meta["resident"] is True
    assert not (data / ".partial").exists()
    assert download_dataset("cifar10", data).startswith("already present")


def test_imagenette_through_torchvision(tmp_path, served, monkeypatch):
    from torchvision.datasets import Imagenette

    from adagrow.data.validation import md5_file

    src = tmp_path / "src" / "imagenette2-320"
    for k, wnid in enumerate(sorted(Imagenette._WNID_TO_CLASS)):  # fast.ai's folders: the real wnids
        for split, n in (("train", 2), ("val", 1)):
            for i in range(n):
                (src / split / wnid).mkdir(parents=True, exist_ok=True)
                (src / split / wnid / f"{wnid}_{i}.JPEG").write_bytes(png(k, 40))
    with tarfile.open(served / "imagenette2-320.tgz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "imagenette2-320", arcname="imagenette2-320")
    archives = {**Imagenette._ARCHIVES,
                "320px": (Imagenette._ARCHIVES["320px"][0], md5_file(served / "imagenette2-320.tgz"))}
    monkeypatch.setattr(Imagenette, "_ARCHIVES", archives)
    data = tmp_path / "data"
    download_dataset("imagenette", data)
    assert status(data)["imagenette"]["status"] == "verified"
    bundle = load("imagenette", data, tmp_path / "cache")
    assert (bundle.meta["train_size"], bundle.meta["test_size"], bundle.num_classes) == (20, 10, 10)


# ---- no network at all: one line per dataset, nothing left that counts as present -------------------------
def test_download_all_offline_is_one_line_each_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ADAGROW_HUB_MIRROR", raising=False)
    data = tmp_path / "data"
    assert main(["datasets", "--download", "all", "--data-dir", str(data)]) == 1
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == len(DATASETS.names())
    for name, line in zip(DATASETS.names(), lines):
        assert line.split()[:2] == [name, "failed"] and "could not download" in line, line
    assert all(row["status"] == "missing" for row in dataset_status(data))
    assert not [p for p in data.rglob("*") if p.is_file()]


def test_listing_names_every_source(tmp_path, capsys):
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in DATASETS.names():
        source = DATASETS.get(name).source
        assert f"source: {source.library} {source.id} @ {source.revision}" in out


# ---- an eleventh dataset, added in one place ----------------------------------------------------------------
def test_a_toy_eleventh_dataset_in_one_definition(tmp_path, mirror, monkeypatch, capsys):
    from adagrow.data.registry import Augment, DatasetSpec
    from adagrow.data.sources import HubSource

    def write(splits, staging):  # the hub copy -> the dataset's files
        (staging / "toy").mkdir(parents=True)
        for split in ("train", "test"):
            labels = np.array(splits[split]["label"])
            np.savez(staging / "toy" / f"{split}.npz", images=synthetic.images(labels, 3, 8), labels=labels)

    def read(spec, data_dir, cache_dir):
        from adagrow.data.arrays import ArraySplit

        def split(name):
            f = np.load(data_dir / "toy" / f"{name}.npz")
            return ArraySplit(torch.from_numpy(f["images"]), torch.from_numpy(f["labels"]).long())

        return split("train"), split("test")

    spec = DatasetSpec(
        name="toy", kind="vision", input_size=(3, 8, 8), num_classes=3, train_size=12, test_size=6,
        files=("toy/train.npz", "toy/test.npz"), howto="Made by the test.", mean=(0.5,) * 3, std=(0.25,) * 3,
        resident_ok=True, augment=Augment(crop_pad=1, flip=True, size=8),
        source=HubSource("someone/toy", revision="0" * 40, data_files={"train": "train.parquet", "test": "test.parquet"},
                         write=write),
        read=read)
    monkeypatch.setitem(DATASETS._items, "toy", spec)
    features = datasets.Features({"label": datasets.ClassLabel(names=["a", "b", "c"])})
    write_parquet(mirror / "someone" / "toy" / "train.parquet", {"label": [k % 3 for k in range(12)]}, features)
    write_parquet(mirror / "someone" / "toy" / "test.parquet", {"label": [k % 3 for k in range(6)]}, features)

    data = tmp_path / "data"
    assert main(["datasets", "--download", "toy", "--data-dir", str(data)]) == 0
    assert main(["datasets", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "toy           verified" in out and "source: datasets someone/toy @ " + "0" * 40 in out
    bundle = load("toy", data, tmp_path / "cache", val_size=3)
    assert (bundle.meta["train_size"], bundle.meta["val_size"], bundle.meta["test_size"]) == (9, 3, 6)
    x, y = next(iter(bundle.test))
    assert x.shape == (4, 3, 8, 8) and y.tolist() == [0, 1, 2, 0]
