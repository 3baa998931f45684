"""The M-NAS table over seeds (issue 19, item 3): a profile's rows apart, means over seeds ± 95% CI, and the
difference from MAML paired over the seeds that met the same episodes.

Fabricated ``kind: meta`` records; the expected intervals are computed here with scipy.stats.
"""

from __future__ import annotations

import statistics

from scipy import stats

from reports import mnas

SEEDS = (0, 1, 2)


def _ci(values, unit: str = "%") -> str:
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=statistics.fmean(values), scale=stats.sem(values))
    return f"{statistics.fmean(values):.2f}{unit} ± {(hi - lo) / 2:.2f}"


def _paired(own, maml, verdict: str) -> str:
    ci = stats.ttest_rel(own, maml).confidence_interval(0.95)
    mean = statistics.fmean([a - b for a, b in zip(own, maml, strict=True)])
    return f"{mean:+.2f} ± {(ci.high - ci.low) / 2:.2f} ({verdict}, {len(own)} seeds)"


def _meta(method: str, seed: int, score: float, *, profile: str = "reference", task: str = "mnist+cifar10",
          transfer: float | None = None, digest: str | None = None, stop=("plateau", 450)) -> dict:
    shape = "5shot" if task == "sinusoid" else "5w1s"
    record = {
        "kind": "meta", "status": "ok", "dataset": task, "method": method, "tag": f"{method}-{shape}",
        "profile": profile, "seed": seed, "metric": "mse" if task == "sinusoid" else "accuracy",
        "config": {"ways": 5, "shots": 5 if task == "sinusoid" else 1, "meta_iters": 800, "modulation": "weight"},
        "test": {"mean": score, "ci95": 1.0, "episodes": 600},
        "episodes": {"count": 600, "digest": digest or f"{task}-{profile}-seed{seed}"},
        "episode_scores": [score] * 4,
        "archs": {"counts": {"c3-c3-c3": 400, "mp-c5-id": 200} if method != "maml" else {"c3-c3-c3": 600},
                  "distinct": 2 if method != "maml" else 1, "most_common": "c3-c3-c3", "most_common_share": 2 / 3,
                  "mean_pairwise_edge_distance": 1.5, "edges": 6},
        "params": 30_000, "gpu_seconds": {"meta_train": 600.0 + seed, "adapt": 120.0},
        "meta_train_stop": {"iteration": stop[1], "reason": stop[0], "cap": 800},
    }
    if transfer is not None:
        record["transfer"] = {"mean": transfer, "ci95": 1.0, "arch": "c3-c3-c3", "scores": [transfer] * 4}
    return record


MNAS = [52.0, 54.5, 53.0]
MAML = [50.0, 51.0, 50.5]  # M-NAS − MAML: 2.0, 3.5, 2.5
TRANSFER = [50.5, 50.0, 51.0]  # transferred − MAML: 0.5, −1.0, 0.5


def _reference() -> list[dict]:
    return ([_meta("maml", s, a, stop=("cap", 800)) for s, a in zip(SEEDS, MAML, strict=True)]
            + [_meta("mnas", s, a, transfer=t) for s, a, t in zip(SEEDS, MNAS, TRANSFER, strict=True)])


def _row(grid, setting: str, method: str) -> list[str]:
    return next(r for r in grid.rows if r[0] == setting and r[1].startswith(method))


def test_reference_rows_are_means_over_seeds_paired_with_maml_per_seed():
    grid = mnas.grid(_reference())
    setting = "mnist+cifar10 5-way 1-shot (reference, 3 seeds)"
    maml = _row(grid, setting, "MAML")
    assert maml[2] == _ci(MAML) and maml[3] == "reference"
    assert maml[8] == "601s, 800 it (cap) / 800 it (cap) / 800 it (cap)"  # mean seconds, each seed's stop
    row = _row(grid, setting, "M-NAS (per-task")
    assert row[2] == _ci(MNAS) and row[3] == _paired(MNAS, MAML, "better")
    assert row[4] == "c3-c3-c3" and row[5] == "2 / 2 / 2" and row[8].endswith("450 it (plateau)")
    transferred = _row(grid, setting, "M-NAS arch of task 1")
    assert transferred[2] == _ci(TRANSFER) and transferred[3] == _paired(TRANSFER, MAML, "no difference shown")


def test_profiles_are_never_mixed_and_a_single_seed_is_paired_per_episode():
    records = _reference()
    # a newer smoke run of seed 0: rows of its own, and never a reference seed's value
    smoke_maml = _meta("maml", 0, 30.0, profile="smoke")
    smoke_mnas = _meta("mnas", 0, 31.0, profile="smoke")
    smoke_maml["episode_scores"], smoke_mnas["episode_scores"] = [30.0, 31.0, 29.0, 30.0], [31.0, 33.0, 30.0, 30.0]
    grid = mnas.grid(records + [smoke_maml, smoke_mnas])
    assert _row(grid, "mnist+cifar10 5-way 1-shot (reference, 3 seeds)", "M-NAS (per-task")[2] == _ci(MNAS)
    smoke = _row(grid, "mnist+cifar10 5-way 1-shot (smoke)", "M-NAS (per-task")
    d = [1.0, 2.0, 1.0, 0.0]  # per-episode differences; 1.96 standard errors, as the single-seed rows always did
    assert smoke[2] == "31.00% ± 1.00" and smoke[3] == f"+1.00 ± {1.96 * statistics.stdev(d) / 2:.2f}"


def test_seeds_with_other_episodes_are_left_out_of_the_pairing():
    records = _reference()
    records[2]["episodes"]["digest"] = "other episodes"  # MAML's seed 2 met other tasks: only seeds 0-1 pair
    row = _row(mnas.grid(records), "mnist+cifar10 5-way 1-shot (reference, 3 seeds)", "M-NAS (per-task")
    assert row[3] == _paired(MNAS[:2], MAML[:2], "no difference shown")


def test_for_mse_a_lower_score_than_maml_is_better():
    maml = [0.50, 0.60, 0.55]
    mnas_mse = [0.30, 0.38, 0.33]  # M-NAS − MAML: −0.20, −0.22, −0.22
    records = ([_meta("maml", s, v, task="sinusoid") for s, v in zip(SEEDS, maml, strict=True)]
               + [_meta("mnas", s, v, task="sinusoid") for s, v in zip(SEEDS, mnas_mse, strict=True)])
    row = _row(mnas.grid(records), "sinusoid 5-shot (reference, 3 seeds)", "M-NAS (per-task")
    assert row[2] == _ci(mnas_mse, unit="") and row[3] == _paired(mnas_mse, maml, "better")
