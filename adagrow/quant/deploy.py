"""Deployment of quantized models: latency per precision × backend, and ONNX export.

A latency is only claimed where the precision really runs at that precision on that backend:

* FP32 and FP16: PyTorch eager and ``torch.compile``, on CPU and CUDA (the model and input are
  cast to float16 for FP16); TensorRT on CUDA when ``torch_tensorrt`` is installed.
* INT8 (W8A8) and W4A16: plain PyTorch has no INT8 convolution or INT4 weight kernels for these
  models, so our quantized models *simulate* them (fake quantization).  Their records say
  ``simulated: true`` with no latency.  For real INT8 run the Q/DQ ONNX graph from
  :func:`export_onnx` through TensorRT (``trtexec --onnx=... --int8``).

Latency itself comes from :func:`adagrow.measure.latency.measure_latency` (batch 1, warm-up, then
many timed repeats; CUDA events on GPU).
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from adagrow.errors import AdaGrowError
from adagrow.quant.layers import QuantLayer

BACKENDS = ("eager", "compile", "tensorrt")
_REAL = {"fp32": torch.float32, "fp16": torch.float16}


def latency_records(model: nn.Module, example: torch.Tensor, *, precisions: Sequence[str] = ("fp32", "fp16",
                    "int8", "w4a16"), backends: Sequence[str] = BACKENDS, warmup: int = 20,
                    repeats: int = 200, threads: int | None = None) -> list[dict]:
    """One record per (precision, backend) for the FP32 ``model`` on ``example``'s device.

    Unsupported combinations are recorded with ``latency_ms: None`` and the reason, never timed.
    """
    records = []
    for precision in precisions:
        for backend in backends:
            rec = {"precision": precision, "backend": backend, "device_type": example.device.type}
            reason = _unsupported(precision, backend, example.device)
            if reason:
                rec.update(simulated=precision not in _REAL, latency_ms=None, reason=reason)
            else:
                stats = _measure(model, example, _REAL[precision], backend, warmup, repeats, threads)
                rec.update(simulated=False, latency_ms=stats["median_ms"], **stats)
            records.append(rec)
    return records


def _unsupported(precision: str, backend: str, device: torch.device) -> str | None:
    """Why (precision, backend, device) cannot be timed honestly, or None if it can."""
    if backend not in BACKENDS:
        raise AdaGrowError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "tensorrt":
        if device.type != "cuda":
            return "TensorRT runs on CUDA only"
        if importlib.util.find_spec("torch_tensorrt") is None:
            return "torch_tensorrt is not installed"
    if precision not in _REAL:
        return (f"{precision} exists here only as simulated (fake) quantization; "
                "build a TensorRT engine from export_onnx() for a real INT8 latency")
    return None


def _measure(model: nn.Module, example: torch.Tensor, dtype: torch.dtype, backend: str, warmup: int,
             repeats: int, threads: int | None) -> dict:
    from adagrow.measure.latency import measure_latency  # imported here: it pulls in the records package

    model = copy.deepcopy(model).eval().to(device=example.device, dtype=dtype)
    x = _as_input(example, dtype)
    if backend == "tensorrt":
        import torch_tensorrt

        model = torch_tensorrt.compile(model, inputs=[x], enabled_precisions={dtype})
    return measure_latency(model, x, warmup=warmup, repeats=repeats, threads=threads,
                           compiled=backend == "compile", dtype=dtype)


def _as_input(example: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Batch 1 of ``example``; images are cast to ``dtype``, token ids stay integers."""
    x = example[:1]
    return x.to(dtype) if x.is_floating_point() else x


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, *, opset: int = 17) -> Path:
    """Export ``model`` (fused FP32/FP16, or quantized: INT8 layers become Q/DQ pairs) to ONNX.

    Uses the TorchScript exporter (``dynamo=False``), which maps fake quantization to
    QuantizeLinear/DequantizeLinear and needs no extra package; the result is checked with
    ``onnx.checker``.
    """
    if importlib.util.find_spec("onnx") is None:
        raise AdaGrowError("ONNX export needs the 'onnx' package: pip install onnx")
    _check_exportable(model)
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = _as_input(example, next(model.parameters()).dtype)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated but is the one that needs no onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["logits"])
    onnx.checker.check_model(onnx.load(str(path)))
    return path


def _check_exportable(model: nn.Module) -> None:
    """INT8 layers solved with column groups have no per-channel weight scale to export as Q/DQ."""
    grouped = [name for name, m in model.named_modules()
               if isinstance(m, QuantLayer) and m.mode == "int8" and m.weight_scale is None]
    if grouped:
        raise AdaGrowError(f"INT8 layers {', '.join(grouped)} were quantized with column groups (group_size), which "
                           "INT8 engines cannot run (one weight scale per channel): quantize with group_size=-1 "
                           "to export")
