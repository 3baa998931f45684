"""The quantization report of the converged models (issue 19, Table 4-1 on MNIST): Table 4-1's MNIST cells and the
per-profile quantization page, from fabricated records (values are made up, not measurements).  Expected means and
intervals are computed here with ``scipy.stats`` (Student t over seeds, paired over the same seeds), never with the
report's own code; a cell never mixes profiles: smoke records beside reference ones change nothing."""

from __future__ import annotations

import math
import statistics

from scipy import stats

from reports.generate import main
from tests.test_reports import write_records

SEEDS = (0, 1, 2)
FP32 = {"adagrow-vgg-3b": (99.30, 99.42, 99.35), "fixed-resnet18-thesis": (99.51, 99.40, 99.47)}
# (tag, precision, method) -> accuracy per seed
ACC = {
    ("adagrow-vgg-3b", "w4a16", "rtn"): (97.10, 98.02, 96.55),
    ("adagrow-vgg-3b", "w4a16", "obs"): (99.20, 99.31, 99.18),
    ("adagrow-vgg-3b", "w4a16", "adagrow"): (99.25, 99.33, 99.30),
    ("adagrow-vgg-3b", "int8", "rtn"): (99.28, 99.40, 99.36),
    ("fixed-resnet18-thesis", "int8", "adagrow"): (99.50, 99.41, 99.45),
}


def quant_record(tag: str, seed: int, precision: str, method: str, acc: float, *, profile: str = "reference",
                 fp32: float | None = None) -> dict:
    """A quantization record as ``adagrow suite mnist --quantize`` writes one (the fields the report reads)."""
    run = f"mnist-{tag}-{profile}-s{seed}-0000abcd"
    return {"kind": "quant", "dataset": "mnist", "tag": tag, "precision": precision, "quant_method": method,
            "accuracy": acc, "fp32_accuracy": FP32[tag][seed] if fp32 is None else fp32, "seed": seed,
            "base_seed": seed, "base_run": run, "profile": profile, "source_checkpoint_run": f"results/runs/{run}",
            "device": "cpu: Fake CPU"}


def reference_records() -> list[dict]:
    return [quant_record(tag, s, p, m, accs[s]) for (tag, p, m), accs in ACC.items() for s in SEEDS]


def smoke_records() -> list[dict]:
    """Far-off smoke numbers of the same cells: if any leaked into a reference cell, its value would move."""
    return [quant_record(tag, s, p, m, 50.0 + s, profile="smoke", fp32=60.0) for (tag, p, m) in ACC for s in SEEDS]


def half_width(values) -> float:
    return stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def ci_text(values) -> str:
    return f"{statistics.fmean(values):.2f} ± {half_width(values):.2f}"


