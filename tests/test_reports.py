"""The thesis' reference values and the report generator.

The generator tests write FABRICATED records (made up in this file, to tmp_path only) and check
that each lands beside the right thesis row, that every other row says "not run", and that the
figures are PNG files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adagrow.errors import AdaGrowError
from reports import plots
from reports.generate import main
from reports.thesis_reference import CNN_DATASETS, TABLES, parse_value
from suites.datasets import text_suite, vision_suite
from suites.growing import GROWING_BASELINES
from suites.pruning import MNIST_REFERENCE_PRUNING

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------ reference
@pytest.mark.parametrize("text,number", [("669.29K", 669_290.0), ("2.65M", 2.65e6), ("1.83G", 1.83e9),
                                         ("93.14", 93.14), ("2536s", 2536.0), ("948.63μs", 0.94863),
                                         ("278.82 $\\mu$ s", 0.27882), ("10.95ms", 10.95)])
def test_parse_value_numbers(text, number):
    value = parse_value(text)
    assert value.text == text and value.number == pytest.approx(number)


@pytest.mark.parametrize("text", ["VGG-2-2-2", "-", "", "3-4-6-3 bottleneck", "D4W384"])
def test_parse_value_keeps_text_without_number(text):
    assert parse_value(text).number is None


def _row(table_id: str, tag: str, dataset: str = "cifar10"):
    (row,) = [r for r in TABLES[table_id].rows if r.key == (dataset, tag)]
    return row


def test_table_3_19_grown_resnet_row():
    row = _row("3-19", "adagrow-resnet-4b")
    assert row.cells["arch"].text == "1-2-2-1"
    assert row.cells["params"].number == pytest.approx(2.65e6)
    assert row.cells["macs"].number == pytest.approx(246.66e6)
    assert row.cells["acc"].number == pytest.approx(93.14)
    assert _row("3-19", "adagrow-vgg-3b").cells["params"].text == "669.29K"


def test_other_anchors_of_the_spec():
    assert _row("3-5", "stop-budget").cells["arch"].text == "VGG-4-3-3"
    assert _row("3-8", "pattern-W1D2").cells["acc"].number == pytest.approx(94.36)
    assert _row("3-9", "init-zeros").cells["acc"].number == pytest.approx(40.16)
    w4 = [r for r in TABLES["4-1"].rows if r.select == {"precision": "w4a16", "quant_method": "adagrow"}]
    assert [r.cells["acc"].number for r in w4] == [pytest.approx(92.98)]
    assert _row("3-27", "adagrow-vit", "tinyimagenet").cells["arch"].text == "D6W384"


@pytest.mark.parametrize("table_id", sorted(CNN_DATASETS))
def test_cnn_tables_have_one_row_per_suite_entry(table_id):
    dataset = CNN_DATASETS[table_id][0]
    keys = [r.key for r in TABLES[table_id].rows]
    assert len(keys) == len(set(keys)) == 16
    pruning = {e.name for e in MNIST_REFERENCE_PRUNING}  # on their own page: reports/pruning_reference.py
    suite = {e.name for e in vision_suite(dataset)
             if e.recipe != "standard" and e.method not in GROWING_BASELINES and e.name not in pruning}
    assert {k[1] for k in keys} == suite - {"adagrow-vit", "fixed-vit_small", "fixed-vit_base"}  # Table 3-31: the peers


def test_transformer_rows_match_suite_entries():
    for row in TABLES["3-27"].rows:
        assert row.key[1] in {e.name for e in vision_suite(row.key[0])}
    for row in TABLES["3-28"].rows:
        assert row.key[1] in {e.name for e in text_suite(row.key[0])}


def test_rows_are_unique_within_every_table():
    for table in TABLES.values():
        # quantization rows share a run and a record (FP32 / FP16 under every method): add their settings
        keys = [(r.key, tuple(r.cells[c].text for c in ("quant_method", "precision", "backend") if c in r.cells))
                for r in table.rows]
        assert len(keys) == len(set(keys)), table.id
        for row in table.rows:
            assert set(row.cells) == set(table.columns)


# ------------------------------------------------------------------------------------------------ generator
def fabricated_record(tag: str, seed: int, acc: float, *, profile: str = "full", status: str = "ok",
                      method: str = "adagrow", dataset: str = "cifar10", model: str = "resnet",
                      latency: dict | None = None) -> dict:
    """A made-up training record with the fields the runner writes (values are NOT measurements).
    A fixed model's record has no arch of its own; ``latency`` adds fields to its latency measurement."""
    return {
        "status": status, "method": method, "dataset": dataset, "model": model, "seed": seed, "profile": profile,
        "config": {"tag": tag, "dataset": dataset}, "arch": None if method == "fixed" else "1-2-2-1", "test_acc": acc,
        "params": 2_600_000, "macs": 240_000_000,
        "latency_ms": {"Fake CPU": {"median_ms": 2.0 + seed, "mean_ms": 2.5, **(latency or {})}},
        "gpu_seconds": {"train": 100.0, "test": 5.0},
        "history": [{"epoch": e, "val_acc": 50.0 + 10 * e, "params": 100_000 * e} for e in range(1, 4)],
        "growth_events": [] if method == "fixed" else [{"epoch": 1, "kind": "depth"}, {"epoch": 2, "kind": "width"}],
        "run_dir": f"results/runs/cifar10-{tag}-{profile}-s{seed}",
    }


