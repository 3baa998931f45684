"""The saved W&B dashboard definition (reports/wandb_dashboard.py), built without a network: the spec
``--save`` would upload plots growth per method, accuracy against size and the leaderboard.  That its
keys are what runs really log is checked against offline runs in test_wandb.py / test_wandb_report.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from adagrow.errors import AdaGrowError
from reports.wandb_dashboard import main, workspace

pytest.importorskip("wandb_workspaces")
ROOT = Path(__file__).resolve().parents[1]


def panels(entity: str = "someone") -> dict[str, list[dict]]:
    """Section name -> the panels' specs, as the workspace's ``save`` would send them (built offline)."""
    view = workspace(entity)._to_model().model_dump(by_alias=True, exclude_none=True)
    assert (view["entity"], view["project"]) == (entity, "adagrow-bench")
    sections = view["spec"]["section"]["panelBankConfig"]["sections"]
    return {s["name"]: s["panels"] for s in sections}


def dashboard_keys() -> dict[str, set[str]]:
    """The history keys its line charts plot, the summary keys its scatters plot, the tables it shows."""
    spec = panels()
    lines = {m for p in spec["Growth per method"] for m in p["config"]["metrics"]}
    scatter = {p["config"][axis].removeprefix("summary:") for p in spec["Accuracy vs size"] for axis in ("xAxis", "yAxis")}
    tables = {p["config"]["panel2Config"]["exp"]["fromOp"]["inputs"]["key"]["val"]
              for name in ("Leaderboard", "Growth events") for p in spec[name]}
    return {"history": lines, "summary": scatter, "tables": tables}


def test_growth_curves_are_per_method_over_epochs():
    spec = panels()
    growth = spec["Growth per method"]
    assert {p["viewType"] for p in growth} == {"Run History Line Plot"}
    assert [p["config"]["metrics"] for p in growth][:2] == [["model/params"], ["model/macs"]]
    for p in growth:  # one line per method (its runs averaged, min-max band), step = epoch
        assert (p["config"]["groupBy"], p["config"]["groupAgg"], p["config"]["xAxis"]) == ("method.value", "mean", "_step")


def test_accuracy_against_size_and_the_leaderboard_table():
    spec = panels()
    (first, *_) = spec["Accuracy vs size"]
    assert (first["viewType"], first["config"]["xAxis"], first["config"]["yAxis"]) == \
        ("Scatter Plot", "summary:params", "summary:test_acc")
    assert dashboard_keys()["tables"] == {"leaderboard", "growth/events"}


def test_the_command_prints_the_definition_and_needs_an_entity(capsys, monkeypatch):
    assert main(["--entity", "team"]) == 0  # no --save: nothing leaves the machine
    out = capsys.readouterr().out
    assert "team/adagrow-bench" in out and "LinePlot: params as the model grows" in out
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    with pytest.raises(AdaGrowError, match="--entity"):
        main([])


def test_wandb_workspaces_is_an_extra_and_locked():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("wandb-workspaces") for d in project["optional-dependencies"]["dashboard"])
    lock = (ROOT / "constraints.txt").read_text().splitlines()
    assert any(line.startswith("wandb-workspaces==") for line in lock)
