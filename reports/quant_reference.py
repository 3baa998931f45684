"""Quantization of a suite's converged models (issue 19, Table 4-1 on the data we hold): one page per dataset and
profile, and Table 4-1's rows for those datasets.

The records come from ``adagrow suite <dataset> --quantize`` (``suites.quantize``): each names its base run, the
base's seed and profile, and holds the base's FP32 test accuracy measured in the same call (``fp32_accuracy``), so
the drop a quantization costs is paired within a record, seed by seed.  A page (``quant-<dataset>-<profile>``) shows
per base model and precision × method: n seeds, the test accuracy after quantization and the base's FP32 accuracy
(mean ± 95% Student-t interval over seeds), the paired drop (quantized − FP32) with its interval, and the paired
difference to rounding (RTN) at the same precision with its verdict (``reports.stats``: "better" / "worse" only
where the interval excludes zero).  Records of one profile only (``match.trained_profile``), the latest per
(base seed, precision, method).  FP16 is quantized on CUDA only; on a CPU-only record set its row says so.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from reports import render
from reports.formatting import MISSING
from reports.match import act_calib, is_quant, one_calibration, quant_seed, record_tag, trained_profile, training_profiles
from reports.stats import mean_ci, paired_difference
from reports.thesis_reference import ThesisRow, parse_value

Record = dict[str, Any]
NOT_RUN = "not run"
FP16_CUDA_ONLY = "not run (FP16: CUDA only)"
PRECISIONS = ("fp16", "int8", "w4a16")
CALIB_DATA_TEXT = {"train-plain": "training images without augmentation",
                   "train-augmented": "the augmented training loader (records before 2026-12-07)"}
# The thesis' names of our methods (Table 4-1's "Quant method" column); the others keep their own names.
THESIS_NAMES = {"rtn": "direct", "obs": "OBS", "adagrow": "proposed"}
# A base model's display name per suite entry (the rows of Table 4-1 on our datasets)
BASE_NAMES = {"adagrow-vgg-3b": "AdaGrow-VGG (3 blocks)", "fixed-resnet18-thesis": "ResNet-18 (thesis recipe)"}


def _defaults() -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    from suites.quantize import QUANT_BASES, TABLE_METHODS  # the suites define which runs are quantized

    return QUANT_BASES, TABLE_METHODS


def by_cell(records: list[Record], dataset: str, profile: str) -> dict[tuple[str, str, str], dict[Any, Record]]:
    """(tag, precision, quant_method) -> {base seed: its latest record} for one dataset and profile (an INT8 cell:
    of one activation calibration only, ``match.one_calibration``)."""
    profiles = training_profiles(records)
    cells: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for r in records:
        if (is_quant(r) and r.get("dataset") == dataset and record_tag(r)
                and trained_profile(r, profiles) == profile and r.get("accuracy") is not None):
            cells[(record_tag(r), r["precision"], r.get("quant_method"))].append(r)
    return {key: {quant_seed(r): r for r in one_calibration(rs)} for key, rs in cells.items()}


def pages_present(records: list[Record]) -> list[tuple[str, str]]:
    """(dataset, profile) of every page: each pair the quantization records hold, and each dataset with default
    bases under the reference profile (so its rows say "not run" until they are)."""
    profiles = training_profiles(records)
    found = {(str(r["dataset"]), trained_profile(r, profiles)) for r in records if is_quant(r) and r.get("dataset")}
    found |= {(dataset, "reference") for dataset in _defaults()[0]}
    return sorted(found)


def _estimate_cell(values: list[float]) -> str:
    return mean_ci(values).format() if values else MISSING


def _paired_cell(base: dict[Any, float], other: dict[Any, float], verdict: bool) -> str:
    paired = paired_difference(base, other)
    if paired is None:
        return MISSING
    text = f"{paired.difference.format()} (n={len(paired.seeds)})"
    return f"{text}, {paired.verdict}" if verdict else text


HEADER = ["Base model", "precision", "method", "n", "test acc % after quantization", "FP32 test acc % (same seeds)",
          "paired drop: quantized − FP32 (95% CI)", "paired Δ vs RTN, same precision (95% CI), verdict"]


def _rows_of(cells: dict, tag: str, methods: tuple[str, ...]) -> list[tuple[str, str]]:
    present = {(p, m) for (t, p, m) in cells if t == tag}
    wanted = [("fp16", "cast")] + [(p, m) for p in ("int8", "w4a16") for m in methods]
    extra = sorted(present - set(wanted), key=lambda pm: (PRECISIONS.index(pm[0]) if pm[0] in PRECISIONS else 9, pm[1]))
    return wanted + extra


def grid(records: list[Record], dataset: str, profile: str) -> render.Grid:
    bases, methods = _defaults()
    cells = by_cell(records, dataset, profile)
    tags = list(bases.get(dataset, ())) + sorted({t for t, _, _ in cells} - set(bases.get(dataset, ())))
    lines = []
    for tag in tags:
        name = f"{BASE_NAMES.get(tag, tag)}: {tag}"
        for precision, method in _rows_of(cells, tag, methods):
            by_seed = cells.get((tag, precision, method), {})
            label = [name, precision.upper(), THESIS_NAMES.get(method, method)]
            if not by_seed:
                lines.append(label + ["0", FP16_CUDA_ONLY if precision == "fp16" else NOT_RUN] + [MISSING] * 3)
                continue
            acc = {s: r["accuracy"] for s, r in by_seed.items()}
            fp32 = {s: r["fp32_accuracy"] for s, r in by_seed.items() if r.get("fp32_accuracy") is not None}
            rtn = {s: r["accuracy"] for s, r in cells.get((tag, precision, "rtn"), {}).items()}
            versus = MISSING if method in ("rtn", "cast") else _paired_cell(rtn, acc, verdict=True)
            lines.append(label + [str(len(by_seed)), _estimate_cell(list(acc.values())),
                                  _estimate_cell(list(fp32.values())), _paired_cell(fp32, acc, verdict=False), versus])
    devices = sorted({str(r.get("device")) for c in cells.values() for r in c.values() if r.get("device")})
    calibs = sorted({act_calib(r) for c in cells.values() for r in c.values() if act_calib(r)})
    from adagrow.quant.run import calib_data  # here: the quantization package imports torch

    data = sorted({calib_data(r) for c in cells.values() for r in c.values() if calib_data(r)})
    notes = [
        f"Quantization records of base runs of profile {profile!r} only (never mixed with another profile), the "
        "latest per base seed; n = seeds.  Written by `adagrow suite <dataset> --quantize` (docs/methods/quantization.md).",
        "a ± b: the mean over the n seeds and the half-width of its 95% Student-t interval (one seed: no interval).",
        "FP32: the base's deploy model as loaded by the same call; paired drop: quantized − FP32 seed by seed, with its "
        "interval.  Paired Δ vs RTN: this method − rounding at the same precision over the seeds both have; 'better' / "
        "'worse' only where the interval excludes zero, else 'no difference shown'.",
        "direct: round to nearest (rtn); OBS: GPTQ-style compensation in natural order; proposed: the thesis' "
        "compensation with the coverage + importance rearrangement (adagrow).  INT8 = W8A8, W4A16 per channel; both "
        "simulated (fake-quantized), accuracy only.  INT8 activations: one range per tensor, calibrated by "
        f"{' / '.join(calibs) or '—'} (histogram: the least-error clipping of torch's HistogramObserver; max: the "
        "largest |x| seen); a cell holds one calibration only.  Calibration images: "
        f"{' / '.join(CALIB_DATA_TEXT.get(d, d) for d in data) or '—'}.",
        f"{FP16_CUDA_ONLY}: FP16 is quantized on CUDA only (CPU half-precision convolutions are emulated and slow).",
        f"measured on: {', '.join(devices) or 'no record yet'}.",
    ]
    return render.Grid(f"Quantization of the converged models — {dataset}, profile {profile}", HEADER, lines, notes)


def grids(records: list[Record]) -> list[tuple[str, render.Grid]]:
    """(file stem, table) of every quantization page, written by ``adagrow report``."""
    return [(f"quant-{dataset}-{profile}", grid(records, dataset, profile)) for dataset, profile in pages_present(records)]


def table_rows(table_id: str) -> list[ThesisRow]:
    """Our rows of Table 4-1 on the datasets the suites quantize (the thesis has CIFAR-10 only): per base model FP32,
    FP16, then INT8 and W4A16 under each of Table 4-1's methods; matched by ``match.quant_accuracy``."""
    if table_id != "4-1":
        return []
    bases, methods = _defaults()
    rows = []
    for dataset, tags in bases.items():
        for tag in tags:
            label = f"{BASE_NAMES.get(tag, tag)} ({dataset}, ours only)"
            settings = [("fp32", "-"), ("fp16", "-")] + [(p, m) for p in ("int8", "w4a16") for m in methods]
            for precision, method in settings:
                cells = {"quant_method": THESIS_NAMES.get(method, method), "precision": precision.upper(),
                         "backend": "PyTorch"}
                select = {"precision": precision} | ({"quant_method": method} if method != "-" else {})
                rows.append(ThesisRow((dataset, tag), label, {c: parse_value(v) for c, v in cells.items()}, select))
    return rows