def write_records(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def table_lines(path: Path) -> dict[str, list[str]]:
    """Markdown data rows keyed by "label arch" (first two cells)."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith("| ---") and not line.startswith("| Row"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[f"{cells[0]} {cells[1]}"] = cells
    return rows


def test_report_puts_our_mean_beside_the_thesis_and_marks_the_rest_not_run(tmp_path):
    results = write_records(tmp_path / "results" / "cifar10.jsonl", [
        fabricated_record("adagrow-resnet-4b", 0, 92.0),
        fabricated_record("adagrow-resnet-4b", 1, 93.0),
    ])
    out = tmp_path / "out"
    assert main(["--results", str(results.parent), "--out", str(out), "--tables", "3-19", "--no-plots"]) == 0
    rows = table_lines(out / "table3-19.md")
    assert len(rows) == 16
    ours = rows["AdaGrow ResNet 1-2-2-1"]
    # Row | arch t | arch o | params t | o | MACs t | o | latency t | o | acc t | o | gap | n
    assert ours[1:3] == ["1-2-2-1", "1-2-2-1"]
    assert ours[3:5] == ["2.65M", "2.60M"] and ours[5:7] == ["246.66M", "240.00M"]
    assert ours[7:9] == ["2.11", "2.50"]  # latency: mean of the seeds' medians
    # mean ± the 95% t half-width over two seeds: t(0.975, 1) = 12.706 (tables) × s 0.7071 / √2 = 6.35
    assert ours[9:13] == ["93.14", "92.50 ± 6.35", "-0.64", "2"]
    for label, cells in rows.items():
        if label != "AdaGrow ResNet 1-2-2-1":
            assert cells[2] == cells[4] == cells[10] == "not run", label
    tex = (out / "table3-19.tex").read_text(encoding="utf-8")
    assert "92.50" in tex and r"\begin{tabular}" in tex and "Fake CPU" in tex


def test_several_seeds_show_mean_and_ci_where_they_differ_and_one_seed_shows_its_value(tmp_path):
    grown = [fabricated_record("adagrow-resnet-4b", seed, acc) for seed, acc in ((0, 92.0), (1, 94.0), (2, 93.0))]
    grown[2]["params"] = 2_900_000  # growing found another width under this seed
    grown[2]["gpu_seconds"] = {"train": 130.0, "test": 5.0}
    results = write_records(tmp_path / "r.jsonl", grown + [
        fabricated_record("fixed-resnet18-thesis", 0, 88.0, method="fixed", model="resnet18"),
        *[fabricated_record("fixed-vgg16-thesis", seed, 80.0 + seed, profile="smoke", method="fixed", model="vgg16")
          for seed in (0, 1)],
    ])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "3-19", "--format", "md", "--no-plots"])
    rows = table_lines(out / "table3-19.md")
    ours = rows["AdaGrow ResNet 1-2-2-1"]
    # t(0.975, 2) = 4.3027 (tables): 92, 94, 93 -> s = 1, half-width 4.3027 / √3 = 2.48
    assert ours[10] == "93.00 ± 2.48" and ours[12] == "3"
    assert ours[4] == "2.70M ± 430.27K"  # params differ between the seeds: s = 173.205K, × 4.30265 / √3
    assert ours[6] == "240.00M"  # the same MACs under every seed: no ± 0
    assert rows["ResNet-18 2-2-2-2"][10] == "88.00"  # one seed: no spread to show
    assert rows["VGG-16 2-2-3-3-3"][10] == "80.50 ± 6.35 (smoke)"
    assert "the half-width of its 95% confidence interval" in (out / "table3-19.md").read_text()


def test_smoke_only_rows_are_marked_and_failed_runs_ignored(tmp_path):
    results = write_records(tmp_path / "r.jsonl", [
        fabricated_record("fixed-resnet18-thesis", 0, 80.0, profile="smoke", method="fixed", model="resnet18"),
        fabricated_record("fixed-vgg16-thesis", 0, 99.0, status="failed", method="fixed", model="vgg16"),
        fabricated_record("fixed-resnet18-standard", 0, 94.0, method="fixed", model="resnet18"),
    ])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "table3-19", "--format", "md", "--no-plots"])
    rows = table_lines(out / "table3-19.md")
    smoke = rows["ResNet-18 2-2-2-2"]
    assert smoke[10] == "80.00 (smoke)"
    assert smoke[11] == "smoke"  # no Δ: a few epochs on a subset is not comparable with the thesis' 87.76
    assert smoke[12] == "1 (smoke)"
    assert rows["VGG-16 2-2-3-3-3"][10] == "not run"
    extra = rows["fixed-resnet18-standard (ours only) —"]
    assert extra[10] == "94.00" and extra[9] == "—"
    assert not (out / "table3-19.tex").exists()


def test_the_bert_table_shows_the_text_suites_rows_the_thesis_has_none_for(tmp_path):
    """Issue 19: Table 3-28's SST-2 column from the reference records.  The thesis' AdaGrow BERT row is the
    thesis-recipe grower; the AdamW grower and its fixed twin are the suite's own rows, shown below it by name."""
    def rec(tag, acc, method="adagrow"):
        r = fabricated_record(tag, 0, acc, profile="reference", method=method, dataset="sst2", model="bert")
        r["arch"] = "D1W256"
        return r

    results = write_records(tmp_path / "r.jsonl", [rec("adagrow-bert-adamw", 77.75),
                                                   rec("fixed-bert-grown-adamw", 78.67, method="fixed")])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "3-28", "--format", "md", "--no-plots"])
    rows = table_lines(out / "table3-28.md")
    assert rows["AdaGrow BERT SST-2"][11] == "not run"  # the thesis' recipe did not run: never filled from AdamW
    assert rows["adagrow-bert-adamw (ours only) SST-2"][11] == "77.75 (reference)"
    assert rows["fixed-bert-grown-adamw (ours only) SST-2"][11] == "78.67 (reference)"
    assert "(ours only): a run of the dataset's suite" in (out / "table3-28.md").read_text(encoding="utf-8")


