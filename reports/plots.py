"""Figures of the report (matplotlib, Agg backend: no display needed).

* accuracy vs latency for one dataset: the thesis' rows as grey crosses, our full runs as filled
  circles, our smoke runs as hollow diamonds (not comparable: a few epochs on a subset).  Points
  carry numbers, not names, placed so that they do not overlap; the key beside the plot names
  them.  The thesis' latencies come from another GPU (A100), so the title says where each was timed;
* the growth trajectory of one AdaGrow run: parameters and validation accuracy per epoch from the
  record's ``history``.  Training counts the unfused model (every branch of a width growth kept
  apart), the deploy model is fused; both are drawn where the record has the fused count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot's import
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

THESIS_DEVICE = "A100 PCIe 40GB"
LABEL_FONT = 7  # points, for the numbers beside the scatter points
_MARKER_RADIUS = 3.5  # points: a label box must keep clear of every marker by this much


@dataclass(frozen=True)
class Point:
    label: str
    latency_ms: float
    acc: float
    smoke: bool = False  # only smoke-profile runs behind this point


# ------------------------------------------------------------------------------------------------ labels
# Where a label may go relative to its point: (dx, dy) of its anchor in points, horizontal alignment.
# The box's bottom edge is at dy; tried in order, nearest first.
_CANDIDATES = ((4, 1, "left"), (-4, 1, "right"), (4, -8, "left"), (-4, -8, "right"), (0, 4, "center"),
               (0, -11, "center"), (8, 7, "left"), (-8, 7, "right"), (8, -14, "left"), (-8, -14, "right"),
               (0, 12, "center"), (0, -19, "center"), (14, -3, "left"), (-14, -3, "right"))


@dataclass(frozen=True)
class Box:
    left: float
    bottom: float
    right: float
    top: float

    def overlap(self, other: Box) -> float:
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.top, other.top) - max(self.bottom, other.bottom)
        return max(width, 0.0) * max(height, 0.0)


def _label_box(anchor: tuple[float, float], size: tuple[float, float], candidate: tuple[float, float, str]) -> Box:
    (x, y), (w, h), (dx, dy, ha) = anchor, size, candidate
    left = x + dx - {"left": 0.0, "center": w / 2, "right": w}[ha]
    return Box(left, y + dy, left + w, y + dy + h)


def place_labels(anchors: list[tuple[float, float]], sizes: list[tuple[float, float]]) -> list[tuple[float, float, str]]:
    """Greedy label placement: for each point (in points on the page) the first candidate position whose
    box overlaps neither a marker nor a label placed before it, else the least overlapping one.
    Returns (dx, dy, horizontal alignment) per point, for ``annotate(..., textcoords="offset points")``."""
    r = _MARKER_RADIUS
    markers = [Box(x - r, y - r, x + r, y + r) for x, y in anchors]
    placed: list[Box] = []
    chosen = []
    for anchor, size in zip(anchors, sizes):
        boxes = [_label_box(anchor, size, c) for c in _CANDIDATES]
        clashes = [sum(box.overlap(other) for other in markers + placed) for box in boxes]
        best = clashes.index(min(clashes))  # the first of equals: the nearest clear spot
        placed.append(boxes[best])
        chosen.append(_CANDIDATES[best])
    return chosen


def _number_points(ax, fig: Figure, points: list[tuple[Point, str]]) -> None:
    """Write each point's number (1, 2, …) beside it, in the point's colour, without overlaps."""
    to_points = 72.0 / fig.dpi
    anchors = [tuple(ax.transData.transform((p.latency_ms, p.acc)) * to_points) for p, _ in points]
    sizes = [(0.62 * LABEL_FONT * len(str(i)), LABEL_FONT) for i in range(1, len(points) + 1)]
    for i, ((p, color), (dx, dy, ha)) in enumerate(zip(points, place_labels(anchors, sizes)), start=1):
        ax.annotate(str(i), (p.latency_ms, p.acc), xytext=(dx, dy), textcoords="offset points", ha=ha,
                    va="bottom", fontsize=LABEL_FONT, color=color)


# ------------------------------------------------------------------------------------------------ accuracy vs latency
_PLOT_AREA = (0.07, 0.09, 0.58, 0.77)  # left, bottom, width, height: the key fills the right
_THESIS_STYLE = {"marker": "x", "color": "tab:gray", "linewidths": 1.0}
_OURS_STYLE = {"marker": "o", "color": "tab:blue"}
_SMOKE_STYLE = {"marker": "D", "facecolors": "none", "edgecolors": "tab:red", "linewidths": 1.2}


def accuracy_latency_figure(dataset: str, ours: list[Point], thesis: list[Point],
                            our_devices: tuple[str, ...] = ()) -> Figure:
    """Accuracy against batch-1 latency, numbered points and the key naming them."""
    where = ", ".join(our_devices) or "unknown device"
    full, smoke = [p for p in ours if not p.smoke], [p for p in ours if p.smoke]
    fig = plt.figure(figsize=(10.5, 6))
    ax = fig.add_axes(_PLOT_AREA)  # fixed place, so that label placement in page units stays valid
    for label, points, style in ((f"thesis ({THESIS_DEVICE})", thesis, _THESIS_STYLE),
                                 (f"ours ({where})", full, _OURS_STYLE),
                                 (f"ours (smoke, {where}): not comparable", smoke, _SMOKE_STYLE)):
        if points:
            ax.scatter([p.latency_ms for p in points], [p.acc for p in points], s=30, label=label, **style)
    ax.set_xscale("log")
    _fit_limits(ax, ours + thesis)
    _plain_log_ticks(ax)
    colored = [(p, _SMOKE_STYLE["edgecolors"] if p.smoke else _OURS_STYLE["color"]) for p in full + smoke]
    colored += [(p, "dimgray") for p in thesis]
    _number_points(ax, fig, colored)
    _key(fig, colored)
    ax.set_xlabel("latency, batch 1, fp32 (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    fig.suptitle(_scatter_title(dataset, where, full, smoke), fontsize=9, x=0.02, y=0.98, ha="left")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    return fig


def _scatter_title(dataset: str, where: str, full: list[Point], smoke: list[Point]) -> str:
    if smoke and not full:
        runs = "smoke runs only (a few epochs on a subset): not comparable with the thesis"
    elif smoke:
        runs = f"{len(smoke)} of {len(full) + len(smoke)} our points are smoke runs (hollow red): not comparable"
    else:
        runs = "full runs"
    return (f"{dataset}: test accuracy vs batch-1 fp32 latency\n"
            f"ours timed on {where}, thesis on {THESIS_DEVICE} (different hardware)\nours: {runs}")


def _fit_limits(ax, points: list[Point]) -> None:
    """Set the limits now (log x): the numbers are placed in page units, which need the final axes."""
    xs, ys = [p.latency_ms for p in points], [p.acc for p in points]
    ax.set_xlim(min(xs) / 1.3, max(xs) * 1.3)
    pad = max((max(ys) - min(ys)) * 0.06, 1.0)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)


def _plain_log_ticks(ax) -> None:
    """Latency ticks as plain numbers (2, 5, 10, 20) rather than powers of ten, as many as fit."""
    low, high = ax.get_xlim()
    shown = (2, 3, 4, 5, 6, 7, 8, 9) if high / low < 10 else (2, 5) if high / low < 1000 else ()

    def minor(value: float, _) -> str:
        return f"{value:g}" if int(f"{value:e}"[0]) in shown else ""

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(minor))


def _key(fig: Figure, colored: list[tuple[Point, str]]) -> None:
    """The list "n  label" to the right of the plot, one line per point in its colour."""
    top, bottom, left = _PLOT_AREA[1] + _PLOT_AREA[3], 0.04, _PLOT_AREA[0] + _PLOT_AREA[2] + 0.03
    fontsize = min(7.0, (top - bottom) * fig.get_figheight() * 72 / (1.4 * max(len(colored), 1)))
    step = 1.4 * fontsize / 72 / fig.get_figheight()
    for i, (p, color) in enumerate(colored, start=1):
        fig.text(left, top - (i - 1) * step, f"{i:>2}  {p.label}" + (" (smoke)" if p.smoke else ""),
                 fontsize=fontsize, color=color, va="top", family="monospace")


def accuracy_vs_latency(dataset: str, ours: list[Point], thesis: list[Point], path: Path,
                        our_devices: tuple[str, ...] = ()) -> Path:
    """Scatter accuracy against batch-1 latency and save it as PNG at ``path``."""
    return _save(accuracy_latency_figure(dataset, ours, thesis, our_devices), path, tight=False)


# ------------------------------------------------------------------------------------------------ growth
def fused_params_by_epoch(record: dict[str, Any]) -> dict[int, float]:
    """Fused (deploy-form) parameter count of the model trained in each epoch.

    A growth event of epoch e changes the model of epoch e + 1; CNN events record the fused count
    after it (``fused_params_after``).  Epochs before the first such event have no fused count."""
    after = {ev["epoch"] + 1: ev["fused_params_after"] for ev in record.get("growth_events") or []
             if "epoch" in ev and ev.get("fused_params_after") is not None}
    out, current = {}, None
    for h in record.get("history") or []:
        current = after.get(h["epoch"], current)
        if current is not None:
            out[h["epoch"]] = current
    return out


def growth_figure(record: dict[str, Any]) -> Figure:
    """Parameters (left axis) and validation accuracy (right axis) per epoch of one run."""
    history = record.get("history") or []
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(epochs, [h.get("params", 0) / 1e6 for h in history], color="tab:blue",
            label="params (unfused, during training)")
    fused = fused_params_by_epoch(record)
    if fused:
        ax.plot(list(fused), [v / 1e6 for v in fused.values()], color="tab:blue", linestyle=":", marker=".",
                label="params (fused, as deployed)")
    if record.get("params") and epochs:
        ax.scatter([epochs[-1]], [record["params"] / 1e6], marker="*", s=120, color="tab:green", zorder=3,
                   label=f"deploy model (fused): {record['params'] / 1e6:.3f}M")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("parameters (M)", color="tab:blue")
    acc_ax = ax.twinx()
    acc_ax.plot(epochs, [h.get("val_acc") for h in history], color="tab:orange", label="validation accuracy")
    acc_ax.set_ylabel("validation accuracy (%)", color="tab:orange")
    growth_epochs = sorted({ev["epoch"] for ev in record.get("growth_events") or [] if "epoch" in ev})
    for i, epoch in enumerate(growth_epochs):  # the model grows between epoch e and e + 1
        ax.axvline(epoch + 0.5, color="tab:gray", linestyle="--", linewidth=0.6, label="growth" if i == 0 else None)
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = acc_ax.get_legend_handles_labels()
    # on the twin axis, which is drawn last: a legend on the first one would lie under the accuracy line
    acc_ax.legend(handles + more_handles, labels + more_labels, loc="lower right", fontsize=7)
    ax.set_title(_growth_title(record), fontsize=9)
    return fig


def _growth_title(record: dict[str, Any]) -> str:
    tag = (record.get("config") or {}).get("tag") or record.get("model")
    profile = record.get("profile")
    run = f"{profile} run" + ("" if profile == "full" else ": not comparable")
    return f"{record.get('dataset')} / {tag} (seed {record.get('seed')}, {run}): growth to {record.get('arch')}"


def growth_trajectory(record: dict[str, Any], path: Path) -> Path:
    """The growth figure of one run, saved as PNG at ``path``."""
    return _save(growth_figure(record), path)


def _save(fig: Figure, path: Path, tight: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
