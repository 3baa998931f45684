"""The dataset registry: all ten datasets with their published facts, and directory resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from adagrow.data import DATASETS, resolve_cache_dir, resolve_data_dir
from adagrow.errors import AdaGrowError, DatasetError

SIZES = {  # SPEC §2 / thesis Table 3-17
    "mnist": ((1, 32, 32), 10, 60_000, 10_000),
    "cifar10": ((3, 32, 32), 10, 50_000, 10_000),
    "cifar100": ((3, 32, 32), 100, 50_000, 10_000),
    "svhn": ((3, 32, 32), 10, 73_257, 26_032),
    "imagewoof": ((3, 224, 224), 10, 9_025, 3_929),
    "imagenette": ((3, 224, 224), 10, 9_469, 3_925),
    "tinyimagenet": ((3, 64, 64), 200, 100_000, 10_000),
    "miniimagenet": ((3, 224, 224), 100, 48_000, 12_000),
}


def test_all_ten_datasets_registered_with_their_kind():
    assert sorted(DATASETS.names()) == sorted([*SIZES, "imdb", "sst2"])
    assert {n for n in DATASETS if DATASETS.get(n).kind == "text"} == {"imdb", "sst2"}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_vision_specs_match_the_published_facts(name):
    spec = DATASETS.get(name)
    assert (spec.input_size, spec.num_classes, spec.train_size, spec.test_size) == SIZES[name]
    assert len(spec.mean) == len(spec.std) == spec.input_size[0]
    assert spec.files and spec.howto


def test_resident_datasets_are_the_small_image_ones():
    resident = {n for n in DATASETS if DATASETS.get(n).resident_ok}
    assert resident == {"mnist", "cifar10", "cifar100", "svhn", "tinyimagenet"}


def test_augmentation_per_dataset():
    def aug(name):
        return DATASETS.get(name).augment

    assert aug("cifar10").crop_pad == 4 and aug("cifar10").flip
    assert aug("mnist").crop_pad == 4 and not aug("mnist").flip and aug("mnist").size == 32
    assert not aug("svhn").flip
    assert aug("imagewoof").resized_crop and aug("imagewoof").eval_resize == 256
    assert aug("cifar10").describe() == "pad-4 random crop 32 + hflip"


def test_unknown_dataset_is_a_user_error():
    with pytest.raises(AdaGrowError, match="unknown dataset 'cifar11'"):
        DATASETS.get("cifar11")


def test_missing_error_names_files_place_and_source(tmp_path):
    err = DATASETS.get("svhn").missing(tmp_path)
    assert isinstance(err, DatasetError)
    msg = str(err)
    assert "svhn/train_32x32.mat" in msg and str(tmp_path.resolve()) in msg and "ufldl" in msg


def test_present_layout_accepts_alternatives(tmp_path):
    spec = DATASETS.get("cifar10")
    assert spec.present_layout(tmp_path) is None
    (tmp_path / "cifar-10-batches-py").mkdir()
    assert spec.present_layout(tmp_path) == ("cifar-10-batches-py/",)


def test_resolve_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAGROW_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "opt")) == tmp_path / "opt"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("ADAGROW_DATA")
    assert resolve_data_dir(None) == Path("data")


def test_resolve_cache_dir_creates_it(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAGROW_CACHE", str(tmp_path / "c"))
    assert resolve_cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("ADAGROW_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_cache_dir() == tmp_path / ".cache" / "adagrow"