def test_fixed_models_show_their_name_as_architecture(tmp_path):
    results = write_records(tmp_path / "r.jsonl", [
        fabricated_record("fixed-resnet18-thesis", 0, 88.0, method="fixed", model="resnet18"),
        fabricated_record("fixed-mobilenetv3_small-thesis", 0, 66.0, method="fixed", model="mobilenetv3_small"),
    ])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "3-19", "--format", "md", "--no-plots"])
    rows = table_lines(out / "table3-19.md")
    assert rows["ResNet-18 2-2-2-2"][2] == "ResNet-18"
    assert rows["MobileNetV3-small 2-2-3-2-2"][2] == "MobileNetV3-small"
    assert rows["ResNet-18 2-2-2-2"][11] == "+0.24"  # full-profile runs keep their Δ


def test_tables_over_several_datasets_name_the_dataset_of_each_row(tmp_path):
    results = write_records(tmp_path / "r.jsonl", [
        fabricated_record("fixed-vit_small", 0, 60.0, method="fixed", model="vit_small", dataset="imagenette"),
        fabricated_record("fixed-vit_small", 0, 30.0, method="fixed", model="vit_small", dataset="miniimagenet"),
        fabricated_record("adagrow-bert", 0, 84.0, dataset="sst2"),
    ])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "3-27,3-28", "--format", "md", "--no-plots"])
    vit = table_lines(out / "table3-27.md")  # keyed by "label dataset"
    # Row | dataset | arch t | arch o | params t | o | MACs t | o | latency t | o | acc t | o | gap | n
    assert vit["Small-ViT-Patch16-224 Imagenette"][2:4] == ["D10W512", "ViT-Small"]
    assert vit["Small-ViT-Patch16-224 Imagenette"][10:12] == ["64.05", "60.00"]
    assert vit["Small-ViT-Patch16-224 Mini-ImageNet"][10:12] == ["33.80", "30.00"]
    assert vit["Small-ViT-Patch2-32 CIFAR-10"][11] == "not run"
    bert = table_lines(out / "table3-28.md")
    assert bert["AdaGrow BERT SST-2"][11] == "84.00" and bert["AdaGrow BERT IMDB"][11] == "not run"
    assert "| Row | Dataset |" in (out / "table3-28.md").read_text(encoding="utf-8")


