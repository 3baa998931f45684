"""Plug-ins: the entry-point groups through which code outside the core adds to it.

The core (``adagrow/``) never names ``baselines/`` (or any other package) in an import.  Instead,
``pyproject.toml`` declares entry points and the core loads whatever they name:

* ``adagrow.methods``: modules that, when imported, register methods in :data:`adagrow.methods.METHODS`;
* ``adagrow.commands``: ``module:object`` of a :class:`Command` that ``adagrow <name>`` dispatches to.

The installed package's metadata is the source of truth.  A source checkout that was run without
``pip install -e .`` (or whose metadata predates a new entry point) has no or stale metadata, so the
groups declared in the ``pyproject.toml`` beside the package are read as well: the plug-ins work the
same from a fresh clone on ``PYTHONPATH`` as after an install.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@dataclass(frozen=True)
class Command:
    """A sub-command contributed by a plug-in: ``adagrow <name> ...`` calls ``run(argv)``."""

    run: Callable[[list[str]], int]
    summary: str  # the one line ``adagrow --help`` shows


@dataclass(frozen=True)
class Plugin:
    name: str
    value: str  # "module" or "module:attribute"

    def load(self):
        module, _, attr = self.value.partition(":")
        obj = importlib.import_module(module)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        return obj


def _declared(group: str) -> dict[str, str]:
    """The group as the source tree's pyproject.toml declares it (empty when there is none)."""
    if not PYPROJECT.is_file():
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the installed metadata is all there is
        return {}
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8")).get("project", {})
    return dict(project.get("entry-points", {}).get(group, {}))


@functools.cache
def plugins(group: str) -> tuple[Plugin, ...]:
    """Every entry point of ``group``, installed or declared in the source tree, sorted by name."""
    found = _declared(group)
    found.update({ep.name: ep.value for ep in entry_points(group=group)})
    return tuple(Plugin(name, value) for name, value in sorted(found.items()))
