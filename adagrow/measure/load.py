"""The machine's load, so that a record says whether its timings were taken on a quiet machine.

On a shared machine a time measures the other work as much as the model.  The runner samples the 1-minute load
average once per epoch (the record's ``machine_load``) and the latency measurement samples it when it ends (its
``load_1min``); reports mark a number taken while the load exceeded the usable cores.
"""

from __future__ import annotations

import os

BUSY_MARGIN = 0.5  # a load above cores + this: other processes competed for the cores


def machine_load() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def usable_cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def is_busy(load: float | None, cores: int | None) -> bool | None:
    """Whether ``load`` means other work competed for the ``cores`` (None when either is unknown)."""
    if load is None or not cores:
        return None
    return load > cores + BUSY_MARGIN
