"""``adagrow suite <name> --quantize`` (issue 19, Table 4-1 on the reference bases): on a tiny trained run it finds
the very run the suite wrote (the same options give the same run name; other options find none), records name that
run, its seed and profile, a second invocation skips what is done, and a base not run yet or whose deploy.pt is gone
is one line naming the command that (re)runs it, with exit status 2."""

from __future__ import annotations

import pytest

from adagrow.cli import main
from adagrow.records.store import read_records
from suites import Entry
from tests.conftest import make_tiny_mnist
from tests.test_cli_suite import use_suite

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")

BASE = Entry("adagrow-vgg-3b", "mnist", "adagrow", "vgg", options={"blocks": 3}, epochs=1)


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """The suite ``tiny`` with one AdaGrow VGG entry, trained for one epoch under seeds 0 and 1."""
    use_suite(monkeypatch, [BASE])
    data = make_tiny_mnist(tmp_path / "data", n_train=200, n_test=60)
    argv = ["suite", "tiny", "--data-dir", str(data), "--output", str(tmp_path / "out"), "--seeds", "0,1",
            "--device", "cpu", "--threads", "1", "--train-subset", "160"]
    assert main(argv) == 0
    return argv


def _quant(trained, *more):
    return [*trained, "--quantize", "--only", "adagrow-vgg-3b", "--quant-methods", "rtn", "--calib-size", "16", *more]


def test_the_suites_runs_are_found_quantized_and_skipped_the_second_time(trained, tmp_path, capsys):
    runs = {r["seed"]: r for r in read_records(tmp_path / "out" / "tiny.jsonl")}
    capsys.readouterr()
    assert main(_quant(trained)) == 0
    out = capsys.readouterr().out
    assert "FP16 not measured" in out  # CPU: FP16 is left to CUDA, and said
    records = read_records(tmp_path / "out" / "quant-tiny.jsonl")
    # one record per seed × (W4A16, INT8) × the one method asked for
    assert sorted((r["base_seed"], r["precision"], r["quant_method"]) for r in records) == [
        (0, "int8", "rtn"), (0, "w4a16", "rtn"), (1, "int8", "rtn"), (1, "w4a16", "rtn")]
    for r in records:
        base = runs[r["base_seed"]]
        assert r["base_run"] == base["run_name"]  # the suite's own run, by name (its config hash included)
        assert r["checkpoint"].endswith(f"{base['run_name']}/deploy.pt")
        assert (r["profile"], r["tag"], r["suite"], r["seed"]) == ("full", "adagrow-vgg-3b", "tiny", r["base_seed"])
        assert r["fp32_accuracy"] is not None and r["base_test_acc"] == base["test_acc"]

    assert main(_quant(trained)) == 0  # again: nothing to do
    out = capsys.readouterr().out
    assert out.count("done (2 records), skipped") == 2
    assert len(read_records(tmp_path / "out" / "quant-tiny.jsonl")) == 4

    assert main(_quant(trained, "--list")) == 0
    assert "adagrow-vgg-3b/s0: done" in capsys.readouterr().out


def test_other_run_options_name_another_run_which_was_not_run(trained, tmp_path, capsys):
    # without --train-subset the config (so the run name) differs: that run does not exist, and nothing is guessed
    argv = [a for a in _quant(trained, "--seeds", "0") if a not in ("--train-subset", "160")]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("adagrow: error: adagrow-vgg-3b: not run yet (run it: adagrow suite tiny --only "
                             "adagrow-vgg-3b --seeds 0 --profile full --threads 1 --device cpu --output ")
    assert not (tmp_path / "out" / "quant-tiny.jsonl").exists()


def test_a_seed_not_run_is_one_line_and_the_others_are_quantized(trained, tmp_path, capsys):
    capsys.readouterr()
    assert main(_quant(trained, "--seeds", "0,2")) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert "adagrow-vgg-3b/s2: not run yet (run it: adagrow suite tiny --only adagrow-vgg-3b --seeds 2 " in line
    assert "--train-subset 160" in line  # every option that names the run, so the command makes this very run
    assert {r["base_seed"] for r in read_records(tmp_path / "out" / "quant-tiny.jsonl")} == {0}


