"""Datasets: the registry of the benchmark datasets (one definition each, ``adagrow/data/sets/``) and one
loader entry point.

``load_dataset(name, data_dir, batch_size=..., device=..., seed=...)`` returns a
:class:`~adagrow.data.bundle.DataBundle` for any registered dataset, dispatching on its kind
(vision: ``adagrow.data.vision``; text: ``adagrow.data.text``); ``download_dataset`` fetches one
(``adagrow.data.download``).  Loaders are imported lazily so that listing datasets does not import
torchvision or tokenizers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adagrow.data.bundle import BatchLoader, DataBundle
from adagrow.data.registry import (
    DATASETS,
    DatasetSpec,
    resolve_cache_dir,
    resolve_data_dir,
)

__all__ = [
    "DATASETS", "BatchLoader", "DataBundle", "DatasetSpec", "dataset_status", "download_dataset", "load_dataset",
    "resolve_cache_dir", "resolve_data_dir",
]


def load_dataset(name: str, data_dir: Path, **kw: Any) -> DataBundle:
    """Load dataset ``name`` from ``data_dir``; keyword arguments go to the kind's loader.

    Common keywords: ``batch_size``, ``device``, ``seed``, ``val_size``, ``train_subset``,
    ``test_subset``.  Vision adds ``download``, ``resident``, ``num_workers``,
    ``eval_batch_size``, ``cache_dir`` (see :func:`adagrow.data.vision.load_vision`).
    """
    spec = DATASETS.get(name)
    if spec.kind == "vision":
        from adagrow.data.vision import load_vision

        if kw.get("tokenizer") is not None:
            from adagrow.errors import AdaGrowError

            raise AdaGrowError(f"dataset {name!r} is not a text dataset: it takes no tokenizer")
        kw.pop("tokenizer", None)
        return load_vision(name, Path(data_dir), **kw)
    from adagrow.data.text import load_text

    return load_text(name, Path(data_dir), **kw)


def dataset_status(data_dir: Path) -> list[dict[str, Any]]:
    """Status rows for ``adagrow datasets`` (see :mod:`adagrow.data.validation`)."""
    from adagrow.data.validation import dataset_status as status

    return status(Path(data_dir))


def download_dataset(name: str, data_dir: Path, cache_dir: Path | None = None) -> str:
    """Fetch dataset ``name`` into ``data_dir`` unless present; what was done, in words (else a DatasetError)."""
    from adagrow.data.download import download

    return download(DATASETS.get(name), Path(data_dir), resolve_cache_dir(cache_dir))
