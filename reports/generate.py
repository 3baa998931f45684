"""``adagrow report``: rebuild the thesis' tables with our numbers beside the thesis' own, plus figures.

    adagrow report [--results results/] [--out reports/] [--tables 3-19,3-22] [--format md,tex]

For every thesis table (``reports.thesis_reference.TABLES``) it writes ``table<id>.md`` (and
``.tex``): each thesis row with our measurement of the same experiment next to it (matched by
dataset and suite entry name, see ``reports.match``) and the accuracy gap.  A row without a record
says "not run" — it is never filled from the thesis.  Rows built only from smoke-profile runs are
marked "(smoke)".  Figures go to ``<out>/plots``: accuracy vs latency per dataset and the growth
trajectory of every AdaGrow run.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from adagrow.errors import AdaGrowError
from adagrow.records.store import atomic_write_text, read_records
from reports import match, plots, render
from reports.thesis_reference import CNN_DATASETS, COLUMN_TITLES, TABLES, ThesisRow, ThesisTable

FORMATS = {"md": render.markdown, "tex": render.latex}
OURS_METRICS = ("arch", "params", "macs", "latency_ms", "acc", "total_s")  # columns we measure too
NOT_RUN = "not run"
MISSING = "—"


# ------------------------------------------------------------------------------------------------ values
def format_count(x: float) -> str:
    """669290 -> "669.29K", 2.65e6 -> "2.65M", 1.83e9 -> "1.83G" (the thesis' style)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}"
    return f"{x:.0f}"


def format_metric(column: str, value: Any) -> str:
    if value is None:
        return MISSING
    if column in ("params", "macs"):
        return format_count(value)
    if column == "total_s":
        return f"{value:.0f}s"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _gap(ours: match.Ours | None, row: ThesisRow) -> str:
    thesis = row.cells.get("acc")
    if ours is None or ours.acc is None or thesis is None or thesis.number is None:
        return MISSING
    return f"{ours.acc - thesis.number:+.2f}"


def _count(ours: match.Ours | None) -> str:
    if ours is None:
        return MISSING
    return f"{ours.n}" + (f" ({', '.join(ours.profiles)})" if ours.smoke else "")


def _ours_cell(column: str, ours: match.Ours | None) -> str:
    if ours is None:
        return NOT_RUN
    text = format_metric(column, getattr(ours, column))
    return f"{text} (smoke)" if ours.smoke and column == "acc" else text


# ------------------------------------------------------------------------------------------------ tables
def _layout(table: ThesisTable) -> tuple[list[str], list[str]]:
    """(descriptive columns shown from the thesis only, metric columns shown thesis | ours)."""
    described = [c for c in table.columns if c not in OURS_METRICS]
    measured = [c for c in table.columns if c in OURS_METRICS]
    return described, measured


def _header(table: ThesisTable) -> list[str]:
    described, measured = _layout(table)
    header = ["Row"] + [COLUMN_TITLES[c] + (" (thesis)" if c.endswith(("_s", "_ms")) else "") for c in described]
    for c in measured:
        header += [f"{COLUMN_TITLES[c]} thesis", f"{COLUMN_TITLES[c]} ours"]
    return header + ["Δ acc (ours − thesis)", "n"]


def _row_cells(table: ThesisTable, label: str, thesis: dict, ours: match.Ours | None, gap: str) -> list[str]:
    described, measured = _layout(table)
    cells = [label] + [thesis[c].text if c in thesis else MISSING for c in described]
    for c in measured:
        cells += [thesis[c].text if c in thesis else MISSING, _ours_cell(c, ours)]
    return cells + [gap, _count(ours)]


def _ours_for(table: ThesisTable, row: ThesisRow, records: list[dict]) -> match.Ours | None:
    dataset, tag = row.key
    if table.kind == "quant":
        return match.quant_accuracy(records, dataset, tag, row.select)
    return match.summarize(match.select_runs(records, dataset, tag))


def _extra_tags(table: ThesisTable, records: list[dict]) -> list[tuple[str, str]]:
    """Runs of a CNN dataset suite the thesis has no row for (e.g. the standard-recipe fixed models)."""
    if table.id not in CNN_DATASETS:
        return []
    from suites.datasets import vision_suite  # imported here: only CNN tables need the suite's names

    dataset = CNN_DATASETS[table.id][0]
    suite_tags = [e.name for e in vision_suite(dataset)]
    known = {row.key[1] for row in table.rows}
    present = {match.record_tag(r) for r in records if match.is_training(r) and r.get("dataset") == dataset}
    return [(dataset, t) for t in suite_tags if t not in known and t in present]


def build_grid(table: ThesisTable, records: list[dict], source: str) -> render.Grid:
    """The cells of one report table: thesis rows with our numbers, then our runs the thesis lacks."""
    rows, devices, smoke = [], set(), False
    for row in table.rows:
        ours = _ours_for(table, row, records)
        if ours is not None:
            devices.update(ours.devices)
            smoke |= ours.smoke
        rows.append(_row_cells(table, row.label, row.cells, ours, _gap(ours, row)))
    for dataset, tag in _extra_tags(table, records):
        ours = match.summarize(match.select_runs(records, dataset, tag))
        devices.update(ours.devices)
        smoke |= ours.smoke
        rows.append(_row_cells(table, f"{tag} (ours only)", {}, ours, MISSING))
    return render.Grid(f"Table {table.id} — {table.title}", _header(table), rows,
                       _footnotes(table, source, devices, smoke))


def _footnotes(table: ThesisTable, source: str, devices: set[str], smoke: bool) -> list[str]:
    notes = ["thesis: the values printed in the thesis (not measured here).",
             f"ours: records in {source}; test accuracy averaged over n seeds; params and MACs of the fused "
             "deploy model at batch 1 (MACs = the thesis' 'FLOPs').",
             f"{NOT_RUN}: no ok record for that row; never filled from the thesis."]
    if table.kind != "quant":
        notes.append("latency: median batch-1 fp32 forward; ours on "
                     f"{', '.join(sorted(devices)) or 'no device yet'}; thesis on A100 PCIe 40GB (chapter 3).")
    else:
        notes.append("ours: quantization records carry accuracy only; measure latency with `adagrow bench`.")
    if smoke:
        notes.append("(smoke): only smoke-profile runs exist (a few epochs on a subset): not comparable.")
    return notes + list(table.notes)


def write_table(grid: render.Grid, out: Path, table_id: str, formats: list[str]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = out / f"table{table_id}.{fmt}"
        atomic_write_text(path, FORMATS[fmt](grid))
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------ plots
def _thesis_points(dataset: str) -> list[plots.Point]:
    points = []
    for table in TABLES.values():
        if table.kind != "models" or table.id == "3-31":
            continue
        for row in table.rows:
            lat, acc = row.cells["latency_ms"].number, row.cells["acc"].number
            if row.key[0] == dataset and lat is not None and acc is not None:
                points.append(plots.Point(f"{row.label} {row.cells['arch'].text}", lat, acc))
    return points


def write_plots(records: list[dict], out: Path) -> list[Path]:
    """Accuracy-vs-latency per dataset we have runs for, and one growth trajectory per AdaGrow run."""
    runs = [r for r in records if match.is_training(r) and r.get("status") == "ok"]
    paths = []
    for dataset in sorted({r["dataset"] for r in runs}):
        tags = sorted({match.record_tag(r) or "" for r in runs if r["dataset"] == dataset})
        summaries = [(t, match.summarize(match.select_runs(runs, dataset, t))) for t in tags]
        ours = [plots.Point(t, s.latency_ms, s.acc) for t, s in summaries
                if s and s.latency_ms is not None and s.acc is not None]
        if ours:
            devices = tuple(sorted({d for _, s in summaries if s for d in s.devices}))
            paths.append(plots.accuracy_vs_latency(dataset, ours, _thesis_points(dataset),
                                                   out / "plots" / f"acc-latency-{dataset}.png", devices))
    for r in runs:
        if r.get("method") == "adagrow" and r.get("history"):
            name = Path(r.get("run_dir") or "").name or f"{r['dataset']}-{match.record_tag(r)}-s{r.get('seed')}"
            paths.append(plots.growth_trajectory(r, out / "plots" / "growth" / f"{_safe(name)}.png"))
    return paths


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# ------------------------------------------------------------------------------------------------ CLI
def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="adagrow report", description="thesis tables with our numbers beside them")
    p.add_argument("--results", default="results", type=Path, help="a JSONL file or a folder of them")
    p.add_argument("--out", default="reports", type=Path, help="where tables and plots are written")
    p.add_argument("--tables", help="comma-separated table ids, e.g. 3-19,3-22 (default: all)")
    p.add_argument("--format", default="md,tex", help="comma-separated: md, tex")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    return p.parse_args(argv)


def select_tables(spec: str | None) -> list[ThesisTable]:
    """Tables named in ``spec`` ("3-19,table3-22"), all when empty."""
    if not spec:
        return list(TABLES.values())
    ids = [s.strip().removeprefix("table") for s in spec.split(",") if s.strip()]
    unknown = [i for i in ids if i not in TABLES]
    if unknown:
        raise AdaGrowError(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(TABLES)}")
    return [TABLES[i] for i in ids]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``adagrow report``; returns the exit status."""
    args = _parse(argv)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if not formats or any(f not in FORMATS for f in formats):
        raise AdaGrowError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {args.format!r}")
    if not args.results.exists():
        raise AdaGrowError(f"no results at {args.results}: run a suite first, or point --results at its records")
    tables = select_tables(args.tables)
    records = read_records(args.results)
    written = []
    for table in tables:
        written += write_table(build_grid(table, records, str(args.results)), args.out, table.id, formats)
    if not args.no_plots:
        written += write_plots(records, args.out)
    print(f"{len(records)} records from {args.results}; wrote {len(written)} files under {args.out}")
    return 0
