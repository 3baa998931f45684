"""Tables for the second thesis' methods (#13): BAMC vs uniform precision, APS vs AdaGrow vs fixed.

    python -m reports.second_thesis [--results results/] [--out reports/tables/]

Every value is ours, read from the records of the ``bamc-<dataset>`` / ``aps-<dataset>`` suites and, for
the AdaGrow and fixed rows of the APS table, the dataset's own suite.  Neither the thesis (seeds/002) nor
the notes we hold give numbers for these experiments: the "paper" column is where the paper's own value
would go and stays empty ("—") until one is found.  An entry without a record says "not run".  A row never
mixes profiles (full, else reference, else smoke: ``reports.match``); over several seeds a cell is the mean ± its
95% Student-t half-width and a comparison is paired over the seeds both rows ran (``reports.stats``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adagrow.records.store import atomic_write_text, read_records
from reports import RESULTS_DIR, TABLES_DIR, render
from reports.formatting import format_count
from reports.match import select_runs
from reports.stats import mean_ci, paired_difference
from suites.second_thesis import DATASETS, aps_entries, aps_reference_entries, bamc_entries, bamc_reference_entries

PAPER = "—"  # the paper's cell: empty until its own number is found
NOT_RUN = "not run"
# the AdaGrow and fixed rows of the APS table (the dataset suite's entry names)
ALLOCATION_ORDER = ("uniform", "uniform-above", "random", "hessian")  # BAMC's comparison rows, in this order
APS_REFERENCES = ("adagrow-vgg-3b", "fixed-resnet18-thesis", "fixed-resnet18-standard")
# The APS rows a paired comparison over seeds is made against, within one profile: the uniform multiplier, and the
# random width sets pooled (each seed's mean over its sets).  Reference entries: aps-ref-uniform, aps-ref-random-k.
APS_RANDOM_PREFIX = "-random"


def runs(records: list[dict], dataset: str, name: str) -> list[dict]:
    """The ok records of the suite entry ``name`` on ``dataset``: one profile only (full > reference > smoke, as
    every table: ``reports.match``), its newest numerics, the latest record of each seed."""
    return select_runs(records, dataset, name)


def _cell(values: list[float | None]) -> str:
    """One value, or the mean ± 95% Student-t half-width over seeds (``reports.stats``); — when none."""
    present = [float(v) for v in values if v is not None]
    return mean_ci(present).format(2) if present else "—"


def _by_seed(recs: list[dict], value) -> dict:
    return {r.get("seed"): value(r) for r in recs}


def _paired(base: dict, other: dict) -> str:
    """``other − base`` over the seeds both have, mean ± 95% CI, and the verdict where there are ≥ 2 seeds."""
    diff = paired_difference(base, other)
    if diff is None:
        return "—"
    est = diff.difference
    text = f"{est.mean:+.2f}" + ("" if est.half_width is None else f" ± {est.half_width:.2f}")
    return f"{text} ({diff.verdict}, {est.n} seeds)" if est.half_width is not None else f"{text} (1 seed)"


def _seconds(recs: list[dict], phases: tuple[str, ...] | None = None) -> str:
    totals = [sum(v for k, v in (r.get("gpu_seconds") or {}).items() if phases is None or k in phases) for r in recs]
    return f"{sum(totals) / len(totals):.0f}s"


def _profile(recs: list[dict]) -> str:
    """Every row names its profile unless it is the thesis' own (``full``), and how many seeds it averages: the rows
    of one table may come from different profiles (a smoke search beside a converged reference model)."""
    profile = recs[0].get("profile") or "full"
    seeds = f", {len(recs)} seeds" if len(recs) > 1 else ""
    return "" if profile == "full" and not seeds else f" ({profile}{seeds})"


def _bits(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}"


def _size(values: list[int]) -> str:
    return format_count(round(sum(values) / len(values)))


def bamc_grid(records: list[dict]) -> render.Grid:
    rows = []
    for dataset in DATASETS:
        for entry in bamc_entries(dataset) + bamc_reference_entries(dataset):
            recs = runs(records, dataset, entry.name)
            if not recs:
                rows.append([dataset, entry.name, NOT_RUN, "", "", "", "", "", PAPER])
                continue
            infos = [r["bamc"] for r in recs]
            name = entry.name + _profile(recs)
            allocation = infos[0].get("allocation", "dp")
            label = "BAMC" if allocation == "dp" else f"{allocation} allocation"
            if allocation == "dp" and infos[0].get("bits_status"):
                label += f" (bits {infos[0]['bits_status']})"
            own = _by_seed(recs, lambda r: r["test_acc"])
            rows.append([dataset, name, label, _cell(list(own.values())), "", _bits([i["avg_bits"] for i in infos]),
                         _size([i["size_bytes"] for i in infos]), _seconds(recs, ("search", "bamc", "quantize")), PAPER])
            if all("before_snap" in i for i in infos):
                rows.append([dataset, name, "  before quantization (the model quantized)",
                             _cell([i["before_snap"]["test_acc"] for i in infos]), "", "32", "—", "—", PAPER])
            kinds = sorted({k for i in infos for k in i.get("baselines", {})}, key=ALLOCATION_ORDER.index)
            for kind in kinds:  # measured on the very model BAMC quantized, at its average width: paired by seed
                with_kind = [r for r in recs if kind in r["bamc"].get("baselines", {})]
                theirs = _by_seed(with_kind, lambda r, k=kind: r["bamc"]["baselines"][k]["test_acc"])
                rows.append([dataset, name, f"  {kind} allocation, same format", _cell(list(theirs.values())),
                             _paired(theirs, own), _bits([r["bamc"]["baselines"][kind]["avg_bits"] for r in with_kind]),
                             _size([r["bamc"]["baselines"][kind]["size_bytes"] for r in with_kind]), "—", PAPER])
            for key in sorted({k for i in infos for k in i.get("uniform", {})}, key=lambda k: int(k[1:])):
                with_key = [i["uniform"][key] for i in infos if key in i.get("uniform", {})]
                rows.append([dataset, name, f"uniform {key.upper()} ({with_key[0]['method']})",
                             _cell([u["test_acc"] for u in with_key]), "", str(with_key[0]["bits"]),
                             _size([u["size_bytes"] for u in with_key]), "0s", PAPER])
            rows.append([dataset, name, "float32 (start)", _cell([i["float"]["test_acc"] for i in infos]), "", "32",
                         _size([i["float_size_bytes"] for i in infos]), "—", PAPER])
    return render.Grid(
        "BAMC vs uniform precision (ours; paper column empty)",
        ["dataset", "entry", "precision", "test acc (%)", "BAMC − this, paired (95% CI)", "avg bits", "size (bytes)",
         "search time", "paper acc"],
        rows,
        ["All values are ours. The uniform W4/W8 rows quantize the model BAMC started from (weight-only, every BAMC layer "
         "at that width, per-row grids); BAMC's row is its model after the search and quantization; 'bits inferred' "
         "where every layer's width is the same over the --resolution sweep, else 'set by --resolution'.",
         "The indented rows are measured in the same run on the model BAMC quantized (before its snap): the "
         "uniform, random and Hessian-trace (HAWQ-v2) allocations at BAMC's average width or below, in BAMC's storage "
         "format (codebooks, or the --quantizer's grids), and uniform-above: every layer at the next whole width above "
         "BAMC's average (whole bits cannot meet a fractional average uniformly: the two uniform rows bracket it; "
         "read the avg bits column). '-3bit-<allocation>' entries are those baselines as runs of their own at 3 bits.",
         "A row uses the records of one profile (full, else reference, else smoke; named after the entry with its number "
         "of seeds). Over several seeds a cell is the mean ± the 95% Student-t half-width; the paired column is BAMC's "
         "accuracy minus that allocation's on the same seeds (same model, same bits), called better or worse only where "
         "its interval excludes zero.",
         "Search time: GPU (or CPU process) seconds of the search, prior-training and quantize phases (mean over seeds).",
         "paper acc: where BAMC's (JSTSP 2020) own number would go; none is in the thesis or our notes."])


def runs_in(records: list[dict], dataset: str, name: str, profile: str | None) -> list[dict]:
    """``runs`` restricted to one profile: the rows a search is compared with must be of the search's profile even
    where they were also run under a preferred one (a full uniform row is never paired with a reference search)."""
    return select_runs([r for r in records if r.get("profile") == profile], dataset, name)


def _aps_comparisons(dataset: str, records: list[dict], search_name: str, search: list[dict]) -> list[list[str]]:
    """APS (``search_name``) against its uniform multiplier and its random width sets (each seed's mean over the sets
    it ran), paired over the seeds both ran, in the search's profile."""
    profile = search[0].get("profile")
    own = _by_seed(search, lambda r: r["test_acc"])
    entries = aps_entries(dataset) + aps_reference_entries(dataset)
    others = {"uniform multiplier": [f"{search_name}-uniform"],
              "random width sets, pooled per seed": [e.name for e in entries
                                                     if e.name.startswith(search_name + APS_RANDOM_PREFIX)]}
    rows = []
    for label, names in others.items():
        per_seed: dict = {}
        for name in names:
            for r in runs_in(records, dataset, name, profile):
                per_seed.setdefault(r.get("seed"), []).append(r["test_acc"])
        if not per_seed:
            continue
        pooled = {seed: sum(v) / len(v) for seed, v in per_seed.items()}
        count = f"{sum(map(len, per_seed.values()))} runs, {len(per_seed)} seeds"
        rows.append([dataset, f"  {search_name} vs {label}", count, _cell(list(pooled.values())),
                     _paired(pooled, own), "", "", "", "", PAPER])
    return rows


