"""The method registry: name -> (config dataclass, Method factory).

The command line turns the fields of a method's config dataclass into its options, nox suites name
methods by these keys, and tests parametrise over them.  A method whose config depends on the model
family (AdaGrow for CNNs vs Transformers) registers a ``by_family`` table.

This is a plug-in registry, and the one import circle the project allows (``tests/test_imports.py``):
a module that defines a method imports :data:`METHODS` and registers itself when imported, and
:func:`load_builtin_methods` imports those modules, inside the function, when the registry is first
asked for.  The core's own methods are named there; every other package's come from the
``adagrow.methods`` entry-point group (:mod:`adagrow.plugins`), so the core never names them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adagrow.registry import Registry

if TYPE_CHECKING:
    from adagrow.engine.method import Method


@dataclass(frozen=True)
class MethodEntry:
    config_cls: type
    factory: Callable[[Any], Method]
    description: str
    # Optional: pick another (config_cls, factory) by family, e.g. "vit" -> Transformer AdaGrow.
    by_family: dict[str, tuple[type, Callable[[Any], Method]]] | None = None

    def resolve(self, family: str | None) -> tuple[type, Callable[[Any], Method]]:
        if family and self.by_family and family in self.by_family:
            return self.by_family[family]
        return self.config_cls, self.factory


METHODS: Registry[MethodEntry] = Registry("method")
_loaded = False


def load_builtin_methods() -> Registry[MethodEntry]:
    """Import the modules that register the built-in methods (once), then every module named in the
    ``adagrow.methods`` entry-point group: the competitors in ``baselines/`` register themselves that
    way, so the core never imports them and a third-party package can add a method the same way."""
    global _loaded
    if not _loaded:
        _loaded = True
        import adagrow.engine.fixed  # noqa: F401  fixed-size references
        import adagrow.grow.method  # noqa: F401  AdaGrow (CNN + Transformer)
        from adagrow.plugins import plugins

        for plugin in plugins("adagrow.methods"):
            plugin.load()  # importing the module registers its methods in METHODS
    return METHODS