def test_a_base_whose_deploy_is_gone_is_done_if_quantized_else_one_line_naming_its_rerun(trained, tmp_path, capsys):
    assert main(_quant(trained, "--seeds", "0")) == 0
    for deploy in (tmp_path / "out" / "runs").glob("*/deploy.pt"):  # a fresh machine: records committed, runs/ not
        deploy.unlink()
    capsys.readouterr()
    assert main(_quant(trained, "--seeds", "0")) == 0  # its records are there: done, nothing needs the file
    assert "done (2 records), skipped" in capsys.readouterr().out
    assert main(_quant(trained, "--seeds", "0", "--quant-methods", "rtn,obs")) == 2  # OBS needs the model
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "adagrow-vgg-3b: its deploy.pt is gone" in line
    assert "rerun it with adagrow suite tiny --only adagrow-vgg-3b --seeds 0 " in line and "--force" in line


def test_a_rerun_base_is_quantized_again(trained, tmp_path, capsys):
    assert main(_quant(trained, "--seeds", "1")) == 0
    assert main([*trained, "--seeds", "1", "--force"]) == 0  # the same config trained again: a new record
    capsys.readouterr()
    assert main(_quant(trained, "--seeds", "1")) == 0
    assert "quantizing" in capsys.readouterr().out
    records = read_records(tmp_path / "out" / "quant-tiny.jsonl")
    assert len(records) == 4 and len({r["base_record"] for r in records}) == 2


def test_bad_quantize_options_are_one_message(trained, capsys):
    capsys.readouterr()
    assert main(_quant(trained, "--quant-methods", "gptq")) == 2
    assert "--quant-methods takes" in capsys.readouterr().err
    assert main(_quant(trained, "--calib-size", "0")) == 2
    assert "--calib-size must be at least 1" in capsys.readouterr().err


def test_mnist_quantizes_the_reference_bases_of_table_4_1_by_default():
    import argparse

    from suites.quantize import TABLE_METHODS, _entries

    args = argparse.Namespace(name="mnist", only=None, profile="reference", all=False)
    bases = {e.name: e for e in _entries(args, "mnist")}
    # issue 19: "quantization of the converged AdaGrow-VGG and ResNet-18" (Table 3-22's model, the thesis recipe)
    assert set(bases) == {"adagrow-vgg-3b", "fixed-resnet18-thesis"}
    assert all(e.reference for e in bases.values())
    assert (bases["fixed-resnet18-thesis"].method, bases["fixed-resnet18-thesis"].model) == ("fixed", "resnet18")
    assert (bases["adagrow-vgg-3b"].method, bases["adagrow-vgg-3b"].model) == ("adagrow", "vgg")
    # Table 4-1's methods: direct (rounding), OBS, and the thesis' compensation + rearrangement
    assert TABLE_METHODS == ("rtn", "obs", "adagrow")


def test_int8_under_another_activation_calibration_is_quantized_again_and_w4a16_is_not(trained, tmp_path, capsys):
    assert main(_quant(trained, "--seeds", "0")) == 0  # default: max
    assert main(_quant(trained, "--seeds", "0", "--act-calib", "histogram")) == 0
    records = read_records(tmp_path / "out" / "quant-tiny.jsonl")
    assert [(r["precision"], r["act_calib"]) for r in records] == [("w4a16", None), ("int8", "max"),
                                                                    ("int8", "histogram")]
    capsys.readouterr()
    assert main(_quant(trained, "--seeds", "0", "--act-calib", "max")) == 0  # both are done now
    assert "done (2 records), skipped" in capsys.readouterr().out


def test_records_calibrated_on_augmented_images_are_quantized_again(trained, tmp_path, capsys):
    # before 2026-12-07 calibration read the augmented training loader; such records (no calib_data) are redone,
    # and the new ones say what they calibrated on
    import json

    assert main(_quant(trained, "--seeds", "0")) == 0
    path = tmp_path / "out" / "quant-tiny.jsonl"
    old = read_records(path)
    assert {r["calib_data"] for r in old} == {"train-plain"}
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "calib_data"}) + "\n" for r in old))
    capsys.readouterr()
    assert main(_quant(trained, "--seeds", "0")) == 0
    assert "skipped" not in capsys.readouterr().out
    records = read_records(path)
    assert [r.get("calib_data") for r in records] == [None, None, "train-plain", "train-plain"]