def aps_grid(records: list[dict]) -> render.Grid:
    rows = []
    for dataset in DATASETS:
        entries = aps_entries(dataset) + aps_reference_entries(dataset)
        names = [e.name for e in entries] + list(APS_REFERENCES)
        searches = {e.name for e in entries if e.options.get("strategy", "search") == "search"}
        for name in names:
            recs = runs(records, dataset, name)
            if not recs:
                rows.append([dataset, name, NOT_RUN, "", "", "", "", "", "", PAPER])
                continue
            lats = [next(iter(r["latency_ms"].values()))["median_ms"] for r in recs if r.get("latency_ms")]
            archs = sorted({r.get("arch") or "—" for r in recs})
            rows.append([dataset, name + _profile(recs), " / ".join(archs), _cell([r["test_acc"] for r in recs]), "",
                         _size([r["params"] for r in recs]), _size([r["macs"] for r in recs]), _cell(lats),
                         _seconds(recs), PAPER])
            if name in searches:
                rows += _aps_comparisons(dataset, records, name, recs)
    return render.Grid(
        "APS vs AdaGrow vs fixed (ours; paper column empty)",
        ["dataset", "entry", "arch / widths", "test acc (%)", "APS − this, paired (95% CI)", "params", "MACs",
         "latency (ms)", "total time", "paper acc"],
        rows,
        ["All values are ours. APS rows: searched widths, retrained in the same run; total time = search + retrain "
         "(+ eval). AdaGrow and fixed rows come from the dataset's own suite.",
         "A row uses the records of one profile (full, else reference, else smoke; named after the entry with its number "
         "of seeds); over several seeds a cell is the mean ± the 95% Student-t half-width (params and MACs: means).",
         "Indented 'vs' rows, in the search's own profile: the uniform multiplier's accuracy, or the mean of the random "
         "width sets a seed ran (same MACs budget and retraining epochs), then APS's accuracy minus it, mean ± 95% "
         "Student-t interval of the per-seed differences; better or worse only where the interval excludes zero.",
         "paper acc: where APS's (NeurIPS 2020) own number would go; none is in the thesis or our notes."])


def grids(records: list[dict]) -> list[tuple[str, render.Grid]]:
    """The second thesis' tables (file stem, grid); ``adagrow report`` writes them with the thesis' tables."""
    return [("second-thesis-bamc", bamc_grid(records)), ("second-thesis-aps", aps_grid(records))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.second_thesis", description=__doc__.splitlines()[0])
    p.add_argument("--results", default=RESULTS_DIR)
    p.add_argument("--out", default=TABLES_DIR)
    args = p.parse_args(argv)
    results = Path(args.results)
    records: list[dict[str, Any]] = read_records(results) if results.exists() else []
    out = Path(args.out)
    for name, grid in grids(records):
        atomic_write_text(out / f"{name}.md", render.markdown(grid))
        print(out / f"{name}.md")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
