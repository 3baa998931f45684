"""Optimisation time per phase: GPU-seconds on CUDA (CUDA events), process CPU seconds on CPU.

Phases are named by the runner and the method ("train", "eval", "grow", "test", "prune", ...).
Totals survive resume: they are part of the checkpoint.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch


class PhaseTimer:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.seconds: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str):
        wall0 = time.perf_counter()
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        else:
            cpu0 = time.process_time()
        try:
            yield
        finally:
            if self.cuda:
                end.record()
                end.synchronize()
                self.seconds[name] += start.elapsed_time(end) / 1e3
            else:
                self.seconds[name] += time.process_time() - cpu0
            self.wall[name] += time.perf_counter() - wall0

    @property
    def unit(self) -> str:
        return "gpu_seconds" if self.cuda else "cpu_process_seconds"

    def state_dict(self) -> dict:
        return {"seconds": dict(self.seconds), "wall": dict(self.wall)}

    def load_state_dict(self, state: dict) -> None:
        self.seconds.update(state.get("seconds", {}))
        self.wall.update(state.get("wall", {}))
