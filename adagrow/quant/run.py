"""From a deploy checkpoint to quantization result records (the CLI and the Table 4-1/4-2 suite).

A deploy checkpoint is ``torch.save({"model": <fused nn.Module>, "dataset": name, "input_size":
(C, H, W), "num_classes": int, "record": <the training run's record>}, path)``.  Calibration uses
training images without augmentation (a random sample of the training split, picked by ``seed``: the
data's split permutation); accuracy is measured on the test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from adagrow.errors import AdaGrowError
from adagrow.quant.model import DEFAULT_ACT_CALIB, quantize_model
from adagrow.quant.order import DEFAULT_DESCENDING


def load_deploy_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    """Load a deploy checkpoint (safely: see ``adagrow.engine.checkpoint``); the model is moved to ``device``
    and put in eval mode."""
    from adagrow.engine.checkpoint import load_checkpoint  # never unpickles code from the file

    path = Path(path)
    ckpt = load_checkpoint(path, what="--checkpoint", fix="give a deploy.pt written by `adagrow train`",
                           map_location=device)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), nn.Module):
        raise AdaGrowError(f"{path} is not a deploy checkpoint (expected a dict with an nn.Module under 'model')")
    ckpt["model"] = ckpt["model"].to(device).eval()
    return ckpt


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable) -> float:
    """Top-1 accuracy (%) of ``model`` over ``(inputs, targets)`` batches.

    Floating inputs are cast to the model's parameter dtype, so an FP16 model is fed FP16.
    """
    model.eval()
    dtype = next(model.parameters()).dtype
    correct = total = 0
    for x, y in batches:
        if x.is_floating_point():
            x = x.to(dtype)
        correct += (model(x).argmax(-1) == y).sum().item()
        total += y.numel()
    return 100.0 * correct / max(total, 1)


def _bundle(dataset: str, data_dir, *, batch_size: int, device, seed: int):
    from adagrow.data import load_dataset  # imported here: the data package is heavy and optional for tests

    return load_dataset(dataset, data_dir, batch_size=batch_size, device=device, seed=seed)


# What calibration sees (records' ``calib_data``): training images without augmentation, a random sample picked by
# the quantization seed.  Records without the field (before 2026-12-07) calibrated on the augmented training loader.
CALIB_DATA = "train-plain"
CALIB_DATA_BEFORE = "train-augmented"


def _calibration(bundle, seed: int, calib_size: int) -> Iterable:
    if bundle.calibration is not None:
        return bundle.calibration(calib_size)
    bundle.train.set_epoch(seed)  # a loader without augmentation (text): its order for epoch ``seed``
    return bundle.train


def act_calib_of(record: dict) -> str | None:
    """INT8's activation calibration of a quantization record (records from before the option used the maximum)."""
    return (record.get("act_calib") or "max") if record.get("precision") == "int8" else None


def calib_data(record: dict) -> str | None:
    """What a quantization record calibrated on (None: its precision takes no calibration)."""
    if record.get("precision") not in ("int8", "w4a16"):
        return None
    return record.get("calib_data") or CALIB_DATA_BEFORE


# What ``quantize_model`` names the method of a precision that takes none (its records' ``quant_method``).
CAST = {"fp16": "cast", "fp32": "none"}


