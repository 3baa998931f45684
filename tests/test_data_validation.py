"""Dataset validation (adagrow/data/validation.py): verified / present / missing / corrupt per dataset, as `adagrow datasets` shows."""

from __future__ import annotations

import pytest

from adagrow.data import dataset_status, synthetic
from adagrow.data.validation import md5_file


def _status(data_dir):
    return {row["name"]: row for row in dataset_status(data_dir)}


def test_empty_dir_everything_missing_with_howto(tmp_path):
    rows = dataset_status(tmp_path)
    assert len(rows) == 10
    assert all(r["status"] == "missing" and r["howto"] for r in rows)
    assert {r["kind"] for r in rows} == {"vision", "text"}


def test_present_when_no_checksum_is_known(tmp_path):
    synthetic.write_fastai(tmp_path, folder="imagenette2-160")
    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "aclImdb_repacked.tar.gz").write_bytes(b"x")
    rows = _status(tmp_path)
    assert rows["imagenette"]["status"] == "present" and "imagenette2-160" in rows["imagenette"]["detail"]
    assert rows["imdb"]["status"] == "present"
    assert rows["imagewoof"]["status"] == "missing"


def test_synthetic_mnist_and_cifar_fail_torchvision_md5s(tmp_path):
    synthetic.write_mnist(tmp_path, gz=True)
    synthetic.write_cifar(tmp_path, archive=True)
    rows = _status(tmp_path)
    assert rows["mnist"]["status"] == "corrupt" and "train-images" in rows["mnist"]["detail"]
    assert rows["cifar10"]["status"] == "corrupt" and "data_batch_1" in rows["cifar10"]["detail"]


def test_verified_against_patched_md5s_then_corrupt_after_damage(monkeypatch, tmp_path):
    from torchvision import datasets as tvd

    md5s = synthetic.write_svhn(tmp_path)
    table = {k: list(v) for k, v in tvd.SVHN.split_list.items()}
    for split in ("train", "test"):
        table[split][2] = md5s[f"svhn/{split}_32x32.mat"]
    monkeypatch.setattr(tvd.SVHN, "split_list", table)
    assert _status(tmp_path)["svhn"]["status"] == "verified"
    synthetic.truncate(tmp_path / "svhn" / "test_32x32.mat")
    row = _status(tmp_path)["svhn"]
    assert row["status"] == "corrupt" and "svhn/test_32x32.mat" in row["detail"]


def test_sst2_md5s(monkeypatch, tmp_path):
    from adagrow.data.sets import sst2

    (tmp_path / "sst2").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "sst2" / name).write_text("sentence\tlabel\nok\t1\n")
    digest = md5_file(tmp_path / "sst2" / "dev.tsv")
    assert _status(tmp_path)["sst2"]["status"] == "corrupt"
    monkeypatch.setattr(sst2, "MD5", {"train.tsv": digest, "dev.tsv": digest})
    assert _status(tmp_path)["sst2"]["status"] == "verified"


def test_truncated_archive_is_corrupt(tmp_path):
    synthetic.write_cifar(tmp_path, archive=True)
    synthetic.truncate(tmp_path / "cifar-10-python.tar.gz", 0.3)
    assert _status(tmp_path)["cifar10"]["status"] == "corrupt"


@pytest.mark.slow
def test_real_shared_data_status(shared_data):
    rows = _status(shared_data)
    assert rows["mnist"]["status"] == "verified"
    assert rows["cifar10"]["status"] == "verified"  # rebuilt archive, original members
    assert rows["sst2"]["status"] == "verified"
    assert rows["imdb"]["status"] == "present"
