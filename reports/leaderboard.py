"""The leaderboard of one (dataset, profile): every method's test accuracy with its 95% interval, the paired
difference to AdaGrow over the same seeds, params, MACs, CPU latency with its spread and thread count, and the
training seconds per phase; plus the accuracy–params and accuracy–training-time Pareto plots.

One page per dataset and profile, never mixing profiles (a smoke page says it is a pipeline check).  A row's
"vs AdaGrow" cell is ``other − AdaGrow`` over the seeds both ran (``reports.stats.paired_difference``), and its
verdict says "better" / "worse" only where the interval excludes zero — whichever method wins.  AdaGrow is the
row named in ``BASELINES`` for the dataset (the first one present).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from reports import render
from reports.formatting import format_count
from reports.match import (
    PROFILE_PREFERENCE,
    base_below_bar,
    is_training,
    latency_doubtful,
    latency_of,
    latest_per_seed,
    newest_version,
    phase_seconds,
    record_tag,
    source_seconds,
)
from reports.stats import Estimate, mean_ci, paired_difference

Record = dict[str, Any]
# The AdaGrow rows other rows are compared with: a row's baseline is the first of these with records that was
# trained under the row's own recipe (SST-2's AdamW rows against the AdamW grower, its thesis-recipe rows against
# the thesis-recipe grower: one recipe family per comparison), else the first of these with records.
BASELINES = ("adagrow-vgg-3b", "adagrow-resnet-3b", "adagrow-bert", "adagrow-bert-adamw", "adagrow-vit")
FLOOR_POINTS = 5.0  # the Pareto plot's y-axis reaches this far below the best row; rows further down sit on its floor
PHASES = ("train", "grow", "prune", "finetune", "eval")  # the phases shown (seconds; "total" sums every phase)


def is_episodic(record: Record) -> bool:
    """A meta-learning record (M-NAS, MAML): its accuracy is over few-shot episodes, not the dataset's test
    split, so it has its own table (reports/mnas.py) and no place on a dataset's leaderboard."""
    return "meta_train_final" in record or record.get("kind") == "meta"


def runs_by_row(records: list[Record], dataset: str, profile: str) -> dict[str, dict[Any, Record]]:
    """tag -> {seed: its latest ok record} for one dataset and profile, newest numerics version of each tag."""
    rows: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if (is_training(r) and r.get("status") == "ok" and r.get("dataset") == dataset
                and str(r.get("profile")) == profile and record_tag(r) and not is_episodic(r)):
            rows[record_tag(r)].append(r)
    out = {}
    for tag, runs in rows.items():
        out[tag] = {r.get("seed"): r for r in latest_per_seed(newest_version(runs))}
    return out


def _estimate(values: list[float | None]) -> Estimate | None:
    present = [float(v) for v in values if v is not None]
    return mean_ci(present) if present else None


def _mean_of(values: list[float | None]) -> float | None:
    est = _estimate(values)
    return None if est is None else est.mean


def _count(x: float | None) -> str:
    return "—" if x is None else format_count(x)


def _latency(runs: list[Record]) -> str:
    lats = [latency_of(r)[0] for r in runs]
    threads = {lat.get("threads") for lat in lats if lat}
    if len(threads) > 1:
        return "mixed threads"
    est = _estimate([lat.get("median_ms") for lat in lats])
    if est is None:
        return "—"
    spread = max((lat["spread"] for lat in lats if lat.get("spread") is not None), default=None)
    text = f"{est.mean:.2f}" + (f" ±{50 * spread:.0f}%" if spread is not None else "")
    (n_threads,) = threads or {None}
    text += f" ({n_threads}t)" if n_threads else ""
    return text + (" †" if any(map(latency_doubtful, runs)) else "")


def _phases(runs: list[Record]) -> str:
    secs = [r.get("gpu_seconds") or {} for r in runs]
    parts = []
    # the dense model a pruning or BAMC row started from (--pretrained / --base-run): another run's, counted here
    base = _estimate([source_seconds(r) for r in runs])
    if base is not None and base.mean >= 0.5:
        parts.append(f"dense base {base.mean:.0f}")
    for phase in PHASES:
        est = _estimate([s.get(phase) for s in secs if phase in s])
        if est is not None and est.mean >= 0.5:
            parts.append(f"{phase} {est.mean:.0f}")
    total = _estimate([phase_seconds(r)["total_s"] for r in runs])
    busy = " ‡" if any((r.get("machine_load") or {}).get("busy") for r in runs) else ""
    return (f"{total.mean:.0f}" if total else "—") + (f" ({', '.join(parts)})" if parts else "") + busy


def recipes_of(runs: dict[Any, Record]) -> set[str]:
    return {str(r.get("recipe") or (r.get("config") or {}).get("recipe") or "") for r in runs.values()} - {""}


