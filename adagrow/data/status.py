"""``dataset_status``: what ``adagrow datasets`` prints — which datasets are usable, and how sure we are.

Status per dataset:
- ``verified``: every file with a published checksum is there and matches it (MNIST, CIFAR and
  SVHN against torchvision's md5s, SST-2 against torchtext's);
- ``present``: the files are there but no checksum is known for them (image folders, IMDB);
- ``missing``: the expected files are not under the data directory;
- ``corrupt``: a file is there but its checksum differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adagrow.data.checksums import check_md5s, md5s_in_tar, torchvision_md5s
from adagrow.data.registry import DATASETS, DatasetSpec
from adagrow.errors import DatasetError


def dataset_status(data_dir: Path) -> list[dict[str, Any]]:
    """One dict per registered dataset: name, kind, status, detail, howto."""
    data_dir = Path(data_dir)
    rows = []
    for name in DATASETS:
        spec = DATASETS.get(name)
        status, detail = _check(spec, data_dir)
        rows.append({"name": name, "kind": spec.kind, "status": status, "detail": detail,
                     "howto": spec.how_to_get})
    return rows


def _check(spec: DatasetSpec, data_dir: Path) -> tuple[str, str]:
    layout = spec.present_layout(data_dir)
    if layout is None:
        return "missing", f"expected {spec.expected_files()} under {data_dir}"
    expected = torchvision_md5s(spec.name)
    if layout != spec.files and expected and set(expected) <= set(spec.files):
        # the same files in another folder (SST-2/ instead of sst2/): check them where they are
        expected = {layout[spec.files.index(rel)]: md5 for rel, md5 in expected.items()}
    where = ", ".join(layout)
    if spec.name in ("cifar10", "cifar100") and layout == spec.files:
        return _check_archive(data_dir / layout[0], expected)
    if spec.name == "mnist" and layout != spec.files:
        return "present", f"{where} (unpacked; md5s are known only for the .gz originals)"
    if not expected:
        return "present", f"{where} (no published checksum)"
    _, corrupt = check_md5s(data_dir, expected)
    if corrupt:
        return "corrupt", f"md5 mismatch: {', '.join(corrupt)}"
    return "verified", f"{len(expected)} files match their published md5s"


def _check_archive(archive: Path, expected: dict[str, str]) -> tuple[str, str]:
    """Check the members of an archive against torchvision's md5s (the archive's own md5 may differ)."""
    try:
        found = md5s_in_tar(archive, expected)
    except DatasetError as e:
        return "corrupt", str(e)
    bad = [rel for rel, md5 in expected.items() if found.get(rel) != md5]
    if bad:
        return "corrupt", f"{archive.name}: members missing or with md5 mismatch: {', '.join(bad)}"
    return "verified", f"{archive.name}: all {len(expected)} members match torchvision's md5s"