def test_single_dataset_tables_have_no_dataset_column_and_only_latency_tables_a_latency_note(tmp_path):
    results = write_records(tmp_path / "r.jsonl", [fabricated_record("depth-step-1", 0, 91.0)])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "3-2,3-19", "--format", "md", "--no-plots"])
    ablation, cnn = ((out / f"table{t}.md").read_text(encoding="utf-8") for t in ("3-2", "3-19"))
    assert "Dataset" not in ablation and "Dataset" not in cnn
    assert "Latency" not in ablation and "- latency:" not in ablation  # no latency column, so no note on it
    assert "- latency:" in cnn
    assert table_lines(out / "table3-2.md")["depth-step-1 1 layer"][9] == "91.00"


def test_latency_shows_its_spread_and_marks_noisy_measurements(tmp_path):
    spread = {"p10_ms": 1.8, "p90_ms": 2.3, "iqr_ms": 0.2, "repeats": 100, "threads": 2}
    results = write_records(tmp_path / "r.jsonl", [
        fabricated_record("adagrow-resnet-4b", 0, 92.0, latency={**spread, "spread": 0.24, "noisy": False}),
        fabricated_record("adagrow-resnet-4b", 1, 93.0, latency={**spread, "spread": 0.10, "noisy": False}),
        fabricated_record("adagrow-vgg-4b", 0, 91.0, latency={**spread, "spread": 0.8, "noisy": True}),
        fabricated_record("adagrow-vgg-3b", 0, 90.0),  # written before latencies carried a spread
    ])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "3-19", "--no-plots"])
    rows = table_lines(out / "table3-19.md")
    assert rows["AdaGrow ResNet 1-2-2-1"][8] == "2.50 ±12%"  # mean of the medians ± the widest seed's half range
    assert rows["AdaGrow VGG 1-1-2-2"][8] == "2.00 ±40% †"
    assert rows["AdaGrow VGG 1-2-2"][8] == "2.00"
    text = (out / "table3-19.md").read_text(encoding="utf-8")
    assert "- ±: half the p10–p90 range" in text and "- †: the record flags this latency as noisy" in text
    tex = (out / "table3-19.tex").read_text(encoding="utf-8")
    assert r"2.50 $\pm$12\%" in tex and r"$\dagger$" in tex


def test_latency_notes_are_left_out_when_no_record_has_a_spread(tmp_path):
    results = write_records(tmp_path / "r.jsonl", [fabricated_record("adagrow-vgg-3b", 0, 90.0)])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "3-19", "--format", "md", "--no-plots"])
    text = (out / "table3-19.md").read_text(encoding="utf-8")
    assert "±" not in text and "†" not in text


