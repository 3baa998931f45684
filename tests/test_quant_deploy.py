"""Deployment: honest latency records and ONNX export of fused and quantized models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adagrow.quant import quantize_model
from adagrow.quant.deploy import export_onnx, latency_records


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4)).eval()


def calib():
    return [torch.randn(8, 3, 8, 8) for _ in range(2)]


def test_latency_is_claimed_only_where_real():
    records = latency_records(tiny_cnn(), torch.randn(1, 3, 8, 8), precisions=("fp32", "fp16", "int8", "w4a16"),
                              backends=("eager", "tensorrt"), warmup=1, repeats=3, threads=1)
    by = {(r["precision"], r["backend"]): r for r in records}
    assert len(records) == 8
    for precision in ("fp32", "fp16"):
        assert by[precision, "eager"]["latency_ms"] > 0 and not by[precision, "eager"]["simulated"]
    assert by["fp16", "eager"]["dtype"] == "float16"
    for precision in ("int8", "w4a16"):
        assert by[precision, "eager"]["latency_ms"] is None and by[precision, "eager"]["simulated"]
    assert by["fp32", "tensorrt"]["latency_ms"] is None and "CUDA" in by["fp32", "tensorrt"]["reason"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_latency_eager_and_compiled():
    records = latency_records(tiny_cnn(), torch.randn(1, 3, 8, 8, device="cuda"), precisions=("fp32", "fp16"),
                              backends=("eager", "compile"), warmup=3, repeats=10)
    assert all(r["latency_ms"] > 0 and r["device_type"] == "cuda" for r in records)


def test_onnx_export_of_fused_and_int8_models(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = tiny_cnn()
    x = torch.randn(1, 3, 8, 8)
    fused = onnx.load(str(export_onnx(model, x, tmp_path / "fused.onnx")))
    assert "QuantizeLinear" not in {n.op_type for n in fused.graph.node}
    qmodel, _ = quantize_model(model, calib(), precision="int8", method="obs", calib_size=16)
    ops = [n.op_type for n in onnx.load(str(export_onnx(qmodel, x, tmp_path / "int8.onnx"))).graph.node]
    # Input and weight of both layers become Q/DQ pairs: the explicit-quantization graph TensorRT reads.
    assert ops.count("QuantizeLinear") == 4 and ops.count("DequantizeLinear") == 4
    w4, _ = quantize_model(model, calib(), precision="w4a16", method="adagrow", calib_size=16)
    assert export_onnx(w4, x, tmp_path / "w4.onnx").is_file()
