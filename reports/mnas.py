"""The M-NAS table (#14): M-NAS vs MAML on a fixed architecture vs random and transferred architectures.

    python -m reports.mnas [--results results/] [--out reports/tables/]

Every value is ours, read from the ``kind: meta`` records ``adagrow meta`` writes (``<output>/mnas.jsonl``
by default).  Per task setting (sinusoid K-shot, MNIST / CIFAR-10 / MNIST+CIFAR-10 N-way K-shot): M-NAS
with the architecture its controller chose per task, the architecture it chose for the first meta-test
task transferred to every task (same meta-weights, same episodes), a uniformly random architecture per
task (``--method random``), and MAML on one fixed architecture.  Where a MAML record scored the same
episodes (equal episode digests) a row also gives its paired difference from MAML.  The newest record
of each (task, tag, method) is shown; a smoke-profile record says "(smoke)".
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from adagrow.records.store import atomic_write_text, read_records
from reports import RESULTS_DIR, TABLES_DIR, render
from reports.formatting import format_count


def meta_records(records: list[dict]) -> list[dict]:
    """The newest ok meta record of each (task, tag), in first-seen order."""
    newest: dict[tuple[str, str], dict] = {}
    for r in records:
        if r.get("kind") == "meta" and r.get("status") == "ok":
            newest[(r["dataset"], r["tag"])] = r
    return list(newest.values())


def _score(block: dict, metric: str) -> str:
    unit = "%" if metric == "accuracy" else ""
    return f"{block['mean']:.2f}{unit} ± {block['ci95']:.2f}"


def paired_difference(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean of the per-episode differences a - b and the half-width of its 95% normal interval."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return {"mean": float(d.mean()), "ci95": float(half), "episodes": len(d)}


def _vs_maml(r: dict, scores: list[float] | None, records: list[dict]) -> str:
    """The paired difference from the MAML record that scored the same episodes, or a dash."""
    digest = (r.get("episodes") or {}).get("digest")
    maml = [m for m in records if m["method"] == "maml" and (m.get("episodes") or {}).get("digest") == digest]
    if digest is None or scores is None or not maml or not maml[-1].get("episode_scores"):
        return "—"
    diff = paired_difference(scores, maml[-1]["episode_scores"])
    sign = "+" if diff["mean"] >= 0 else "−"
    return f"{sign}{abs(diff['mean']):.2f} ± {diff['ci95']:.2f}"


def _setting(r: dict) -> str:
    cfg = r["config"]
    shape = f"{cfg['shots']}-shot" if r["dataset"] == "sinusoid" else f"{cfg['ways']}-way {cfg['shots']}-shot"
    return f"{r['dataset']} {shape}" + (" (smoke)" if r.get("profile") == "smoke" else "")


def _name(r: dict) -> str:
    modulation = r["config"].get("modulation", "film")  # records before the weight modulation used FiLM
    if r["method"] == "maml":
        return "MAML, fixed architecture"
    what = "M-NAS (per-task architecture)" if r["method"] == "mnas" else "random architecture per task"
    return what + ("" if modulation == "weight" else f", {modulation} modulation")


def rows_of(r: dict, records: list[dict] | None = None) -> list[list[str]]:
    secs = r.get("gpu_seconds") or {}
    episodes = r["test"]["episodes"]
    common = [_setting(r)]
    archs = r["archs"]
    meta_train = f"{secs.get('meta_train', 0.0):.0f}s"
    records = records or []
    vs_maml = "reference" if r["method"] == "maml" else _vs_maml(r, r.get("episode_scores"), records)
    if r["method"] == "maml":
        return [common + [_name(r), _score(r["test"], r["metric"]), vs_maml, archs["most_common"], "1", "0",
                          format_count(r["params"]), meta_train, f"{secs.get('adapt', 0.0) / episodes:.3f}s"]]
    per_task = [common + [_name(r), _score(r["test"], r["metric"]), vs_maml,
                          f"{archs['most_common']} ({archs['most_common_share']:.0%})", str(archs["distinct"]),
                          f"{archs['mean_pairwise_edge_distance']:.2f}/{archs['edges']}", format_count(r["params"]),
                          meta_train, f"{secs.get('adapt', 0.0) / episodes:.3f}s"]]
    if "transfer" in r:
        per_task.append(common + ["M-NAS arch of task 1, transferred", _score(r["transfer"], r["metric"]),
                                  _vs_maml(r, r["transfer"].get("scores"), records),
                                  r["transfer"]["arch"], "1", "0", "—", "(same run)",
                                  f"{secs.get('adapt_transfer', 0.0) / episodes:.3f}s"])
    return per_task


def grid(records: list[dict]) -> render.Grid:
    chosen = meta_records(records)
    rows = [row for r in chosen for row in rows_of(r, chosen)]
    if not rows:
        rows = [["not run", "", "", "", "", "", "", "", "", ""]]
    return render.Grid(
        "M-NAS vs MAML (fixed architecture) vs random and transferred architectures (ours)",
        ["task", "method", "meta-test score (95% CI)", "vs MAML, paired (95% CI)", "architecture (most common)",
         "distinct archs",
         "mean edge distance", "params", "meta-train time", "adaptation time / task"],
        rows,
        ["All values are ours. Score: query accuracy (classification) or MSE (sinusoid, lower is better) after "
         "adaptation, mean ± 1.96 standard errors over the meta-test episodes (600 in the full profile).",
         "vs MAML, paired: mean per-episode difference from the MAML record of the same episodes (equal episode "
         "digest: same seed, task and shape) ± 1.96 standard errors of the differences; — where there is none.",
         "Architecture: one short op name per cell edge (c3/c5 conv, mp/ap pooling, fr/ft linear+ReLU/tanh, id identity, "
         "0 cut); mean edge distance: edges on which two tasks' architectures differ, averaged over pairs of tasks.",
         "Times: GPU-seconds on CUDA, process CPU seconds on a CPU (the record's time_unit); adaptation time per task "
         "includes encoding the task and choosing its architecture. Params: the most common architecture's."])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.mnas", description=__doc__.splitlines()[0])
    p.add_argument("--results", default=RESULTS_DIR)
    p.add_argument("--out", default=TABLES_DIR)
    args = p.parse_args(argv)
    results = Path(args.results)
    records: list[dict[str, Any]] = read_records(results) if results.exists() else []
    path = Path(args.out) / "mnas.md"
    atomic_write_text(path, render.markdown(grid(records)))
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
