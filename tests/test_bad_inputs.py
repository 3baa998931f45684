"""Bad inputs end in one line, exit status 2, before any work: no run directory, no record (issue 20, items 2-11).

Each case was, before the fix, silently accepted, a traceback, or refused only after minutes of work.
The oracle is the issue's statement of what each input must do, not the code under test.
"""

from __future__ import annotations

import json

import pytest

from adagrow.cli import main
from adagrow.config import RunConfig
from adagrow.records.store import read_records
from tests.conftest import make_tiny_mnist

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")


def refused(capsys, rc, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "Traceback" not in err[0] and all(n in err[0] for n in needles), err[0]
    return err[0]


TRAIN = ["train", "--dataset", "mnist", "--model", "resnet18"]


@pytest.mark.parametrize("argv, needles", [
    (["--min-lr", "0.5", "--lr", "0.1"], ["min_lr (0.5) is above lr (0.1)"]),  # item 4
    (["--drop-rate", "2"], ["drop_rate must be in [0, 1)"]),  # item 8
    (["--model", "resnet7"], ["unknown model 'resnet7'"]),  # item 8
    (["--method", "adagrow", "--model", "resnet18"], ["unknown model 'resnet18' for --method adagrow"]),
    (["--dataset", "sst2", "--model", "resnet18"], ["resnet18 is a vision model and sst2 is a text dataset"]),  # item 9
    (["--dataset", "cifar10", "--model", "bert_small"], ["bert_small is a text model and cifar10"]),
    (["--dataset", "sst2", "--method", "adagrow", "--model", "vit"], ["vit is a vision model"]),
    (["--train-subset", "99999999"], ["train_subset 99,999,999 is more than mnist has (54,000 training examples"]),  # 11
    (["--batch-size", "100000000"], ["batch_size 100,000,000 is more than the 54,000 training examples used"]),
    (["--train-subset", "100", "--batch-size", "128"], ["batch_size 128 is more than the 100 training examples"]),
])
def test_train_refuses_before_any_work(tmp_path, capsys, argv, needles):
    out = tmp_path / "out"
    args = [*TRAIN, "--data-dir", str(tmp_path / "no-data"), "--output", str(out)]
    # later options win in argparse: the case's own --dataset / --model replace the defaults
    rc = main(args + argv)
    refused(capsys, rc, *needles)
    assert not out.exists()  # no run directory, no record


def test_empty_output_is_refused_and_writes_nothing_here(tmp_path, capsys, monkeypatch):  # item 3
    monkeypatch.chdir(tmp_path)
    refused(capsys, main([*TRAIN, "--output", ""]), "output_dir is empty")
    refused(capsys, main(["suite", "mnist", "--output", "", "--list"]), "output_dir is empty")
    assert list(tmp_path.iterdir()) == []


def test_suite_epochs_zero_is_refused_not_replaced(tmp_path, capsys):  # item 2
    refused(capsys, main(["suite", "mnist", "--epochs", "0", "--output", str(tmp_path / "o")]), "epochs must be at least 1")
    refused(capsys, main(["suite", "mnist", "--seed", "-5", "--list", "--output", str(tmp_path / "o")]), "seed must be in")
    assert not (tmp_path / "o").exists()


def test_suite_epochs_reach_the_entries(tmp_path):
    """The option is the epochs, not `or`-ed with the entry's: a given value is used as given."""
    from suites import Entry, run_config_for
    from tests.test_suites import fake_args

    entry = Entry("fixed-resnet18", "mnist", "fixed", "resnet18", epochs=8)
    assert run_config_for(entry, fake_args(epochs=0), "mnist").epochs == 0  # then refused by validate, above
    assert run_config_for(entry, fake_args(epochs=3), "mnist").epochs == 3
    assert run_config_for(entry, fake_args(epochs=None), "mnist").epochs == entry.epochs


@pytest.mark.parametrize("argv, needles", [  # item 5
    (["--batch", "0"], ["--batch must be at least 1 (got 0)"]),
    (["--batch", "-3"], ["--batch must be at least 1 (got -3)"]),
    (["--threads", "0"], ["--threads must be at least 1"]),
    (["--repeats", "0"], ["--repeats must be at least 1"]),
    (["--output", "{tmp}"], ["is a folder; give a file name"]),  # item 7
    (["--output", "{tmp}/file/x.jsonl"], ["is a file, not a folder"]),
])
def test_bench_refuses_before_measuring(tmp_path, capsys, argv, needles):
    (tmp_path / "file").write_text("")
    rc = main(["bench", "--model", "resnet18", "--repeats", "1", *[a.replace("{tmp}", str(tmp_path)) for a in argv]])
    refused(capsys, rc, *needles)


@pytest.mark.parametrize("argv, needles", [
    (["--seed", "-1"], ["--seed must be in [0, 2**32)"]),  # item 8
    (["--calib-size", "0"], ["--calib-size must be at least 1"]),
    (["--output", "{tmp}"], ["is a folder; give a file name"]),  # item 7
    (["--output", "{tmp}/file/q.jsonl"], ["is a file, not a folder"]),
])
def test_quantize_refuses_before_loading_anything(tmp_path, capsys, argv, needles):
    (tmp_path / "file").write_text("")
    ckpt = tmp_path / "deploy.pt"
    ckpt.write_bytes(b"not loaded before the options are checked")
    rc = main(["quantize", "--checkpoint", str(ckpt), *[a.replace("{tmp}", str(tmp_path)) for a in argv]])
    refused(capsys, rc, *needles)


def test_report_refuses_empty_results_and_an_out_under_a_file(tmp_path, capsys, monkeypatch):  # items 6, 7
    (tmp_path / "stray.jsonl").write_text('{"status": "ok"}\n')
    monkeypatch.chdir(tmp_path)
    refused(capsys, main(["report", "--results", "", "--out", str(tmp_path / "r")]), "--results is empty")
    refused(capsys, main(["report", "--results", "stray.jsonl", "--out", "stray.jsonl/r"]), "is a file, not a folder")


def test_non_object_lines_are_skipped_by_every_reader(tmp_path, capsys):  # item 6
    results = tmp_path / "mnist.jsonl"
    results.write_text('[1, 2, 3]\n"text"\n7\n{"status": "ok", "dataset": "mnist"}\n')
    assert read_records(results) == [{"status": "ok", "dataset": "mnist"}]
    assert "is a JSON list, not a record" in capsys.readouterr().out
    assert main(["suite", "mnist", "--list", "--output", str(tmp_path)]) == 0
    assert main(["suite", "mnist", "--status", "--output", str(tmp_path)]) == 0
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "r"), "--tables", "3-19",
                 "--format", "md", "--no-plots"]) == 0


