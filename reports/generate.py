"""``adagrow report``: rebuild the thesis' tables with our numbers beside the thesis' own, plus figures.

    adagrow report [--results results/] [--out reports/tables/] [--tables 3-19,3-22] [--format md,tex]
    adagrow report --results runs          # your own runs, written to runs/report/

For every thesis table (``reports.thesis_reference.TABLES``) it writes ``table<id>.md`` (and
``.tex``): each thesis row with our measurement of the same experiment next to it (matched by
dataset and suite entry name, see ``reports.match``) and the accuracy gap.  A row without a record
says "not run" — it is never filled from the thesis.  Rows built only from smoke-profile runs are
marked "(smoke)" and get no gap (their Δ cell says "smoke"): a few epochs on a subset is not comparable.
Latencies show their spread over the timed repeats where the record has it ("2.50 ±12%", † when noisy).
A row run under several seeds shows mean ± sample standard deviation ("92.50 ± 0.71") and n.
Figures go to ``<out>/plots``: accuracy vs latency per dataset and the growth trajectory of every
AdaGrow run.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from adagrow.errors import AdaGrowError
from adagrow.plugins import Command
from adagrow.records.store import atomic_write_text, check_writable, read_records
from reports import RESULTS_DIR, TABLES_DIR, match, plots, quant_reference, render
from reports.formatting import MISSING, format_metric
from reports.thesis_reference import CNN_DATASETS, COLUMN_TITLES, DATASET_NAMES, TABLES, ThesisRow, ThesisTable

FORMATS = {"md": render.markdown, "tex": render.latex}
OURS_METRICS = ("arch", "params", "macs", "latency_ms", "acc", "pretrain_s", "prune_s", "finetune_s", "total_s")  # we measure too
NOT_RUN = "not run"
SMOKE = "smoke"  # the gap cell of a smoke-only row: a few epochs on a subset is not comparable with the thesis
NOISY = "†"  # marks a latency whose record flags its repeats as noisy, or taken under load


# ------------------------------------------------------------------------------------------------ values
def format_latency(ours: match.Ours) -> str:
    """"21.30 ±12%": the median, ± half the p10–p90 range as a share of it, † when the record says noisy.
    Records from before latencies carried a spread show the median alone."""
    text = format_metric("latency_ms", ours.latency_ms)
    if ours.latency_ms is not None and ours.latency_spread is not None:
        text += f" ±{50 * ours.latency_spread:.0f}%"
    return f"{text} {NOISY}" if ours.latency_noisy else text


def _gap(ours: match.Ours | None, row: ThesisRow) -> str:
    thesis = row.cells.get("acc")
    if ours is None or ours.acc is None or thesis is None or thesis.number is None:
        return MISSING
    if ours.smoke:
        return SMOKE
    return f"{ours.acc - thesis.number:+.2f}"


def _count(ours: match.Ours | None) -> str:
    if ours is None:
        return MISSING
    return f"{ours.n}" + (f" ({ours.profile})" if ours.profile != "full" else "")


def _ours_cell(column: str, ours: match.Ours | None) -> str:
    if ours is None:
        return NOT_RUN
    text = format_latency(ours) if column == "latency_ms" else format_metric(column, getattr(ours, column))
    if column == "latency_ms" and ours.latency_mixed:
        return "mixed threads"
    ci = ours.ci.get(column)
    # accuracy always shows its 95% interval over several seeds; sizes and times only where the seeds differ
    # (a fixed model has the same size under every seed).  Latency's ± is its spread over repeats.
    if ci is not None and (column == "acc" or ci > 0):
        text += f" ± {format_metric(column, ci)}"
    return f"{text} ({ours.profile})" if ours.profile != "full" and column == "acc" else text


# ------------------------------------------------------------------------------------------------ tables
def _layout(table: ThesisTable) -> tuple[list[str], list[str]]:
    """(descriptive columns shown from the thesis only, metric columns shown thesis | ours).

    A table covering several datasets (3-27, 3-28) starts with a dataset column: its rows' labels
    repeat from one dataset to the next."""
    described = (["dataset"] if len(table.datasets) > 1 else []) + [c for c in table.columns if c not in OURS_METRICS]
    measured = [c for c in table.columns if c in OURS_METRICS]
    return described, measured


def _header(table: ThesisTable) -> list[str]:
    described, measured = _layout(table)
    header = ["Row"] + [COLUMN_TITLES[c] + (" (thesis)" if c.endswith(("_s", "_ms")) else "") for c in described]
    for c in measured:
        header += [f"{COLUMN_TITLES[c]} thesis", f"{COLUMN_TITLES[c]} ours"]
    return header + ["Δ acc (ours − thesis)", "n"]


def _row_cells(table: ThesisTable, label: str, dataset: str, thesis: dict, ours: match.Ours | None,
               gap: str) -> list[str]:
    described, measured = _layout(table)
    named = {"dataset": DATASET_NAMES.get(dataset, dataset)} | {c: v.text for c, v in thesis.items()}
    cells = [label] + [named.get(c, MISSING) for c in described]
    for c in measured:
        cells += [thesis[c].text if c in thesis else MISSING, _ours_cell(c, ours)]
    return cells + [gap, _count(ours)]


def _ours_for(table: ThesisTable, row: ThesisRow, records: list[dict]) -> match.Ours | None:
    dataset, tag = row.key
    if table.kind == "quant":
        return match.quant_accuracy(records, dataset, tag, row.select)
    return match.summarize(match.select_runs(records, dataset, tag))


TEXT_TABLES = {"3-28": ("imdb", "sst2")}  # the BERT table: its datasets' suites add rows too (SST-2's reference rows)


def _extra_tags(table: ThesisTable, records: list[dict]) -> list[tuple[str, str]]:
    """Runs of a dataset suite the thesis has no row for (e.g. the standard-recipe fixed models, the AdamW BERT)."""
    from suites.datasets import text_suite, vision_suite  # imported here: only these tables need the suites' names

    if table.id in CNN_DATASETS:
        suites = {CNN_DATASETS[table.id][0]: vision_suite}
    elif table.id in TEXT_TABLES:
        suites = dict.fromkeys(TEXT_TABLES[table.id], text_suite)
    else:
        return []
    known = {row.key for row in table.rows}
    out = []
    for dataset, suite in suites.items():
        present = {match.record_tag(r) for r in records if match.is_training(r) and r.get("dataset") == dataset}
        out += [(dataset, e.name) for e in suite(dataset) if (dataset, e.name) not in known and e.name in present]
    return out


def _extra_quant_rows(table: ThesisTable) -> list[ThesisRow]:
    return quant_reference.table_rows(table.id) if table.kind == "quant" else []


def build_grid(table: ThesisTable, records: list[dict], source: str) -> render.Grid:
    """The cells of one report table: thesis rows with our numbers, then our runs the thesis lacks."""
    rows, found = [], []
    for row in table.rows:
        ours = _ours_for(table, row, records)
        rows.append(_row_cells(table, row.label, row.key[0], row.cells, ours, _gap(ours, row)))
        if ours is not None:
            found.append(ours)
    extras = _extra_tags(table, records)
    for dataset, tag in extras:
        ours = match.summarize(match.select_runs(records, dataset, tag))
        rows.append(_row_cells(table, f"{tag} (ours only)", dataset, {}, ours, MISSING))
        found.append(ours)
    for row in _extra_quant_rows(table):  # Table 4-1 on the datasets we hold (MNIST): rows the thesis has not
        ours = _ours_for(table, row, records)
        cells = _row_cells(table, row.label, row.key[0], row.cells, ours, MISSING)
        if ours is None and row.select.get("precision") == "fp16":
            cells = [quant_reference.FP16_CUDA_ONLY if c == NOT_RUN else c for c in cells]
        rows.append(cells)
        if ours is not None:
            found.append(ours)
    notes = _footnotes(table, source, found)
    if extras:
        notes.append("(ours only): a run of the dataset's suite the thesis has no row for (another recipe, a control "
                     "or a competitor on the same data), the profile named in its cell.")
    return render.Grid(f"Table {table.id} — {table.title}", _header(table), rows, notes)


def _footnotes(table: ThesisTable, source: str, found: list[match.Ours]) -> list[str]:
    """What the cells mean; notes about latency only where the table has a latency column."""
    notes = ["thesis: the values printed in the thesis (not measured here).",
             f"ours: records in {source}; test accuracy averaged over n seeds; params and MACs of the fused "
             "deploy model at batch 1 (MACs = the thesis' 'FLOPs'); a fixed model's arch is its name.",
             f"{NOT_RUN}: no ok record for that row; never filled from the thesis."]
    if any(o.n > 1 for o in found):
        notes.append("a ± b: the mean over the n seeds and the half-width of its 95% confidence interval "
                     "(Student t, n − 1 degrees of freedom; sizes and times only where the seeds differ).")
    if "latency_ms" in table.columns:
        devices = sorted({d for o in found for d in o.devices})
        notes.append("latency: median batch-1 fp32 forward; ours on "
                     f"{', '.join(devices) or 'no device yet'}; thesis on A100 PCIe 40GB (chapter 3).")
        if any(o.latency_spread is not None for o in found):
            notes.append("±: half the p10–p90 range of the timed repeats, as a share of the median "
                         "(the largest over seeds).")
        if any(o.latency_noisy for o in found):
            notes.append(f"{NOISY}: the record flags this latency as noisy (its repeats vary widely) or taken "
                         "while other work loaded the machine: indicative only.")
    elif table.kind == "quant":
        notes.append("ours: quantization records carry accuracy only; measure latency with `adagrow bench`.")
        if _extra_quant_rows(table):
            notes.append("(ours only) rows: the suites' converged models on the datasets we hold, quantized by "
                         "`adagrow suite <dataset> --quantize` (per-seed drops and paired differences: "
                         "quant-<dataset>-<profile>.md); the thesis has no such row, so no Δ.  "
                         f"{quant_reference.FP16_CUDA_ONLY}: FP16 is quantized on CUDA only.")
    if any(o.latency_mixed for o in found):
        notes.append("mixed threads: the seeds' latencies were measured with different CPU thread counts; "
                     "they are not averaged.")
    if any(o.profile == "reference" for o in found):
        notes.append("(reference): the converged CPU profile (whole training split, compressed schedule; "
                     "adagrow/config.py): not the thesis' 100/200 epochs, so Δ acc compares unlike budgets.")
    if any(o.smoke for o in found):
        notes.append(f"(smoke): only smoke-profile runs exist (a few epochs on a subset): not comparable with "
                     f"the thesis, so Δ acc says \"{SMOKE}\" instead of a number.")
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
        ours = [plots.Point(f"{t} ({s.arch})" if s.arch else t, s.latency_ms, s.acc, s.smoke) for t, s in summaries
                if s and s.latency_ms is not None and s.acc is not None]
        if ours:
            devices = tuple(sorted({d for _, s in summaries if s for d in s.devices}))
            paths.append(plots.accuracy_vs_latency(DATASET_NAMES.get(dataset, dataset), ours, _thesis_points(dataset),
                                                   out / "plots" / f"acc-latency-{dataset}.png", devices))
    for r in runs:
        # every method that changed its model during training (AdaGrow, the growing baselines)
        if r.get("growth_events") and r.get("history"):
            name = Path(r.get("run_dir") or "").name or f"{r['dataset']}-{match.record_tag(r)}-s{r.get('seed')}"
            paths.append(plots.growth_trajectory(r, out / "plots" / "growth" / f"{_safe(name)}.png"))
    return paths


def write_leaderboards(records: list[dict], out: Path, formats: list[str], *, plots: bool,
                       grids: list | None = None) -> list[Path]:
    """``leaderboard-<dataset>-<profile>.<fmt>`` and ``plots/pareto-<dataset>-<profile>.png`` for every
    dataset and profile with training records; each table is also added to ``grids`` (for --wandb)."""
    from reports import leaderboard

    paths = []
    for dataset in sorted({r["dataset"] for r in records if match.is_training(r) and r.get("dataset")}):
        for profile in leaderboard.profiles_present(records, dataset):
            grid = leaderboard.grid(records, dataset, profile)
            if grid is None:
                continue
            if grids is not None:
                grids.append((f"leaderboard-{dataset}-{_safe(profile)}", grid))
            for fmt in formats:
                path = out / f"leaderboard-{dataset}-{_safe(profile)}.{fmt}"
                atomic_write_text(path, FORMATS[fmt](grid))
                paths.append(path)
            if plots and (png := leaderboard.pareto_plot(records, dataset, profile,
                                                         out / "plots" / f"pareto-{dataset}-{_safe(profile)}.png")):
                paths.append(png)
    return paths


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# ------------------------------------------------------------------------------------------------ CLI
def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="adagrow report",
        description="the thesis' tables with our numbers beside them, and figures.  By default it reads the "
        f"committed records ({RESULTS_DIR}/) and rewrites the committed tables ({TABLES_DIR}/).  To see your own "
        "runs (adagrow train / suite write them to runs/): adagrow report --results runs  (written to runs/report/)")
    p.add_argument("--results", default=RESULTS_DIR, metavar="PATH",
                   help=f"a JSONL file of records, or a folder of them (default: {RESULTS_DIR}, the committed records; "
                   "your own runs are in runs)")
    p.add_argument("--out", metavar="DIR",
                   help=f"where tables and plots are written (default: {TABLES_DIR} for --results {RESULTS_DIR}, "
                   "else <results>/report)")
    p.add_argument("--tables", help="comma-separated table ids, e.g. 3-19,3-22 (default: all)")
    p.add_argument("--format", default="md,tex", help="comma-separated: md, tex (default: md,tex)")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.add_argument("--wandb", default="off", choices=["off", "offline", "online"],
                   help="also log every table and plot to one W&B run (docs/wandb.md)")
    args = p.parse_args(argv)
    for option, value in (("--results", args.results), ("--out", args.out)):
        if value is not None and not value.strip():  # Path("") is the current folder: every *.jsonl under it
            raise AdaGrowError(f"{option} is empty; give a folder or file (or leave the option out for its default)")
    args.results = Path(args.results)
    if args.out is None:
        committed = args.results == Path(RESULTS_DIR)
        folder = args.results if args.results.suffix != ".jsonl" else args.results.parent
        args.out = Path(TABLES_DIR) if committed else folder / "report"
    args.out = Path(args.out)
    return args


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
        raise AdaGrowError(f"no results at {args.results}: run a suite first (adagrow suite mnist --profile smoke "
                           "writes runs/mnist.jsonl), or point --results at its records (--results runs)")
    check_writable(args.out, "--out", directory=True)
    tables = select_tables(args.tables)
    records = read_records(args.results)
    print(f"reading {len(records)} records from {args.results}; writing to {args.out}", flush=True)
    written, grids = [], []  # grids: (file stem, table) of every table written, for --wandb
    for table in tables:
        grids.append((f"table{table.id}", build_grid(table, records, str(args.results))))
        written += write_table(grids[-1][1], args.out, table.id, formats)
    # all tables: the second thesis' methods (BAMC, APS), M-NAS and the reference pruning rows have tables of their own
    if not args.tables:
        from reports import mnas, pruning_reference, second_thesis

        for stem, grid in [*second_thesis.grids(records), ("mnas", mnas.grid(records)),
                           *pruning_reference.grids(records), *quant_reference.grids(records)]:
            grids.append((stem, grid))
            for fmt in formats:
                path = args.out / f"{stem}.{fmt}"
                atomic_write_text(path, FORMATS[fmt](grid))
                written.append(path)
    if not args.tables:  # a leaderboard per dataset and profile, with its Pareto plots
        written += write_leaderboards(records, args.out, formats, plots=not args.no_plots, grids=grids)
    if not args.no_plots:
        written += write_plots(records, args.out)
    if args.wandb != "off":
        from reports.wandb_report import log_report

        log_report(args.wandb, args.results, grids, [p for p in written if p.suffix == ".png"], records)
    print(f"wrote {len(written)} files under {args.out}: {len(tables)} thesis tables"
          f"{'' if args.no_plots else ', plots in ' + str(args.out / 'plots')}")
    return 0


COMMAND = Command(main, "rebuild the thesis' tables and plots from result records (results/, or your runs/)")
