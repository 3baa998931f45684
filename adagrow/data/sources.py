"""Where ``--download`` fetches a dataset from: the ecosystem's own loaders, never a hand-rolled HTTP client.

A source fills an empty staging folder with one of its dataset's layouts; ``download.py`` does the rest
(moving it into the data directory only once complete, recording its checksums).

- :class:`TorchvisionSource`: a ``torchvision.datasets`` class constructed with ``download=True``
  (torchvision checks the md5s it knows and shows a progress bar).
- :class:`HubSource`: a Hugging Face hub copy, read with ``datasets.load_dataset`` at a pinned
  revision (a commit of the hub repository) from explicit data files, then written out in the
  dataset's layout by the dataset's own ``write`` function.  ``$ADAGROW_HUB_MIRROR`` points at a local
  folder holding ``<owner>/<name>/`` copies of hub repositories (the same files, e.g. for a cluster
  without internet access, and for the offline tests), read instead of the hub.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TorchvisionSource:
    """``torchvision.datasets.<cls>(root, download=True, **kwargs)`` once per entry of ``calls``
    (``root``: the staging folder, or its ``subdir`` for classes that keep their files directly in root)."""

    cls: str
    calls: tuple[Mapping[str, Any], ...] = ({},)
    subdir: str = ""
    library: str = "torchvision"
    revision: str = "torchvision's pinned md5s"

    @property
    def id(self) -> str:
        return f"torchvision.datasets.{self.cls}"

    def describe(self) -> str:
        return f"torchvision ({self.cls})"

    def fetch(self, staging: Path, cache_dir: Path) -> None:
        from torchvision import datasets as tvd

        cls = getattr(tvd, self.cls)
        for kwargs in self.calls:
            cls(str(staging / self.subdir), download=True, **kwargs)


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face hub dataset repository at a pinned ``revision``.

    ``data_files`` maps our split names to file patterns inside the repository (so exactly those
    parquet shards are read, on the hub or in a mirror); ``write(dataset_dict, staging)`` lays the
    splits out as the dataset's files.
    """

    id: str
    revision: str
    data_files: Mapping[str, str]
    write: Callable[[Any, Path], None] = field(compare=False)
    library: str = "datasets"
    note: str = ""

    def describe(self) -> str:
        return f"the Hugging Face hub ({self.id} at {self.revision[:12]})"

    def location(self) -> tuple[str, str | None]:
        """(path for ``load_dataset``, revision): the mirror's copy if there is one, else the hub's."""
        mirror = os.environ.get("ADAGROW_HUB_MIRROR")
        if mirror and (Path(mirror) / self.id).is_dir():
            return str(Path(mirror) / self.id), None
        return self.id, self.revision

    def fetch(self, staging: Path, cache_dir: Path) -> None:
        import datasets

        path, revision = self.location()
        splits = datasets.load_dataset(path, revision=revision, data_files=dict(self.data_files),
                                       cache_dir=str(cache_dir / "huggingface"))
        self.write(splits, staging)
