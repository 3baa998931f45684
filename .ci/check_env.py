"""CI: the installed environment is the locked one, and every dependency of the project imports.

Fails with one line per problem: a package installed at another version than constraints.txt, a direct
dependency that does not import, or a torch / torchvision pair that does not match (torchvision's compiled
operators are checked by calling one).
"""

import importlib
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

from adagrow.records.env import _normalise, lock_mismatches

ROOT = Path(__file__).resolve().parents[1]


def modules_by_distribution(names: set[str]) -> dict[str, list[str]]:
    """The top-level modules each named distribution installs.  ``packages_distributions()`` scans every
    installed distribution's file list (seconds each time on a loaded machine): it is read once."""
    by_dist: dict[str, list[str]] = {name: [] for name in names}
    for module, dists in packages_distributions().items():
        for dist in {_normalise(d) for d in dists} & names:
            by_dist[dist].append(module)
    return by_dist


def main() -> int:
    problems = [f"not the locked version: {m}" for m in lock_mismatches(ROOT / "constraints.txt")]

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    wanted = {_normalise(d.split(">")[0].split("=")[0].split("<")[0].split("[")[0]) for d in wanted}
    modules = modules_by_distribution(wanted)
    for name in sorted(wanted):
        mods = sorted(modules[name])
        if not mods:
            problems.append(f"{name}: installed package not found")
        for mod in mods:
            if mod.startswith("_"):
                continue
            try:
                importlib.import_module(mod)
            except Exception as exc:  # noqa: BLE001 - any failure to import is what this check is for
                problems.append(f"{name}: import {mod} failed: {exc}")

    import torch
    import torchvision

    torchvision.ops.nms(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([1.0]), 0.5)  # fails if the pair does not match
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}; {len(wanted)} dependencies import")
    for p in problems:
        print("env check:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
