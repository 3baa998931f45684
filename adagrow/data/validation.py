"""Dataset validation, in one place: is a dataset there, complete and intact?

- Layouts: each dataset's accepted file layouts are facts of its ``DatasetSpec`` (registry.py), which
  also words the two user errors (``spec.missing``: not there, what to put where, ``--download`` or
  not; ``spec.corrupt``: which file is damaged).
- Checksums: md5s are not copied here but read from the torchvision classes that check them
  (``CIFAR10.train_list``, ``MNIST.resources``, ``SVHN.split_list``), so that our checks and
  torchvision's can never disagree.  Only SST-2's md5s, which torchvision does not know, are listed
  (from torchtext, as quoted in shared/data/README.md).
- ``diagnose``: a torchvision loader failed; which file is to blame, in one message.
- ``dataset_status``: what ``adagrow datasets`` prints for every dataset --
  ``verified``: every file with a published checksum is there and matches it (MNIST, CIFAR and SVHN
  against torchvision's md5s, SST-2 against torchtext's); ``present``: the files are there but no
  checksum is known for them (image folders, IMDB); ``missing``: the expected files are not under the
  data directory; ``corrupt``: a file is there but its checksum differs.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from adagrow.data.registry import DATASETS, DatasetSpec, shown_path
from adagrow.errors import DatasetError

SST2_MD5 = {
    "sst2/train.tsv": "da409a0a939379ed32a470bc0f7fe99a",
    "sst2/dev.tsv": "268856b487b2a31a28c0a93daaff7288",
}


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


def torchvision_md5s(name: str) -> dict[str, str]:
    """Relative path (as under the data dir / extraction root) -> md5 that torchvision checks."""
    from torchvision import datasets as tvd

    if name == "mnist":
        return {f"MNIST/raw/{f}": md5 for f, md5 in tvd.MNIST.resources}
    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
        return {f"{cls.base_folder}/{f}": md5 for f, md5 in files}
    if name == "svhn":
        return {f"svhn/{tvd.SVHN.split_list[s][1]}": tvd.SVHN.split_list[s][2] for s in ("train", "test")}
    if name == "sst2":
        return dict(SST2_MD5)
    return {}


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


def diagnose(
    spec: DatasetSpec, data_dir: Path, root: Path, fetched: bool, error: Exception
) -> DatasetError:
    """Turn a torchvision failure into one message naming the bad file."""
    if fetched:
        return DatasetError(
            f"dataset {spec.name!r}: the download into {root} failed ({error}). Check the connection, or get "
            f"the files by hand: expected {spec.expected_files()} under {shown_path(data_dir)}. {spec.howto}"
        )
    if spec.name == "mnist":  # the unpacked idx files have no known md5: blame the folder
        return spec.corrupt(data_dir / "MNIST" / "raw", f"torchvision could not read it: {error}")
    missing, corrupt = check_md5s(root, torchvision_md5s(spec.name))
    if corrupt:
        return spec.corrupt(root / corrupt[0], "md5 differs from torchvision's")
    if missing:
        return DatasetError(
            f"dataset {spec.name!r} is incomplete: {', '.join(missing)} missing under {root}. "
            f"{spec.how_to_get}"
        )
    return spec.corrupt(root, f"torchvision could not read it: {error}")


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