def _record(ckpt: dict, report: dict, acc: float, precision: str, fp32_acc: float | None) -> dict:
    cfg = report["config"]
    trained = ckpt.get("record", {})
    run_dir = trained.get("run_dir")
    return {
        "kind": "quant",
        "method": trained.get("method"),
        "model": trained.get("model"),
        "tag": trained.get("tag") or trained.get("config", {}).get("tag"),
        "arch": trained.get("arch"),
        "source_checkpoint_run": run_dir,
        # the base model's run: its name (config hash included), seed and profile, so a report pairs a quantized
        # model with its own FP32 run and never mixes profiles (a deploy of older code may lack them: None)
        "base_run": Path(run_dir).name if run_dir else None,
        "base_seed": trained.get("seed"),
        "profile": trained.get("profile") or (trained.get("config") or {}).get("profile"),
        "dataset": ckpt.get("dataset"),
        "precision": precision,
        "quant_method": report["quant_method"],
        "accuracy": acc,
        "fp32_accuracy": fp32_acc,
        "mean_rel_error": report["mean_rel_error"],
        "layer_errors": report["layers"],
        "error_definition": report["error"],
        "quant_seconds": report["seconds"],
        "calib_size": cfg["calib_size"],
        "calib_samples": report.get("calib_samples"),
        "calib_data": CALIB_DATA if precision in ("int8", "w4a16") else None,
        "seed": cfg["seed"],
        "group_size": cfg["group_size"],
        "damp": cfg["damp"],
        "descending": cfg["descending"],
        # INT8's activation range (adagrow.quant.model.ACT_CALIBRATIONS); the only precision it changes
        "act_calib": cfg["act_calib"] if precision == "int8" else None,
        "simulated": report["simulated"],
    }


def run_quantize(checkpoint: Path, precision: str, method: str, data_dir, *, calib_size: int = 256,
                 seed: int = 0, device: str = "cpu", batch_size: int = 128, group_size: int = -1,
                 descending: bool = DEFAULT_DESCENDING, act_calib: str = DEFAULT_ACT_CALIB) -> dict:
    """Quantize a deploy checkpoint and measure test accuracy; return one result record."""
    return quant_table(checkpoint, data_dir, precisions=(precision,), methods=(method,), calib_size=calib_size,
                       seed=seed, device=device, batch_size=batch_size, group_size=group_size,
                       descending=descending, act_calib=act_calib, fp32_reference=False)[0]


def quant_table(checkpoint: Path, data_dir, precisions: Sequence[str] = ("w4a16", "int8"),
                methods: Sequence[str] = ("rtn", "obs", "actorder", "adagrow", "adagrow-rerank"), *,
                calib_size: int = 256, seed: int = 0, device: str = "cpu", batch_size: int = 128,
                group_size: int = -1, descending: bool = DEFAULT_DESCENDING, act_calib: str = DEFAULT_ACT_CALIB,
                fp32_reference: bool = True, on_record: Callable[[dict], None] | None = None,
                skip: Callable[[str, str], bool] | None = None) -> list[dict]:
    """One record per (precision, method) for Tables 4-1/4-2; data and model are loaded once.

    ``fp16`` and ``fp32`` take no method: they yield one record each (``quant_method`` ``cast`` /
    ``none``).  With ``fp32_reference`` the FP32 accuracy is measured once and stored in every
    record as ``fp32_accuracy``.  ``on_record`` is called with each record as soon as it is measured
    (the CLI appends it to disk there, so an interrupted table keeps what it measured).  ``skip(precision,
    quant_method)`` (``quant_method`` as the record would name it: ``cast`` for FP16) leaves out what an earlier
    invocation already measured, so an interrupted table resumes.
    """
    ckpt = load_deploy_checkpoint(checkpoint, device)
    bundle = _bundle(ckpt["dataset"], data_dir, batch_size=batch_size, device=device, seed=seed)
    fp32_acc = accuracy(ckpt["model"], bundle.test) if fp32_reference else None
    records = []
    for precision in precisions:
        for method in (methods if precision in ("int8", "w4a16") else methods[:1]):
            if skip is not None and skip(precision, method if precision in ("int8", "w4a16") else CAST[precision]):
                continue
            t0 = time.perf_counter()
            qmodel, report = quantize_model(ckpt["model"], _calibration(bundle, seed, calib_size), precision=precision,
                                            method=method, calib_size=calib_size, seed=seed,
                                            group_size=group_size, descending=descending, act_calib=act_calib)
            rec = _record(ckpt, report, accuracy(qmodel, bundle.test), precision, fp32_acc)
            rec["seconds"] = time.perf_counter() - t0
            records.append(rec)
            if on_record is not None:
                on_record(rec)
    return records
