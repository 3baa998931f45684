"""Where a number was measured: device name, library versions, git commit."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {cpu} ({torch.get_num_threads()} threads)"


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the working tree this code runs from, with ``-dirty`` if it has changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


# Libraries whose version can change a number in a record; each is read from the running environment.
RECORDED_PACKAGES = ("torch", "torchvision", "timm", "transformers", "tokenizers", "torch-pruning", "numpy", "scipy")
LOCK_FILE = Path(__file__).resolve().parents[2] / "constraints.txt"


def _installed(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    """``{normalised name: version}`` of a pip constraints file (``name==version`` lines)."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            pins[_normalise(name)] = ver.split(";", 1)[0].strip()
    return pins


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def lock_mismatches(path: Path = LOCK_FILE) -> list[str]:
    """Locked packages installed at another version than the lock's (packages absent here, e.g. CUDA
    libraries on another platform, are not mismatches: the lock is used as pip constraints)."""
    out = []
    for name, pinned in read_lock(path).items():
        have = _installed(name)
        if have is not None and have.split("+", 1)[0] != pinned.split("+", 1)[0]:
            out.append(f"{name} {have} (lock {pinned})")
    return out


@lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """Versions of the running environment (not of the lock), and whether it matches the lock."""
    from adagrow import __version__

    out = {"python": platform.python_version(), "cuda": torch.version.cuda, "adagrow": __version__}
    out.update({name: _installed(name) for name in RECORDED_PACKAGES})
    out["torch"] = torch.__version__  # keeps the build tag (+cpu, +cu130) that the package metadata may drop
    if LOCK_FILE.exists():
        bad = lock_mismatches()
        out["lock"] = "matches constraints.txt" if not bad else "differs from constraints.txt: " + ", ".join(bad)
    else:
        out["lock"] = "no lock file (installed as a package)"
    return out
