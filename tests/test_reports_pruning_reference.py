"""The reference pruning table (reports/pruning_reference.py, issue 19): the shared dense base once with its own
seconds, each pruning row's accuracy right after the prune and after fine-tuning as mean ± 95% CI over seeds, the
paired difference to the base of the same seed with its verdict, "not run" where no record exists, one profile only.
Records are fabricated; the expected intervals come from scipy.stats on the same fixed numbers, not from
reports.stats."""

from __future__ import annotations

import math
import statistics

from scipy import stats

from reports import pruning_reference as P
from reports.generate import main
from tests.test_reports import fabricated_record, table_lines, write_records

BASE = "fixed-resnet18-thesis"


def _ci(values) -> tuple[float, float]:
    """Mean and 95% Student-t half-width, from scipy (the oracle)."""
    n = len(values)
    return statistics.fmean(values), stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n)


def _fmt(values, digits=2) -> str:
    mean, hw = _ci(values)
    return f"{mean:.{digits}f} ± {hw:.{digits}f}"


def _base(seed, acc, profile="reference"):
    r = fabricated_record(BASE, seed, acc, profile=profile, dataset="mnist", method="fixed", model="resnet18")
    r["run_dir"] = f"results/runs/mnist-fixed-{BASE}-thesis-{profile}-s{seed}-0000000{seed}"
    r["gpu_seconds"] = {"train": 1200.0 + 10 * seed, "eval": 30.0, "test": 5.0}
    return r


def _pruned(tag, seed, acc, after_prune, *, base_seed=None, method="magnitude", profile="reference", sparsity=0.5):
    r = fabricated_record(tag, seed, acc, profile=profile, dataset="mnist", method=method, model="resnet18")
    source = seed if base_seed is None else base_seed
    # written on another machine, under another --output: only the run directory's name ties it to its base
    r["pruning"] = {"pretrained_from": f"/elsewhere/runs/mnist-fixed-{BASE}-thesis-reference-s{source}-0000000{source}"
                                       "/deploy.pt", "after_prune": {"test_acc": after_prune}, "achieved_sparsity": sparsity,
                    "pretrain_seconds": 1200.0}
    r["gpu_seconds"] = {"prune": 2.0 + seed, "finetune": 400.0 + 20 * seed, "eval": 10.0}
    return r


LAYOUT = P.Layout("mnist", BASE, ("prune-resnet18-magnitude-50-ft", "prune-resnet18-magnitude-70-ft",
                                  "prune-resnet18-dsp-50-ft", "prune-resnet18-bnslim-50-ft"), ("adagrow-vgg-3b",))
BASE_ACC = [99.40, 99.50, 99.45]
MAG50 = [99.30, 99.35, 99.20]  # within noise of the base
MAG70 = [98.90, 99.02, 98.93]  # below it on every seed
MAG50_AFTER_PRUNE = [97.0, 96.2, 98.1]


def _records():
    recs = [_base(s, a) for s, a in enumerate(BASE_ACC)]
    recs += [_pruned("prune-resnet18-magnitude-50-ft", s, a, p) for s, (a, p) in enumerate(zip(MAG50, MAG50_AFTER_PRUNE))]
    recs += [_pruned("prune-resnet18-magnitude-70-ft", s, a, 90.0, sparsity=0.7) for s, a in enumerate(MAG70)]
    # DSP: seed 1 was pruned from seed 0's base (a mistake the table must not pair)
    recs += [_pruned("prune-resnet18-dsp-50-ft", 0, 99.1, 95.0, method="dsp"),
             _pruned("prune-resnet18-dsp-50-ft", 1, 99.2, 95.0, method="dsp", base_seed=0)]
    # a smoke record of slimming: another profile, never in this table
    recs.append(_pruned("prune-resnet18-bnslim-50-ft", 0, 60.0, 30.0, method="slim", profile="smoke"))
    recs += [fabricated_record("adagrow-vgg-3b", s, a, profile="reference", dataset="mnist", model="vgg")
             for s, a in enumerate([99.30, 99.38, 99.33])]
    return recs


def _rows():
    g = P.grid(_records(), LAYOUT)
    assert g.header[1:9] == ["n", "params", "MACs", "sparsity %", "test acc % after prune", "test acc % after fine-tuning",
                             "paired Δ acc vs dense base (95% CI)", "verdict"]
    return {r[0]: dict(zip(g.header, r)) for r in g.rows}, g


