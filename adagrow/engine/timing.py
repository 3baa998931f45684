"""Optimisation time per phase: GPU-seconds on CUDA (CUDA events), process CPU seconds on CPU.

Phases are named by the runner and the method ("train", "eval", "grow", "test", "prune", ...).
Phases may nest (a method's model change, timed as "prune", evaluates its result as "eval"): each
second goes to the innermost open phase only, so the phases still add up to the time spent.
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
        self._nested: list[list[float]] = []  # per open phase: [seconds, wall] of the phases nested in it

    @contextmanager
    def phase(self, name: str):
        nested = [0.0, 0.0]
        self._nested.append(nested)
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
                seconds = start.elapsed_time(end) / 1e3
            else:
                seconds = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
            self._nested.pop()
            self.seconds[name] += seconds - nested[0]
            self.wall[name] += wall - nested[1]
            if self._nested:  # the enclosing phase does not count these seconds again
                self._nested[-1][0] += seconds
                self._nested[-1][1] += wall

    @property
    def unit(self) -> str:
        return "gpu_seconds" if self.cuda else "cpu_process_seconds"

    def state_dict(self) -> dict:
        return {"seconds": dict(self.seconds), "wall": dict(self.wall)}

    def load_state_dict(self, state: dict) -> None:
        self.seconds.update(state.get("seconds", {}))
        self.wall.update(state.get("wall", {}))
