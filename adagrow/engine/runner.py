"""The one runner every method uses: data, model, optimizer, epochs, checkpoints, timing, records.

Flow of ``run(cfg)``:

1. load the dataset (validation split held out of train; test used only at the end);
2. build the model through the method (or rebuild it from the last checkpoint with ``resume``);
3. per epoch: train, validate, let the method change the model (grow / prune / stop growing), carry
   the optimizer state across the change, checkpoint atomically;
4. test, build the deploy model (fused / pruned), measure params / MACs / latency, save it, and
   append one result record to ``<output>/<suite>.jsonl``.

A NaN or infinite loss ends the run with a record marked ``failed`` (earlier records untouched).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adagrow.config import RunConfig
from adagrow.data import DATASETS, load_dataset, resolve_data_dir
from adagrow.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from adagrow.engine.loop import evaluate, train_one_epoch
from adagrow.engine.method import ModelChange, RunContext
from adagrow.engine.optim import build_optimizer, transfer_state
from adagrow.engine.progress import announce, epoch_progress
from adagrow.engine.timing import PhaseTimer
from adagrow.errors import AdaGrowError, TrainingDiverged
from adagrow.measure.latency import measure_latency
from adagrow.measure.profile import count_params, profile
from adagrow.methods import load_builtin_methods
from adagrow.records.env import device_name, git_commit, versions
from adagrow.records.store import append_record
from adagrow.records.wandb_log import WandbLogger


class Interrupted(Exception):
    """Raised by ``run(..., interrupt_after=k)`` after epoch k's checkpoint (tests of resume)."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdaGrowError(f"--device {name} was asked for but CUDA is not available here")
    return device


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def resolve_method(cfg: RunConfig):
    """The run's config with the method's defaults filled in and the profile applied, and its method."""
    config_cls, factory = load_builtin_methods().get(cfg.method).resolve(cfg.model)
    if cfg.method_config is None:
        cfg = dataclasses.replace(cfg, method_config=config_cls())
    cfg = cfg.with_profile()
    return cfg, factory(cfg.method_config)


