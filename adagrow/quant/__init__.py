"""Post-training quantization of trained and grown models (SPEC §8, thesis chapter 4).

Layer level (:func:`quantize_weight`): round-to-nearest, GPTQ-style OBS error compensation in
natural or activation order, the thesis' coverage + importance rearrangement, and a re-ranking
variant.  Model level (:func:`quantize_model`, :func:`run_quantize`, :func:`quant_table`): FP16,
INT8 (W8A8) and W4A16 over every Conv2d/Linear with calibration from training data.  Deployment
(:mod:`adagrow.quant.deploy`): latency per precision and backend, ONNX export.

Files: ``grid`` (the integer grid), ``hessian`` (H = 2XXᵀ, output error), ``coverage`` (branch
counts per kernel position), ``order`` (column orders), ``obs`` (the solvers), ``layers`` (the
run-time wrapper of a quantized layer), ``model`` (model-level), ``deploy`` (latency and export),
``run`` (checkpoint → result records).
"""

from adagrow.quant.coverage import column_coverage, coverage_map
from adagrow.quant.deploy import export_onnx, latency_records
from adagrow.quant.model import ACT_CALIBRATIONS, DEFAULT_ACT_CALIB, PRECISIONS, QuantConfig, quantize_model
from adagrow.quant.obs import METHODS, QuantizedWeight, quantize_weight
from adagrow.quant.order import DEFAULT_DESCENDING
from adagrow.quant.run import accuracy, load_deploy_checkpoint, quant_table, run_quantize

__all__ = [
    "ACT_CALIBRATIONS", "DEFAULT_ACT_CALIB", "METHODS", "PRECISIONS", "DEFAULT_DESCENDING", "QuantizedWeight",
    "QuantConfig", "quantize_weight",
    "quantize_model", "coverage_map", "column_coverage", "run_quantize", "quant_table", "accuracy",
    "load_deploy_checkpoint", "latency_records", "export_onnx",
]