def baseline_of(tag: str, rows: dict[str, dict[Any, Record]]) -> str | None:
    """The AdaGrow row ``tag`` is compared with: the first ``BASELINES`` row of the same recipe, else the first."""
    present = [t for t in BASELINES if t in rows]
    mine = recipes_of(rows[tag])
    return next((t for t in present if mine and recipes_of(rows[t]) == mine), present[0] if present else None)


def _versus(base: dict[Any, Record] | None, mine: dict[Any, Record], is_base: bool, name: str = "") -> str:
    if is_base:
        return "baseline"
    if base is None:
        return "—"
    paired = paired_difference({s: r.get("test_acc") for s, r in base.items()},
                               {s: r.get("test_acc") for s, r in mine.items()})
    if paired is None:
        return "no shared seed" + (f" with {name}" if name else "")
    return f"{paired.difference.format()} (n={len(paired.seeds)}; {paired.verdict}" + (f"; vs {name})" if name else ")")


def _cap(base: dict[Any, Record] | None, mine: dict[Any, Record]) -> str:
    """For a row run under a parameter cap (``max_params``, the growers' "-capped" rows): its final params as a
    multiple of AdaGrow's of the same seed, and whether every seed landed within AdaGrow's ±10%."""
    capped = [r for r in mine.values() if ((r.get("config") or {}).get("method_config") or {}).get("max_params")]
    if not capped:
        return ""
    if base is None:
        return " (capped)"
    ratios = [r["params"] / base[s]["params"] for s, r in mine.items()
              if s in base and r.get("params") and base[s].get("params")]
    if not ratios:
        return " (capped)"
    span = f"{min(ratios):.2f}" + (f"–{max(ratios):.2f}" if max(ratios) - min(ratios) >= 0.005 else "")
    outside = " §" if any(not 0.9 <= x <= 1.1 for x in ratios) else ""
    return f" (capped: {span}× AdaGrow's params{outside})"


def grid(records: list[Record], dataset: str, profile: str) -> render.Grid | None:
    """The leaderboard of one dataset and profile, best mean accuracy first; None without records."""
    rows = runs_by_row(records, dataset, profile)
    if not rows:
        return None
    base_of = {tag: baseline_of(tag, rows) for tag in rows}
    used = sorted({b for b in base_of.values() if b}, key=BASELINES.index)
    base_tag = used[0] if used else None
    ordered = sorted(rows.items(), key=lambda kv: -(_mean_of([r.get("test_acc") for r in kv[1].values()]) or 0.0))
    header = ["Method", "arch", "n", "test acc % (95% CI)", "vs AdaGrow: paired Δ acc (95% CI)", "params", "MACs",
              "CPU latency ms", "train seconds: total (per phase)"]
    lines = []
    for tag, by_seed in ordered:
        runs = list(by_seed.values())
        acc = _estimate([r.get("test_acc") for r in runs])
        archs = sorted({str(r.get("arch") or r.get("model") or "") for r in runs} - {""})
        unlearned = sorted({why for r in runs if (why := base_below_bar(r))})
        flag = f" ⚠ pruned an unlearned base: {'; '.join(unlearned)}" if unlearned else ""
        base = rows.get(base_of[tag]) if base_of[tag] else None
        lines.append([tag + _cap(base, by_seed) + flag, " / ".join(archs) or "—", str(len(runs)), acc.format() if acc else "—",
                      _versus(base, by_seed, tag == base_of[tag], base_of[tag] if len(used) > 1 else ""),
                      _count(_mean_of([r.get("params") for r in runs])), _count(_mean_of([r.get("macs") for r in runs])),
                      _latency(runs), _phases(runs)])
    title = f"Leaderboard — {dataset}, profile {profile}"
    if profile == "smoke":
        title += " (pipeline check: a few epochs on a subset; not a result)"
    notes = [
        f"Every row: ok records of profile {profile!r} only (never mixed with another profile), the newest numerics "
        "version, the latest record per seed.",
        "test acc: mean over the n seeds ± the half-width of the 95% Student-t interval (one seed: no interval).",
        f"vs AdaGrow: the mean paired difference (row − {base_tag or 'AdaGrow'}) over the seeds both ran, with its "
        "95% interval; 'better' / 'worse' only where the interval excludes zero, else 'no difference shown'."
        if len(used) < 2 else
        "vs AdaGrow: the mean paired difference (row − the AdaGrow row the cell names, the one trained under the "
        f"row's own recipe: {', '.join(used)}; each is its recipe's baseline) over the seeds both ran, with its 95% "
        "interval; 'better' / 'worse' only where the interval excludes zero, else 'no difference shown'.",
        "params / MACs: the fused deploy model at batch 1 (mean over seeds).",
        "CPU latency: median batch-1 forward (mean over seeds), ± half the p10–p90 range of the repeats (largest "
        "over seeds), (Nt) the pinned thread count; † a record flags it noisy or taken under load (the machine's "
        "load above its cores as the timing ended; older records: during the run).",
        "train seconds: every phase of the run summed (CPU- or GPU-seconds, as the record's time_unit), mean over "
        "seeds; a pruning row's total includes the dense model it pruned ('dense base': another run's training, "
        "shared by the rows of one seed and counted once on reports/tables/pruning-<dataset>-<profile>.md), as Tables "
        "3-29/3-30 count it; ‡ some seed ran on a machine whose mean "
        "load exceeded its cores (other work competed): those seconds are not the machine's speed.",
    ]
    if any("(capped" in line[0] for line in lines):
        notes.append("capped: the row grew under a parameter cap of the same seed's AdaGrow final params + 10% "
                     "(--max-params); its params as a multiple of AdaGrow's over the seeds, § where a seed ended "
                     "outside AdaGrow's ±10% (a growth step can be larger than the band).")
    if any("⚠" in line[0] for line in lines):  # only where it applies: other pages stay as they were
        notes.append("⚠ a pruning row whose dense base (its accuracy measured just before the prune) is below the "
                     "dataset's bar (reports.match.BASE_BARS) pruned a model that has not learned: no pruning result.")
    return render.Grid(title, header, lines, notes)


