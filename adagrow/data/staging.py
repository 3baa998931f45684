"""Staging: one-time, atomic extraction of an archive into the writable cache, and a writability probe.

The data directory may be read-only (a shared folder), so anything derived from it -- an extracted
archive, decompressed files -- is written to the cache, once, through a temporary sibling that is
renamed into place.  The extracted members are checked against their md5s (``validation.py``).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from adagrow.data.registry import DatasetSpec
from adagrow.data.validation import check_md5s


def extract_once(archive: Path, dest: Path, expected: dict[str, str], spec: DatasetSpec) -> Path:
    """Extract ``archive`` into ``dest`` once and check the md5s of the members in ``expected``.

    ``expected`` maps member paths (relative to ``dest``) to md5s.  If ``dest`` already holds all
    of them the archive is not opened again (whoever reads the files checks them as it loads).
    Extraction goes to a temporary sibling that is renamed into place, so an interrupted run or
    two concurrent runs never leave a half-extracted tree behind.  Returns ``dest``.
    """
    if all((dest / rel).is_file() for rel in expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise spec.corrupt(archive, f"cannot be extracted: {e}") from e
        missing, corrupt = check_md5s(tmp, expected)
        if missing or corrupt:
            bad = ", ".join(corrupt + [f"{m} (missing)" for m in missing])
            raise spec.corrupt(archive, f"md5 of its members differs from torchvision's: {bad}")
        if dest.exists():  # a partial tree from an old run, or a concurrent winner
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not all((dest / rel).is_file() for rel in expected):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def is_writable(path: Path) -> bool:
    """True if files can be created in directory ``path`` (creating it if needed)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)
