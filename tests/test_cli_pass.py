"""The command line tried as a new user would (issue 22's second pass): ``train --force``, full paths
in messages, where deploy.pt went, the path the user typed, time-stamped lines, ``bench``'s progress
and table, and ``report`` saying where it reads from and reporting one's own runs."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from adagrow.cli import main
from adagrow.records.store import read_records
from tests.conftest import make_tiny_mnist

STAMP = re.compile(r"^\d\d:\d\d:\d\d ")
TRAIN = ["train", "--dataset", "mnist", "--model", "resnet18", "--profile", "smoke", "--threads", "1",
         "--train-subset", "128", "--epochs", "1"]


def test_train_names_full_paths_stamps_its_lines_and_force_runs_afresh(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them
    make_tiny_mnist(tmp_path / "data", n_train=1300, n_test=100)
    assert main([*TRAIN, "--data-dir", "data", "--output", "runs", "--suite", "mnist"]) == 0
    out = capsys.readouterr().out
    (rec,) = read_records(tmp_path / "runs" / "mnist.jsonl")
    (line,) = [line for line in out.splitlines() if "record -> " in line]
    assert line.endswith(", runs/mnist.jsonl")  # the full path, not "mnist.jsonl" (after the run's record.json)
    assert f"model -> {rec['deploy_model']}" in out and Path(rec["deploy_model"]).is_file()
    assert rec["deploy_model"].startswith("runs/runs/")
    lines = [line for line in out.splitlines() if line.strip()]
    epoch_lines = [line for line in lines if " epoch " in line and "loss" in line]
    assert epoch_lines and all(STAMP.match(line) for line in epoch_lines)

    # the same command again: nothing is repeated, and the message says how to run it afresh
    assert main([*TRAIN, "--data-dir", "data", "--output", "runs", "--suite", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "has already finished" in out and "--force" in out and "runs/mnist.jsonl" in out
    assert len(read_records(tmp_path / "runs" / "mnist.jsonl")) == 1

    assert main([*TRAIN, "--data-dir", "data", "--output", "runs", "--suite", "mnist", "--force"]) == 0
    out = capsys.readouterr().out
    records = read_records(tmp_path / "runs" / "mnist.jsonl")
    assert len(records) == 2 and records[0]["run_name"] == records[1]["run_name"]
    aside = list((tmp_path / "runs" / "runs").glob(f"{rec['run_name']}.replaced-*"))
    assert len(aside) == 1 and (aside[0] / "deploy.pt").is_file()  # the earlier run's files are kept
    assert "earlier run's files are kept in" in out


def test_missing_data_names_the_path_the_user_typed_not_the_symlink(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real-data").mkdir()
    (tmp_path / "data-link").symlink_to(tmp_path / "real-data")
    assert main(["train", "--dataset", "cifar10", "--model", "resnet18", "--data-dir", "data-link", "--output", "out"]) == 2
    err = capsys.readouterr().err
    assert "data-link" in err and "real-data" not in err


def test_bench_shows_progress_then_a_table_and_writes_json_to_output(tmp_path, capsys):
    out_file = tmp_path / "bench.jsonl"
    assert main(["bench", "--dataset", "mnist", "--model", "vgg:1-1-1", "--device", "cpu", "--threads", "1",
                 "--repeats", "5", "--batch", "4", "--output", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "counting params and MACs" in out and "timing up to 5 batch-1 forwards" in out  # progress first
    assert not out.lstrip().startswith("{")  # a table, not raw JSON
    (rec,) = read_records(out_file)
    assert f"{rec['params']:,}" in out and "images/s at batch 4" in out and "ms median" in out
    assert rec["kind"] == "bench" and rec["latency_ms"]["repeats"] >= 1
    assert f"record -> {out_file}" in out


def test_report_says_where_it_reads_and_reports_your_own_runs_beside_them(tmp_path, capsys, monkeypatch):
    from reports.generate import _parse

    assert _parse([]).results == Path("results") and _parse([]).out == Path("reports/tables")
    assert _parse(["--results", "runs"]).out == Path("runs/report")  # never over the committed tables
    assert _parse(["--results", "runs/mnist.jsonl"]).out == Path("runs/report")
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: results" in help_text and "--results runs" in help_text and "default: md,tex" in help_text

    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    src = Path(__file__).resolve().parents[1] / "results" / "mnist.jsonl"
    (runs / "mnist.jsonl").write_text(src.read_text().splitlines()[0] + "\n")
    assert main(["report", "--results", "runs", "--tables", "3-19", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "reading 1 records from runs; writing to runs/report" in out
    assert (runs / "report" / "table3-19.md").is_file()


def test_no_report_without_records_says_how_to_get_some(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--results", "runs"]) == 2
    err = capsys.readouterr().err
    assert "no results at runs" in err and "adagrow suite mnist" in err


def test_the_synthetic_mnist_still_warns_outside_pytests_filter(tmp_path):
    # pyproject's filterwarnings keeps the fixture's md5 warning out of the test output; the loader still warns
    from adagrow.data import load_dataset

    data = make_tiny_mnist(tmp_path / "data", n_train=64, n_test=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset("mnist", data, batch_size=16, val_size=16, num_workers=0, device="cpu", seed=0)
    assert any("differs from torchvision's" in str(w.message) for w in caught)


def test_the_stamp_keeps_leading_blank_lines_and_indents_continuations():
    from adagrow.engine.progress import stamp

    text = stamp("\n== a\n   b", now=0)
    first, second, third = text.split("\n")
    assert first == "" and STAMP.match(second) and second.endswith("== a") and third == " " * 9 + "   b"
