"""Command-line options generated from frozen config dataclasses: one field, one option, one description.

A field's description is written once, next to the field, and read from the source: its attribute
docstring (a string right after the field, the form mkdocstrings renders) or else its comment (on the
field's line, or the comment lines right above it).  The same description feeds ``--help``
(:func:`add_dataclass_options`, :func:`field_help`) and the option tables of the documentation
(:func:`options_table`).  Choices come from ``typing.Literal`` annotations, defaults from the field.

Both the core command line (``adagrow.cli``) and the commands of ``baselines/`` (e.g. ``adagrow meta``)
import these helpers; this module imports nothing of theirs.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import io
import math
import re
import textwrap
import tokenize
import types
import typing

from adagrow.errors import AdaGrowError


# ---- descriptions: read from the dataclass' source -------------------------------------------------
@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its one-line description (attribute docstring, else comment), for ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines, _ = inspect.getsourcelines(klass)
        except (OSError, TypeError):  # no source (e.g. defined in a REPL): no descriptions
            continue
        source = textwrap.dedent("".join(lines))
        body = ast.parse(source).body[0].body
        comments = _comments(source)
        src_lines = source.splitlines()
        for i, node in enumerate(body):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            after = body[i + 1] if i + 1 < len(body) else None
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                text = after.value.value
            else:
                text = _comment_for(node, comments, src_lines)
            if text:
                docs[node.target.id] = " ".join(text.split())
    return docs


def _comments(source: str) -> dict[int, tuple[int, str]]:
    """1-based line number -> (column, text) of the comment on it (tokenize: a ``#`` in a string is no comment)."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip())
    return out


def _comment_for(node: ast.AnnAssign, comments: dict[int, tuple[int, str]], lines: list[str]) -> str:
    """The comment on the field's line(s), continued on the comment lines below it that are indented past
    the field (``#`` or its text); else the comment block right above the field, at its indentation."""

    def comment_only(n: int) -> bool:
        return n in comments and not lines[n - 1].split("#", 1)[0].strip()

    parts = [comments[n][1] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
    if parts:
        n = node.end_lineno + 1
        while comment_only(n) and (comments[n][0] > node.col_offset or lines[n - 1].lstrip().startswith("#  ")):
            parts.append(comments[n][1])
            n += 1
        return " ".join(parts)
    above, n = [], node.lineno - 1
    while comment_only(n) and comments[n][0] == node.col_offset and not lines[n - 1].lstrip().startswith("#  "):
        above.insert(0, comments[n][1])
        n -= 1
    return " ".join(above)


# ---- types: choices, metavars, parsing ----------------------------------------------------------------
def _unwrap(annotation) -> tuple[object, bool]:
    """(the annotation without ``| None``, whether None is allowed)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return annotation, False


def choices_of(annotation) -> tuple | None:
    """The values a ``Literal[...]`` annotation allows (None for any other type)."""
    inner, _ = _unwrap(annotation)
    return typing.get_args(inner) if typing.get_origin(inner) is typing.Literal else None


_METAVARS = {int: "N", float: "X", str: "TEXT", bool: "{true,false}"}


def metavar_of(annotation) -> str:
    inner, _ = _unwrap(annotation)
    choices = choices_of(inner)
    if choices:
        return "{" + ",".join(map(str, choices)) + "}"
    if typing.get_origin(inner) is tuple:
        return "A,B,..."
    return _METAVARS.get(inner, "V")


def show(value) -> str:
    """A default as a user types it: ``none``, ``true``, ``1,2,3``, text unquoted (no Python reprs)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(map(show, value))
    return str(value)


def parse_value(text: str, annotation) -> object:
    """Parse a command-line string for a field annotated ``annotation`` (a resolved type)."""
    inner, optional = _unwrap(annotation)
    choices = choices_of(inner)
    if optional and text.lower() in ("none", "null") and text not in map(str, choices or ()):
        return None  # (a choice named "none", as stop's, is that choice; leave the option out for None)
    if choices:
        if text not in map(str, choices):
            raise AdaGrowError(f"expected one of {', '.join(map(str, choices))}, got {text!r}")
        return next(c for c in choices if str(c) == text)
    if inner is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise AdaGrowError(f"expected true/false, got {text!r}")
    if inner in (int, float):
        try:
            value = inner(text)
        except ValueError:
            raise AdaGrowError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise AdaGrowError(f"expected a finite number, got {text!r}")
        return value
    if typing.get_origin(inner) is tuple:
        item = (typing.get_args(inner) or (str,))[0]
        return tuple(parse_value(t.strip(), item) for t in text.split(","))
    return text


# ---- one field -> help text; a dataclass -> options ------------------------------------------------
def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def field_help(cls: type, name: str, default=dataclasses.MISSING, describe: str | None = None) -> str:
    """"<description> (choices: a, b; default: x)" for the field ``name`` of ``cls``.

    ``default`` overrides the field's own where a command's default differs (e.g. ``--output runs``);
    ``describe`` replaces the default's value with words (e.g. "the recipe's").  Ready for argparse,
    which formats help with ``%``: a literal ``%`` is doubled."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    hints = typing.get_type_hints(cls)
    text = field_docs(cls).get(name, "")
    if describe is None and _default(f) is None and default is dataclasses.MISSING:
        # "CPU threads (None: torch's default)" -> "CPU threads (default: torch's default)"
        found = re.search(r"\s*\(None: ([^()]*(?:\([^()]*\)[^()]*)*)\)\s*$", text)
        if found:
            text, describe = text[:found.start()], found.group(1)
    notes = []
    choices = choices_of(hints.get(name))
    if choices:
        notes.append(f"choices: {', '.join(map(show, choices))}")
    value = _default(f) if default is dataclasses.MISSING else default
    if describe is not None:
        notes.append(f"default: {describe}")
    elif value is not dataclasses.MISSING:
        notes.append(f"default: {show(value)}")
    return (f"{text} ({'; '.join(notes)})" if notes else text).replace("%", "%%")


def add_dataclass_options(parser: argparse.ArgumentParser, cls, skip: set[str] = frozenset(), title: str = "") -> None:
    """One ``--field-name`` option per field of ``cls`` (minus ``skip``); values are parsed by
    :func:`dataclass_from_args`, so an option left out keeps the dataclass' default."""
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        group.add_argument("--" + f.name.replace("_", "-"), dest=f"mc_{f.name}", default=None,
                           metavar=metavar_of(hints.get(f.name)), help=field_help(cls, f.name))


def dataclass_from_args(cls, args: argparse.Namespace, extra: dict | None = None):
    """An instance of ``cls`` from the options :func:`add_dataclass_options` added (plus ``extra``)."""
    hints = typing.get_type_hints(cls)
    kwargs = dict(extra or {})
    for f in dataclasses.fields(cls):
        raw = getattr(args, f"mc_{f.name}", None)
        if raw is not None and not raw.strip():
            raise AdaGrowError(f"--{f.name.replace('_', '-')} was given an empty value; leave the option out for its default")
        if raw is not None:
            try:
                kwargs[f.name] = parse_value(raw, hints.get(f.name, str))
            except AdaGrowError as exc:
                raise AdaGrowError(f"--{f.name.replace('_', '-')}: {exc}") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise AdaGrowError(f"invalid {cls.__name__}: {exc}") from None


def options_table(cls, skip: set[str] = frozenset()) -> str:
    """The options of ``cls`` as a Markdown table (option, default, description): the docs' option tables."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows = ["| option | default | description |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        choices = choices_of(hints.get(f.name))
        text = docs.get(f.name, "") + (f" Choices: {', '.join(map(show, choices))}." if choices else "")
        default = _default(f)
        shown = "" if default is dataclasses.MISSING else f"`{show(default)}`"
        rows.append(f"| `--{f.name.replace('_', '-')}` | {shown} | {text.replace('|', '&#124;')} |")
    return "\n".join(rows) + "\n"


# ---- the options every run takes (adagrow train, adagrow suite) ----------------------------------------
def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every run takes; their descriptions are the fields' of RunConfig and Recipe."""
    from adagrow.config import PROFILES, RECIPES, Recipe, RunConfig

    def run(name: str, **kw) -> str:
        return field_help(RunConfig, name, **kw)

    def flag(name: str) -> str:  # an on/off switch: its description alone (off unless given)
        return field_docs(RunConfig)[name]

    def recipe(name: str) -> str:
        return field_help(Recipe, name, describe="the recipe's")

    p.add_argument("--data-dir", metavar="DIR", help=run("data_dir"))
    p.add_argument("--no-download", action="store_true", help="never try to download a missing dataset")
    p.add_argument("--download", action="store_true", help=flag("download"))
    p.add_argument("--output", default="runs", metavar="DIR",
                   help=run("output_dir", default="runs") + "; runs/ is ignored by git, results/ is the committed set")
    profiles = "; ".join(f"{name}: {PROFILES.get(name).description}" for name in PROFILES.names())
    p.add_argument("--profile", default="full", choices=PROFILES.names(), help=f"{run('profile')}. {profiles}")
    p.add_argument("--recipe", choices=RECIPES.names(), help=run("recipe", describe="the method's"))
    p.add_argument("--epochs", type=int, metavar="N", help=run("epochs"))
    p.add_argument("--batch-size", type=int, metavar="N", help=recipe("batch_size"))
    p.add_argument("--lr", type=float, metavar="X", help=recipe("lr"))
    p.add_argument("--min-lr", type=float, metavar="X", help=recipe("min_lr"))
    p.add_argument("--seed", type=int, default=0, metavar="N", help=run("seed"))
    p.add_argument("--device", default="auto", metavar="DEVICE", help=run("device"))
    p.add_argument("--threads", type=int, metavar="N", help=run("threads"))
    p.add_argument("--latency-threads", type=int, default=1, metavar="N", help=run("latency_threads", default=1))
    p.add_argument("--train-subset", type=int, metavar="N", help=run("train_subset"))
    p.add_argument("--deterministic", action="store_true", help=flag("deterministic"))
    p.add_argument("--compile", action="store_true", help=flag("compile"))
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA (fp32 throughout)")
    p.add_argument("--wandb", default="off", choices=["off", "offline", "online"],
                   help=run("wandb") + " (offline: <output>/wandb/, for a later `wandb sync`; docs/wandb.md)")
    p.add_argument("--wandb-artifacts", action="store_true", help=flag("wandb_artifacts"))
    p.add_argument("--resume", action="store_true", help=flag("resume"))
    p.add_argument("--suite", default="adhoc", metavar="NAME", help=run("suite"))
    p.add_argument("--tokenizer", metavar="NAME[@REVISION]", help=run("tokenizer"))
