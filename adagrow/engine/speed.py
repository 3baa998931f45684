"""How a run trains fast: the branch computation of re-parameterisable units, and ``torch.compile``.

Both change how the same function is computed, never what is learned, and every record says what was
used (``branch_compute``, ``compile``).

* **Branch computation** (``--branch-compute auto|loop|batched``, see :mod:`adagrow.models.reparam`):
  "loop" runs a unit's branches one by one (least arithmetic, one kernel launch per branch),
  "batched" as one zero-padded conv and one BN (a few launches, some padded arithmetic).  Which is
  faster depends on the device, so "auto" times one training step of a small grown unit both ways on
  a GPU, for the run's input size and batch (about a second, once per process and shape), and keeps the
  faster; on a CPU (not launch-bound) and in deterministic runs it is "loop", never chosen by a clock.
  Units created by a growth start as "loop"; the runner sets the mode again after each.
* **Compilation** (``--compile``): the model's forward (and with it, through AOTAutograd, its
  backward) is compiled with ``torch.compile`` for training; evaluation stays eager.  Compilation
  happens in a warm-up step on a random batch, before training and again once after each growth
  (a grown model is a new graph), so its seconds are measured apart from training; the warm-up's
  effects (BN statistics, gradients, random numbers) are undone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.engine.loop import autocast_for, to_model_layout
from adagrow.measure.latency import _cpu_timer, _cuda_timer
from adagrow.models.reparam import BRANCH_COMPUTE, BranchSpec, RepUnit, set_branch_compute
from adagrow.records.env import device_name

BRANCH_COMPUTE_OPTIONS = ("auto", *BRANCH_COMPUTE)
# The probe: a unit as AdaGrow grows one (thesis space, a mix of conv sizes and an identity).
PROBE_CHANNELS = 32
PROBE_BRANCHES = ("3x3", "1x3", "1x1", "bn")
PROBE_WARMUP, PROBE_STEPS = 2, 5
_PROBED: dict[tuple, dict] = {}  # (device, input size, batch, amp, channels-last) -> probe result


def has_units(model: nn.Module) -> bool:
    return any(isinstance(m, RepUnit) for m in model.modules())


def choose_branch_compute(requested: str, device: torch.device, input_size: Sequence[int], batch_size: int, *,
                          amp: bool = False, channels_last: bool = False, deterministic: bool = False) -> dict:
    """``{"requested", "mode", ["probe_ms"]}``: the mode asked for, or for "auto" the faster one on
    this device (measured once per process and setting; ``probe_ms`` = median step of each).  A
    deterministic run never lets a clock choose (a resumed segment could choose otherwise and round
    differently): "auto" is then "loop"."""
    if requested != "auto":
        return {"requested": requested, "mode": requested}
    if deterministic:
        return {"requested": "auto", "mode": "loop", "why": "deterministic run: not chosen by a clock"}
    if device.type != "cuda":
        # On a CPU the loop is already close to its arithmetic (issue #15: 1.09x) and launches cost
        # nothing; letting a clock on a shared CPU pick the path would make two runs of one config round
        # differently.  The probe decides where launches matter: on a GPU.
        return {"requested": "auto", "mode": "loop", "why": "CPU: the loop is not launch-bound"}
    key = (device_name(device), tuple(input_size), batch_size, amp, channels_last)
    if key not in _PROBED:
        _PROBED[key] = probe_branch_compute(device, input_size, batch_size, amp=amp, channels_last=channels_last)
    return {"requested": "auto", **_PROBED[key]}


def probe_branch_compute(device: torch.device, input_size: Sequence[int], batch_size: int, *, amp: bool = False,
                         channels_last: bool = False, timer=None) -> dict:
    """Median training step (forward + backward) of a grown probe unit in each mode; the faster wins.
    The probe is small (32 channels, at most 16×16, batch at most 32, 2 warm-up and 5 timed steps per
    mode: a fraction of a second on a CPU) and leaves the run's random numbers untouched."""
    hw = [min(s, 16) for s in input_size[1:]] if len(input_size) == 3 else [16, 16]
    timer = timer or (_cuda_timer if device.type == "cuda" else _cpu_timer)
    with _own_rng(device):
        torch.manual_seed(0)
        unit = RepUnit(PROBE_CHANNELS, PROBE_CHANNELS, 3)
        for name in PROBE_BRANCHES:
            unit.add_branch(BranchSpec.parse(name))
        unit = unit.to(device)
        x = to_model_layout(torch.randn(min(batch_size, 32), PROBE_CHANNELS, *hw, device=device), channels_last)
        if channels_last:
            unit = unit.to(memory_format=torch.channels_last)

        def step():
            unit.zero_grad(set_to_none=True)
            with autocast_for(device, amp):
                out = unit(x)
            out.float().square().mean().backward()

        probe_ms = {}
        for mode in BRANCH_COMPUTE:
            set_branch_compute(unit, mode)
            times = [timer(step) for _ in range(PROBE_WARMUP + PROBE_STEPS)][PROBE_WARMUP:]
            probe_ms[mode] = statistics.median(times)
    return {"mode": min(probe_ms, key=probe_ms.get), "probe_ms": {m: round(t, 3) for m, t in probe_ms.items()}}


