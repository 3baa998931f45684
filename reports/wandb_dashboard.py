"""The project's standard W&B workspace, as code (``wandb-workspaces``): growth curves per method,
accuracy against size, the leaderboard and the growth events.

    python -m reports.wandb_dashboard --entity ENTITY [--project adagrow-bench]          # print the definition
    python -m reports.wandb_dashboard --entity ENTITY [--project adagrow-bench] --save   # create it (needs a login)

It reads what the runs log (``adagrow.records.wandb_log``: ``model/params``, ``model/macs``, ``val/acc``
per epoch, the summary's ``test_acc`` / ``params`` / ``latency/median_ms``, the ``growth/events`` table)
and what ``adagrow report --wandb`` logs (the ``leaderboard`` table).  Building the definition needs no
network; only ``--save`` talks to W&B.  ``wandb-workspaces`` is the ``dashboard`` extra.
"""

from __future__ import annotations

import argparse
import os

from adagrow.errors import AdaGrowError
from adagrow.records.wandb_log import PROJECT

NAME = "AdaGrow Bench: growth"
# Line charts of one value per epoch, one line per method (mean over its runs, min-max band)
GROWTH_CURVES = (("params as the model grows", "model/params"), ("MACs as the model grows", "model/macs"),
                 ("validation accuracy", "val/acc"), ("training loss", "train/loss"))
# (title, x, y) scatter plots of the runs' summaries (the final records)
SCATTERS = (("test accuracy vs params", "params", "test_acc"), ("test accuracy vs MACs", "macs", "test_acc"),
            ("test accuracy vs latency (median, batch 1)", "latency/median_ms", "test_acc"))
TABLES = (("leaderboard (adagrow report --wandb)", "leaderboard"), ("growth and prune events", "growth/events"))


def workspace(entity: str, project: str = PROJECT):
    """The workspace definition (a ``wandb_workspaces.workspaces.Workspace``), built offline."""
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError:
        raise AdaGrowError("the W&B dashboard needs wandb-workspaces: pip install -c constraints.txt "
                           "-e '.[dashboard]'") from None

    growth = [wr.LinePlot(title=title, x="Step", y=[key], title_x="epoch", groupby=wr.Config("method"),
                          groupby_aggfunc="mean", groupby_rangefunc="minmax") for title, key in GROWTH_CURVES]
    scatters = [wr.ScatterPlot(title=title, x=wr.SummaryMetric(x), y=wr.SummaryMetric(y), log_x=True)
                for title, x, y in SCATTERS]
    tables = [wr.WeavePanelSummaryTable(table_name=key, layout=wr.Layout(w=24, h=10)) for _, key in TABLES]
    return ws.Workspace(
        entity=entity, project=project, name=NAME,
        sections=[
            ws.Section(name="Growth per method", panels=growth, is_open=True, pinned=True),
            ws.Section(name="Accuracy vs size", panels=scatters, is_open=True),
            ws.Section(name="Leaderboard", panels=tables[:1], is_open=True),
            ws.Section(name="Growth events", panels=tables[1:], is_open=False),
        ],
        # runs sorted best first; report runs (job type "report") hold the leaderboard, training runs the rest
        runset_settings=ws.RunsetSettings(order=[ws.Ordering(ws.Summary("test_acc"), ascending=False)]),
    )


def describe(view) -> str:
    """The definition as text: each section and its panels (what ``--save`` would create)."""
    lines = [f"workspace {view.name!r} of {view.entity}/{view.project}"]
    for section in view.sections:
        lines.append(f"  section {section.name!r}")
        for panel in section.panels:
            what = getattr(panel, "y", None) or getattr(panel, "table_name", None)
            lines.append(f"    {type(panel).__name__}: {getattr(panel, 'title', None) or what}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.wandb_dashboard", description=__doc__.split("\n\n")[0])
    p.add_argument("--entity", default=os.environ.get("WANDB_ENTITY"), help="W&B user or team (default: $WANDB_ENTITY)")
    p.add_argument("--project", default=PROJECT)
    p.add_argument("--save", action="store_true", help="create the workspace in W&B (needs `wandb login`)")
    args = p.parse_args(argv)
    if not args.entity:
        raise AdaGrowError("--entity (or $WANDB_ENTITY) names the W&B user or team the workspace belongs to")
    view = workspace(args.entity, args.project)
    print(describe(view))
    if args.save:
        print(f"saved: {view.save().url}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    try:
        sys.exit(main())
    except AdaGrowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
