"""`adagrow bench --train`: rows of a grown model against its plain architecture, their arithmetic,
the runner against a bare loop, the growth share, the peak table, and the record."""

from __future__ import annotations

import pytest

from adagrow.cli import main
from adagrow.errors import AdaGrowError
from adagrow.measure import train_bench
from adagrow.records.store import read_records

TINY = ["--dataset", "mnist", "--model", "vgg:1-1-1", "--branches", "2", "--batch", "2", "--steps", "1",
        "--warmup", "0", "--threads", "1"]


def test_bench_train_rows_ratios_and_record(tmp_path, capsys):
    out = tmp_path / "bench.jsonl"
    assert main(["bench", "--train", *TINY, "--peak-tflops", "1", "--output", str(out)]) == 0
    (rec,) = read_records(out)
    rows = {r["row"]: r for r in rec["rows"]}
    assert list(rows) == ["plain", "grown-loop", "grown-batched", "grown-orepa"]
    plain, loop, batched, orepa = rows["plain"], rows["grown-loop"], rows["grown-batched"], rows["grown-orepa"]
    # branches add arithmetic; the batched path also computes its zero padding (a 1x1 branch as a 3x3);
    # the orepa form convolves once with the folded kernel: the plain model's convolutions
    assert plain["flop_vs_plain"] == 1 and 1 < loop["flop_vs_plain"] <= batched["flop_vs_plain"]
    assert orepa["flop_vs_plain"] == pytest.approx(1.0, abs=0.02)
    assert loop["params"] == batched["params"] == orepa["params"] > plain["params"]
    for r in rows.values():
        assert r["images_per_s"] == pytest.approx(2 / r["step_ms"] * 1e3)
        assert r["epoch_s"] == pytest.approx(r["step_ms"] / 1e3 * rec["steps_per_epoch"])
        assert r["peak_fraction"] == pytest.approx(r["train_gflop"] * 1e9 / (r["step_ms"] / 1e3) / 1e12)
    assert rec["steps_per_epoch"] == 27_000  # MNIST's 60,000 less the 10% validation, at batch 2
    assert rec["runner_vs_bare"]["row"] == "grown-batched" and rec["runner_vs_bare"]["runner_over_bare"] > 0
    assert rec["growth"]["width_s"] > 0 and rec["growth"]["share_of_epoch"] > 0
    assert rec["device"].startswith("cpu") and rec["versions"]["torch"] and rec["peak_from"] == "--peak-tflops"
    printed = capsys.readouterr().out
    assert "| grown-batched |" in printed and "runner vs bare loop" in printed and "growth machinery" in printed


def test_bench_train_refuses_what_it_cannot_measure():
    with pytest.raises(AdaGrowError, match="no row dbb"):
        train_bench.bench_train(train_bench.parse_args([*TINY, "--only", "plain,dbb"]))
    with pytest.raises(AdaGrowError, match="--steps"):
        train_bench.parse_args([*TINY, "--steps", "0"])
    with pytest.raises(AdaGrowError, match="image models"):
        train_bench.bench_train(train_bench.parse_args([*TINY, "--dataset", "sst2"]))


def test_the_peak_table_names_devices_by_their_fragment():
    assert train_bench.peak_tflops("NVIDIA H100 PCIe", bf16=True) == 756.0
    assert train_bench.peak_tflops("NVIDIA H100 80GB HBM3", bf16=True) == 989.4
    assert train_bench.peak_tflops("NVIDIA H200", bf16=False) == 494.7
    assert train_bench.peak_tflops("NVIDIA GeForce RTX 3090", bf16=True) == 71.0
    assert train_bench.peak_tflops("cpu: AMD EPYC", bf16=True) is None
