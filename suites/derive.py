"""Options a suite entry takes from another entry's finished run of the same seed (``Entry.derive``).

Issue 19's comparisons need runs that depend on other runs: every pruning row of a seed starts from that
seed's one dense base (its cost counted once), the growers run a second time capped at AdaGrow's final size,
and a fixed BERT is trained at the size the growing one reached.  An entry says so with
``derive={option: (what, suite, entry)}``; when the suite runs, the option is filled from the source
entry's latest ``ok`` record of the same seed (and the same profile and command-line options):

* ``run``: the source run's name (its config hash included), for ``base_run``: the pruning pipeline loads
  ``<output>/runs/<name>/deploy.pt``.  A name, not a path, so the derived run's identity is the same on
  every machine and under any ``--output`` spelling;
* ``params_cap``: the source's final parameter count (the record's ``params``, the deployed model's) plus
  ``CAP_BAND``, for ``max_params``: a grower may end anywhere up to 10% above AdaGrow's size;
* ``arch``: the source's final architecture string (the record's ``arch``).

A derived job whose source has no record yet *waits*: ``run_suite`` runs it after the other jobs of the
same invocation (so one ``adagrow suite`` call runs a base and then the rows that need it), and reports it
as waiting, with the command that would produce its source, when the source did not finish.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adagrow.errors import AdaGrowError

CAP_BAND = 0.10  # issue 19: "capped at AdaGrow's final parameter count (±10%)"; the cap is the band's top


def _run_name(cfg, record: dict[str, Any]) -> str:
    return cfg.run_name


def _params_cap(cfg, record: dict[str, Any]) -> int:
    return math.floor(int(record["params"]) * (1 + CAP_BAND))


def _arch(cfg, record: dict[str, Any]) -> str:
    if not record.get("arch"):
        raise AdaGrowError(f"the record of {cfg.run_name} names no final architecture")
    return str(record["arch"])


DERIVED: dict[str, Callable[[Any, dict[str, Any]], Any]] = {"run": _run_name, "params_cap": _params_cap, "arch": _arch}


@dataclass(frozen=True)
class Source:
    """The run an option is taken from: its suite, entry and (seed-specific) config."""

    option: str
    what: str
    suite: str
    entry: Any
    cfg: Any

    def label(self) -> str:
        return f"{self.suite}/{self.entry.name}/s{self.cfg.seed}"

    def command(self) -> str:
        """What runs the source: this suite command's other options (profile, threads, data, output...) are part of
        the source's identity too, so they are kept rather than spelled out here."""
        return f"`adagrow suite {self.suite} --only {self.entry.name} --seeds {self.cfg.seed}` with this command's other options"


@dataclass(frozen=True)
class Resolved:
    """A derived entry under one seed: its config once every source has a record, else what it waits for."""

    cfg: Any | None
    waiting: str | None = None
    sources: tuple[Source, ...] = ()


def check_derive(entry) -> None:
    """One message for a malformed ``derive`` (a suite definition error, before any work)."""
    for option, spec in entry.derive.items():
        if not (isinstance(spec, tuple) and len(spec) == 3 and spec[0] in DERIVED):
            raise AdaGrowError(f"entry {entry.name}: derive[{option!r}] must be (what, suite, entry) with what one of "
                               f"{', '.join(DERIVED)} (got {spec!r})")


def resolve(entry, seed: int, *, suite: str, config_for: Callable[[Any, str], Any], entry_of: Callable[[str, str], Any],
            records_of: Callable[[str], list[dict[str, Any]]], done: Callable[[list, Any], dict | None]) -> Resolved:
    """The entry's config under ``seed`` with its derived options filled, or why it must wait.

    ``config_for(entry, suite)`` builds an entry's config (the command line's options applied),
    ``entry_of(suite, name)`` finds a suite's entry, ``records_of(suite)`` reads that suite's records,
    ``done(records, cfg)`` is the suite's "finished" rule.  Sources may themselves be derived (resolved first).
    """
    check_derive(entry)
    options: dict[str, Any] = {}
    sources = []
    for option, (what, src_suite, src_name) in entry.derive.items():
        src_entry = entry_of(src_suite, src_name)
        src = resolve(src_entry, seed, suite=src_suite, config_for=config_for, entry_of=entry_of,
                      records_of=records_of, done=done)
        if src.cfg is None:
            return Resolved(None, src.waiting)
        source = Source(option, what, src_suite, src_entry, src.cfg)
        record = done(records_of(src_suite), src.cfg)
        if record is None:
            return Resolved(None, f"waits for {source.label()}: run {source.command()}")
        options[option] = DERIVED[what](src.cfg, record)
        sources.append(source)
    filled = dataclasses.replace(entry, options={**entry.options, **options})
    cfg = dataclasses.replace(config_for(filled, suite), seed=seed)
    return Resolved(cfg, None, tuple(sources))


def missing_checkpoint(resolved: Resolved) -> str | None:
    """Why a derived job cannot start although its sources have records: a base run's deploy.pt is gone
    (a fresh machine: ``runs/`` is not committed).  None when nothing is missing."""
    for source in resolved.sources:
        if source.what != "run":
            continue
        deploy = Path(source.cfg.output_dir) / "runs" / source.cfg.run_name / "deploy.pt"
        if not deploy.is_file():
            return (f"the base's deploy.pt is gone (records are committed, checkpoints are not): rerun {source.label()}: "
                    f"{source.command()} and --force  [{deploy}]")
    return None
