"""Tables for the second thesis' methods (#13): BAMC vs uniform precision, APS vs AdaGrow vs fixed.

    python -m reports.second_thesis [--results results/] [--out reports/tables/]

Every value is ours, read from the records of the ``bamc-<dataset>`` / ``aps-<dataset>`` suites and, for
the AdaGrow and fixed rows of the APS table, the dataset's own suite.  Neither the thesis (seeds/002) nor
the notes we hold give numbers for these experiments: the "paper" column is where the paper's own value
would go and stays empty ("—") until one is found.  An entry without a record says "not run".
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adagrow.records.store import atomic_write_text, read_records
from reports import RESULTS_DIR, TABLES_DIR, render
from reports.formatting import format_count
from suites.second_thesis import DATASETS, aps_entries, bamc_entries

PAPER = "—"  # the paper's cell: empty until its own number is found
NOT_RUN = "not run"
# the AdaGrow and fixed rows of the APS table (the dataset suite's entry names)
ALLOCATION_ORDER = ("uniform", "random", "hessian")  # BAMC's comparison rows, in this order
APS_REFERENCES = ("adagrow-vgg-3b", "fixed-resnet18-thesis", "fixed-resnet18-standard")


def latest(records: list[dict], dataset: str, name: str) -> dict | None:
    """The newest ok record of the suite entry ``name`` on ``dataset`` (records name the entry in ``tag``)."""
    found = [r for r in records if r.get("status") == "ok" and r.get("dataset") == dataset and r.get("tag") == name]
    return found[-1] if found else None


def _acc(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _seconds(rec: dict, phases: tuple[str, ...] | None = None) -> str:
    secs = rec.get("gpu_seconds") or {}
    total = sum(v for k, v in secs.items() if phases is None or k in phases)
    return f"{total:.0f}s"


def _profile(rec: dict) -> str:
    """Every row names its profile unless it is the thesis' own (``full``): the rows of one table may come from
    different profiles (a smoke search beside a converged reference model), and must say so."""
    profile = rec.get("profile") or "full"
    return "" if profile == "full" else f" ({profile})"


def bamc_grid(records: list[dict]) -> render.Grid:
    rows = []
    for dataset in DATASETS:
        for entry in bamc_entries(dataset):
            rec = latest(records, dataset, entry.name)
            if rec is None:
                rows.append([dataset, entry.name, NOT_RUN, "", "", "", "", PAPER])
                continue
            info = rec["bamc"]
            name = entry.name + _profile(rec)
            allocation = info.get("allocation", "dp")
            label = "BAMC" if allocation == "dp" else f"{allocation} allocation"
            if allocation == "dp" and info.get("bits_status"):
                label += f" (bits {info['bits_status']})"
            rows.append([dataset, name, label, _acc(rec["test_acc"]), f"{info['avg_bits']:.2f}",
                         format_count(info["size_bytes"]), _seconds(rec, ("search", "bamc", "quantize")), PAPER])
            if "before_snap" in info:
                rows.append([dataset, name, "  before quantization (the model quantized)",
                             _acc(info["before_snap"]["test_acc"]), "32", "—", "—", PAPER])
            baselines = info.get("baselines", {})
            for kind, row in sorted(baselines.items(), key=lambda kv: ALLOCATION_ORDER.index(kv[0])):
                rows.append([dataset, name, f"  {kind} allocation, same bits and format", _acc(row["test_acc"]),
                             f"{row['avg_bits']:.2f}", format_count(row["size_bytes"]), "—", PAPER])
            for key, row in info.get("uniform", {}).items():
                rows.append([dataset, name, f"uniform {key.upper()} ({row['method']})",
                             _acc(row["test_acc"]), str(row["bits"]), format_count(row["size_bytes"]), "0s", PAPER])
            rows.append([dataset, name, "float32 (start)", _acc(info["float"]["test_acc"]), "32",
                         format_count(info["float_size_bytes"]), "—", PAPER])
    return render.Grid(
        "BAMC vs uniform precision (ours; paper column empty)",
        ["dataset", "entry", "precision", "test acc (%)", "avg bits", "size (bytes)", "search time", "paper acc"],
        rows,
        ["All values are ours. The uniform W4/W8 rows quantize the model BAMC started from (weight-only, every BAMC layer "
         "at that width, per-row grids); BAMC's row is its model after the search and quantization; 'bits inferred' "
         "where every layer's width is the same over the --resolution sweep, else 'set by --resolution'.",
         "The indented rows are measured in the same run on the model BAMC quantized (before its snap): the "
         "uniform, random and Hessian-trace (HAWQ-v2) allocations at BAMC's average width or below, in BAMC's storage "
         "format (codebooks, or the --quantizer's grids). '-3bit-<allocation>' entries are those baselines as runs "
         "of their own at 3 bits.",
         "Search time: GPU (or CPU process) seconds of the search, prior-training and quantize phases.",
         "paper acc: where BAMC's (JSTSP 2020) own number would go; none is in the thesis or our notes."])


def aps_grid(records: list[dict]) -> render.Grid:
    rows = []
    for dataset in DATASETS:
        names = [e.name for e in aps_entries(dataset)] + list(APS_REFERENCES)
        for name in names:
            rec = latest(records, dataset, name)
            if rec is None:
                rows.append([dataset, name, NOT_RUN, "", "", "", "", "", PAPER])
                continue
            lat = next(iter(rec["latency_ms"].values()))["median_ms"] if rec.get("latency_ms") else None
            rows.append([dataset, name + _profile(rec), rec.get("arch") or "—", _acc(rec["test_acc"]),
                         format_count(rec["params"]), format_count(rec["macs"]), _acc(lat), _seconds(rec), PAPER])
    return render.Grid(
        "APS vs AdaGrow vs fixed (ours; paper column empty)",
        ["dataset", "entry", "arch / widths", "test acc (%)", "params", "MACs", "latency (ms)", "total time", "paper acc"],
        rows,
        ["All values are ours. APS rows: searched widths, retrained in the same run; total time = search + retrain "
         "(+ eval). AdaGrow and fixed rows come from the dataset's own suite.",
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
