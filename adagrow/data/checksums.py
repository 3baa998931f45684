"""File checksums and one-time archive extraction into the writable cache.

The md5 values are not copied here: they are read from the torchvision classes that check them
(``CIFAR10.train_list``, ``MNIST.resources``, ``SVHN.split_list``), so that our checks and
torchvision's can never disagree.  Only SST-2's md5s, which torchvision does not know, are listed
(from torchtext, as quoted in shared/data/README.md).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from adagrow.data.registry import DatasetSpec
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
