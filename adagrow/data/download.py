"""``--download``: fetch a missing dataset through its source, into the data directory, verified.

The source fills ``<data>/.partial/<name>/`` (never a layout, so an interrupted download is never taken
for the dataset; a rerun resumes from what it holds: torchvision skips files whose md5 is right, the
Hugging Face cache resumes its partial blobs).  Only when one of the dataset's layouts is complete
there are its top-level folders or files moved into the data directory, and the SHA-256 of every
file is recorded in ``<data>/.adagrow/<name>.json`` with the source, so that ``adagrow datasets``
verifies it later (validation.py).  A failure is one :class:`DatasetError` line; what it leaves is
removed unless it can be resumed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from adagrow.data.registry import DatasetSpec
from adagrow.data.staging import is_writable
from adagrow.data.validation import MANIFEST_DIR, file_digest, manifest_path, read_manifest  # noqa: F401
from adagrow.errors import DatasetError

STAGING_DIR = ".partial"


def files_under(data_dir: Path, tops: list[str]) -> list[str]:
    """Every file under the top-level paths ``tops`` of the data dir, relative to it, sorted."""
    out = []
    for top in tops:
        path = data_dir / top
        if path.is_file():
            out.append(top)
        else:
            out += [p.relative_to(data_dir).as_posix() for p in path.rglob("*") if p.is_file()]
    return sorted(out)


def _tops(layout: tuple[str, ...]) -> list[str]:
    return sorted({rel.split("/", 1)[0] for rel in layout})


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def download(spec: DatasetSpec, data_dir: Path, cache_dir: Path) -> str:
    """Fetch ``spec`` into ``data_dir`` unless a layout is there; returns what was done, in words."""
    data_dir = Path(data_dir)
    present = spec.present_layout(data_dir)
    if present is not None:
        return f"already present ({', '.join(present)})"
    if spec.source is None:
        raise DatasetError(f"dataset {spec.name!r} has no download source. {spec.how_to_get}")
    if not is_writable(data_dir):
        raise DatasetError(f"dataset {spec.name!r}: the data dir {data_dir} is not writable; pass a writable --data-dir "
                           "to download into")
    staging = data_dir / STAGING_DIR / spec.name
    staging.mkdir(parents=True, exist_ok=True)
    try:
        # Libraries print their progress ("Downloading ...", retries): to stderr, beside their progress
        # bars, so that stdout keeps one line per dataset.
        with contextlib.redirect_stdout(sys.stderr):
            spec.source.fetch(staging, Path(cache_dir))
    except Exception as e:  # noqa: BLE001 -- offline, refused, interrupted: one line, whatever the library raised
        _drop_if_empty(staging)
        raise DatasetError(f"dataset {spec.name!r}: could not download from {spec.source.describe()}: "
                           f"{_one_line(e)} (no network? get it by hand: {spec.howto})") from e
    layout = spec.present_layout(staging)
    if layout is None:
        raise DatasetError(f"dataset {spec.name!r}: the download from {spec.source.describe()} did not produce "
                           f"{spec.expected_files()}; left in {staging} for inspection")
    tops = _tops(layout)
    for top in tops:
        if (data_dir / top).exists():  # e.g. an incomplete folder of an older attempt
            shutil.rmtree(data_dir / top) if (data_dir / top).is_dir() else (data_dir / top).unlink()
        os.replace(staging / top, data_dir / top)
    shutil.rmtree(staging, ignore_errors=True)
    _drop_if_empty(data_dir / STAGING_DIR)
    files = files_under(data_dir, tops)
    record = {
        "dataset": spec.name, "layout": list(layout),
        "source": {"library": spec.source.library, "id": spec.source.id, "revision": spec.source.revision},
        "sha256": {rel: file_digest(data_dir / rel, "sha256") for rel in files},
    }
    path = manifest_path(data_dir, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return f"downloaded from {spec.source.describe()}: {len(files)} files, SHA-256 recorded in {path}"


def _drop_if_empty(folder: Path) -> None:
    """Remove ``folder`` if no file is under it (nothing to resume from)."""
    if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)