def run(cfg: RunConfig, *, interrupt_after: int | None = None, log=print) -> dict[str, Any]:
    """Train and evaluate one configuration; return its result record (also appended to disk)."""
    cfg, method = resolve_method(cfg)
    seed_everything(cfg.seed, cfg.deterministic)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    spec = DATASETS.get(cfg.dataset)

    out_dir = Path(cfg.output_dir)
    run_dir = out_dir / "runs" / cfg.run_name
    ckpt_path = run_dir / "last.pt"
    results_path = out_dir / f"{cfg.suite}.jsonl"
    timer = PhaseTimer(device)
    wall0 = time.perf_counter()

    with timer.phase("data"), announce(f"loading {cfg.dataset} from {resolve_data_dir(cfg.data_dir)}", log):
        bundle = load_dataset(cfg.dataset, resolve_data_dir(cfg.data_dir), batch_size=cfg.recipe.batch_size,
                              device=device, seed=cfg.seed, val_size=cfg.val_size,
                              train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                              download=cfg.download, num_workers=cfg.num_workers)
    epochs = cfg.total_epochs
    steps_per_epoch = len(bundle.train)
    total_steps = epochs * steps_per_epoch
    is_image = len(bundle.input_size) == 3
    channels_last = cfg.channels_last and device.type == "cuda" and is_image

    def train_batches():
        while True:
            yield from bundle.train

    ctx = RunContext(config=cfg, dataset=spec, input_size=tuple(bundle.input_size), num_classes=bundle.num_classes,
                     device=device, epochs=epochs, steps_per_epoch=steps_per_epoch, log=log,
                     train_batches=train_batches, data_meta=dict(bundle.meta))

    # ---- start or resume -------------------------------------------------------------------
    state = {"epoch": 0, "step": 0, "history": [], "events": []}
    ckpt = None
    if cfg.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        method.load_state_dict(ckpt["method"])
        state = ckpt["state"]
        timer.load_state_dict(ckpt["timer"])
        log(f"resuming {cfg.run_name} after epoch {state['epoch']}")
    elif ckpt_path.exists():
        log(f"note: {ckpt_path} exists; starting afresh (pass --resume to continue it)")

    model = method.build_model(ctx).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.recipe.optimizer, model.parameters(), cfg.recipe.lr,
                                cfg.recipe.weight_decay, cfg.recipe.momentum)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])

    wandb = WandbLogger(cfg.wandb, name=cfg.run_name, group=f"{cfg.suite}/{cfg.dataset}", job_type=cfg.method,
                        config=cfg.to_dict(), tags=[cfg.dataset, cfg.method, str(cfg.model), cfg.profile],
                        resume_id=state.get("wandb_id"))
    state["wandb_id"] = wandb.run_id or state.get("wandb_id")
    base_record = {
        "method": cfg.method, "dataset": cfg.dataset, "model": cfg.model, "recipe": cfg.recipe.name,
        "seed": cfg.seed, "profile": cfg.profile, "suite": cfg.suite, "device": device_name(device),
        "versions": versions(), "git_commit": git_commit(), "config": cfg.to_dict(),
        "tag": cfg.tag, "data": dict(bundle.meta), "run_dir": str(run_dir),
    }
    log(f"{cfg.run_name}: {count_params(model):,} params at start, {epochs} epochs × {steps_per_epoch} steps on "
        f"{device_name(device)}")

    try:
        for epoch in range(state["epoch"], epochs):
            bundle.train.set_epoch(epoch)
            bar = epoch_progress(epoch, epochs, steps_per_epoch, log=log)  # a bar, or a line every 30 s
            with timer.phase(method.phase(epoch)):
                train_m, state["step"] = train_one_epoch(
                    model, bundle.train, optimizer, step=state["step"], total_steps=total_steps,
                    base_lr=cfg.recipe.lr, warmup_steps=int(cfg.recipe.warmup_epochs * steps_per_epoch),
                    min_lr=cfg.recipe.min_lr, label_smoothing=cfg.recipe.label_smoothing,
                    grad_clip=cfg.recipe.grad_clip, amp=cfg.amp, channels_last=channels_last,
                    extra_loss=method.extra_loss, progress=bar)
            bar.close()
            with timer.phase("eval"):
                val_m = evaluate(model, bundle.val, amp=cfg.amp, channels_last=channels_last)
            metrics = {"epoch": epoch + 1, "train_loss": train_m["loss"], "train_acc": train_m["acc"],
                       "val_loss": val_m["loss"], "val_acc": val_m["acc"], "params": count_params(model),
                       "lr": optimizer.param_groups[0]["lr"]}
            with timer.phase("grow"):
                change = method.on_epoch_end(ctx, epoch, model, metrics)
            if change is not None:
                model, optimizer = _apply_change(change, optimizer, cfg, device, channels_last)
                method.after_optimizer_transfer(optimizer)
                with timer.phase("eval"):
                    after = evaluate(model, bundle.val, amp=cfg.amp, channels_last=channels_last)
                event = {"epoch": epoch + 1, "val_acc_before": val_m["acc"], **change.event,
                         "val_acc_after": after["acc"], "params_after": count_params(model)}
                state["events"].append(event)
                log(f"  growth at epoch {epoch + 1}: {event.get('kind')} {event.get('where', '')} "
                    f"params {event.get('params_before', '?')} -> {event['params_after']}")
                wandb.log({"growth/params": event["params_after"], "growth/val_acc_after": after["acc"]},
                          step=epoch + 1)
            state["history"].append(metrics)
            state["epoch"] = epoch + 1
            wandb.log(metrics, step=epoch + 1)
            log(f"epoch {epoch + 1:>3}/{epochs}  loss {train_m['loss']:.4f}  train {train_m['acc']:.2f}%  "
                f"val {val_m['acc']:.2f}%  params {metrics['params']:,}")
            save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                        "method": method.state_dict(), "state": state, "rng": rng_state(),
                                        "timer": timer.state_dict(), "config": cfg.to_dict()})
            if interrupt_after is not None and epoch + 1 == interrupt_after:
                raise Interrupted(f"interrupted after epoch {epoch + 1}")
    except TrainingDiverged as exc:
        record = {**base_record, "status": "failed", "error": str(exc), "val_acc": None, "test_acc": None,
                  "history": state["history"], "gpu_seconds": dict(timer.seconds),
                  "wall_seconds": time.perf_counter() - wall0}
        append_record(results_path, record)
        wandb.finish({"status": "failed"})
        raise

    # ---- final evaluation, deploy model, measurements -------------------------------------------
    with timer.phase("test"):
        test_m = evaluate(model, bundle.test, amp=cfg.amp, channels_last=channels_last)
    deploy = method.deploy_model(model).eval()
    with timer.phase("measure"):
        example = _example_input(bundle, device)
        prof = profile(deploy, bundle.input_size, example=example)
        latency = measure_latency(deploy, example, repeats=cfg.latency_repeats, threads=cfg.threads,
                                  channels_last=channels_last)
    deploy_path = run_dir / "deploy.pt"
    best = max(state["history"], key=lambda h: h["val_acc"]) if state["history"] else {}
    record = {
        **base_record, **method.summary(), "status": "ok", "error": None, "arch": method.arch(model),
        "val_acc": state["history"][-1]["val_acc"] if state["history"] else None,
        "best_val_acc": best.get("val_acc"), "best_epoch": best.get("epoch"),
        "test_acc": test_m["acc"], "test_loss": test_m["loss"],
        "params": prof["params"], "macs": prof["macs"], "params_unfused": count_params(model),
        "latency_ms": {latency["device"]: latency},
        "gpu_seconds": dict(timer.seconds), "time_unit": timer.unit, "wall_seconds": time.perf_counter() - wall0,
        "epochs": epochs, "history": state["history"], "growth_events": state["events"],
        "deploy_model": str(deploy_path),
    }
    save_checkpoint(deploy_path, {"model": deploy.cpu(), "dataset": cfg.dataset, "input_size": tuple(bundle.input_size),
                                  "num_classes": bundle.num_classes, "data_meta": dict(bundle.meta), "record": record})
    append_record(results_path, record)
    wandb.finish({k: v for k, v in record.items() if k in ("test_acc", "val_acc", "params", "macs", "arch")})
    log(summary_line(record))
    return record


