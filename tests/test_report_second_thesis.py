"""The BAMC and APS tables over seeds (issue 19, item 3): one profile per row, mean ± 95% CI, paired differences.

Fabricated records; every expected interval is computed here with scipy.stats (Student-t on the values, or
``ttest_rel`` on the pairs), not with ``reports.stats``.
"""

from __future__ import annotations

import statistics

from scipy import stats

from reports import second_thesis

SEEDS = (0, 1, 2)


def _half(values) -> float:
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=statistics.fmean(values), scale=stats.sem(values))
    return (hi - lo) / 2


def _ci(values) -> str:
    return f"{statistics.fmean(values):.2f} ± {_half(values):.2f}"


def _paired(own, other, verdict: str) -> str:
    """``own − other``, mean ± the half-width of the paired t-interval scipy gives."""
    ci = stats.ttest_rel(own, other).confidence_interval(0.95)
    mean = statistics.fmean([a - b for a, b in zip(own, other, strict=True)])
    return f"{mean:+.2f} ± {(ci.high - ci.low) / 2:.2f} ({verdict}, {len(own)} seeds)"


def _record(tag: str, seed: int, profile: str, acc: float, **extra) -> dict:
    return {"status": "ok", "dataset": "mnist", "seed": seed, "profile": profile, "test_acc": acc,
            "config": {"tag": tag}, "gpu_seconds": {"search": 10.0, "train": 20.0}, **extra}


def _bamc(seed: int, profile: str, acc: float, uniform: float, random: float) -> dict:
    info = {"allocation": "dp", "avg_bits": 3.0, "size_bytes": 1000,
            "baselines": {"uniform": {"test_acc": uniform, "avg_bits": 3.0, "size_bytes": 1000},
                          "random": {"test_acc": random, "avg_bits": 2.9, "size_bytes": 990}},
            "float": {"test_acc": 99.0}, "float_size_bytes": 4000}
    return _record("bamc-adagrow-vgg-ref", seed, profile, acc, bamc=info)


BAMC = [98.0, 98.4, 98.2]
UNIFORM = [97.0, 97.5, 97.1]  # BAMC − uniform: 1.0, 0.9, 1.1 — an interval above zero
RANDOM = [98.5, 97.9, 98.3]  # BAMC − random: −0.5, 0.5, −0.1 — an interval across zero


def _rows(grid, entry: str) -> list[list[str]]:
    return [r for r in grid.rows if r[1].startswith(entry)]


def test_bamc_reference_rows_are_means_over_seeds_paired_with_the_allocations_of_the_same_model():
    records = [_bamc(s, "reference", a, u, r) for s, a, u, r in zip(SEEDS, BAMC, UNIFORM, RANDOM, strict=True)]
    records.append(_bamc(0, "smoke", 50.0, 40.0, 45.0))  # a newer smoke run of seed 0 never enters a reference cell
    grid = second_thesis.bamc_grid(records)
    rows = _rows(grid, "bamc-adagrow-vgg-ref")
    assert {r[1] for r in rows} == {"bamc-adagrow-vgg-ref (reference, 3 seeds)"}
    head = grid.header.index("BAMC − this, paired (95% CI)")
    bamc, uniform, random = rows[0], rows[1], rows[2]
    assert bamc[2] == "BAMC" and bamc[3] == _ci(BAMC) and bamc[head] == ""
    assert uniform[2].strip() == "uniform allocation, same format" and uniform[3] == _ci(UNIFORM)
    assert uniform[head] == _paired(BAMC, UNIFORM, "better")
    assert random[2].strip() == "random allocation, same format" and random[3] == _ci(RANDOM)
    assert random[head] == _paired(BAMC, RANDOM, "no difference shown") and random[head + 1] == "2.90"
    assert rows[-1][2] == "float32 (start)" and rows[-1][3] == "99.00 ± 0.00"


def test_a_bamc_row_with_a_full_record_shows_the_full_profile_alone():
    records = [_bamc(s, "reference", a, u, r) for s, a, u, r in zip(SEEDS, BAMC, UNIFORM, RANDOM, strict=True)]
    records.insert(0, _bamc(5, "full", 91.0, 90.0, 90.5))  # older in the file, but the thesis' own profile
    rows = _rows(second_thesis.bamc_grid(records), "bamc-adagrow-vgg-ref")
    assert rows[0][1] == "bamc-adagrow-vgg-ref" and rows[0][3] == "91.00"  # one seed: no interval, no profile note
    assert rows[1][4] == "+1.00 (1 seed)"


