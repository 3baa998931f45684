"""``adagrow report --wandb offline|online``: what the report wrote, as one W&B run per results set.

The run (job type ``report``, named ``report-<results>``, in project ``adagrow-bench`` beside the
training runs) holds, for a dashboard to build on (``reports/wandb_dashboard.py``, docs/wandb.md):

* ``tables/<name>``: every generated table (the thesis tables, the second thesis', M-NAS) as a W&B Table
  of the same cells as the Markdown one;
* ``leaderboard``: one row per suite, dataset and entry (method / model) with numbers (test accuracy mean
  and spread over seeds, params, MACs, latency), and the same rows grouped as
  ``<suite>/<dataset>/leaderboard``;
* every plot as an image: ``plots/acc-latency-<dataset>``, and each run's growth trajectory as
  ``<suite>/<dataset>/growth/<run>``.

Offline runs go under ``$WANDB_DIR`` if set, else ``runs/wandb/`` (beside the training runs' W&B files,
never into ``reports/``); ``wandb sync`` uploads them later.  As in training, W&B failing only warns.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from adagrow.records.wandb_log import start_run
from reports import match
from reports.render import Grid

LEADERBOARD_COLUMNS = ("suite", "dataset", "entry", "method", "arch", "n", "profiles", "test_acc", "test_acc_std",
                       "params", "macs", "latency_ms", "devices")


def leaderboard(records: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows of :data:`LEADERBOARD_COLUMNS`: each suite × dataset × entry of the ok training records,
    summarised as the report tables summarise a row (full-profile runs where any, latest per seed)."""
    def entry(r: dict[str, Any]) -> str:  # a suite entry's name; an ad-hoc run's method and model
        return match.record_tag(r) or f"{r['method']}-{r.get('model') or 'default'}"

    runs = [r for r in records if match.is_training(r) and r.get("status") == "ok"]
    rows = []
    for suite, dataset, name in sorted({(r.get("suite") or "adhoc", r["dataset"], entry(r)) for r in runs}):
        mine = [r for r in runs if (r.get("suite") or "adhoc", r["dataset"], entry(r)) == (suite, dataset, name)]
        tag = match.record_tag(mine[0])
        chosen = match.select_runs(mine, dataset, tag) if tag else [r for r in mine if r.get("profile") == "full"] or mine
        s = match.summarize(chosen)
        if s is not None:
            rows.append([suite, dataset, name, mine[0]["method"], s.arch, s.n, ", ".join(s.profiles), s.acc,
                         s.std.get("acc"), s.params, s.macs, s.latency_ms, ", ".join(s.devices)])
    return rows


def _growth_plot_keys(records: list[dict[str, Any]], plots: list[Path]) -> dict[Path, str]:
    """``<suite>/<dataset>/growth/<run>`` for each growth plot of a run in ``records`` (named, as
    reports.generate names it, after the run's directory), else ``plots/growth/<file>``."""
    by_stem = {}
    for r in records:
        if r.get("run_dir"):
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(r["run_dir"]).name)
            by_stem[stem] = f"{r.get('suite') or 'adhoc'}/{r['dataset']}/growth/{stem}"
    return {p: by_stem.get(p.stem, f"plots/growth/{p.stem}") for p in plots if p.parent.name == "growth"}


def log_report(mode: str, results: Path, grids: list[tuple[str, Grid]], plots: list[Path],
               records: list[dict[str, Any]]) -> Path | None:
    """Log the report of ``results`` to W&B; the offline run's folder (None when online or W&B failed)."""
    directory = Path(os.environ.get("WANDB_DIR") or "runs")
    directory.mkdir(parents=True, exist_ok=True)
    training = [r for r in records if match.is_training(r)]
    run = start_run(mode, dir=str(directory), name=f"report-{Path(results).stem or 'results'}", job_type="report",
                    group="report", tags=["report"],
                    config={"results": str(results), "records": len(records),
                            "suites": sorted({r.get("suite") or "" for r in training}),
                            "datasets": sorted({r["dataset"] for r in training})})
    if run is None:
        return None
    try:
        import wandb

        logged: dict[str, Any] = {}
        for stem, grid in grids:
            logged[f"tables/{stem}"] = wandb.Table(columns=list(grid.header), data=[list(r) for r in grid.rows])
        rows = leaderboard(records)
        logged["leaderboard"] = wandb.Table(columns=list(LEADERBOARD_COLUMNS), data=rows)
        for suite, dataset in sorted({(r[0], r[1]) for r in rows}):
            logged[f"{suite}/{dataset}/leaderboard"] = wandb.Table(
                columns=list(LEADERBOARD_COLUMNS), data=[r for r in rows if (r[0], r[1]) == (suite, dataset)])
        growth = _growth_plot_keys(records, plots)
        for path in plots:
            logged[growth.get(path, f"plots/{path.stem}")] = wandb.Image(str(path))
        run.log(logged)
        where = Path(run.dir).parent if mode == "offline" else None  # run.dir is the run's files/ folder
        place = f"in {where} (upload: wandb sync {where})" if where else f"at {run.url}"
        run.finish()
        print(f"W&B: report run with {sum(isinstance(v, wandb.Table) for v in logged.values())} tables and "
              f"{len(plots)} plots {place}")
        return where
    except Exception as exc:  # noqa: BLE001 - the report's files are written; W&B failing only warns
        print(f"warning: W&B report logging failed ({type(exc).__name__}: {exc})")
        return None
