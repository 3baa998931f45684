"""Model-level post-training quantization: every Conv2d and Linear, one after another.

Layers are quantized sequentially in module order, as GPTQ does: each layer's Hessian (and, for
INT8, its activation range) is collected by running the calibration set through the model in which
all earlier layers are already quantized, so every layer compensates what it will really receive.

Precisions (SPEC §8):

* ``fp32``: the model unchanged (the reference row);
* ``fp16``: the model cast to float16 (no method applies: ``quant_method`` is ``cast``);
* ``int8`` (W8A8): 8-bit symmetric per-channel weights by ``method`` (per group of ``group_size``
  columns if given: simulation only, since INT8 kernels take one weight scale per channel),
  per-tensor symmetric 8-bit activations (:class:`~adagrow.quant.layers.QuantLayer`) whose range
  ``act_calib`` chooses: ``max`` (default) takes the largest |x| seen, ``histogram`` clips where the
  quantization error of the calibration activations is least, with torch's ``HistogramObserver`` (the
  activation observer of PyTorch's default x86 static quantization); the
  weights that run are the solver's, bit for bit;
* ``w4a16``: 4-bit asymmetric weights (per channel, or groups of ``group_size`` columns) by
  ``method``, activations rounded to float16.

The report's per-layer error is *relative*: ‖WX − ŴX‖²_F / ‖WX‖²_F on that layer's calibration
inputs X (bias excluded), with the absolute mean squared error per output column beside it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from adagrow.errors import AdaGrowError
from adagrow.quant.coverage import column_coverage
from adagrow.quant.hessian import HessianAccumulator, output_error
from adagrow.quant.layers import QuantLayer
from adagrow.quant.obs import METHODS, quantize_weight
from adagrow.quant.order import DEFAULT_DESCENDING

PRECISIONS = ("fp32", "fp16", "int8", "w4a16")
# (weight bits, symmetric grid, activation mode) of the integer precisions.
_INTEGER = {"int8": (8, True, "int8"), "w4a16": (4, False, "a16")}
# How INT8 finds its per-tensor activation range (see the module docstring); records before this option: max.
ACT_CALIBRATIONS = ("max", "histogram")
DEFAULT_ACT_CALIB = "max"  # docs/methods/quantization.md: on a grown model neither wins


@dataclass(frozen=True)
class QuantConfig:
    """Everything that decides a quantized model; recorded with every result."""

    precision: str
    method: str = "obs"
    calib_size: int = 256
    seed: int = 0
    group_size: int = -1
    damp: float = 0.01
    block_size: int = 128
    descending: bool = DEFAULT_DESCENDING
    exclude: tuple[str, ...] = ()  # module names left in full precision
    act_calib: str = DEFAULT_ACT_CALIB  # INT8 only: the activation range (ACT_CALIBRATIONS)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise AdaGrowError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.method not in METHODS:
            raise AdaGrowError(f"unknown quantization method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.act_calib not in ACT_CALIBRATIONS:
            raise AdaGrowError(f"unknown activation calibration {self.act_calib!r}; choose one of "
                               f"{', '.join(ACT_CALIBRATIONS)}")
        if self.calib_size < 1:
            raise AdaGrowError("calib_size must be at least 1")


def quantize_model(model: nn.Module, calib_batches: Iterable, *, precision: str, method: str = "obs",
                   calib_size: int = 256, seed: int = 0, group_size: int = -1, damp: float = 0.01,
                   block_size: int = 128, descending: bool = DEFAULT_DESCENDING,
                   exclude: tuple[str, ...] = (), act_calib: str = DEFAULT_ACT_CALIB) -> tuple[nn.Module, dict]:
    """Quantize a copy of ``model``; return it and a report.

    ``calib_batches`` yields input tensors or ``(inputs, targets)`` pairs (training data, on the
    model's device); the first ``calib_size`` samples are used.  ``seed`` seeds torch's RNG for
    the duration (the solvers are deterministic; it is recorded so that the caller's choice of
    calibration samples is reproducible).  The report holds the config, per-layer errors
    (``rel_error`` relative, ``abs_error`` mean squared per output column) and seconds.
    """
    cfg = QuantConfig(precision, method, calib_size, seed, group_size, damp, block_size, descending, tuple(exclude),
                      act_calib)
    start = time.perf_counter()
    qmodel = copy.deepcopy(model).eval()
    report = {"config": asdict(cfg), "layers": [], "simulated": precision in _INTEGER,
              "error": "relative ||WX - W_q X||^2 / ||WX||^2 on each layer's calibration inputs"}
    if precision == "fp16":
        qmodel.half()
        report["quant_method"] = "cast"
    elif precision == "fp32":
        report["quant_method"] = "none"
    else:
        report["quant_method"] = method
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            inputs = calibration_inputs(calib_batches, calib_size)
            report["calib_samples"] = sum(x.shape[0] for x in inputs)
            for name, layer in quantizable(qmodel, cfg.exclude):
                report["layers"].append(_quantize_layer(qmodel, name, layer, inputs, cfg))
    errors = [r["rel_error"] for r in report["layers"] if "rel_error" in r]
    report["mean_rel_error"] = sum(errors) / len(errors) if errors else None
    report["seconds"] = time.perf_counter() - start
    return qmodel, report


def calibration_inputs(batches: Iterable, calib_size: int) -> list[torch.Tensor]:
    inputs, seen = [], 0
    for batch in batches:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = x[: calib_size - seen]
        inputs.append(x)
        seen += x.shape[0]
        if seen >= calib_size:
            break
    if not inputs:
        raise AdaGrowError("the calibration loader yielded no batches")
    return inputs


def quantizable(model: nn.Module, exclude: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and name not in exclude]


@torch.no_grad()
def calibrate(model: nn.Module, layer: nn.Module, inputs: list[torch.Tensor],
              act_calib: str | None = None) -> tuple[HessianAccumulator, float]:
    """Run the calibration set; return the layer's Hessian accumulator and the scale of its symmetric 8-bit
    activation grid by ``act_calib`` (None: not needed, 1.0)."""
    acc = HessianAccumulator(layer)
    amax = [0.0]
    # qint8 symmetric: torch's scale is max(|lo|, hi) / 127.5, the same grid as "max" uses with lo, hi = ±amax
    observer = (torch.ao.quantization.HistogramObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
                if act_calib == "histogram" else None)

    def hook(_module: nn.Module, args: tuple) -> None:
        acc.add(args[0])
        amax[0] = max(amax[0], args[0].detach().abs().max().item())
        if observer is not None:
            observer(args[0].detach().float())

    handle = layer.register_forward_pre_hook(hook)
    try:
        for x in inputs:
            model(x)
    finally:
        handle.remove()
    if act_calib is None or amax[0] == 0:  # not needed, or an input that is always zero (any scale represents it)
        return acc, 1.0
    if observer is not None:
        return acc, float(observer.calculate_qparams()[0])
    return acc, 2 * amax[0] / 255  # the symmetric 8-bit grid of grid.py


def _quantize_layer(model: nn.Module, name: str, layer: nn.Module, inputs: list[torch.Tensor],
                    cfg: QuantConfig) -> dict:
    t0 = time.perf_counter()
    record: dict = {"name": name, "type": type(layer).__name__, "shape": list(layer.weight.shape)}
    bits, sym, mode = _INTEGER[cfg.precision]
    acc, act_scale = calibrate(model, layer, inputs, cfg.act_calib if mode == "int8" else None)
    if acc.hessian is None:  # e.g. nn.MultiheadAttention.out_proj, whose forward() is never called
        record["skipped"] = "not called during calibration"
        return record
    groups = acc.hessian.shape[0]
    weight = layer.weight.detach()
    per_group = weight.reshape(groups, -1, *weight.shape[1:])
    coverage = column_coverage(layer)
    solved = [quantize_weight(per_group[g], acc.hessian[g], bits, cfg.method, cfg.group_size, sym, cfg.damp,
                              cfg.block_size, coverage=coverage if cfg.method.startswith("adagrow") else None,
                              descending=cfg.descending) for g in range(groups)]
    q = torch.cat([s.weight for s in solved]).reshape(weight.shape)
    record["abs_error"], record["rel_error"] = output_error(weight, q, acc.hessian)
    layer.weight.data.copy_(q)
    if mode == "int8":
        record["act_scale"] = act_scale
    wrapped = QuantLayer(layer, mode, act_scale, _channel_scales(solved) if mode == "int8" else None)
    _replace(model, name, wrapped)
    record["seconds"] = time.perf_counter() - t0
    return record


def _channel_scales(solved: list) -> torch.Tensor | None:
    """The solver's own per-output-channel INT8 scales, or None when its grids have column groups.

    A per-channel Q/DQ with exactly these scales returns the solver's weight bit for bit; grouped
    grids have no per-channel equivalent, so such layers run the solver's weight as it is.
    """
    if any(s.grid.group_size > 0 for s in solved):
        return None
    return torch.cat([s.grid.scale.flatten() for s in solved])


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
