"""No code runs from a checkpoint (issue 20, item 1) and an unusable file is one line naming it (item 10).

A ``.pt`` file is a pickle, and a pickle can call any function on loading.  Every path by which a
user's file reaches ``torch.load`` (``quantize --checkpoint``, ``train --resume``, ``--pretrained``,
``meta --resume``) is given a crafted file whose unpickling would create a marker file; the marker must
never appear and the command must end in one line (exit 2).  The files this harness writes itself
(deploy models of every model kind, resume checkpoints) must still load.
"""

from __future__ import annotations

import io
import os

import pytest
import torch

from adagrow.cli import main
from adagrow.engine import runner
from adagrow.engine.checkpoint import load_checkpoint
from adagrow.errors import AdaGrowError
from tests.conftest import make_tiny_mnist

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")


class Touch:
    """Unpickling this runs ``os.system("touch <marker>")``: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted(path, marker):
    """A torch.save file shaped like our checkpoints (a dict with model / config / state ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Touch(marker), "config": {}, "state": {}, "method": {}, "timer": {}, "rng": {}}, path)
    return path


def one_line_refusal(capsys, rc, path):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert str(path) in err[0] and "system" in err[0] and "not loaded" in err[0]


def test_the_crafted_file_really_runs_code_when_unpickled(tmp_path):
    """The oracle: torch.load(weights_only=False) — what the harness did before — creates the marker."""
    marker = tmp_path / "touched"
    torch.load(crafted(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()


def test_quantize_checkpoint_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "touched"
    evil = crafted(tmp_path / "deploy.pt", marker)
    rc = main(["quantize", "--checkpoint", str(evil), "--output", str(tmp_path / "q.jsonl"), "--device", "cpu"])
    one_line_refusal(capsys, rc, evil)
    assert not marker.exists() and not (tmp_path / "q.jsonl").exists()


def _run_dir_of(monkeypatch, argv):
    configs = []
    with monkeypatch.context() as m:
        m.setattr(runner, "run", lambda cfg, **kw: configs.append(cfg))
        assert main(argv) == 0
    return configs[0].resolved()


def test_train_resume_runs_no_code(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "touched"
    argv = ["train", "--dataset", "mnist", "--model", "resnet18", "--data-dir", str(tmp_path / "data"),
            "--output", str(tmp_path / "out"), "--resume", "--device", "cpu"]
    cfg = _run_dir_of(monkeypatch, argv)
    evil = crafted(tmp_path / "out" / "runs" / cfg.run_name / "last.pt", marker)
    one_line_refusal(capsys, main(argv), evil)
    assert not marker.exists() and not (tmp_path / "out" / "adhoc.jsonl").exists()


def test_pretrained_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "touched"
    evil = crafted(tmp_path / "mine.pt", marker)
    data = make_tiny_mnist(tmp_path / "data", n_train=1100, n_test=50)
    rc = main(["train", "--dataset", "mnist", "--method", "magnitude", "--model", "resnet18", "--profile", "smoke",
               "--pretrained", str(evil), "--data-dir", str(data), "--output", str(tmp_path / "out"),
               "--train-subset", "64", "--device", "cpu", "--threads", "1"])
    one_line_refusal(capsys, rc, evil)
    assert not marker.exists() and not (tmp_path / "out" / "adhoc.jsonl").exists()


def test_meta_resume_runs_no_code(tmp_path, capsys, monkeypatch):
    import baselines.mnas.meta as meta

    marker = tmp_path / "touched"
    argv = ["meta", "--task", "sinusoid", "--meta-iters", "2", "--test-episodes", "2", "--shots", "5",
            "--width", "8", "--nodes", "2", "--output", str(tmp_path / "out"), "--resume", "--device", "cpu"]
    configs = []
    with monkeypatch.context() as m:
        m.setattr(meta, "run_meta", configs.append)
        assert main(argv) == 0
    evil = crafted(tmp_path / "out" / "runs" / configs[0].resolved().run_name / "last.pt", marker)
    one_line_refusal(capsys, main(argv), evil)
    assert not marker.exists()


# ---- item 10: what an unusable file is told -------------------------------------------------------------
def test_a_truncated_pretrained_model_is_not_called_deletable(tmp_path):
    """"delete it to start the run afresh" is advice for a run's own last.pt, never for a user's model."""
    buf = io.BytesIO()
    torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, buf)
    cut = tmp_path / "mine.pt"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(AdaGrowError) as pretrained:
        load_checkpoint(cut, what="--pretrained", fix="give a deploy.pt or last.pt written by `adagrow train`")
    assert "--pretrained" in str(pretrained.value) and "delete" not in str(pretrained.value)
    with pytest.raises(AdaGrowError, match="delete it to start the run afresh"):
        load_checkpoint(cut)  # a resume checkpoint


def test_quantize_a_directory_says_it_is_a_directory(tmp_path, capsys):
    assert main(["quantize", "--checkpoint", str(tmp_path), "--output", str(tmp_path / "q.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a directory" in err[0] and "does not exist" not in err[0]


# ---- the harness's own files still load --------------------------------------------------------------
def _deploy_roundtrip(model, tmp_path):
    path = tmp_path / "deploy.pt"
    torch.save({"model": model.eval(), "dataset": "x", "input_size": (3, 32, 32), "num_classes": 10,
                "record": {"arch": "a", "latency_ms": {"cpu": {"median_ms": 1.0}}}}, path)
    loaded = load_checkpoint(path)["model"]
    assert type(loaded) is type(model)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    return loaded


@pytest.mark.parametrize("name, input_size", [("resnet18", (3, 32, 32)), ("vgg11", (1, 32, 32)),
                                              ("mobilenetv3_small", (3, 32, 32)), ("vit_small", (3, 32, 32)),
                                              ("bert_small", (64,))])
def test_every_kind_of_deploy_model_loads_weights_only(name, input_size, tmp_path):
    from adagrow.engine.fixed import build_reference

    model = build_reference(name, 10, input_size, vocab_size=100 if name.startswith("bert") else None)
    loaded = _deploy_roundtrip(model, tmp_path)
    x = torch.randint(0, 100, (2, *input_size)) if name.startswith("bert") else torch.randn(2, *input_size)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x))


@pytest.mark.parametrize("family, arch", [("vgg", "1-2-2"), ("resnet", "1-1-1-1"), ("bottleneck", "1-1-1"),
                                          ("mobilenetv3", "1-1-1"), ("vit", "D2W64")])
def test_grown_and_fused_models_load_weights_only(family, arch, tmp_path):
    from adagrow import create_model, fuse

    model = create_model(family, arch, num_classes=10)
    _deploy_roundtrip(model, tmp_path)
    if family != "vit":
        _deploy_roundtrip(fuse(model), tmp_path)


def test_a_resume_checkpoint_with_every_rng_state_loads(tmp_path):
    """numpy's RNG state holds an array of a dtype built as its own class (numpy.dtypes.UInt32DType)."""
    import numpy as np

    from adagrow.engine.checkpoint import rng_state, save_checkpoint, set_rng_state

    state = rng_state()
    save_checkpoint(tmp_path / "last.pt", {"rng": state, "mean": np.float64(0.5), "mask": np.array([True])})
    loaded = load_checkpoint(tmp_path / "last.pt")
    set_rng_state(loaded["rng"])
    assert np.random.get_state()[1].tolist() == state["numpy"][1].tolist() and loaded["mean"] == 0.5
