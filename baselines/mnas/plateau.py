"""When meta-training stops: a plateau rule on the meta-train loss, with patience and a cap on iterations.

The loss of one meta-iteration (the mean query loss of ``meta_batch`` tasks after adaptation) is too noisy to
compare step by step, so the rule compares *window means*: the mean loss of each block of ``window`` consecutive
iterations.  A window improves when its mean is below the best earlier window's by more than ``min_delta`` of that
best (relative: the same rule for cross-entropy and for the sinusoid's MSE); after ``patience`` windows in a row
without improvement, training stops at the end of the last of them.  The cap (``meta_iters``) ends it otherwise.

The decision is a function of the logged losses alone, so a resumed run stops where the uninterrupted one did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def window_means(losses: Sequence[float], window: int) -> list[float]:
    """The mean of every complete block of ``window`` losses, in order (an incomplete last block is left out)."""
    return [sum(losses[i:i + window]) / window for i in range(0, len(losses) - window + 1, window)]


def plateau_stop(losses: Sequence[float], *, window: int, patience: int, min_delta: float) -> dict[str, Any] | None:
    """Where the rule stops training given the losses so far: ``{"iteration", "best_window", "best_mean"}`` (the
    iteration count at which it stops, the 0-based window with the lowest mean, that mean), or None to go on."""
    best, best_k, stale = float("inf"), -1, 0
    for k, mean in enumerate(window_means(losses, window)):
        if mean < best - min_delta * abs(best) or best_k < 0:
            best, best_k, stale = mean, k, 0
        else:
            stale += 1
        if stale >= patience:
            return {"iteration": (k + 1) * window, "best_window": best_k, "best_mean": best}
    return None
