"""Dataset validation, in one place: is a dataset there, complete and intact?  (No dataset by name here.)

- Layouts and checksums are facts of each dataset's ``DatasetSpec`` (``adagrow/data/sets/``):
  ``spec.present_layout`` finds the layout on disk, ``spec.checks(layout)`` gives its published md5s
  (torchvision's own tables, read from its classes, so that our checks and torchvision's can never
  disagree; SST-2's from torchtext).  ``spec.missing`` / ``spec.corrupt`` word the two user errors.
- A dataset fetched by ``--download`` has the SHA-256 of every file recorded at download time
  (``download.py``); those are checked first.
- ``diagnose``: a torchvision loader failed; which file is to blame, in one message.
- ``dataset_status``: what ``adagrow datasets`` prints for every dataset --
  ``verified``: every file with a recorded or published checksum is there and matches it;
  ``present``: the files are there but no checksum is known for them; ``missing``: the expected files
  are not under the data directory; ``corrupt``: a file is there but its checksum differs.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from adagrow.data.registry import DATASETS, DatasetSpec
from adagrow.errors import DatasetError


def file_digest(path: Path, algorithm: str = "md5", chunk: int = 1 << 22) -> str:
    """The hex digest (``md5``, ``sha256``, ...) of a file's bytes, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def md5_file(path: Path) -> str:
    """The hex md5 of a file (what torchvision publishes for its datasets)."""
    return file_digest(path, "md5")


def check_md5s(root: Path, expected: dict[str, str]) -> tuple[list[str], list[str]]:
    """Return (missing, corrupt) relative paths among ``expected`` under ``root``."""
    missing, corrupt = [], []
    for rel, md5 in expected.items():
        path = root / rel
        if not path.is_file():
            missing.append(rel)
        elif md5_file(path) != md5:
            corrupt.append(rel)
    return missing, corrupt


def md5s_in_tar(archive: Path, wanted: Iterable[str]) -> dict[str, str]:
    """md5 of each wanted member of a (compressed) tar archive, streamed without extracting."""
    wanted = set(wanted)
    found: dict[str, str] = {}
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    digest = hashlib.md5()
                    f = tar.extractfile(member)
                    assert f is not None
                    while block := f.read(1 << 20):
                        digest.update(block)
                    found[member.name] = digest.hexdigest()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{archive} is not a readable archive ({e}); delete it and obtain it again.") from e
    return found


def diagnose(spec: DatasetSpec, blame: Path, root: Path, expected: dict[str, str], error: Exception) -> DatasetError:
    """Turn a torchvision read failure into one message naming the bad file.

    ``expected``: the md5s (relative to ``root``) of the files torchvision read; with none known,
    ``blame`` (the folder read) is named.
    """
    missing, corrupt = check_md5s(root, expected)
    if corrupt:
        return spec.corrupt(root / corrupt[0], "md5 differs from torchvision's")
    if missing:
        return DatasetError(
            f"dataset {spec.name!r} is incomplete: {', '.join(missing)} missing under {root}. "
            f"{spec.how_to_get}"
        )
    return spec.corrupt(blame, f"torchvision could not read it: {error}")


def dataset_status(data_dir: Path) -> list[dict[str, Any]]:
    """One dict per registered dataset: name, kind, status, detail, howto, source."""
    data_dir = Path(data_dir)
    rows = []
    for name in DATASETS:
        spec = DATASETS.get(name)
        status, detail = check(spec, data_dir)
        source = spec.source
        rows.append({"name": name, "kind": spec.kind, "status": status, "detail": detail, "howto": spec.how_to_get,
                     "source": None if source is None else {"library": source.library, "id": source.id,
                                                            "revision": source.revision}})
    return rows


def check(spec: DatasetSpec, data_dir: Path) -> tuple[str, str]:
    """(status, detail) of one dataset under ``data_dir``."""
    layout = spec.present_layout(data_dir)
    if layout is None:
        return "missing", f"expected {spec.expected_files()} under {data_dir}"
    recorded = _check_recorded(spec, data_dir, layout)
    if recorded is not None:
        return recorded
    checks = spec.checks(layout)
    where = ", ".join(layout)
    if not checks.md5:
        return "present", f"{where} ({checks.note})"
    if checks.archive is not None:
        return _check_archive(data_dir / checks.archive, checks.md5)
    _, corrupt = check_md5s(data_dir, checks.md5)
    if corrupt:
        return "corrupt", f"md5 mismatch: {', '.join(corrupt)}"
    return "verified", f"{len(checks.md5)} files match their published md5s"


# What `--download` recorded about the files it fetched (source and SHA-256s), next to the data: written by
# adagrow/data/download.py, read here to verify the files on every later check.
MANIFEST_DIR = ".adagrow"


def manifest_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / MANIFEST_DIR / f"{name}.json"


def read_manifest(data_dir: Path, name: str) -> dict[str, Any] | None:
    path = manifest_path(data_dir, name)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _check_recorded(spec: DatasetSpec, data_dir: Path, layout: tuple[str, ...]) -> tuple[str, str] | None:
    """Check against the SHA-256s recorded when ``--download`` fetched this layout (None: no record)."""
    record = read_manifest(data_dir, spec.name)
    if record is None or tuple(record.get("layout", ())) != tuple(layout):
        return None
    bad = [rel for rel, digest in record["sha256"].items()
           if not (data_dir / rel).is_file() or file_digest(data_dir / rel, "sha256") != digest]
    source = record.get("source", {})
    if bad:
        return "corrupt", f"{len(bad)} files differ from the SHA-256 recorded at download, e.g. {bad[0]}"
    return "verified", (f"{len(record['sha256'])} files match the SHA-256 recorded at download "
                        f"({source.get('library')} {source.get('id')} @ {source.get('revision')})")
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