def _aps(tag: str, seed: int, profile: str, acc: float) -> dict:
    return _record(tag, seed, profile, acc, arch="8-16-16-32-32", params=20_000, macs=1_000_000)


APS = [98.9, 99.1, 99.0]
APS_UNIFORM = [98.5, 98.6, 98.7]  # APS − uniform: 0.4, 0.5, 0.3
# five random sets per seed: set k of seed s
APS_RANDOM = {s: [97.0 + 0.1 * k + 0.2 * s for k in range(5)] for s in SEEDS}


def _aps_records() -> list[dict]:
    records = [_aps("aps-ref", s, "reference", a) for s, a in zip(SEEDS, APS, strict=True)]
    records += [_aps("aps-ref-uniform", s, "reference", a) for s, a in zip(SEEDS, APS_UNIFORM, strict=True)]
    records += [_aps(f"aps-ref-random-{k}", s, "reference", APS_RANDOM[s][k]) for s in SEEDS for k in range(5)]
    return records


def test_aps_reference_search_is_paired_with_its_uniform_multiplier_and_its_random_sets_pooled_per_seed():
    grid = second_thesis.aps_grid(_aps_records())
    head = grid.header.index("APS − this, paired (95% CI)")
    search = next(r for r in grid.rows if r[1] == "aps-ref (reference, 3 seeds)")
    assert search[3] == _ci(APS) and search[2] == "8-16-16-32-32" and search[head] == ""
    vs_uniform = next(r for r in grid.rows if r[1].strip() == "aps-ref vs uniform multiplier")
    assert vs_uniform[2] == "3 runs, 3 seeds" and vs_uniform[3] == _ci(APS_UNIFORM)
    assert vs_uniform[head] == _paired(APS, APS_UNIFORM, "better")
    pooled = [statistics.fmean(APS_RANDOM[s]) for s in SEEDS]
    vs_random = next(r for r in grid.rows if r[1].strip() == "aps-ref vs random width sets, pooled per seed")
    assert vs_random[2] == "15 runs, 3 seeds" and vs_random[3] == _ci(pooled)
    assert vs_random[head] == _paired(APS, pooled, "better")
    # each random set keeps its own row, over the seeds that drew a set of that index
    set2 = next(r for r in grid.rows if r[1] == "aps-ref-random-2 (reference, 3 seeds)")
    assert set2[3] == _ci([APS_RANDOM[s][2] for s in SEEDS])


def test_aps_comparisons_stay_in_the_searchs_profile():
    records = _aps_records()
    # a full run of the uniform multiplier: its own row shows it, but the reference search is never paired with it
    records.append(_aps("aps-ref-uniform", 0, "full", 10.0))
    records.append(_aps("aps-ref-random-0", 1, "smoke", 10.0))  # nor with a smoke run of a random set
    grid = second_thesis.aps_grid(records)
    head = grid.header.index("APS − this, paired (95% CI)")
    assert next(r for r in grid.rows if r[1].startswith("aps-ref-uniform"))[1:4] == ["aps-ref-uniform",
                                                                                      "8-16-16-32-32", "10.00"]
    vs_uniform = next(r for r in grid.rows if r[1].strip() == "aps-ref vs uniform multiplier")
    assert vs_uniform[head] == _paired(APS, APS_UNIFORM, "better")
    vs_random = next(r for r in grid.rows if r[1].strip() == "aps-ref vs random width sets, pooled per seed")
    assert vs_random[head] == _paired(APS, [statistics.fmean(APS_RANDOM[s]) for s in SEEDS], "better")


def test_aps_comparisons_use_only_the_seeds_both_ran():
    records = [r for r in _aps_records() if not (r["config"]["tag"] == "aps-ref-uniform" and r["seed"] == 2)]
    grid = second_thesis.aps_grid(records)
    head = grid.header.index("APS − this, paired (95% CI)")
    vs_uniform = next(r for r in grid.rows if r[1].strip() == "aps-ref vs uniform multiplier")
    assert vs_uniform[2] == "2 runs, 2 seeds" and vs_uniform[head] == _paired(APS[:2], APS_UNIFORM[:2],
                                                                              "no difference shown")
