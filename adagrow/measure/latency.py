"""Latency (batch-1 forward) and throughput, with the settings and the spread behind each number.

GPU: CUDA events around each timed forward; TF32 state recorded.  CPU: a fixed thread count
(recorded) and ``perf_counter``.  Every figure carries dtype, channels-last, compile flag, thread
count and device name, because a latency without them cannot be compared.

A latency is a distribution, and on a shared machine a wide one (a committed CPU record once had a
median of 184 ms with a mean of 408 ms, where a quiet run gives 21 ms).  So the measurement:

* warms up for at least ``warmup`` forwards *and* :data:`WARMUP_MS` of them (caches, allocator,
  clocks, lazy initialisation; a compiled model compiles here);
* times forwards in rounds of ``min_repeats`` and stops as soon as the median has settled (moved
  less than :data:`SETTLE_TOL` since the previous round) while the spread is narrow; otherwise it
  goes on until ``repeats`` forwards or ``budget_s`` seconds of timed forwards;
* records the spread: ``p10_ms``, ``p90_ms``, ``iqr_ms``, ``spread`` = (p90 − p10) / median, and
  ``noisy`` when the spread exceeds :data:`NOISY_SPREAD`: such a number measures the machine's
  load as much as the model, and reports mark it;
* records the machine's 1-minute load as the timing ends (``load_1min``) and ``busy`` where it exceeded the usable
  cores (CPU): a quiet spread does not prove a quiet machine (adagrow/measure/load.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn

from adagrow.errors import AdaGrowError
from adagrow.measure.load import is_busy, machine_load, usable_cores
from adagrow.records.env import device_name

NOISY_SPREAD = 0.2  # (p90 - p10) / median above this flags the measurement as noisy
SETTLE_TOL = 0.01  # the median has settled when a round moved it by less than this fraction
WARMUP_MS = 200.0  # minimum time spent warming up ...
MAX_WARMUP = 1000  # ... unless this many forwards came first (tiny models)

# Runs its argument (one forward) once and returns the milliseconds it took.
Timer = Callable[[Callable[[], object]], float]


@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _cpu_timer(run: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    run()
    return (time.perf_counter() - t0) * 1e3


def _cuda_timer(run: Callable[[], object]) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def spread_stats(times: list[float]) -> dict:
    """Median, percentiles and the relative spread of a list of timings (ms)."""
    median = statistics.median(times)
    if len(times) > 1:
        deciles = statistics.quantiles(times, n=10, method="inclusive")
        quartiles = statistics.quantiles(times, n=4, method="inclusive")
        p10, p90, iqr = deciles[0], deciles[-1], quartiles[-1] - quartiles[0]
    else:
        p10 = p90 = median
        iqr = 0.0
    spread = (p90 - p10) / median if median > 0 else 0.0
    return {"median_ms": median, "p10_ms": p10, "p90_ms": p90, "iqr_ms": iqr, "spread": spread,
            "noisy": spread > NOISY_SPREAD}


def sample_times(run: Callable[[], object], timer: Timer, *, warmup: int, min_repeats: int, repeats: int,
                 budget_s: float) -> tuple[list[float], int]:
    """Warm up, then time ``run`` in rounds until settled or a limit; ``(times, warm-up forwards)``."""
    warm, spent = 0, 0.0
    while warm < warmup or (spent < WARMUP_MS and warm < MAX_WARMUP):
        spent += timer(run)
        warm += 1
    times: list[float] = []
    previous = None
    while len(times) < repeats:
        times += [timer(run) for _ in range(min(min_repeats, repeats - len(times)))]
        stats = spread_stats(times)
        settled = previous is not None and abs(stats["median_ms"] - previous) <= SETTLE_TOL * stats["median_ms"]
        if (settled and not stats["noisy"]) or sum(times) >= budget_s * 1e3:
            break
        previous = stats["median_ms"]
    return times, warm


def measure_latency(model: nn.Module, example: torch.Tensor, *, warmup: int = 20, repeats: int = 200,
                    min_repeats: int = 20, budget_s: float = 30.0, threads: int | None = None,
                    channels_last: bool = False, compiled: bool = False, dtype: torch.dtype = torch.float32,
                    timer: Timer | None = None) -> dict:
    """Time ``model(example)`` (batch as given; latency uses batch 1) and return statistics in ms.

    ``repeats`` is the most timed forwards, ``min_repeats`` the fewest (and the round size),
    ``budget_s`` the most seconds of timed forwards; ``timer`` replaces the clock (tests).
    """
    if repeats < 1 or min_repeats < 1 or warmup < 0 or budget_s <= 0:
        raise AdaGrowError(f"latency needs repeats >= 1, min_repeats >= 1, warmup >= 0 and a positive budget "
                           f"(got repeats={repeats}, min_repeats={min_repeats}, warmup={warmup}, budget_s={budget_s})")
    model = model.eval()
    device = example.device
    if channels_last and example.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    if compiled:
        model = torch.compile(model)
    if timer is None:
        timer = _cuda_timer if device.type == "cuda" else _cpu_timer

    def run():
        return model(example)

    with _threads(threads if device.type == "cpu" else None), torch.inference_mode():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times, warm = sample_times(run, timer, warmup=warmup, min_repeats=min(min_repeats, repeats),
                                   repeats=repeats, budget_s=budget_s)
        n_threads = torch.get_num_threads()
    # the load as the timing ends: a CPU latency taken while other work ran is the machine's, not the model's
    load, cores = machine_load(), usable_cores()
    return {
        "mean_ms": statistics.fmean(times),
        **spread_stats(times),
        "std_ms": statistics.pstdev(times),
        "min_ms": min(times),
        "repeats": len(times),
        "repeats_limit": repeats,
        "warmup": warm,
        "batch": int(example.shape[0]),
        "dtype": str(dtype).replace("torch.", ""),
        "channels_last": channels_last,
        "compiled": compiled,
        "threads": n_threads if device.type == "cpu" else None,
        "tf32": torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None,
        "device": device_name(device),
        "load_1min": None if load is None else round(load, 2),
        "busy": is_busy(load, cores) if device.type == "cpu" else None,
    }


def measure_throughput(model: nn.Module, example: torch.Tensor, *, batch: int = 256, repeats: int = 10,
                       threads: int | None = None, channels_last: bool = False) -> dict:
    """Images (or sequences) per second at ``batch``."""
    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    stats = measure_latency(model, x, warmup=2, repeats=repeats, threads=threads, channels_last=channels_last)
    stats["items_per_s"] = batch / (stats["median_ms"] / 1e3)
    return stats
