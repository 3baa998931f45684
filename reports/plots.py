"""Figures of the report (matplotlib, Agg backend: no display needed).

* accuracy vs latency for one dataset: our runs as filled markers, the thesis' rows as hollow
  markers, each labelled — the thesis' latencies come from another GPU (A100), so the figure says so;
* the growth trajectory of one AdaGrow run: parameters and validation accuracy per epoch from the
  record's ``history``, with a dashed line at every growth event.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot's import
import matplotlib.pyplot as plt  # noqa: E402


@dataclass(frozen=True)
class Point:
    label: str
    latency_ms: float
    acc: float


def accuracy_vs_latency(dataset: str, ours: list[Point], thesis: list[Point], path: Path,
                        our_devices: tuple[str, ...] = ()) -> Path:
    """Scatter accuracy against batch-1 latency and save it as PNG at ``path``."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if thesis:
        ax.scatter([p.latency_ms for p in thesis], [p.acc for p in thesis], facecolors="none",
                   edgecolors="tab:gray", marker="o", label="thesis (A100 PCIe 40GB)")
    if ours:
        where = ", ".join(our_devices) or "unknown device"
        ax.scatter([p.latency_ms for p in ours], [p.acc for p in ours], color="tab:blue", marker="o",
                   label=f"ours ({where})")
    for p in thesis:
        ax.annotate(p.label, (p.latency_ms, p.acc), fontsize=6, color="tab:gray", xytext=(3, -6),
                    textcoords="offset points")
    for p in ours:
        ax.annotate(p.label, (p.latency_ms, p.acc), fontsize=6, color="tab:blue", xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("latency, batch 1, fp32 (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def growth_trajectory(record: dict[str, Any], path: Path) -> Path:
    """Parameters (left axis) and validation accuracy (right axis) per epoch of one run."""
    history = record.get("history") or []
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(epochs, [h.get("params", 0) / 1e6 for h in history], color="tab:blue", label="params (M, unfused)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("parameters (M)", color="tab:blue")
    acc_ax = ax.twinx()
    acc_ax.plot(epochs, [h.get("val_acc") for h in history], color="tab:orange", label="val acc")
    acc_ax.set_ylabel("validation accuracy (%)", color="tab:orange")
    for event in record.get("growth_events") or []:
        if "epoch" in event:
            ax.axvline(event["epoch"], color="tab:gray", linestyle="--", linewidth=0.6)
    tag = (record.get("config") or {}).get("tag") or record.get("model")
    ax.set_title(f"{record.get('dataset')} / {tag} (seed {record.get('seed')}, {record.get('profile')}): "
                 f"growth to {record.get('arch')}", fontsize=9)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
