"""Latency (batch-1 forward) and throughput, with the settings that produced each number.

GPU: CUDA events around each timed forward after a warm-up; TF32 state recorded.  CPU: a fixed
thread count (recorded) and ``perf_counter``.  Every figure carries dtype, channels-last, compile
flag, thread count and device name, because a latency without them cannot be compared.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import torch
from torch import nn

from adagrow.records.env import device_name


@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.inference_mode()
def _time_forward(model: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        model(x)
    times = []
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def measure_latency(model: nn.Module, example: torch.Tensor, *, warmup: int = 20, repeats: int = 200,
                    threads: int | None = None, channels_last: bool = False, compiled: bool = False,
                    dtype: torch.dtype = torch.float32) -> dict:
    """Time ``model(example)`` (batch as given; latency uses batch 1) and return statistics in ms."""
    model = model.eval()
    device = example.device
    if channels_last and example.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    if compiled:
        model = torch.compile(model)
    with _threads(threads if device.type == "cpu" else None):
        times = _time_forward(model, example, warmup, repeats)
        n_threads = torch.get_num_threads()
    return {
        "mean_ms": statistics.fmean(times),
        "median_ms": statistics.median(times),
        "std_ms": statistics.pstdev(times),
        "repeats": repeats,
        "warmup": warmup,
        "batch": int(example.shape[0]),
        "dtype": str(dtype).replace("torch.", ""),
        "channels_last": channels_last,
        "compiled": compiled,
        "threads": n_threads if device.type == "cpu" else None,
        "tf32": torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None,
        "device": device_name(device),
    }


def measure_throughput(model: nn.Module, example: torch.Tensor, *, batch: int = 256, repeats: int = 10,
                       threads: int | None = None, channels_last: bool = False) -> dict:
    """Images (or sequences) per second at ``batch``."""
    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    stats = measure_latency(model, x, warmup=2, repeats=repeats, threads=threads, channels_last=channels_last)
    stats["items_per_s"] = batch / (stats["median_ms"] / 1e3)
    return stats