def test_the_base_is_shown_once_with_its_own_training_seconds():
    rows, _ = _rows()
    base = rows[f"dense base: {BASE}"]
    assert base["n"] == "3" and base["test acc % after fine-tuning"] == _fmt(BASE_ACC)
    assert base["training s (own)"] == _fmt([1235.0, 1245.0, 1255.0], 0)  # every phase of its record
    assert base["paired Δ acc vs dense base (95% CI)"] == "baseline"


def test_each_pruning_row_has_both_accuracies_the_paired_difference_and_its_own_seconds():
    rows, _ = _rows()
    mag = rows["prune-resnet18-magnitude-50-ft"]
    assert mag["test acc % after prune"] == _fmt(MAG50_AFTER_PRUNE)
    assert mag["test acc % after fine-tuning"] == _fmt(MAG50)
    diffs = [m - b for m, b in zip(MAG50, BASE_ACC)]
    mean, hw = _ci(diffs)
    assert mean + hw > 0 > mean - hw  # the fixed numbers straddle zero ...
    assert mag["paired Δ acc vs dense base (95% CI)"] == f"{mean:.2f} ± {hw:.2f} (n=3)"
    assert mag["verdict"] == "no difference shown"  # ... so no verdict
    # its own seconds only: the base's 1,200 s (pretrain_seconds) are in the base's row, not added again
    assert mag["fine-tune s"] == _fmt([400.0, 420.0, 440.0], 0)
    assert mag["prune s"] == _fmt([2.0, 3.0, 4.0], 0)
    assert mag["training s (own)"] == _fmt([412.0, 433.0, 454.0], 0)
    assert mag["sparsity %"] == "50.0 ± 0.0"
    worse = rows["prune-resnet18-magnitude-70-ft"]
    mean, hw = _ci([m - b for m, b in zip(MAG70, BASE_ACC)])
    assert mean + hw < 0 and worse["verdict"] == "worse"
    assert worse["paired Δ acc vs dense base (95% CI)"] == f"{mean:.2f} ± {hw:.2f} (n=3)"


def test_a_seed_pruned_from_another_base_run_is_not_paired_and_is_marked():
    rows, g = _rows()
    dsp = rows["prune-resnet18-dsp-50-ft"]
    assert dsp["n"] == "2"  # both seeds' accuracies are shown ...
    # ... but only seed 0 is paired with its base: one difference, no interval, no verdict
    assert dsp["paired Δ acc vs dense base (95% CI)"] == f"{99.1 - 99.40:.2f} (n=1) {P.OTHER_BASE}"
    assert dsp["verdict"] == "no difference shown"
    assert any(note.startswith(P.OTHER_BASE) for note in g.footnotes)


def test_rows_without_records_of_the_profile_say_not_run_and_adagrow_sits_beside_them():
    rows, _ = _rows()
    slim = rows["prune-resnet18-bnslim-50-ft"]  # only a smoke record: never mixed into the reference table
    assert [v for k, v in slim.items() if k != "Row"] == ["not run"] * 11
    ada = rows["AdaGrow: adagrow-vgg-3b"]
    assert ada["test acc % after fine-tuning"] == _fmt([99.30, 99.38, 99.33])
    assert ada["training s (own)"] == _fmt([105.0] * 3, 0)
    assert ada["test acc % after prune"] == "—" and ada["fine-tune s"] == "—"
    empty = P.grid([], LAYOUT)
    assert all(set(r[1:]) == {"not run"} for r in empty.rows)


def test_the_mnist_table_follows_the_suites():
    (layout,) = [lay for lay in P.layouts() if lay.dataset == "mnist"]
    assert layout.base == BASE and len(layout.rows) == 7
    assert set(layout.adagrow) == {"adagrow-vgg-3b", "adagrow-resnet-3b"}


def test_adagrow_report_writes_it(tmp_path):
    results = write_records(tmp_path / "results" / "mnist.jsonl", _records())
    out = tmp_path / "out"
    assert main(["--results", str(results.parent), "--out", str(out), "--no-plots", "--format", "md"]) == 0
    rows = table_lines(out / "pruning-mnist-reference.md")
    assert rows["prune-resnet18-magnitude-70-ft 3"][8] == "worse"
    assert rows["prune-resnet18-dsp-70-ft not run"][2] == "not run"