def _report(tmp_path, records) -> dict[str, str]:
    results = write_records(tmp_path / "results" / "quant-mnist.jsonl", records)
    out = tmp_path / "out"
    assert main(["--results", str(results.parent), "--out", str(out), "--format", "md", "--no-plots"]) == 0
    return {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.md")}


def _rows(text: str) -> dict[tuple[str, ...], list[str]]:
    """Data rows of a Markdown table keyed by their first three cells."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) > 3 and not set(cells[0]) <= {"-"}:
            rows[tuple(cells[:3])] = cells
    return rows


def test_the_quantization_page_shows_means_drops_and_paired_differences_with_their_intervals(tmp_path):
    pages = _report(tmp_path, smoke_records() + reference_records() + smoke_records())
    rows = _rows(pages["quant-mnist-reference.md"])
    vgg = "AdaGrow-VGG (3 blocks): adagrow-vgg-3b"
    proposed = rows[(vgg, "W4A16", "proposed")]
    acc, rtn, fp32 = ACC[("adagrow-vgg-3b", "w4a16", "adagrow")], ACC[("adagrow-vgg-3b", "w4a16", "rtn")], FP32["adagrow-vgg-3b"]
    assert proposed[3] == "3"
    assert proposed[4] == ci_text(acc)
    assert proposed[5] == ci_text(fp32)
    drop = [a - f for a, f in zip(acc, fp32)]
    assert proposed[6] == f"{ci_text(drop)} (n=3)"
    # paired against rounding over the same seeds: a paired t-interval on the per-seed differences
    diff = [a - r for a, r in zip(acc, rtn)]
    low, high = stats.ttest_rel(acc, rtn).confidence_interval(0.95)
    assert low > 0  # these numbers are chosen so that the interval excludes zero ...
    assert proposed[7] == f"{ci_text(diff)} (n=3), better"  # ... and the page says so
    assert math.isclose(statistics.fmean(diff) - half_width(diff), low, abs_tol=1e-9)
    # INT8 RTN vs FP32 on the VGG: a paired drop whose interval is shown; RTN has no "vs RTN" cell
    rtn8 = rows[(vgg, "INT8", "direct")]
    assert rtn8[6] == f"{ci_text([a - f for a, f in zip(ACC[('adagrow-vgg-3b', 'int8', 'rtn')], fp32)])} (n=3)"
    assert rtn8[7] == "—"
    # a method with no RTN record at its precision: no pairing, never a verdict
    assert rows[("ResNet-18 (thesis recipe): fixed-resnet18-thesis", "INT8", "proposed")][7] == "—"
    # cells without records say so; FP16 says why (CUDA only)
    assert rows[(vgg, "INT8", "OBS")][4] == "not run"
    assert rows[(vgg, "FP16", "cast")][4] == "not run (FP16: CUDA only)"
    # the smoke records get a page of their own, never a cell here
    smoke = _rows(pages["quant-mnist-smoke.md"])
    assert smoke[(vgg, "W4A16", "proposed")][4] == "51.00 ± 2.48"  # 50, 51, 52: t(0.975, 2) · 1 / √3 = 2.48


def test_a_difference_whose_interval_spans_zero_is_no_difference_shown(tmp_path):
    records = [quant_record("adagrow-vgg-3b", s, "int8", m, a)
               for m, accs in (("rtn", (99.30, 99.40, 99.35)), ("obs", (99.38, 99.33, 99.37))) for s, a in zip(SEEDS, accs)]
    rows = _rows(_report(tmp_path, records)["quant-mnist-reference.md"])
    diff = [0.08, -0.07, 0.02]
    low, high = stats.ttest_rel((99.38, 99.33, 99.37), (99.30, 99.40, 99.35)).confidence_interval(0.95)
    assert low < 0 < high
    assert rows[("AdaGrow-VGG (3 blocks): adagrow-vgg-3b", "INT8", "OBS")][7] == f"{ci_text(diff)} (n=3), no difference shown"


def test_table_4_1s_mnist_cells_are_reference_means_with_intervals_never_mixed_with_smoke(tmp_path):
    pages = _report(tmp_path, reference_records() + smoke_records())
    lines = [line for line in pages["table4-1.md"].splitlines() if "(mnist, ours only)" in line]
    rows = {tuple(c.strip() for c in line.strip("|").split(" | ")[:3]): line for line in lines}
    vgg, resnet = "AdaGrow-VGG (3 blocks) (mnist, ours only)", "ResNet-18 (thesis recipe) (mnist, ours only)"
    assert f"| {ci_text(ACC[('adagrow-vgg-3b', 'w4a16', 'adagrow')])} (reference) |" in rows[(vgg, "proposed", "W4A16")]
    assert f"| {ci_text(ACC[('adagrow-vgg-3b', 'w4a16', 'rtn')])} (reference) |" in rows[(vgg, "direct", "W4A16")]
    # FP32: the base's accuracy the quantization records measured, one per seed
    assert f"| {ci_text(FP32['adagrow-vgg-3b'])} (reference) |" in rows[(vgg, "-", "FP32")]
    assert rows[(vgg, "-", "FP32")].endswith("| 3 (reference) |")
    assert "not run (FP16: CUDA only)" in rows[(resnet, "-", "FP16")]
    assert "| not run |" in rows[(resnet, "OBS", "W4A16")]
    assert "(smoke)" not in "\n".join(lines)


def test_a_cell_with_only_smoke_records_is_marked_smoke(tmp_path):
    pages = _report(tmp_path, smoke_records())
    (line,) = [line for line in pages["table4-1.md"].splitlines()
               if line.startswith("| AdaGrow-VGG (3 blocks) (mnist, ours only) | proposed | W4A16")]
    assert "| 51.00 ± 2.48 (smoke) |" in line and line.endswith("| 3 (smoke) |")


def test_an_int8_cell_holds_one_activation_calibration_the_default_where_present(tmp_path):
    # seeds 0-2 under the maximum (records from before the option name none), then seed 0 again under the histogram
    old = [quant_record("adagrow-vgg-3b", s, "int8", "rtn", a) for s, a in zip(SEEDS, (93.0, 94.0, 96.0))]
    new = [{**quant_record("adagrow-vgg-3b", 0, "int8", "rtn", 84.5), "act_calib": "histogram"}]
    vgg = ("AdaGrow-VGG (3 blocks): adagrow-vgg-3b", "INT8", "direct")
    pages = _report(tmp_path, old + new)
    assert _rows(pages["quant-mnist-reference.md"])[vgg][3:5] == ["3", ci_text((93.0, 94.0, 96.0))]  # never 84.5
    assert "calibrated by max" in pages["quant-mnist-reference.md"]
    line = next(row for row in pages["table4-1.md"].splitlines()
                if "AdaGrow-VGG (3 blocks) (mnist, ours only) | direct | INT8" in row)
    assert f"| {ci_text((93.0, 94.0, 96.0))} (reference) |" in line
    # histogram records alone: the cell is theirs, and the page says so
    pages = _report(tmp_path / "b", new)
    assert _rows(pages["quant-mnist-reference.md"])[vgg][3:5] == ["1", "84.50"]
    assert "calibrated by histogram" in pages["quant-mnist-reference.md"]


def test_a_cell_uses_records_calibrated_on_plain_training_images_once_there_are_any(tmp_path):
    # records without calib_data calibrated on the augmented training loader (before 2026-12-07)
    old = [quant_record("adagrow-vgg-3b", s, "w4a16", "rtn", a) for s, a in zip(SEEDS, (97.0, 97.2, 97.4))]
    new = [{**quant_record("adagrow-vgg-3b", 1, "w4a16", "rtn", 98.5), "calib_data": "train-plain"}]
    vgg = ("AdaGrow-VGG (3 blocks): adagrow-vgg-3b", "W4A16", "direct")
    pages = _report(tmp_path, old + new)
    assert _rows(pages["quant-mnist-reference.md"])[vgg][3:5] == ["1", "98.50"]  # the augmented records are left out
    assert "training images without augmentation" in pages["quant-mnist-reference.md"]
    pages = _report(tmp_path / "b", old)
    assert _rows(pages["quant-mnist-reference.md"])[vgg][3:5] == ["3", ci_text((97.0, 97.2, 97.4))]
    assert "the augmented training loader" in pages["quant-mnist-reference.md"]
