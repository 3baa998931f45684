"""``adagrow train``: the model picks the method's options, and bad options end in one line (exit 2)
before any work — never in a traceback, never in an ``ok`` record of an untrained model."""

import pytest

from adagrow.cli import main
from adagrow.engine import runner
from adagrow.grow.method import AdaGrowConfig
from adagrow.grow.transformer import TransformerGrowConfig


@pytest.fixture
def built(monkeypatch):
    """The RunConfig each ``adagrow train`` would run (nothing is trained)."""
    configs = []
    monkeypatch.setattr(runner, "run", lambda cfg, **kw: configs.append(cfg))
    return configs


@pytest.mark.parametrize("argv, config_cls, family", [
    (["--model", "vit"], TransformerGrowConfig, "vit"),
    (["--model", "bert"], TransformerGrowConfig, "bert"),
    (["--family", "vit"], TransformerGrowConfig, "vit"),
    (["--model", "resnet"], AdaGrowConfig, "resnet"),
    ([], AdaGrowConfig, "vgg"),
])
def test_the_model_chooses_the_method_options(built, argv, config_cls, family):
    assert main(["train", "--dataset", "mnist", "--method", "adagrow", *argv]) == 0
    (cfg,) = built
    assert type(cfg.method_config) is config_cls and cfg.method_config.family == family
    assert type(cfg.resolved().method_config) is config_cls


def test_tag_and_keep_checkpoint_reach_the_run(built):
    main(["train", "--dataset", "mnist", "--model", "resnet18", "--tag", "mine", "--keep-checkpoint"])
    (cfg,) = built
    assert cfg.tag == "mine" and "-mine-" in cfg.run_name and cfg.keep_checkpoint


@pytest.mark.parametrize("argv, message", [
    (["--method", "adagrow", "--model", "vit", "--family", "resnet"], "disagree"),
    (["--method", "adagrow", "--seed-arch="], "--seed-arch was given an empty value"),
    (["--method", "adagrow", "--width-ratio", "nan"], "expected a finite number"),
    (["--tag="], "tag '' is not a usable file name"),
    (["--epochs", "0"], "epochs must be at least 1"),
    (["--epochs", "-1"], "epochs must be at least 1"),
    (["--train-subset", "0"], "train_subset must be at least 1"),
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--lr", "nan"], "lr must be above 0"),
    (["--device", "tpu7"], "device must be auto, cpu, cuda or cuda:N"),
    (["--output", "{tmp}/file/out"], "cannot be written"),
])
def test_bad_options_end_with_one_message_before_any_work(tmp_path, capsys, argv, message):
    (tmp_path / "file").write_text("")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc = main(["train", "--dataset", "mnist", "--model", "resnet18", "--data-dir", str(tmp_path / "no-data"),
               "--output", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing was written
