"""The M-NAS table (#14): M-NAS vs MAML on a fixed architecture vs random and transferred architectures.

    python -m reports.mnas [--results results/] [--out reports/tables/]

Every value is ours, read from the ``kind: meta`` records ``adagrow meta`` writes (``<output>/mnas.jsonl``
by default).  Per task setting (sinusoid K-shot, MNIST / CIFAR-10 / MNIST+CIFAR-10 N-way K-shot): M-NAS
with the architecture its controller chose per task, the architecture it chose for the first meta-test
task transferred to every task (same meta-weights, same episodes), a uniformly random architecture per
task (``--method random``), and MAML on one fixed architecture.  Where a MAML record scored the same
episodes (equal episode digests) a row also gives its paired difference from MAML.  The newest record
of each (task, tag, profile, seed) is used and profiles are never mixed: each profile's runs make rows of their
own, named after it where it is not ``full``.  One seed: the score over its episodes and the difference paired
per episode; several seeds (the reference profile runs 0-2): means over seeds ± their 95% Student-t
half-width, and the difference paired per seed over the seeds that met the same episodes (``reports.stats``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from adagrow.records.store import atomic_write_text, read_records
from reports import RESULTS_DIR, TABLES_DIR, render
from reports.formatting import format_count
from reports.stats import NO_DIFFERENCE, mean_ci
from reports.stats import paired_difference as stats_paired


def meta_records(records: list[dict]) -> list[dict]:
    """The newest ok meta record of each (task, tag, profile, seed), in first-seen order: a profile's runs are never
    replaced by another profile's (the table shows each profile's rows apart)."""
    newest: dict[tuple, dict] = {}
    for r in records:
        if r.get("kind") == "meta" and r.get("status") == "ok":
            newest[(r["dataset"], r["tag"], r.get("profile") or "full", r.get("seed"))] = r
    return list(newest.values())


def groups(records: list[dict]) -> list[list[dict]]:
    """The newest records grouped by (task, tag, profile): the seeds of one row, in first-seen order."""
    out: dict[tuple, list[dict]] = {}
    for r in meta_records(records):
        out.setdefault((r["dataset"], r["tag"], r.get("profile") or "full"), []).append(r)
    return list(out.values())


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
    maml = [m for m in records if m["method"] == "maml" and (m.get("episodes") or {}).get("digest") == digest
            and m.get("profile") == r.get("profile")]
    if digest is None or scores is None or not maml or not maml[-1].get("episode_scores"):
        return "—"
    diff = paired_difference(scores, maml[-1]["episode_scores"])
    sign = "+" if diff["mean"] >= 0 else "−"
    return f"{sign}{abs(diff['mean']):.2f} ± {diff['ci95']:.2f}"


def _setting(r: dict, seeds: int = 1) -> str:
    cfg = r["config"]
    shape = f"{cfg['shots']}-shot" if r["dataset"] == "sinusoid" else f"{cfg['ways']}-way {cfg['shots']}-shot"
    notes = [] if (r.get("profile") or "full") == "full" else [r["profile"]]
    notes += [f"{seeds} seeds"] if seeds > 1 else []
    return f"{r['dataset']} {shape}" + (f" ({', '.join(notes)})" if notes else "")


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
    meta_train = f"{meta_train}, {_iterations(r)}"
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


def _iterations(r: dict) -> str:
    """Meta-iterations run and why training ended there (records before the plateau rule: the configured count)."""
    stop = r.get("meta_train_stop")
    if not stop:
        return f"{r['config']['meta_iters']} it"
    return f"{stop['iteration']} it" + ("" if stop["reason"] == "fixed" else f" ({stop['reason']})")


def _over_seeds(values: list[float], metric: str) -> str:
    """Mean ± the 95% Student-t half-width over seeds (``reports.stats``; issue 19's cells)."""
    unit = "%" if metric == "accuracy" else ""
    est = mean_ci(values)
    return f"{est.mean:.2f}{unit}" + ("" if est.half_width is None else f" ± {est.half_width:.2f}")


def _paired_over_seeds(recs: list[dict], maml: list[dict], value) -> str:
    """``value(r) − value(MAML's r)`` over the seeds whose meta-test episodes are the same (equal digests): mean ±
    95% Student-t interval of the per-seed differences, and the verdict (for MSE a negative difference is better)."""
    digest = {m.get("seed"): (m.get("episodes") or {}).get("digest") for m in maml}
    base = {m.get("seed"): m["test"]["mean"] for m in maml}
    other = {r.get("seed"): value(r) for r in recs
             if digest.get(r.get("seed")) is not None and digest[r.get("seed")] == (r.get("episodes") or {}).get("digest")}
    diff = stats_paired(base, other)
    if diff is None:
        return "—"
    est = diff.difference
    if est.half_width is None:
        return f"{est.mean:+.2f} (1 seed)"
    verdict = diff.verdict
    if recs[0]["metric"] != "accuracy" and verdict != NO_DIFFERENCE:
        verdict = "worse" if verdict == "better" else "better"  # lower MSE is better
    return f"{est.mean:+.2f} ± {est.half_width:.2f} ({verdict}, {est.n} seeds)"


def seed_rows(recs: list[dict], all_groups: list[list[dict]]) -> list[list[str]]:
    """The rows of one (task, tag, profile) run under several seeds: every cell a mean over seeds (scores with their
    Student-t interval), paired with MAML's runs of the same profile over the seeds that met the same episodes."""
    r0 = recs[0]
    maml = next((g for g in all_groups if g[0]["method"] == "maml" and g[0]["dataset"] == r0["dataset"]
                 and g[0].get("profile") == r0.get("profile") and g[0]["config"]["ways"] == r0["config"]["ways"]
                 and g[0]["config"]["shots"] == r0["config"]["shots"]), [])
    setting = _setting(r0, len(recs))
    n = len(recs)
    secs = [r.get("gpu_seconds") or {} for r in recs]
    per_task = sum(s.get("adapt", 0.0) / r["test"]["episodes"] for s, r in zip(secs, recs)) / n
    meta_train = f"{sum(s.get('meta_train', 0.0) for s in secs) / n:.0f}s, " + " / ".join(map(_iterations, recs))
    counts: dict[str, int] = {}
    for r in recs:
        for arch, c in r["archs"]["counts"].items():
            counts[arch] = counts.get(arch, 0) + c
    top = max(counts, key=counts.get)
    params = format_count(round(sum(r["params"] for r in recs) / n))
    score = _over_seeds([r["test"]["mean"] for r in recs], r0["metric"])
    if r0["method"] == "maml":
        return [[setting, _name(r0), score, "reference", top, "1", "0", params, meta_train, f"{per_task:.3f}s"]]
    distinct = " / ".join(str(r["archs"]["distinct"]) for r in recs)  # per seed, as the iterations
    distance = sum(r["archs"]["mean_pairwise_edge_distance"] for r in recs) / n
    rows = [[setting, _name(r0), score, _paired_over_seeds(recs, maml, lambda r: r["test"]["mean"]), top,
             distinct, f"{distance:.2f}/{r0['archs']['edges']}", params, meta_train, f"{per_task:.3f}s"]]
    with_transfer = [r for r in recs if "transfer" in r]
    if with_transfer:
        adapt_t = sum((r.get("gpu_seconds") or {}).get("adapt_transfer", 0.0) / r["test"]["episodes"]
                      for r in with_transfer) / len(with_transfer)
        rows.append([setting, "M-NAS arch of task 1, transferred",
                     _over_seeds([r["transfer"]["mean"] for r in with_transfer], r0["metric"]),
                     _paired_over_seeds(with_transfer, maml, lambda r: r["transfer"]["mean"]),
                     " / ".join(sorted({r["transfer"]["arch"] for r in with_transfer})), "1", "0", "—", "(same runs)",
                     f"{adapt_t:.3f}s"])
    return rows


def grid(records: list[dict]) -> render.Grid:
    chosen = meta_records(records)
    all_groups = groups(records)
    rows = [row for g in all_groups
            for row in (seed_rows(g, all_groups) if len(g) > 1 else rows_of(g[0], chosen))]
    if not rows:
        rows = [["not run", "", "", "", "", "", "", "", "", ""]]
    return render.Grid(
        "M-NAS vs MAML (fixed architecture) vs random and transferred architectures (ours)",
        ["task", "method", "meta-test score (95% CI)", "vs MAML, paired (95% CI)", "architecture (most common)",
         "distinct archs",
         "mean edge distance", "params", "meta-train time, iterations", "adaptation time / task"],
        rows,
        ["All values are ours. Score: query accuracy (classification) or MSE (sinusoid, lower is better) after "
         "adaptation, mean ± 1.96 standard errors over the meta-test episodes (600 in the full and reference profiles).",
         "vs MAML, paired: mean per-episode difference from the MAML record of the same profile and episodes (equal "
         "episode digest: same seed, task and shape) ± 1.96 standard errors of the differences; — where there is none.",
         "A row run under several seeds (the reference profile: seeds 0-2, meta-trained until the meta-train loss "
         "stopped improving or the cap) shows means over seeds: the score ± the 95% Student-t half-width over the "
         "seeds' meta-test means, and vs MAML the per-seed differences (seeds with the same episodes) ± their 95% "
         "Student-t interval, called better or worse only where it excludes zero; meta-train time: mean seconds, then "
         "each seed's iterations and why training stopped (plateau or cap); distinct archs: each seed's count.",
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
