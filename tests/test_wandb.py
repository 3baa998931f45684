"""W&B logging of a training run, read back from its offline files (no login, no network): growth curves
(params / MACs / architecture per epoch), the growth-events table, the record as summary, the deploy
model as an artifact; W&B changes nothing in the run, and nothing W&B does can fail it."""

from __future__ import annotations

import contextlib
import io
import sys
import types

import pytest

from adagrow.engine.runner import run
from adagrow.grow.method import AdaGrowConfig
from adagrow.records.wandb_log import EVENT_COLUMNS, event_row, summary_of
from tests.conftest import make_tiny_mnist, tiny_run_config
from tests.wandb_reader import offline_runs

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")

# AdaGrow on MNIST (one layer per block at most): one depth growth after epochs 1 and 2 of 3
GROWING = AdaGrowConfig(grow_interval=1, pattern="D1", stop="none")


def _offline_env(mp: pytest.MonkeyPatch, root) -> None:
    """W&B offline, every file it writes (runs, artifact staging, cache, settings) under ``root``."""
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    for var, sub in (("WANDB_DIR", "wandb-dir"), ("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                     ("WANDB_CONFIG_DIR", "config"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        mp.setenv(var, str(root / sub))


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One tiny AdaGrow training with ``--wandb offline --wandb-artifacts``: its record and its offline run."""
    root = tmp_path_factory.mktemp("wandb")
    data = make_tiny_mnist(root / "data")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        _offline_env(mp, root)
        rec = run(tiny_run_config(data, root / "out", method="adagrow", method_config=GROWING, wandb="offline",
                                  wandb_artifacts=True))
    assert "warning: W&B" not in printed.getvalue(), printed.getvalue()  # every W&B call succeeded
    (logged_run,) = offline_runs(root / "out" / "wandb")  # under --output, not the current directory
    return rec, logged_run, data


def test_the_model_growing_is_a_curve_with_step_epoch(logged):
    rec, wb, _ = logged
    events = rec["growth_events"]
    assert [e["epoch"] for e in events] == [1, 2]  # the schedule asked for: after epochs 1 and 2 of 3
    arch = dict(wb.column("model/arch"))
    # step 0 is the seed; each growth shows at its epoch, as the event says the model became
    assert arch == {0: "0-0-0", 1: events[0]["arch"], 2: events[1]["arch"], 3: rec["arch"]}
    assert len(set(arch.values())) == 3  # 0-0-0, then one block deeper, then another
    params = dict(wb.column("model/params"))
    assert [params[1], params[2]] == [e["params_after"] for e in events]
    assert params[0] == events[0]["params_before"] and params[3] == rec["params_unfused"]
    macs = dict(wb.column("model/macs"))
    assert macs[0] < macs[1] < macs[2] == macs[3]  # each new layer adds work
    history = {row["_step"]: row for row in wb.history}
    for h in rec["history"]:  # the per-epoch metrics, under W&B's section names
        row = history[h["epoch"]]
        assert (row["train/loss"], row["train/acc"], row["val/loss"], row["val/acc"], row["lr"]) == \
            (h["train_loss"], h["train_acc"], h["val_loss"], h["val_acc"], h["lr"])
        assert row["time/train"] > 0  # phase seconds so far
    assert history[3]["time/train"] > history[1]["time/train"]


def test_every_growth_event_is_a_table_row(logged):
    rec, wb, _ = logged
    table = wb.table("growth/events")
    assert table["columns"] == list(EVENT_COLUMNS)
    assert len(table["data"]) == 2
    for row, event in zip(table["data"], rec["growth_events"]):
        got = dict(zip(EVENT_COLUMNS, row))
        assert got["epoch"] == event["epoch"] and got["kind"] == "depth"
        assert got["location"] == event["where"] and got["location"].startswith("block")
        assert got["module"] == event["what"] and "VGGLayer" in got["module"]
        assert (got["params_before"], got["params_after"]) == (event["params_before"], event["params_after"])
        assert got["params_after"] > got["params_before"]
        assert (got["val_acc_before"], got["val_acc_after"]) == (event["val_acc_before"], event["val_acc_after"])
    assert dict(wb.column("growth/params_after")) == {e["epoch"]: e["params_after"] for e in rec["growth_events"]}


def test_the_record_is_the_summary_with_latency_and_phase_seconds(logged):
    rec, wb, _ = logged
    s = wb.summary
    for key in ("test_acc", "val_acc", "params", "macs", "arch", "status", "run_name", "wall_seconds", "method"):
        assert s[key] == rec[key], key
    ((device, lat),) = rec["latency_ms"].items()
    assert s["latency/median_ms"] == lat["median_ms"] and s["latency/device"] == device
    assert s["latency_ms"][device]["median_ms"] == lat["median_ms"]
    assert {f"time/{p}" for p in rec["gpu_seconds"]} <= set(s)
    assert "history" not in s and "config" not in s  # in the run's history and config instead
    assert wb.config["method"] == "adagrow" and wb.config["method_config"]["pattern"] == "D1"
    assert (wb.run.run_group, wb.run.job_type, wb.run.display_name) == ("adhoc/mnist", "adagrow", rec["run_name"])


def test_the_deploy_model_is_an_artifact(logged):
    rec, wb, _ = logged
    (art,) = [a for a in wb.artifacts if a.type == "model"]
    assert art.name.startswith("deploy-mnist-adagrow") and "deploy.pt" in [m.path for m in art.manifest.contents]
    assert '"test_acc"' in art.metadata and f'"arch":"{rec["arch"]}"' in art.metadata.replace(" ", "")


def test_wandb_changes_nothing_in_the_run(logged, tmp_path):
    """The same run without W&B: the same numbers (the MACs forward passes W&B asks for use no random draws)."""
    rec, _, data = logged
    plain = run(tiny_run_config(data, tmp_path, method="adagrow", method_config=GROWING))
    assert plain["run_name"] == rec["run_name"]  # --wandb is not part of a run's identity
    assert plain["history"] == rec["history"] and plain["test_acc"] == rec["test_acc"]
    assert plain["growth_events"] == rec["growth_events"]


def test_the_dashboard_plots_what_a_run_logs(logged):
    pytest.importorskip("wandb_workspaces")
    from tests.test_wandb_dashboard import dashboard_keys

    _, wb, _ = logged
    keys = dashboard_keys()
    assert keys["history"] <= {k for row in wb.history for k in row}
    assert keys["summary"] <= set(wb.summary)
    assert wb.summary["growth/events/_type"] == "table-file" and "growth/events" in keys["tables"]


class _Broken:
    """A W&B run whose every call fails."""

    id, name = "broken", "broken"

    def __getattr__(self, name):
        raise RuntimeError(f"W&B is down ({name})")


def test_nothing_wandb_does_can_fail_a_run(tiny_mnist, tmp_path, monkeypatch, capsys):
    def table(*args, **kw):
        raise RuntimeError("no tables today")

    fake = types.SimpleNamespace(init=lambda **kw: _Broken(), Table=table, Artifact=table)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    rec = run(tiny_run_config(tiny_mnist, tmp_path, method="adagrow", method_config=GROWING, epochs=2,
                              wandb="online", wandb_artifacts=True))
    assert rec["status"] == "ok" and len(rec["growth_events"]) == 1
    out = capsys.readouterr().out
    for what in ("log", "event", "summary", "artifact", "finish"):
        assert f"warning: W&B {what} failed" in out, what

    def no_init(**kw):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=no_init))
    assert run(tiny_run_config(tiny_mnist, tmp_path / "2", method="adagrow", method_config=GROWING, epochs=1,
                               wandb="online"))["status"] == "ok"
    assert "W&B disabled for this run (ConnectionError: no network)" in capsys.readouterr().out


def test_event_rows_name_where_and_what():
    width = {"epoch": 4, "kind": "width", "where": ["block1.0", "block2.1"], "what": ["conv1x3", "pool3"],
             "params_before": 10, "params_after": 12, "val_acc_before": 50.0, "val_acc_after": 49.5}
    assert event_row(width) == [4, "width", "block1.0, block2.1", "conv1x3, pool3", 10, 12, 50.0, 49.5]
    prune = {"epoch": 2, "kind": "prune", "where": "magnitude", "params_before": 100, "params_after": 40,
             "val_acc_before": 90.0, "val_acc_after": 70.0}
    assert event_row(prune) == [2, "prune", "magnitude", None, 100, 40, 90.0, 70.0]


def test_summary_flattens_latency_and_phases_and_leaves_lists_out():
    record = {"test_acc": 91.5, "latency_ms": {"cuda:H100": {"median_ms": 1.25, "p10_ms": 1.2}},
              "gpu_seconds": {"train": 30.0, "grow": 2.0}, "history": [{"epoch": 1}], "growth_events": [],
              "config": {"seed": 0}, "run_dir": __import__("pathlib").Path("/x")}
    s = summary_of(record)
    assert s["latency/median_ms"] == 1.25 and s["latency/device"] == "cuda:H100"
    assert s["time/train"] == 30.0 and s["time/grow"] == 2.0 and s["run_dir"] == "/x"
    assert not {"history", "growth_events", "config"} & set(s)