def profiles_present(records: list[Record], dataset: str) -> list[str]:
    found = {str(r.get("profile")) for r in records
             if is_training(r) and r.get("dataset") == dataset and not is_episodic(r)}
    rank = {p: i for i, p in enumerate(PROFILE_PREFERENCE)}
    return sorted(found, key=lambda p: (rank.get(p, len(rank)), p))


# ------------------------------------------------------------------------------------------------ plots
def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (lower or equal cost and higher or equal accuracy, one
    strictly), in order of increasing cost."""
    front = []
    for i, (cost, acc) in enumerate(points):
        dominated = any((c <= cost and a >= acc) and (c < cost or a > acc) for j, (c, a) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def pareto_plot(records: list[Record], dataset: str, profile: str, path: Path) -> Path | None:
    """Accuracy vs params (left) and vs training seconds (right), mean ± 95% CI per method, the Pareto front
    drawn; None when there is nothing to draw."""
    from reports.plots import plt  # Agg backend set there

    rows = runs_by_row(records, dataset, profile)
    pts = []
    for tag, by_seed in rows.items():
        runs = list(by_seed.values())
        acc = _estimate([r.get("test_acc") for r in runs])
        params = _estimate([r.get("params") for r in runs])
        secs = _estimate([phase_seconds(r)["total_s"] for r in runs])
        if acc and params and secs:
            pts.append((tag, acc, params.mean, secs.mean))
    if not pts:
        return None
    pts.sort(key=lambda p: -p[1].mean)  # the legend in the leaderboard's order
    # the y-axis spans the methods that learned: a row far below the best (a quantized model that collapsed) would
    # squash every comparison into one line; it is drawn on the axis' floor as a ▼ and its accuracy named
    best = max(p[1].mean for p in pts)
    floor = max(min(p[1].mean - (p[1].half_width or 0) for p in pts) - 0.2, best - FLOOR_POINTS)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    markers = "osD^vP*X<>h"
    for ax, (xi, xlabel) in zip(axes, ((2, "params (fused deploy model)"), (3, "training seconds (all phases)"))):
        xy = [(p[xi], p[1].mean) for p in pts]
        for k, ((tag, acc, *_), (x, y)) in enumerate(zip(pts, xy)):
            style = dict(color=plt.cm.tab10(k % 10), marker=markers[k // 10 % len(markers)])
            if y < floor:  # below the axis: on its floor, its value in the legend
                ax.plot(x, floor, linestyle="none", ms=7, **{**style, "marker": "v"}, label=f"{tag} ({y:.2f}%, off the axis)")
            else:
                ax.errorbar(x, y, yerr=acc.half_width or 0, linestyle="none", ms=5, capsize=2, label=tag, **style)
        front = pareto_front(xy)
        # ringed, so that a front of one point (one method dominating every other) shows too
        ax.plot([xy[i][0] for i in front], [max(xy[i][1], floor) for i in front], "--", color="grey", lw=0.8,
                marker="o", ms=11, mfc="none", label="Pareto front")
        ax.set_xscale("log")
        ax.set_ylim(bottom=floor - 0.05 * (best - floor + 0.1))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy % (mean ± 95% CI)")
    # one legend for both panels (the same rows): names beside the points would overlap where accuracies agree
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.78, 0.5), fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.06, right=0.77, wspace=0.28, top=0.88)
    kind = " — smoke: pipeline check, not a result" if profile == "smoke" else ""
    fig.suptitle(f"{dataset}, profile {profile}{kind}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