def test_quantization_rows_read_quantization_records(tmp_path):
    quant = [{"dataset": "cifar10", "tag": "adagrow-resnet-4b", "precision": p, "quant_method": m, "accuracy": a,
              "fp32_accuracy": 93.0, "seed": 0}
             for p, m, a in (("w4a16", "adagrow", 91.5), ("w4a16", "rtn", 85.0), ("fp16", "cast", 92.9))]
    results = write_records(tmp_path / "quant.jsonl", quant)
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "4-1", "--format", "md", "--no-plots"])
    lines = [line for line in (out / "table4-1.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("| AdaGrow-Basic-ResNet")]
    by_setting = {tuple(c.strip() for c in line.strip("|").split(" | ")[1:4]): line for line in lines}
    assert "| 92.98 | 91.50 | -1.48 | 1 |" in by_setting[("proposed", "W4A16", "PyTorch")]
    assert "| 89.13 | 85.00 |" in by_setting[("direct", "W4A16", "PyTorch")]
    assert "| 93.14 | 93.00 |" in by_setting[("OBS", "FP32", "TensorRT")]  # the records' fp32_accuracy
    assert "| 93.16 | 92.90 |" in by_setting[("proposed", "FP16", "TensorRT")]
    assert "not run" in by_setting[("OBS", "INT8", "TensorRT")]
    resnet50 = [line for line in (out / "table4-1.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("| ResNet-50")]
    assert all("not run" in line for line in resnet50)


def test_quantization_rows_of_a_smoke_trained_model_are_smoke(tmp_path):
    trained = fabricated_record("adagrow-resnet-4b", 0, 93.0, profile="smoke")
    quant = {"dataset": "cifar10", "tag": "adagrow-resnet-4b", "precision": "w4a16", "quant_method": "adagrow",
             "accuracy": 91.5, "fp32_accuracy": 93.0, "seed": 0, "source_checkpoint_run": trained["run_dir"]}
    results = write_records(tmp_path / "r.jsonl", [trained, quant])
    out = tmp_path / "out"
    main(["--results", str(results), "--out", str(out), "--tables", "4-1", "--format", "md", "--no-plots"])
    (line,) = [line for line in (out / "table4-1.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| AdaGrow-Basic-ResNet | proposed | W4A16")]
    assert line.endswith("| 92.98 | 91.50 (smoke) | smoke | 1 (smoke) |")


def test_plots_are_written_as_png(tmp_path):
    results = write_records(tmp_path / "results" / "cifar10.jsonl", [
        fabricated_record("adagrow-resnet-4b", 0, 92.0),
        fabricated_record("fixed-resnet18-thesis", 0, 88.0, method="fixed"),
        fabricated_record("randgrow-resnet-4b", 0, 90.0, method="randgrow"),
    ])
    out = tmp_path / "out"
    main(["--results", str(results.parent), "--out", str(out), "--tables", "3-19"])
    scatter = out / "plots" / "acc-latency-cifar10.png"
    growth = sorted((out / "plots" / "growth").glob("*.png"))
    assert scatter.read_bytes()[:8] == PNG_MAGIC
    # every run that grew gets a trajectory (AdaGrow and the growing baselines), the fixed model none
    assert [p.name for p in growth] == ["cifar10-adagrow-resnet-4b-full-s0.png", "cifar10-randgrow-resnet-4b-full-s0.png"]
    assert growth[0].read_bytes()[:8] == PNG_MAGIC


def test_every_table_is_written_when_none_is_named(tmp_path):
    results = write_records(tmp_path / "r.jsonl", [])
    main(["--results", str(results), "--out", str(tmp_path), "--format", "md", "--no-plots"])
    assert {p.name for p in tmp_path.glob("table*.md")} == {f"table{t}.md" for t in TABLES}
    assert {p.name for p in tmp_path.glob("second-thesis-*.md")} == {"second-thesis-bamc.md", "second-thesis-aps.md"}


@pytest.mark.parametrize("argv,message", [(["--tables", "3-99"], "unknown table"),
                                          (["--format", "pdf"], "--format"),
                                          (["--results", "/nonexistent/results"], "no results")])
def test_bad_arguments_raise_a_user_error(tmp_path, argv, message):
    results = write_records(tmp_path / "r.jsonl", [])
    with pytest.raises(AdaGrowError, match=message):
        main(["--results", str(results), "--out", str(tmp_path), *argv])


# ------------------------------------------------------------------------------------------------ figures
def test_label_placement_keeps_clustered_labels_off_each_other_and_off_the_markers():
    anchors = [(100.0, 100.0), (103.0, 101.0), (98.0, 104.0), (106.0, 97.0), (101.0, 95.0), (300.0, 300.0)]
    sizes = [(9.0, 7.0)] * len(anchors)
    chosen = plots.place_labels(anchors, sizes)
    boxes = [plots._label_box(a, s, c) for a, s, c in zip(anchors, sizes, chosen)]
    r = plots._MARKER_RADIUS
    markers = [plots.Box(x - r, y - r, x + r, y + r) for x, y in anchors]
    for i, box in enumerate(boxes):
        assert all(box.overlap(other) == 0 for other in boxes[i + 1:] + markers), (i, box)
    assert chosen[-1] == plots._CANDIDATES[0]  # a lone point keeps the nearest spot


def test_accuracy_latency_figure_marks_smoke_points_and_says_where_they_were_timed():
    ours = [plots.Point("adagrow-vgg-3b", 2.0, 96.0, smoke=True), plots.Point("fixed-resnet18-thesis", 15.0, 99.0)]
    thesis = [plots.Point("ResNet-18 2-2-2-2", 3.8, 99.6), plots.Point("VGG-16 2-2-3-3-3", 3.9, 99.5)]
    fig = plots.accuracy_latency_figure("MNIST", ours, thesis, ("cpu: Fake",))
    try:
        ax = fig.axes[0]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["thesis (A100 PCIe 40GB)", "ours (cpu: Fake)", "ours (smoke, cpu: Fake): not comparable"]
        smoke_markers = ax.collections[2]
        assert smoke_markers.get_facecolors().size == 0 or smoke_markers.get_facecolors()[0][3] == 0  # hollow
        title = fig.get_suptitle()
        assert "cpu: Fake" in title and "A100" in title and "1 of 2 our points are smoke runs" in title
        key = [t.get_text() for t in fig.texts]
        assert " 1  fixed-resnet18-thesis" in key and " 2  adagrow-vgg-3b (smoke)" in key
        assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "4"]  # numbers, not names, on the plot
    finally:
        plots.plt.close(fig)


def test_growth_figure_says_which_parameter_count_it_draws():
    record = fabricated_record("adagrow-resnet-4b", 0, 92.0, profile="smoke")
    record["growth_events"] = [{"epoch": 1, "kind": "width", "fused_params_after": 90_000},
                               {"epoch": 2, "kind": "depth", "fused_params_after": 150_000}]
    assert plots.fused_params_by_epoch(record) == {2: 90_000, 3: 150_000}  # growth at epoch e shapes epoch e + 1
    fig = plots.growth_figure(record)
    try:
        params_ax, acc_ax = fig.axes
        legend = [t.get_text() for t in acc_ax.get_legend().get_texts()]
        assert legend[:3] == ["params (unfused, during training)", "params (fused, as deployed)",
                              "deploy model (fused): 2.600M"]
        assert "smoke run: not comparable" in params_ax.get_title()
        assert [line.get_xdata()[0] for line in params_ax.lines[2:]] == [1.5, 2.5]  # growth between epochs
    finally:
        plots.plt.close(fig)


def test_a_pruning_run_fills_its_rows_before_and_after_fine_tuning_with_the_phase_seconds(tmp_path):
    rec = fabricated_record("prune-resnet50-bnslim-50-ft", 0, 88.0, method="slim", model="resnet50")
    rec["gpu_seconds"] = {"pretrain": 1000.0, "prune": 12.0, "finetune": 300.0, "eval": 8.0}
    rec["pruning"] = {"prune_seconds": 12.0, "prune_after_epochs": 50,
                      "after_prune": {"test_acc": 20.0, "params": 1_300_000, "macs": 120_000_000}}
    results = write_records(tmp_path / "results" / "table3-29.jsonl", [rec])
    out = tmp_path / "out"
    assert main(["--results", str(results.parent), "--out", str(out), "--tables", "3-29", "--no-plots"]) == 0
    lines = [line for line in (out / "table3-29.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("| BN slimming | 50%")]
    before, after = ([c.strip() for c in line.strip("|").split(" | ")] for line in lines)
    # Row | sparsity | fine-tuned | params t|o | MACs t|o | latency t|o | acc t|o | pretrain t|o | prune t|o | ft t|o | total t|o
    assert before[2] == "no" and after[2] == "yes"
    assert before[4] == "1.30M" and after[4] == "2.60M" and before[6] == "120.00M"
    assert before[10] == "20.00 (smoke)" or before[10] == "20.00"
    assert after[10] == "88.00"
    assert before[12] == after[12] == "1000s" and before[14] == after[14] == "12s"
    assert before[16] == "0s" and after[16] == "300s"
    assert before[18] == "1020s" and after[18] == "1320s"
    assert before[8] == after[8] == "2.00"  # one deploy model: the same latency
