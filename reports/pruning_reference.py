"""The reference pruning table of a dataset (issue 19; the layout of Tables 3-29 / 3-30 on the data we hold).

Every pruning row of a reference suite prunes the converged dense base of its seed (``Entry.derive``: option
``base_run`` from another entry's run, e.g. the ``mnist`` suite's ``prune-resnet18-*`` rows from its
``fixed-resnet18-thesis``).
So the table shows the base once, with its own training seconds, and then per pruning row: params, MACs, the achieved
sparsity, the test accuracy right after the prune and after fine-tuning, the paired difference to the base of the
same seed (after fine-tuning) with its interval and verdict, and the row's own prune and fine-tuning seconds (the
base's are not added again).  AdaGrow's rows of the base's suite (same profile) follow with their total seconds,
as Tables 3-29 / 3-30 set AdaGrow's training time beside pruning's.

Which rows: read from the suites (every entry named ``prune-…`` whose ``base_run`` is derived from another entry's run),
so a new reference pruning suite gets its table without a change here.  Records: ``leaderboard.runs_by_row`` (ok
records of the one profile, the newest numerics version, the latest record per seed).  A pruning seed whose
``pretrained_from`` is not the run the table shows as that seed's base is left out of the pairing and marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports import render
from reports.formatting import MISSING, format_count
from reports.leaderboard import runs_by_row
from reports.stats import Estimate, mean_ci, paired_difference

Record = dict[str, Any]
PROFILE = "reference"  # the converged CPU profile: the only one these suites are selected for
NOT_RUN = "not run"
OTHER_BASE = "§"  # some seed was pruned from another run than the base shown for that seed


@dataclass(frozen=True)
class Layout:
    """One table: the dense base's entry, the pruning entries deriving from it, AdaGrow's entries beside them."""

    dataset: str
    base: str
    rows: tuple[str, ...]
    adagrow: tuple[str, ...]


def layouts() -> list[Layout]:
    """The tables the registered suites call for, one per (dataset, dense base)."""
    from suites import _load  # the suites define the rows; imported here, as generate.py does

    suites = _load()
    found: dict[tuple[str, str, str], list[str]] = {}
    for name in suites:
        for e in suites.get(name):
            what, *source = e.derive.get("base_run", (None, None, None))
            if what == "run" and e.name.startswith("prune-") and e.reference:
                rows = found.setdefault((e.dataset, *source), [])
                if e.name not in rows:
                    rows.append(e.name)
    out = []
    for (dataset, base_suite, base), rows in found.items():
        adagrow = tuple(e.name for e in suites.get(base_suite) if e.method == "adagrow" and e.reference
                        and e.dataset == dataset)
        out.append(Layout(dataset, base, tuple(rows), adagrow))
    return out


# ------------------------------------------------------------------------------------------------ cells
def _estimate(values: list[float | None]) -> Estimate | None:
    present = [float(v) for v in values if v is not None]
    return mean_ci(present) if present else None


def _cell(runs: list[Record], value: Callable[[Record], float | None], digits: int = 2) -> str:
    est = _estimate([value(r) for r in runs])
    return MISSING if est is None else est.format(digits)


def _count(runs: list[Record], key: str) -> str:
    est = _estimate([r.get(key) for r in runs])
    return MISSING if est is None else format_count(est.mean)


def _seconds(record: Record, *phases: str) -> float | None:
    """The record's seconds of ``phases`` (all of them when none is named); never a --pretrained source's."""
    secs = record.get("gpu_seconds") or {}
    if not phases:
        return sum(secs.values()) if secs else None
    present = [secs[p] for p in phases if p in secs]
    return sum(present) if present else None


def _after_prune(record: Record) -> float | None:
    return ((record.get("pruning") or {}).get("after_prune") or {}).get("test_acc")


def _sparsity(record: Record) -> float | None:
    value = (record.get("pruning") or {}).get("achieved_sparsity")
    return None if value is None else 100 * value


def same_base(record: Record, base: Record | None) -> bool:
    """Whether a pruning record started from ``base``'s run (its deploy.pt), judged by the run's directory name
    (which carries the config hash), so a record written on another machine, under another --output, still pairs."""
    source = (record.get("pruning") or {}).get("pretrained_from")
    return base is not None and bool(source) and Path(source).parent.name == Path(str(base.get("run_dir"))).name


def _versus(base: dict[Any, Record], mine: dict[Any, Record], check_source: bool) -> tuple[str, str]:
    """(paired Δ acc cell, verdict cell) of ``mine`` − base over the seeds both ran."""
    paired_seeds = {s: r for s, r in mine.items() if not check_source or same_base(r, base.get(s))}
    mark = f" {OTHER_BASE}" if len(paired_seeds) < len(mine) and check_source else ""
    paired = paired_difference({s: r.get("test_acc") for s, r in base.items()},
                               {s: r.get("test_acc") for s, r in paired_seeds.items()})
    if paired is None:
        return ("no shared seed" if base else "no base record") + mark, MISSING
    return f"{paired.difference.format()} (n={len(paired.seeds)}){mark}", paired.verdict


HEADER = ["Row", "n", "params", "MACs", "sparsity %", "test acc % after prune", "test acc % after fine-tuning",
          "paired Δ acc vs dense base (95% CI)", "verdict", "prune s", "fine-tune s", "training s (own)"]


def _row(label: str, by_seed: dict[Any, Record], kind: str, base: dict[Any, Record]) -> list[str]:
    """One row; ``kind`` is "base", "prune" or "adagrow"."""
    if not by_seed:
        return [label] + [NOT_RUN] * (len(HEADER) - 1)
    runs = list(by_seed.values())
    pruned = kind == "prune"
    versus = ("baseline", MISSING) if kind == "base" else _versus(base, by_seed, check_source=pruned)
    return [label, str(len(runs)), _count(runs, "params"), _count(runs, "macs"),
            _cell(runs, _sparsity, 1) if pruned else MISSING,
            _cell(runs, _after_prune) if pruned else MISSING,
            _cell(runs, lambda r: r.get("test_acc")), *versus,
            _cell(runs, lambda r: _seconds(r, "prune"), 0) if pruned else MISSING,
            _cell(runs, lambda r: _seconds(r, "finetune"), 0) if pruned else MISSING,
            _cell(runs, _seconds, 0)]


def grid(records: list[Record], layout: Layout, profile: str = PROFILE) -> render.Grid:
    """The table of one layout; rows without records say "not run"."""
    rows = runs_by_row(records, layout.dataset, profile)
    base = rows.get(layout.base, {})
    lines = [_row(f"dense base: {layout.base}", base, "base", base)]
    lines += [_row(tag, rows.get(tag, {}), "prune", base) for tag in layout.rows]
    lines += [_row(f"AdaGrow: {tag}", rows.get(tag, {}), "adagrow", base) for tag in layout.adagrow]
    used = [r for tag in (layout.base, *layout.rows, *layout.adagrow) for r in rows.get(tag, {}).values()]
    units = ", ".join(sorted({str(r["time_unit"]) for r in used if r.get("time_unit")})) or "the records' time unit"
    notes = [
        f"Records of profile {profile!r} only (never mixed with another profile), the newest numerics version, the "
        "latest record per seed; n = seeds.",
        f"Every pruning row prunes the dense base of its own seed ({layout.base}, its deploy.pt) and fine-tunes it "
        "for the same epochs (suites/pruning.py); the base is trained once per seed and its cost is shown once, in "
        "its own row: a pruning row's seconds are its own only.",
        "a ± b: the mean over the n seeds and the half-width of its 95% Student-t interval (one seed: no interval).",
        "paired Δ acc: (row − dense base) test accuracy after fine-tuning over the seeds both ran, with its 95% "
        "interval; 'better' / 'worse' only where the interval excludes zero, else 'no difference shown'.",
        "params / MACs: the deploy model at batch 1 (mean over seeds); masked rows (magnitude, 2:4) keep the dense "
        "count, their sparsity % is the share of prunable weights set to zero.",
        "prune s: the prune step (DSP: with its group-learning epoch, the method's own extra training); fine-tune s: "
        "the fine-tuning epochs; training s (own): every phase of the row's own run (evaluation and measurement "
        f"included), in {units}.",
        f"{NOT_RUN}: no ok record of this profile for the row.",
    ]
    if any(OTHER_BASE in line[7] for line in lines):
        notes.append(f"{OTHER_BASE}: some seed of the row was pruned from another run than the base shown for that "
                     "seed (e.g. the base was rerun); that seed is left out of the pairing.")
    title = f"Pruning on one shared dense base — {layout.dataset}, profile {profile}"
    return render.Grid(title, HEADER, lines, notes)


def grids(records: list[Record]) -> list[tuple[str, render.Grid]]:
    """(file stem, table) of every reference pruning table, written by ``adagrow report``."""
    return [(f"pruning-{layout.dataset}-{PROFILE}", grid(records, layout)) for layout in layouts()]
