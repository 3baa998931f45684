"""The lock (constraints.txt) and the versions every record carries."""

from pathlib import Path

import torch

from adagrow.records import env

ROOT = Path(__file__).resolve().parents[1]


def test_lock_pins_torch_and_torchvision_together():
    pins = env.read_lock(ROOT / "constraints.txt")
    assert "torch" in pins and "torchvision" in pins, "torch and torchvision must be locked as a pair"
    assert all(v and v[0].isdigit() for v in pins.values())


def test_a_version_other_than_the_lock_is_reported(tmp_path):
    lock = tmp_path / "constraints.txt"
    lock.write_text(f"# comment\ntorch==0.0.1\nnot-installed-anywhere==1.0\nnumpy=={env._installed('numpy')}\n")
    bad = env.lock_mismatches(lock)
    assert bad == [f"torch {env._installed('torch')} (lock 0.0.1)"]  # absent packages are not mismatches


def test_versions_come_from_the_running_environment():
    v = env.versions()
    assert v["torch"] == torch.__version__
    assert v["numpy"] == __import__("numpy").__version__
    assert v["torch-pruning"] == env._installed("torch-pruning") is not None
    assert "lock" in v


def test_ci_env_check_scans_the_installed_distributions_once(monkeypatch):
    """``packages_distributions()`` reads every installed distribution's file list; called once per
    (dependency × module) it took minutes on a loaded machine (issue 20, item 17)."""
    import runpy

    ns = runpy.run_path(str(ROOT / ".ci" / "check_env.py"), run_name="check_env")  # defines, runs nothing
    scope = ns["main"].__globals__
    calls = []
    real = scope["packages_distributions"]
    monkeypatch.setitem(scope, "packages_distributions", lambda: calls.append(1) or real())
    monkeypatch.setitem(scope, "lock_mismatches", lambda path: [])
    imported = []
    monkeypatch.setitem(scope, "importlib", type("stub", (), {"import_module": staticmethod(imported.append)}))
    ns["main"]()
    assert len(calls) == 1 and "torch" in imported and "numpy" in imported
    assert sorted(ns["modules_by_distribution"]({"torch"})["torch"]) == sorted(
        m for m, dists in real().items() if "torch" in dists)  # what the one scan finds