def test_validate_refuses_a_rising_learning_rate():
    import dataclasses

    from adagrow.config import RECIPES

    cfg = RunConfig("mnist", model="resnet18", recipe=dataclasses.replace(RECIPES.get("thesis"), min_lr=0.01, lr=0.005))
    with pytest.raises(Exception, match="the learning rate would rise"):
        cfg.resolved().validate()


def test_a_text_subset_counts_the_whole_training_set(tmp_path):
    """Text datasets carve validation out of the subset: the cap is the published training size."""
    cfg = RunConfig("sst2", model="bert_small", train_subset=67_349)
    cfg.resolved().validate()  # exactly the training set: allowed
    with pytest.raises(Exception, match="train_subset 67,350 is more than sst2 has"):
        RunConfig("sst2", model="bert_small", train_subset=67_350).resolved().validate()


def test_a_results_line_that_is_no_object_does_not_stop_a_run_being_found_done(tmp_path):
    data = make_tiny_mnist(tmp_path / "data", n_train=20, n_test=10)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "adhoc.jsonl").write_text("[1]\n")
    from adagrow.engine.runner import finished_record

    cfg = RunConfig("mnist", model="resnet18", data_dir=str(data), output_dir=str(tmp_path / "o")).resolved()
    run_dir = tmp_path / "o" / "runs" / cfg.run_name
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps({"status": "ok", "run_name": cfg.run_name, "test_acc": 1.0}))
    assert finished_record(cfg, run_dir, log=lambda _: None)["test_acc"] == 1.0
    assert [r.get("run_name") for r in read_records(tmp_path / "o" / "adhoc.jsonl")] == [cfg.run_name]


def test_a_missing_pretrained_file_is_refused_when_the_run_starts_not_when_its_config_is_built(tmp_path, capsys):
    """A suite builds the config of a finished pruning run on a machine where the base's deploy.pt is gone (to see
    that it is done), so building and validating it must not look for the file; starting the run must, first."""
    from baselines.prune.slim import SlimConfig

    missing = tmp_path / "missing.pt"
    cfg = RunConfig("mnist", "slim", "resnet18", method_config=SlimConfig(pretrained=str(missing)))
    cfg.resolved().validate()  # no error: the file is not needed to name the run
    out = tmp_path / "out"
    rc = main(["train", "--dataset", "mnist", "--method", "slim", "--model", "resnet18", "--pretrained", str(missing),
               "--data-dir", str(tmp_path / "no-data"), "--output", str(out)])
    # the file's message, not the missing data's: it is checked before the data would load
    refused(capsys, rc, f"--pretrained {missing}: no such file")
    assert not out.exists()  # no run directory, no record


def test_a_finished_pruning_run_is_returned_even_when_its_pretrained_file_is_gone(tmp_path):
    """`adagrow train` of a run that already finished returns its record; the base it started from need not exist."""
    from adagrow.engine.runner import run
    from baselines.prune.slim import SlimConfig

    cfg = RunConfig("mnist", "slim", "resnet18", method_config=SlimConfig(pretrained=str(tmp_path / "gone.pt")),
                    output_dir=str(tmp_path / "o"), data_dir=str(tmp_path / "no-data")).resolved()
    run_dir = tmp_path / "o" / "runs" / cfg.run_name
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps({"status": "ok", "run_name": cfg.run_name, "test_acc": 98.5}))
    assert run(cfg, log=lambda _: None)["test_acc"] == 98.5