def apply_branch_compute(model: nn.Module, choice: dict) -> None:
    """Set the chosen mode on every unit (again after a growth: new units start as "loop")."""
    if choice.get("mode"):
        set_branch_compute(model, choice["mode"])


class Compiler:
    """``torch.compile`` for training, once per model (recompiled after a growth), with its cost counted.

    ``forward(model)`` is what the loop calls for the model's forward: the model itself when compiling
    is off, else its compiled form, compiled in a warm-up step at the first call for each model."""

    def __init__(self, enabled: bool, example: Callable[[], torch.Tensor], *, amp: bool = False,
                 channels_last: bool = False):
        self.enabled = enabled
        self._example = example
        self._amp, self._channels_last = amp, channels_last
        self._model: nn.Module | None = None
        self._compiled: Callable | None = None
        self.compiles = 0
        self.seconds = 0.0

    def forward(self, model: nn.Module) -> Callable:
        if not self.enabled:
            return model
        if self._compiled is None or model is not self._model:
            self._compile(model)
        return self._compiled

    def changed(self) -> None:
        """The model changed (a growth, possibly in place): compile it anew at the next ``forward``."""
        self._compiled = None

    def _compile(self, model: nn.Module) -> None:
        # One compiled model at a time: drop the caches of the old one, so a run that grows many times
        # never reaches dynamo's recompilation limit (which would silently fall back to eager).
        torch._dynamo.reset()
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        with _own_rng(next(model.parameters()).device):  # the run's random numbers stay as they were
            x = self._example()
            warm_up(model, compiled, x, amp=self._amp, channels_last=self._channels_last)
        self.seconds += time.perf_counter() - t0
        self.compiles += 1
        self._model, self._compiled = model, compiled

    def record(self) -> dict:
        return {"used": self.enabled, "compiles": self.compiles, "seconds": round(self.seconds, 3)}


def warm_up(model: nn.Module, forward: Callable, x: torch.Tensor, *, amp: bool, channels_last: bool) -> None:
    """One forward + backward through ``forward`` in training mode (this is where compilation happens),
    leaving no trace: BN buffers restored, gradients cleared, random numbers as before."""
    device = x.device
    buffers = [b.detach().clone() for b in model.buffers()]
    was_training = model.training
    model.train()
    with _own_rng(device):
        with autocast_for(device, amp):
            out = forward(to_model_layout(x, channels_last))
        F.cross_entropy(out.float(), torch.zeros(out.shape[0], dtype=torch.long, device=device)).backward()
    with torch.no_grad():
        for b, saved in zip(model.buffers(), buffers):
            b.copy_(saved)
    for p in model.parameters():
        p.grad = None
    model.train(was_training)


def _own_rng(device: torch.device):
    """Random numbers drawn inside do not advance the run's generators (CPU, and the CUDA device)."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