def _apply_change(change: ModelChange, optimizer, cfg: RunConfig, device, channels_last: bool):
    """Move the changed model into place and give it an optimizer that continues the old one."""
    model = change.model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    new_opt = build_optimizer(cfg.recipe.optimizer, model.parameters(), cfg.recipe.lr,
                              cfg.recipe.weight_decay, cfg.recipe.momentum)
    if change.inherit_optimizer:
        transfer_state(optimizer, new_opt, change.param_map)
    for g_new, g_old in zip(new_opt.param_groups, optimizer.param_groups):
        g_new["lr"] = g_old["lr"]
    return model, new_opt


def _example_input(bundle, device) -> torch.Tensor:
    """A batch-1 input: a random image, or for text a full-length sequence of token ids (batches are
    trimmed to their longest sequence, so a real batch would count MACs at a random length)."""
    if len(bundle.input_size) == 1:
        return torch.full((1, bundle.input_size[0]), 5, dtype=torch.long, device=device)
    return torch.randn(1, *bundle.input_size, device=device)


def summary_line(r: dict[str, Any]) -> str:
    lat = next(iter(r["latency_ms"].values()))["median_ms"] if r.get("latency_ms") else float("nan")
    arch = f" arch {r['arch']}" if r.get("arch") else ""
    secs = sum(r["gpu_seconds"].values())
    return (f"\n== {r['method']} / {r['dataset']} / {r.get('model')}{arch}\n"
            f"   test {r['test_acc']:.2f}%  (val {r['val_acc']:.2f}%)   params {r['params'] / 1e6:.3f}M   "
            f"MACs {r['macs'] / 1e6:.2f}M   latency {lat:.2f} ms (median, batch 1)\n"
            f"   {r['time_unit']} {secs:.1f}   wall {r['wall_seconds']:.1f}s   record -> {r['suite']}.jsonl")
