"""Statistics over seeds: mean ± 95% confidence interval, and paired differences over the same seeds.

The conventions of the project (README "Fairness rules"): a cell run under several seeds shows the mean and
the half-width of its two-sided 95% Student-t interval, ``t(0.975, n-1) · s / √n``; a comparison of method B
against method A uses only the seeds both ran and reports the mean paired difference ``B − A`` with the same
interval computed on the per-seed differences (a paired t-interval).  B is called better (or worse) only when
that interval excludes zero; otherwise the verdict is "no difference shown".  One seed gives a mean and no
interval, and never a verdict.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats as _scipy

CONFIDENCE = 0.95
NO_DIFFERENCE = "no difference shown"


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds with the half-width of its confidence interval (None when n < 2)."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    def excludes_zero(self) -> bool:
        return self.half_width is not None and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 2) -> str:
        """"99.41 ± 0.05" (n ≥ 2) or "99.41" (one seed)."""
        text = f"{self.mean:.{digits}f}"
        return text if self.half_width is None else f"{text} ± {self.half_width:.{digits}f}"


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean and Student-t confidence half-width of ``values`` (at least one value)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("mean_ci needs at least one value")
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return Estimate(mean, None, len(xs))
    t = float(_scipy.t.ppf(0.5 + confidence / 2, df=len(xs) - 1))
    return Estimate(mean, t * statistics.stdev(xs) / math.sqrt(len(xs)), len(xs))


@dataclass(frozen=True)
class Paired:
    """``other − base`` over the seeds both have."""

    difference: Estimate
    seeds: tuple

    @property
    def verdict(self) -> str:
        """"better" / "worse" (for a higher-is-better metric) only where the interval excludes zero."""
        if not self.difference.excludes_zero():
            return NO_DIFFERENCE
        return "better" if self.difference.mean > 0 else "worse"


def paired_difference(base: Mapping, other: Mapping, confidence: float = CONFIDENCE) -> Paired | None:
    """The paired difference ``other[s] − base[s]`` over the seeds ``s`` present (not None) in both;
    None when they share no seed."""
    seeds = tuple(sorted(s for s in base if s in other and base[s] is not None and other[s] is not None))
    if not seeds:
        return None
    return Paired(mean_ci([float(other[s]) - float(base[s]) for s in seeds], confidence), seeds)
