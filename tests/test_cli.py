"""The command line: a smoke run end to end, and one clean message (exit 2) for user errors."""

from pathlib import Path

import pytest

from adagrow.cli import main
from adagrow.records.store import read_records
from tests.conftest import make_tiny_mnist

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")


def test_train_smoke_writes_a_complete_ok_record(tmp_path, capsys):
    data = make_tiny_mnist(tmp_path / "data", n_train=1300, n_test=200)
    rc = main(["train", "--dataset", "mnist", "--method", "fixed", "--model", "resnet18", "--profile", "smoke",
               "--data-dir", str(data), "--output", str(tmp_path / "out"), "--threads", "1", "--train-subset", "256"])
    assert rc == 0
    (rec,) = read_records(tmp_path / "out" / "adhoc.jsonl")
    assert rec["status"] == "ok" and rec["profile"] == "smoke" and rec["config"]["epochs"] == 2
    assert rec["data"]["val_size"] == 1000 and rec["data"]["train_size"] == 256
    assert rec["params"] > 11e6 and rec["macs"] > 0 and rec["latency_ms"]
    assert "test" in capsys.readouterr().out  # the summary was printed


def test_growing_method_options_come_from_its_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "mnist", "--method", "adagrow", "--help"])
    out = capsys.readouterr().out
    assert "--width-ratio" in out and "--grow-interval" in out and "--max-branch-kernel" in out


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "cifar100", "--model", "resnet18", "--data-dir", "{tmp}"], "cifar-100-python"),
    (["train", "--dataset", "mnist", "--method", "adagrow", "--seed-arch", "1-x", "--data-dir", "{tmp}"],
     "malformed architecture"),
    (["train", "--dataset", "mnist", "--method", "fixed", "--model", "resnet7", "--data-dir", "{tmp}"], "unknown"),
    (["quantize", "--checkpoint", "{tmp}/missing.pt"], "no checkpoint"),
])
def test_user_errors_end_with_one_message(tmp_path, capsys, argv, message):
    make_tiny_mnist(tmp_path)
    output = ["--output", str(tmp_path / "out")] if argv[0] == "train" else []
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv] + output)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    # a run that never started leaves no run directory behind
    assert not list((tmp_path / "out" / "runs").glob("*")) if output else True


def test_help_lists_every_command_in_one_line_each(capsys):
    from adagrow.cli import COMMANDS, commands

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "suite", "bench", "datasets", "quantize", "report", "meta", "help"):
        assert sum(line.strip().startswith(name + " ") for line in out.splitlines()) == 1, name
    # suite, report and meta are not the core's: they come from suites/, reports/ and baselines/ through the
    # adagrow.commands entry points (the core imports nothing of theirs), listed in the order a user needs them
    assert set(COMMANDS) == {"train", "bench", "datasets", "quantize"}
    assert list(commands()) == ["train", "suite", "bench", "datasets", "quantize", "report", "meta"]
    assert "``" not in out and ":class:" not in out  # no reST, no developer prose
    assert main(["help"]) == 0 and capsys.readouterr().out == out


def test_bare_adagrow_prints_usage_to_stderr_and_exits_2_as_argparse_does(capsys):
    # argparse's convention for a missing required sub-command (git, pip and docker do the same)
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "usage: adagrow <command>" in captured.err and "a command is required" in captured.err


def test_help_command_shows_a_commands_own_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["help", "bench"])
    assert exc.value.code == 0
    assert "usage: adagrow bench" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["help", "meta"])  # a plug-in command too
    assert "usage: adagrow meta" in capsys.readouterr().out


def test_unknown_command_is_named_and_exits_2(capsys):
    assert main(["foo"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'foo'" in err and "report" in err


def test_version_names_the_package_commit_and_torch(capsys):
    import subprocess

    import tomllib
    import torch

    assert main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True).stdout
    assert out.startswith(f"adagrow {pyproject['project']['version']} (commit {head[:8]}")
    assert f"torch {torch.__version__}" in out
