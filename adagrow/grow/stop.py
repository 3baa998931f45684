"""When growth stops (SPEC §3.7, Table 3-5): target architecture, parameter budget, EMA plateau.

After growth stops, training simply continues to the epoch budget.

* ``target``: blocks are capped at the target depths (the policy never overshoots) and growth stops
  once the architecture equals the target.
* ``budget``: a growth is kept only if afterwards fused params ≤ B and un-fused params ≤ 1.5·B;
  otherwise it is undone and growth stops.
* ``auto``: validation accuracy (percent) is smoothed with an EMA; at each due growth the smoothed
  gain since the previous growth is compared with ``threshold`` points; a smaller gain is a miss, and
  growth stops when the misses exceed ``tolerance`` (misses are counted over the whole run).  The
  released code's version of this test (:class:`ReleasedPlateauRule`, kept as written for the
  ``released-code`` variant) can never fire; ours does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlateauRule:
    """The automatic stopping rule; ``update`` every epoch, ``miss_fires`` at every due growth."""

    threshold: float = 3.0  # points of smoothed validation accuracy a growth interval must gain
    tolerance: int = 1  # misses allowed; growth stops at the (tolerance + 1)-th miss
    decay: float = 0.6  # EMA decay; the first value initialises the average (no bias towards 0)
    ema: float | None = None
    ema_at_last_check: float | None = None
    misses: int = 0
    gains: list[float] = field(default_factory=list)

    def update(self, acc: float) -> float:
        """Fold one epoch's validation accuracy into the EMA; returns the smoothed value."""
        self.ema = acc if self.ema is None else self.decay * self.ema + (1.0 - self.decay) * acc
        return self.ema

    def miss_fires(self) -> bool:
        """Called when a growth is due: True when growth must stop now."""
        if self.ema is None:
            return False
        if self.ema_at_last_check is not None:
            gain = self.ema - self.ema_at_last_check
            self.gains.append(gain)
            if gain < self.threshold:
                self.misses += 1
        self.ema_at_last_check = self.ema
        return self.misses > self.tolerance

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema, "ema_at_last_check": self.ema_at_last_check, "misses": self.misses,
                "gains": list(self.gains)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema, self.ema_at_last_check = state["ema"], state["ema_at_last_check"]
        self.misses, self.gains = state["misses"], list(state["gains"])


@dataclass
class ReleasedPlateauRule:
    """The released code's stop test, as written (research/growing-peers.md §1, "Stopping").

    Its metric is the running maximum of validation accuracy; at each due growth it takes the gain
    ``delta`` since the previous check and counts a failure when the gain is below 0.001, but resets
    the failure count to 0 right before testing ``delta < 0.001 and fail_count >= 3``, so the test is
    never true.  Same interface as :class:`PlateauRule`.
    """

    min_delta: float = 0.001
    patience: int = 3
    metric: float | None = None  # running maximum of validation accuracy
    metric_at_last_check: float | None = None
    fail_count: int = 0
    gains: list[float] = field(default_factory=list)

    def update(self, acc: float) -> float:
        self.metric = acc if self.metric is None else max(self.metric, acc)
        return self.metric

    def miss_fires(self) -> bool:
        if self.metric is None:
            return False
        last, self.metric_at_last_check = self.metric_at_last_check, self.metric
        if last is None:
            return False
        delta = self.metric - last
        self.gains.append(delta)
        if delta < self.min_delta:
            self.fail_count += 1
        self.fail_count = 0  # the released code's reset, just before its test
        return delta < self.min_delta and self.fail_count >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "metric_at_last_check": self.metric_at_last_check,
                "fail_count": self.fail_count, "gains": list(self.gains)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.metric, self.metric_at_last_check = state["metric"], state["metric_at_last_check"]
        self.fail_count, self.gains = state["fail_count"], list(state["gains"])


def within_budget(fused: int, unfused: int, budget: int) -> bool:
    """The parameter-budget rule: fused ≤ B and un-fused ≤ 1.5·B."""
    return fused <= budget and unfused <= 1.5 * budget
