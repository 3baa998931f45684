"""load_vision against tiny files in each dataset's exact on-disk format, and its error messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from adagrow.data import load_dataset, synthetic
from adagrow.errors import AdaGrowError, DatasetError


def install_md5s(monkeypatch, name: str, md5s: dict[str, str]) -> None:
    """Make torchvision accept our synthetic files: its md5 tables get their md5s."""
    from torchvision import datasets as tvd

    if name == "svhn":
        table = {k: list(v) for k, v in tvd.SVHN.split_list.items()}
        for split in ("train", "test"):
            table[split][2] = md5s[f"svhn/{split}_32x32.mat"]
        monkeypatch.setattr(tvd.SVHN, "split_list", table)
        return
    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100

    def entries(old):
        return [[f, md5s[f"{cls.base_folder}/{f}"]] for f, _ in old]

    monkeypatch.setattr(cls, "train_list", entries(cls.train_list))
    monkeypatch.setattr(cls, "test_list", entries(cls.test_list))
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5s[f"{cls.base_folder}/{cls.meta['filename']}"]})


def load(name, data_dir, cache, **kw):
    kw = {"batch_size": 4, "device": torch.device("cpu"), "seed": 0, "val_size": 0.2,
          "num_workers": 0, "cache_dir": cache, **kw}
    return load_dataset(name, data_dir, **kw)


def check_labels_follow_images(bundle, channels):
    """Every batch: right shape, and each image's bright value is its label's (see synthetic.py)."""
    mean = torch.tensor(bundle.meta["normalisation"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(bundle.meta["normalisation"]["std"]).view(1, -1, 1, 1)
    c, h, w = bundle.input_size
    seen = 0
    for loader in (bundle.train, bundle.val, bundle.test):
        loader.set_epoch(0)
        for x, y in loader:
            assert x.shape[1:] == (channels, h, w) and x.dtype == torch.float32 and y.dtype == torch.int64
            bright = ((x * std + mean) * 255).round().amax(dim=(1, 2, 3))
            assert torch.allclose(bright, torch.tensor([float(synthetic.class_value(int(v))) for v in y]), atol=1)
            seen += len(y)
    assert seen > 0


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
@pytest.mark.parametrize("archive", [False, True])
def test_cifar_folder_and_archive(monkeypatch, tmp_path, cache, which, archive):
    data = tmp_path / "data"
    install_md5s(monkeypatch, which, synthetic.write_cifar(data, which, archive=archive))
    if archive:
        os.chmod(data, 0o555)  # read-only data dir: extraction must go to the cache
    try:
        bundle = load(which, data, cache)
    finally:
        os.chmod(data, 0o755)
    assert bundle.meta["train_size"] + bundle.meta["val_size"] == 100
    assert bundle.meta["test_size"] == 20 and bundle.meta["resident"] is True
    assert bundle.num_classes == (10 if which == "cifar10" else 100)
    assert (cache / which / "extracted").is_dir() == archive
    check_labels_follow_images(bundle, 3)


def test_mnist_gz_read_only_is_unpacked_into_the_cache_and_padded(tmp_path, cache):
    data = tmp_path / "data"
    synthetic.write_mnist(data, gz=True)
    os.chmod(data / "MNIST" / "raw", 0o555)
    try:
        with pytest.warns(UserWarning, match="not the official files"):
            bundle = load("mnist", data, cache, val_size=12)
    finally:
        os.chmod(data / "MNIST" / "raw", 0o755)
    assert bundle.input_size == (1, 32, 32)
    assert (bundle.meta["train_size"], bundle.meta["val_size"], bundle.meta["test_size"]) == (48, 12, 20)
    check_labels_follow_images(bundle, 1)
    # The digit sits in the centre 28x28: the 2-px border of an eval image is zero pixels.
    x, _ = next(iter(bundle.test))
    border = ((x * 0.3081 + 0.1307) * 255).round()[:, :, :2]
    assert (border == 0).all()


def test_mnist_unpacked_layout_is_read_in_place(tmp_path, cache):
    synthetic.write_mnist(tmp_path / "data", gz=False)
    bundle = load("mnist", tmp_path / "data", cache)
    assert bundle.meta["test_size"] == 20 and not (cache / "mnist").exists()


def test_svhn_label_10_becomes_0(monkeypatch, tmp_path, cache):
    install_md5s(monkeypatch, "svhn", synthetic.write_svhn(tmp_path / "data"))
    bundle = load("svhn", tmp_path / "data", cache, val_size=0)
    ys = torch.cat([y for _, y in bundle.test])
    assert sorted(set(ys.tolist())) == list(range(10))
    check_labels_follow_images(bundle, 3)


@pytest.mark.parametrize("folder", ["imagewoof2", "imagewoof2-320"])
def test_imagewoof_image_folders(tmp_path, cache, folder):
    synthetic.write_fastai(tmp_path / "data", folder=folder)
    bundle = load("imagewoof", tmp_path / "data", cache, val_size=3)
    assert bundle.meta["resident"] is False and bundle.input_size == (3, 224, 224)
    assert (bundle.meta["train_size"], bundle.meta["test_size"]) == (9, 6)
    check_labels_follow_images(bundle, 3)


def test_tiny_imagenet_val_reorganised_once_in_cache_when_read_only(monkeypatch, tmp_path, cache):
    data = tmp_path / "data"
    synthetic.write_tiny_imagenet(data)
    root = data / "tiny-imagenet-200"
    os.chmod(root, 0o555)
    # chmod does not stop root (as in CI containers): also answer "read-only" for that folder.
    from adagrow.data import staging

    monkeypatch.setattr(staging, "is_writable", lambda path: Path(path) != root)
    try:
        bundle = load("tinyimagenet", data, cache, val_size=3)
        val_tree = cache / "tinyimagenet" / "val_by_class"
        assert sorted(p.name for p in val_tree.iterdir()) == ["n00000000", "n00000001", "n00000002"]
        assert not (root / "val_by_class").exists()
        check_labels_follow_images(bundle, 3)
        assert (bundle.meta["train_size"], bundle.meta["test_size"]) == (9, 6)
        # Second load: decoded arrays come from the cache, same data.
        again = load("tinyimagenet", data, cache, val_size=3)
        assert torch.equal(next(iter(again.test))[0], next(iter(bundle.test))[0])
        streamed = load("tinyimagenet", data, cache, val_size=3, resident=False)
        assert torch.allclose(next(iter(streamed.test))[0], next(iter(bundle.test))[0], atol=1e-5)
    finally:
        os.chmod(root, 0o755)


def test_tiny_imagenet_val_reorganised_in_place_when_writable(tmp_path, cache):
    synthetic.write_tiny_imagenet(tmp_path / "data")
    load("tinyimagenet", tmp_path / "data", cache, resident=False)
    assert (tmp_path / "data" / "tiny-imagenet-200" / "val_by_class" / "n00000002").is_dir()


def test_mini_imagenet_pools_the_csvs_and_holds_out_one_in_five(tmp_path, cache):
    synthetic.write_mini_imagenet(tmp_path / "data", classes_per_split=2, per_class=10)
    bundle = load("miniimagenet", tmp_path / "data", cache, val_size=0)
    assert (bundle.meta["train_size"], bundle.meta["test_size"]) == (48, 12)
    test_labels = torch.cat([y for _, y in bundle.test])
    assert torch.equal(test_labels.bincount(), torch.full((6,), 2))  # 2 of 10 per class, all 6 classes


def test_validation_and_subsets_are_seeded(monkeypatch, tmp_path, cache):
    install_md5s(monkeypatch, "cifar10", synthetic.write_cifar(tmp_path / "data"))
    a = load("cifar10", tmp_path / "data", cache, val_size=30, train_subset=16, test_subset=8)
    assert (a.meta["train_size"], a.meta["val_size"], a.meta["test_size"]) == (16, 30, 8)
    b = load("cifar10", tmp_path / "data", cache, val_size=30, train_subset=16, test_subset=8)
    c = load("cifar10", tmp_path / "data", cache, val_size=30, seed=1)
    assert torch.equal(a.val.labels, b.val.labels) and torch.equal(a.val.images, b.val.images)
    assert torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.val.labels, c.val.labels)  # the split follows the run's seed


def test_split_indices_partition_the_training_set():
    from adagrow.data.vision import split_indices

    train, val = split_indices(100, 0.25, seed=3)
    assert len(val) == 25 and len(train) == 75
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    train_sub, val_again = split_indices(100, 0.25, seed=3, train_subset=10)
    assert torch.equal(val_again, val) and set(train_sub.tolist()) <= set(train.tolist())
    with pytest.raises(AdaGrowError, match="no training data"):
        split_indices(10, 10, seed=0)


def test_missing_dataset_error_names_files_and_dir(tmp_path, cache):
    with pytest.raises(DatasetError) as info:
        load("cifar10", tmp_path, cache)
    msg = str(info.value)
    assert "cifar-10-python.tar.gz" in msg and "cifar-10-batches-py/" in msg
    assert str(tmp_path.resolve()) in msg and "cs.toronto.edu" in msg


@pytest.mark.parametrize("name", ["imagenette", "miniimagenet", "tinyimagenet", "svhn", "mnist"])
def test_missing_error_for_every_loader(tmp_path, cache, name):
    with pytest.raises(DatasetError, match=f"dataset '{name}' not found"):
        load(name, tmp_path, cache)


def test_truncated_cifar_batch_is_named(monkeypatch, tmp_path, cache):
    data = tmp_path / "data"
    install_md5s(monkeypatch, "cifar10", synthetic.write_cifar(data))
    synthetic.truncate(data / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(DatasetError, match=r"data_batch_3 is corrupt \(md5"):
        load("cifar10", data, cache)


def test_truncated_cifar_archive_is_named(monkeypatch, tmp_path, cache):
    data = tmp_path / "data"
    install_md5s(monkeypatch, "cifar10", synthetic.write_cifar(data, archive=True))
    synthetic.truncate(data / "cifar-10-python.tar.gz", 0.6)
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz is corrupt"):
        load("cifar10", data, cache)
    assert not (cache / "cifar10" / "extracted").exists()  # nothing half-extracted left behind


def test_truncated_mnist_gz_is_named(tmp_path, cache):
    synthetic.write_mnist(tmp_path, gz=True)
    synthetic.truncate(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz is corrupt"):
        load("mnist", tmp_path, cache)


def test_unreadable_image_is_named(tmp_path, cache):
    synthetic.write_fastai(tmp_path, folder="imagenette2")
    bad = next((tmp_path / "imagenette2" / "val").rglob("*.JPEG"))
    bad.write_bytes(b"not an image")
    bundle = load("imagenette", tmp_path, cache, val_size=0)
    with pytest.raises(DatasetError, match=f"{bad.name} is corrupt"):
        list(bundle.test)


def test_resident_refused_for_large_images(tmp_path, cache):
    with pytest.raises(AdaGrowError, match="resident"):
        load("imagewoof", tmp_path, cache, resident=True)


def test_text_dataset_dispatches_to_the_text_loader(monkeypatch, tmp_path):
    import sys
    import types

    calls = {}
    fake = types.ModuleType("adagrow.data.text")
    fake.load_text = lambda name, data_dir, **kw: calls.update(name=name, data_dir=data_dir, **kw) or "bundle"
    monkeypatch.setitem(sys.modules, "adagrow.data.text", fake)
    assert load_dataset("sst2", str(tmp_path), batch_size=8, seed=1) == "bundle"
    assert calls == {"name": "sst2", "data_dir": Path(tmp_path), "batch_size": 8, "seed": 1}


def test_malformed_mnist_idx_is_named(tmp_path, cache):
    synthetic.write_mnist(tmp_path, gz=False)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00")
    with pytest.raises(DatasetError, match="MNIST/raw is corrupt"):
        load("mnist", tmp_path, cache)


def test_failed_download_is_one_clear_error(monkeypatch, tmp_path, cache):
    from urllib.error import URLError

    from torchvision.datasets import cifar

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetError, match="could not download from torchvision .*no network.*cifar-10-python.tar.gz"):
        load("cifar10", tmp_path, cache, download=True)
    assert not any(p.is_file() for p in tmp_path.rglob("*") if cache not in p.parents)  # nothing left behind


def test_dataloader_path_gives_the_resident_eval_batches(monkeypatch, tmp_path, cache):
    install_md5s(monkeypatch, "cifar10", synthetic.write_cifar(tmp_path / "data"))
    resident = load("cifar10", tmp_path / "data", cache, test_subset=8)
    streamed = load("cifar10", tmp_path / "data", cache, test_subset=8, resident=False)
    assert streamed.meta["resident"] is False and len(streamed.train) == len(resident.train)
    for (xr, yr), (xs, ys) in zip(resident.test, streamed.test):
        assert torch.equal(yr, ys) and torch.allclose(xr, xs, atol=1e-5)
    check_labels_follow_images(streamed, 3)


def test_calibration_images_are_training_images_without_augmentation(tmp_path, cache):
    # post-training quantization calibrates on training images as evaluation sees them (PyTorch's PTQ recipe, GPTQ):
    # MNIST's digit stays in the centre 28x28 (a zero 2-px border), where the pad-4 random crop moves it
    synthetic.write_mnist(tmp_path / "data", gz=False)
    bundle = load("mnist", tmp_path / "data", cache, val_size=12)

    def border(x):
        pixels = ((x * 0.3081 + 0.1307) * 255).round()
        return torch.cat([pixels[:, :, :2].flatten(1), pixels[:, :, -2:].flatten(1),
                          pixels[..., :2].flatten(1), pixels[..., -2:].flatten(1)], 1)

    calib = torch.cat([x for x, _ in bundle.calibration(10)])
    assert calib.shape[0] == 10 and (border(calib) == 0).all()
    assert torch.equal(calib, torch.cat([x for x, _ in bundle.calibration(10)]))  # no random draw
    bundle.train.set_epoch(0)
    trained_on = torch.cat([x for x, _ in bundle.train])
    assert (border(trained_on) != 0).any()  # the training loader's crops do move digits into the border


def test_the_streamed_calibration_images_are_the_resident_ones(monkeypatch, tmp_path, cache):
    install_md5s(monkeypatch, "cifar10", synthetic.write_cifar(tmp_path / "data"))
    resident = load("cifar10", tmp_path / "data", cache)
    streamed = load("cifar10", tmp_path / "data", cache, resident=False)
    for (xr, yr), (xs, ys) in zip(resident.calibration(6), streamed.calibration(6), strict=True):
        assert torch.equal(yr, ys) and torch.allclose(xr, xs, atol=1e-5)
