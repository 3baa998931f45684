"""The house has no import circles: modules import downward, and the one allowed circle is the
documented plug-in registry of methods (``adagrow.methods``: ``load_builtin_methods`` imports the
modules that register methods, and they import the registry).

The import graph is read from the source with ``ast`` (every ``import``, at module level or inside a
function, and ``importlib.import_module("literal")``; not ``if TYPE_CHECKING:`` blocks, which never
run).  ``from pkg import name`` depends on ``pkg.name`` when that is a module, else on ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adagrow", "baselines", "suites", "reports")
# (module, function): imports inside this function are the plug-in registry loading its registrants
PLUGIN_LOADERS = {("adagrow.methods", "load_builtin_methods")}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _imports(tree: ast.AST, package: str, loader_names: set[str]):
    """(imported name, whether it sits in a plug-in loader) for each import under ``tree``."""

    def walk(node: ast.AST, in_loader: bool):
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            inside = in_loader or (isinstance(child, ast.FunctionDef) and child.name in loader_names)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield [alias.name], inside
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                for alias in child.names:
                    yield [f"{base}.{alias.name}", base], inside  # the submodule if it is one, else the package
            elif (isinstance(child, ast.Call) and ast.unparse(child.func).endswith("import_module") and child.args
                  and isinstance(child.args[0], ast.Constant)):
                yield [child.args[0].value], inside
            yield from walk(child, inside)

    yield from walk(tree, False)


def import_graph(include_plugin_loaders: bool = False) -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        loaders = {fn for mod, fn in PLUGIN_LOADERS if mod == name}
        for candidates, in_loader in _imports(ast.parse(path.read_text(encoding="utf-8")), package, loaders):
            if in_loader and not include_plugin_loaders:
                continue
            target = next((c for c in candidates if c in mods), None)
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_besides_the_documented_plugin_registry():
    assert cycles(import_graph()) == []


def test_the_plugin_registry_is_the_circle_the_exception_is_for():
    # Without the exception the method registry and the modules registering in it form a circle; if this
    # fails, the exception is no longer needed (or names a function that moved): update PLUGIN_LOADERS.
    assert any("adagrow.methods" in c and "adagrow.grow.method" in c for c in cycles(import_graph(True)))


def test_the_detector_finds_a_circle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_core_imports_nothing_outside_it():
    graph = import_graph(True)
    outside = {(m, t) for m, targets in graph.items() if m.split(".")[0] == "adagrow" for t in targets
               if t.split(".")[0] != "adagrow"}
    assert outside == set()
    # nor names another package as a string (importlib): plug-ins come through entry points (adagrow/plugins.py)
    for path in (ROOT / "adagrow").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "baselines." not in text.replace("``baselines.", "") or path.name == "plugins.py", path
