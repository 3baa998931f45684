"""Mean ± 95% CI and paired differences (reports/stats.py), against scipy.stats on fixed numbers and a
hand computation."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from reports.stats import NO_DIFFERENCE, mean_ci, paired_difference

ACC = [99.41, 99.38, 99.47]


def test_mean_ci_by_hand():
    # [1, 2, 3]: mean 2, s = 1, t(0.975, 2) = 4.3027 (statistical tables), half-width 4.3027 / sqrt(3)
    est = mean_ci([1.0, 2.0, 3.0])
    assert est.mean == 2.0 and est.n == 3
    assert est.half_width == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)


def test_mean_ci_equals_scipy_t_interval():
    sem = stats.sem(ACC)
    low, high = stats.t.interval(0.95, df=len(ACC) - 1, loc=sum(ACC) / len(ACC), scale=sem)
    est = mean_ci(ACC)
    assert (est.low, est.high) == pytest.approx((low, high), rel=1e-12)


def test_one_seed_has_no_interval_and_no_verdict():
    est = mean_ci([99.4])
    assert est.half_width is None and est.format() == "99.40"
    assert paired_difference({0: 99.0}, {0: 99.5}).verdict == NO_DIFFERENCE


def test_paired_difference_equals_scipy_ttest_rel():
    base = {0: 99.41, 1: 99.38, 2: 99.47}
    other = {0: 99.12, 1: 99.20, 2: 99.25, 3: 50.0}  # seed 3 has no partner: left out
    paired = paired_difference(base, other)
    assert paired.seeds == (0, 1, 2)
    res = stats.ttest_rel([other[s] for s in (0, 1, 2)], [base[s] for s in (0, 1, 2)])
    ci = res.confidence_interval(0.95)
    assert (paired.difference.low, paired.difference.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert res.pvalue < 0.05 and paired.verdict == "worse"


def test_an_interval_that_contains_zero_shows_no_difference():
    paired = paired_difference({0: 99.4, 1: 99.5, 2: 99.3}, {0: 99.5, 1: 99.3, 2: 99.4})
    assert paired.difference.low < 0 < paired.difference.high
    assert paired.verdict == NO_DIFFERENCE
    res = stats.ttest_rel([99.5, 99.3, 99.4], [99.4, 99.5, 99.3])
    assert res.pvalue > 0.05


def test_a_competitor_that_wins_is_called_better():
    paired = paired_difference({0: 98.0, 1: 98.1, 2: 98.2}, {0: 99.0, 1: 99.2, 2: 99.1})
    assert paired.verdict == "better"


def test_no_shared_seed_gives_none():
    assert paired_difference({0: 1.0}, {1: 2.0}) is None
