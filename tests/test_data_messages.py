"""A missing dataset's message is true: it names the files the loader actually reads, says `--download`
exactly where a download exists, and the README's data table agrees with both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adagrow.data import DATASETS, load_dataset
from adagrow.errors import DatasetError

README = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"
TORCHVISION_CLASS = {"mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100", "svhn": "SVHN"}


def load(name: str, data_dir: Path, cache: Path, download: bool = False):
    return load_dataset(name, data_dir, batch_size=8, device="cpu", seed=0, download=download, cache_dir=cache)


def place(data_dir: Path, layout: tuple[str, ...]) -> None:
    """Empty files and folders at a layout's paths: enough for a loader to find them, not to read them."""
    for rel in layout:
        path = data_dir / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


@pytest.mark.parametrize("name", DATASETS.names())
def test_missing_message_names_every_layout_and_the_download_option(tmp_path, name):
    spec = DATASETS.get(name)
    with pytest.raises(DatasetError, match=f"dataset '{name}' not found") as info:
        load(name, tmp_path / "data", tmp_path / "cache")
    message = str(info.value)
    assert all(rel in message for layout in spec.layouts for rel in layout)
    assert str((tmp_path / "data").resolve()) in message
    assert ("--download" in message) == spec.downloadable
    assert "--no-download" not in message


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name,layout", [(n, layout) for n in DATASETS.names() for layout in DATASETS.get(n).layouts],
                         ids=lambda v: v if isinstance(v, str) else "+".join(v))
def test_loader_reads_each_layout_the_message_names(tmp_path, name, layout):
    """With (empty) files at a named layout the loader finds them: it fails on their content, not as missing."""
    place(tmp_path / "data", layout)
    with pytest.raises(DatasetError) as info:
        load(name, tmp_path / "data", tmp_path / "cache")
    assert "not found" not in str(info.value)


class Fetched(Exception):
    pass


@pytest.mark.parametrize("name", DATASETS.names())
def test_download_is_offered_exactly_where_the_loader_downloads(monkeypatch, tmp_path, name):
    """`--download` reaches the download of the source the message names (torchvision's class, or
    Hugging Face's ``load_dataset`` of the named hub copy), and nothing else."""
    import datasets
    from torchvision import datasets as tvd

    reached = []

    def fetch(self):
        reached.append(("torchvision", type(self).__name__))
        raise Fetched

    def load_hub(path, **kw):
        reached.append(("datasets", path))
        raise Fetched

    for cls in ("MNIST", "CIFAR10", "CIFAR100", "SVHN", "Imagenette"):
        monkeypatch.setattr(getattr(tvd, cls), "download" if cls != "Imagenette" else "_download", fetch)
    monkeypatch.setattr(datasets, "load_dataset", load_hub)
    monkeypatch.delenv("ADAGROW_HUB_MIRROR", raising=False)
    spec = DATASETS.get(name)
    with pytest.raises(DatasetError, match=f"could not download from {re.escape(spec.source.describe())}") as info:
        load(name, tmp_path / "data", tmp_path / "cache", download=True)
    assert isinstance(info.value.__cause__, Fetched)
    assert reached == [(spec.source.library, spec.source.cls if spec.source.library == "torchvision" else spec.source.id)]


def _readme_rows() -> dict[str, str]:
    """The data table (docs/datasets.md, the first table naming the datasets): dataset name -> its row."""
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `(\w+)` \|", line)
        if found and found.group(1) in DATASETS:
            rows.setdefault(found.group(1), line)
    return rows


def _mentioned(rel: str, row: str) -> bool:
    """``rel`` is in the row whole, or as a folder (``MNIST/raw/``) plus the rest (``train-images...``)."""
    parts = rel.rstrip("/").split("/")
    tail = "/" if rel.endswith("/") else ""
    return rel in row or any("/".join(parts[:k]) + "/" in row and "/".join(parts[k:]) + tail in row
                             for k in range(1, len(parts)))


@pytest.mark.parametrize("name", DATASETS.names())
def test_readme_data_table_agrees_with_the_loaders(name):
    spec = DATASETS.get(name)
    row = _readme_rows()[name]
    assert all(_mentioned(rel, row) for layout in spec.layouts for rel in layout), row
    download_cell = row.split("|")[3]  # names the library and the copy `--download` fetches
    source = spec.source
    assert source.library in download_cell and (source.cls if source.library == "torchvision" else source.id) in download_cell


def test_status_checks_sst2_where_it_is(tmp_path):
    """SST-2 unzipped as SST-2/ is checked against its md5s there, not reported verified unchecked."""
    from adagrow.data import dataset_status

    (tmp_path / "SST-2").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "SST-2" / name).write_text("sentence\tlabel\nnot the real file\t1\n")
    row = next(r for r in dataset_status(tmp_path) if r["name"] == "sst2")
    assert row["status"] == "corrupt" and "SST-2/train.tsv" in row["detail"]
