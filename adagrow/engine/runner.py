"""The one runner every method uses: data, model, optimizer, epochs, checkpoints, timing, records.

Flow of ``run(cfg)``:

1. load the dataset (validation split held out of train; test used only at the end);
2. build the model through the method (or rebuild it from the last checkpoint with ``resume``);
3. per epoch: train, validate, let the method change the model (grow / prune / stop growing), carry
   the optimizer state across the change, checkpoint atomically;
4. test, build the deploy model (fused / pruned), measure params / MACs / latency, save it, and
   write the result record to ``<run dir>/record.json`` and one line of ``<output>/<suite>.jsonl``.

A run's directory is ``<output>/runs/<run_name>``, named by its resolved config (``RunConfig.run_name``
ends in a hash of it), so runs that differ in any option never share files; ``config.json`` in it
says which config owns it.  Before any work the config is validated and the output location is
created and test-written.  A finished run is never run (or recorded) twice: running it again returns
its record.  Its resume checkpoint is deleted once the record is written, unless ``keep_checkpoint``.

A NaN or infinite loss ends the run with a record marked ``failed`` (earlier records untouched).
SIGTERM (how clusters preempt jobs) ends it like Ctrl-C: the last checkpoint is kept.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import signal
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adagrow.config import RunConfig, identity_of
from adagrow.data import DATASETS, load_dataset, resolve_data_dir
from adagrow.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from adagrow.engine.loop import evaluate, train_one_epoch
from adagrow.engine.method import ModelChange, RunContext
from adagrow.engine.optim import build_optimizer, transfer_state
from adagrow.engine.progress import announce, epoch_progress, eval_progress, log_line
from adagrow.engine.runlock import LOCK, run_dir_lock
from adagrow.engine.speed import Compiler, apply_branch_compute, choose_branch_compute, has_units
from adagrow.engine.timing import PhaseTimer
from adagrow.errors import AdaGrowError, TrainingDiverged
from adagrow.measure.latency import measure_latency
from adagrow.measure.load import is_busy, machine_load, usable_cores
from adagrow.measure.profile import count_macs, count_params, profile
from adagrow.methods import load_builtin_methods
from adagrow.records.env import device_name, git_commit, versions
from adagrow.records.store import append_record, atomic_write_text, read_records, to_json
from adagrow.records.wandb_log import WandbLogger


class Interrupted(Exception):
    """Raised by ``run(..., interrupt_after=k)`` after epoch k's checkpoint (tests of resume)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run: an interrupt like Ctrl-C, so the last checkpoint is kept and said so."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AdaGrowError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdaGrowError(f"--device {name} was asked for but CUDA is not available here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise AdaGrowError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
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
    """The run's config as it runs (method defaults filled in, profile applied), validated, and its method."""
    cfg = cfg.resolved()
    cfg.validate()
    _, factory = load_builtin_methods().get(cfg.method).resolve(cfg.model)
    return cfg, factory(cfg.method_config)


def run(cfg: RunConfig, *, interrupt_after: int | None = None, force: bool = False, log=log_line) -> dict[str, Any]:
    """Train and evaluate one configuration; return its result record (also written to disk).

    Everything the user can get wrong (options, device, output location, resuming another config)
    is checked before the data is loaded.  A configuration that already finished is not run again:
    its record is returned, unless ``force``: then the earlier run's directory is set aside
    (:func:`set_aside`) and the run starts from nothing."""
    cfg, method = resolve_method(cfg)
    device = resolve_device(cfg.device)
    if force:
        set_aside(Path(cfg.output_dir) / "runs" / cfg.run_name, log)
    if not _has_ok_record(Path(cfg.output_dir) / "runs" / cfg.run_name):
        # what must exist for the run to start (a --pretrained file), before anything is written or loaded; a
        # finished run returns its record below and needs none of it
        method.check_ready(cfg)
    run_dir = prepare_run_dir(cfg)
    with run_dir_lock(run_dir):  # one process per run directory (engine/runlock.py); refused outside the try
        try:
            done = finished_record(cfg, run_dir, log)
            if done is not None:
                return done
            with _sigterm_as_interrupt(), interrupt_names_checkpoint(run_dir / "last.pt"):
                return _train_and_record(cfg, method, device, run_dir, interrupt_after=interrupt_after, log=log)
        except AdaGrowError:
            _forget_if_empty(run_dir)  # e.g. missing data or an unknown model: no directory of a run that never ran
            raise


def _forget_if_empty(run_dir: Path) -> None:
    """Remove a run directory that holds nothing but its ``config.json`` claim and lock (no checkpoint, no record)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {"config.json", LOCK}:
        for name in ("config.json", LOCK):
            (run_dir / name).unlink(missing_ok=True)
        run_dir.rmdir()


@contextmanager
def interrupt_names_checkpoint(ckpt_path: Path):
    """An interrupt (Ctrl-C, SIGTERM) leaving the block says whether a checkpoint exists to continue from
    (``exc.checkpoint``: the path, or None before the first one), so the message never promises one."""
    try:
        yield
    except KeyboardInterrupt as exc:
        exc.checkpoint = ckpt_path if ckpt_path.is_file() else None
        raise


def _train_and_record(cfg: RunConfig, method, device: torch.device, run_dir: Path, *, interrupt_after: int | None,
                      log) -> dict[str, Any]:
    seed_everything(cfg.seed, cfg.deterministic)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    spec = DATASETS.get(cfg.dataset)

    out_dir = Path(cfg.output_dir)
    ckpt_path = run_dir / "last.pt"
    results_path = out_dir / f"{cfg.suite}.jsonl"
    timer = PhaseTimer(device)
    wall0 = time.perf_counter()

    # ---- start or resume (before the data loads: a checkpoint that cannot be used is refused at once) ----
    # wall_seconds: wall time of the earlier segments of an interrupted run (up to their last checkpoint)
    state = {"epoch": 0, "step": 0, "history": [], "events": [], "wall_seconds": 0.0, "segments": 0}
    ckpt = None
    _drop_torn_checkpoints(ckpt_path, cfg.resume, log)
    if cfg.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        _check_same_run(identity_of(ckpt.get("config") or {}), cfg.identity(), ckpt_path)
        method.load_state_dict(ckpt["method"])
        state = {"wall_seconds": 0.0, "segments": 1, **ckpt["state"]}  # older checkpoints lack the two
        timer.load_state_dict(ckpt["timer"])
        log(f"resuming {cfg.run_name} after epoch {state['epoch']}")
    elif cfg.resume:
        log(f"--resume: {cfg.run_name} has no checkpoint to continue from; it starts from the first epoch")
    elif ckpt_path.exists():
        log(f"note: {ckpt_path} exists; starting afresh (pass --resume to continue it)")
    state["segments"] += 1
    wall_before = state["wall_seconds"]

    with timer.phase("data"), announce(f"loading {cfg.dataset} from {resolve_data_dir(cfg.data_dir)}", log):
        bundle = load_dataset(cfg.dataset, resolve_data_dir(cfg.data_dir), batch_size=cfg.recipe.batch_size,
                              device=device, seed=cfg.seed, val_size=cfg.val_size,
                              train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                              download=cfg.download, num_workers=cfg.num_workers,
                              randaugment=cfg.recipe.randaugment, tokenizer=cfg.tokenizer)
    epochs = cfg.total_epochs
    steps_per_epoch = len(bundle.train)
    total_steps = epochs * steps_per_epoch
    is_image = len(bundle.input_size) == 3
    channels_last = cfg.channels_last and device.type == "cuda" and is_image

    def train_batches():
        while True:
            yield from bundle.train

    def val_batches():
        while True:
            yield from bundle.val

    def evaluate_on(model, split: str) -> dict[str, float]:  # every evaluation: with progress lines in a log
        batches = {"val": bundle.val, "test": bundle.test}[split]
        return evaluate(model, batches, amp=cfg.amp, channels_last=channels_last,
                        progress=eval_progress(split, len(batches), log=log))

    def evaluate_split(model, split: str) -> dict[str, float]:  # ctx.evaluate, e.g. of a model just pruned
        was_training = model.training
        with timer.phase("eval"):
            out = evaluate_on(model, split)
        model.train(was_training)
        return out

    ctx = RunContext(config=cfg, dataset=spec, input_size=tuple(bundle.input_size), num_classes=bundle.num_classes,
                     device=device, epochs=epochs, steps_per_epoch=steps_per_epoch, log=log,
                     train_batches=train_batches, val_batches=val_batches, data_meta=dict(bundle.meta), evaluate=evaluate_split,
                     calibration_batches=bundle.calibration,
                     timed=timer.phase)

    model = method.build_model(ctx).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.recipe.optimizer, model.parameters(), cfg.recipe.lr,
                                cfg.recipe.weight_decay, cfg.recipe.momentum)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
    # How the model computes (engine/speed.py): the same function either way, recorded.
    with timer.phase("measure"):
        branch = (choose_branch_compute(cfg.branch_compute, device, bundle.input_size, cfg.recipe.batch_size,
                                        amp=cfg.amp, channels_last=channels_last, deterministic=cfg.deterministic)
                  if has_units(model) else {"requested": cfg.branch_compute, "mode": None})
    apply_branch_compute(model, branch)
    compiler = Compiler(cfg.compile, lambda: _example_input(bundle, device, cfg.recipe.batch_size), amp=cfg.amp,
                        channels_last=channels_last)

    wandb = WandbLogger(cfg.wandb, directory=out_dir, name=cfg.run_name, group=f"{cfg.suite}/{cfg.dataset}",
                        job_type=cfg.method,
                        config=cfg.to_dict(), tags=[cfg.dataset, cfg.method, str(cfg.model), cfg.profile],
                        resume_id=state.get("wandb_id"), artifacts=cfg.wandb_artifacts,
                        macs_of=lambda m: count_macs(m, bundle.input_size, example=_example_input(bundle, device)))
    state["wandb_id"] = wandb.run_id or state.get("wandb_id")
    if state["epoch"] == 0:
        wandb.epoch({"epoch": 0}, model, method.arch(model))  # step 0: the model before training
    base_record = {
        "method": cfg.method, "dataset": cfg.dataset, "model": cfg.model, "recipe": cfg.recipe.name,
        "seed": cfg.seed, "profile": cfg.profile, "suite": cfg.suite, "device": device_name(device),
        "versions": versions(), "git_commit": git_commit(), "config": cfg.to_dict(),
        "tag": cfg.tag, "data": dict(bundle.meta), "run_dir": str(run_dir), "run_name": cfg.run_name,
        "branch_compute": branch,
    }
    log(f"{cfg.run_name}: {count_params(model):,} params at start, {epochs} epochs × {steps_per_epoch} steps on "
        f"{device_name(device)}")

    try:
        for epoch in range(state["epoch"], epochs):
            bundle.train.set_epoch(epoch)
            with timer.phase("compile") if cfg.compile else nullcontext():
                forward = compiler.forward(model)  # compiles only a new or changed model
            if not method.trains(epoch):  # waited out: the schedule moves on, nothing is trained or evaluated
                state["step"] += steps_per_epoch
                val_m = {"loss": None, "acc": None}
                metrics = {"epoch": epoch + 1, "skipped": True, "params": count_params(model)}
                log(f"epoch {epoch + 1:>3}/{epochs}  skipped ({method.phase(epoch)}): the learning-rate schedule "
                    f"moves on by {steps_per_epoch} steps")
            else:
                bar = epoch_progress(epoch, epochs, steps_per_epoch, log=log)  # a bar, or a line every 30 s
                with timer.phase(method.phase(epoch)):
                    train_m, state["step"] = train_one_epoch(
                        model, bundle.train, optimizer, step=state["step"], total_steps=total_steps,
                        base_lr=cfg.recipe.lr, warmup_steps=int(cfg.recipe.warmup_epochs * steps_per_epoch),
                        min_lr=cfg.recipe.min_lr, label_smoothing=cfg.recipe.label_smoothing,
                        weight_decay=cfg.recipe.weight_decay, min_weight_decay=cfg.recipe.min_weight_decay,
                        grad_clip=cfg.recipe.grad_clip, amp=cfg.amp, channels_last=channels_last,
                        extra_loss=method.extra_loss, after_step=method.after_step, progress=bar, forward=forward)
                bar.close()
                with timer.phase("eval"):
                    val_m = evaluate_on(model, "val")
                metrics = {"epoch": epoch + 1, "train_loss": train_m["loss"], "train_acc": train_m["acc"],
                           "val_loss": val_m["loss"], "val_acc": val_m["acc"], "params": count_params(model),
                           "lr": optimizer.param_groups[0]["lr"]}
                log(f"epoch {epoch + 1:>3}/{epochs}  loss {train_m['loss']:.4f}  train {train_m['acc']:.2f}%  "
                    f"val {val_m['acc']:.2f}%  params {metrics['params']:,}")
            with timer.phase(method.change_phase(epoch)):
                change = method.on_epoch_end(ctx, epoch, model, metrics)
            if change is not None:
                model, optimizer = _apply_change(change, optimizer, cfg, device, channels_last)
                apply_branch_compute(model, branch)  # the new units too
                compiler.changed()
                method.after_optimizer_transfer(optimizer)
                with timer.phase("eval"):
                    after = evaluate_on(model, "val")
                raw_acc = after["acc"]
                with timer.phase(method.change_phase(epoch)):
                    recalibrated = method.recalibrate(ctx, model)
                if recalibrated:
                    with timer.phase("eval"):
                        after = evaluate_on(model, "val")
                event = {"epoch": epoch + 1, "val_acc_before": val_m["acc"], **change.event,
                         "val_acc_after_raw": raw_acc, "val_acc_after": after["acc"], "params_after": count_params(model)}
                state["events"].append(event)
                before = event.get("params_before")
                log(f"  after epoch {epoch + 1}: {event.get('kind')} {event.get('where', '')}  params "
                    f"{'?' if before is None else f'{before:,}'} -> {event['params_after']:,}  "
                    f"val {event['val_acc_after']:.2f}%" + (f" ({raw_acc:.2f}% before BN recalibration)" if recalibrated else ""))
                wandb.event(event, state["events"])
            state["history"].append(metrics)
            state.setdefault("load", []).append(machine_load())  # timings taken under load are flagged
            state["epoch"] = epoch + 1
            wandb.epoch(metrics, model, method.arch(model), timer.seconds)
            state["wall_seconds"] = wall_before + time.perf_counter() - wall0
            _reclaim(cfg, run_dir, log)
            _try_save(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                  "method": method.state_dict(), "state": state, "rng": rng_state(),
                                  "timer": timer.state_dict(), "config": cfg.to_dict()},
                      log, "the run goes on, but can only be resumed from an earlier checkpoint")
            if interrupt_after is not None and epoch + 1 == interrupt_after:
                raise Interrupted(f"interrupted after epoch {epoch + 1}")
    except TrainingDiverged as exc:
        record = {**base_record, "status": "failed", "error": str(exc), "val_acc": None, "test_acc": None,
                  "compile": compiler.record(),
                  "history": state["history"], "gpu_seconds": dict(timer.seconds),
                  "wall_seconds": wall_before + time.perf_counter() - wall0, "segments": state["segments"]}
        _reclaim(cfg, run_dir, log)
        _save_record(record, run_dir, results_path, log)
        wandb.finish(record)
        raise

    # ---- final evaluation, deploy model, measurements -------------------------------------------
    with timer.phase("test"):
        test_m = evaluate_on(model, "test")
    deploy = method.deploy_model(model).eval()
    with timer.phase("measure"):
        example = _example_input(bundle, device)
        prof = profile(deploy, bundle.input_size, example=example)
        latency = measure_latency(deploy, example, repeats=cfg.latency_repeats, threads=cfg.latency_threads,
                                  channels_last=channels_last)
    deploy_path = run_dir / "deploy.pt"
    validated = [h for h in state["history"] if h.get("val_acc") is not None]  # not the epochs waited out
    best = max(validated, key=lambda h: h["val_acc"]) if validated else {}
    record = {
        **base_record, **method.summary(), "status": "ok", "error": None, "arch": method.arch(model),
        "val_acc": validated[-1]["val_acc"] if validated else None,
        "best_val_acc": best.get("val_acc"), "best_epoch": best.get("epoch"),
        "test_acc": test_m["acc"], "test_loss": test_m["loss"],
        "params": prof["params"], "macs": prof["macs"], "params_unfused": count_params(model),
        "latency_ms": {latency["device"]: latency},
        "gpu_seconds": dict(timer.seconds), "time_unit": timer.unit, "compile": compiler.record(),
        "wall_seconds": wall_before + time.perf_counter() - wall0, "segments": state["segments"],
        "machine_load": load_summary(state.get("load", [])),
        "epochs": epochs, "history": state["history"], "growth_events": state["events"],
        "deploy_model": str(deploy_path),
    }
    _reclaim(cfg, run_dir, log)
    if not _try_save(deploy_path, {"model": deploy.cpu(), "dataset": cfg.dataset, "input_size": tuple(bundle.input_size),
                                   "num_classes": bundle.num_classes, "data_meta": dict(bundle.meta), "record": record},
                     log, "the record is saved without it"):
        record["deploy_model"] = None
    saved_to = _save_record(record, run_dir, results_path, log)
    if not cfg.keep_checkpoint:
        try:
            ckpt_path.unlink(missing_ok=True)  # finished: running it again returns its record, never resumes
        except OSError as exc:
            log(f"warning: could not delete {ckpt_path} ({exc.strerror or exc})")
    wandb.finish(record, deploy=deploy_path if record.get("deploy_model") else None)
    log(summary_line(record, saved_to))
    return record


# ---- the run directory: identity, output checks, records ---------------------------------------
def prepare_run_dir(cfg: RunConfig) -> Path:
    """Create the run's directory and prove the output location writable before any work, and claim
    the directory for this config: its ``config.json`` names the identity of the config that owns it,
    and a directory owned by another config is never written into."""
    out_dir = Path(cfg.output_dir)
    run_dir = out_dir / "runs" / cfg.run_name
    identity = cfg.identity()
    if cfg.resume and not (run_dir / "last.pt").exists() and not (run_dir / "record.json").exists():
        _refuse_to_resume_another(cfg, run_dir, identity)
    owner = run_dir / "config.json"
    results = out_dir / f"{cfg.suite}.jsonl"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):  # the suite's results file is written here
            pass
        if results.exists() and (results.is_dir() or not os.access(results, os.W_OK)):
            raise AdaGrowError(f"the results file {results} is not a writable file")
        if owner.exists():
            _check_same_run(_read_json(owner).get("identity"), identity, run_dir)
        atomic_write_text(owner, to_json({"run_name": cfg.run_name, "identity": identity}, indent=1))
    except OSError as exc:
        raise AdaGrowError(f"--output {out_dir} cannot be written: {exc.strerror or exc}"
                           f"{f' ({exc.filename})' if exc.filename else ''}") from None
    return run_dir


def _refuse_to_resume_another(cfg: RunConfig, run_dir: Path, identity: dict[str, Any]) -> None:
    """``--resume`` with no checkpoint of this config: if an unfinished run of the same name but other
    options exists, say so instead of silently starting (or, as before, continuing) a different run."""
    for other in sorted(run_dir.parent.glob(glob.escape(cfg.run_stem) + "-*")):
        if re.fullmatch(r"[0-9a-f]{8}", other.name[len(cfg.run_stem) + 1:]) and (other / "last.pt").exists():
            there = _read_json(other / "config.json").get("identity") if (other / "config.json").exists() else None
            raise AdaGrowError(
                f"--resume: nothing of this configuration to resume, and {other} is an unfinished run with other "
                f"options ({_difference(there, identity)}), which these options do not continue; re-run with its "
                "options to continue it, or start this one without --resume (or delete the other)")


def _check_same_run(saved: dict[str, Any] | None, identity: dict[str, Any], where: Path) -> None:
    if saved != identity:
        raise AdaGrowError(f"{where} belongs to a different configuration ({_difference(saved, identity)}); "
                           "it is left untouched: give this run another --tag or --output, or delete it")


def _difference(there: dict[str, Any] | None, here: dict[str, Any]) -> str:
    """The settings two identities differ in, e.g. ``method_config.width_ratio: 0.7 there, 0.5 here``."""
    if there is None:
        return "its configuration is not recorded"
    a, b = _flatten(there), _flatten(here)
    diffs = [f"{k}: {a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(diffs[:4]) + (f" and {len(diffs) - 4} more" if len(diffs) > 4 else "")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdaGrowError(f"{path} is unreadable ({exc}); delete {path.parent} to run it afresh") from None


def _has_ok_record(run_dir: Path) -> bool:
    path = run_dir / "record.json"
    return path.is_file() and _read_json(path).get("status") == "ok"


def finished_record(cfg: RunConfig, run_dir: Path, log=log_line) -> dict[str, Any] | None:
    """The record of this config's finished run, or None: a finished run is never run or recorded
    twice.  If its record never reached the suite's file (the process died in between), it is added."""
    path = run_dir / "record.json"
    if not path.exists():
        return None
    record = _read_json(path)
    if record.get("status") != "ok":
        return None
    results = Path(cfg.output_dir) / f"{cfg.suite}.jsonl"
    if not any(r.get("run_name") == cfg.run_name and r.get("status") == "ok"
               for r in (read_records(results) if results.exists() else [])):
        _append(record, results, log, saved_in=path)
    log(f"{cfg.run_name} has already finished (test {record.get('test_acc')}%): its record is returned, the run "
        f"is not repeated (record in {results}, model in {run_dir / 'deploy.pt'}; --force runs it afresh)")
    return record


def _save_record(record: dict[str, Any], run_dir: Path, results_path: Path, log) -> list[str]:
    """Put a record on disk so that it cannot be lost: ``record.json`` in the run directory first,
    then one line of the suite's file (``_append``).  Returns where it was written."""
    record_json = run_dir / "record.json"
    try:
        atomic_write_text(record_json, to_json(record, indent=1))
    except OSError as exc:
        log(f"warning: could not write {record_json} ({exc.strerror or exc})")
        record_json = None
    appended = _append(record, results_path, log, saved_in=record_json)
    return [str(p) for p in (record_json, appended) if p is not None]


def _try_save(path: Path, payload: dict[str, Any], log, consequence: str) -> bool:
    """``save_checkpoint``, or one warning line when the file system refuses it (the run goes on)."""
    try:
        save_checkpoint(path, payload)
        return True
    except (OSError, RuntimeError) as exc:  # torch.save reports an unwritable file as a RuntimeError
        detail = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
        log(f"warning: could not write {path} ({detail}); {consequence}")
        return False


def _reclaim(cfg: RunConfig, run_dir: Path, log) -> None:
    """Put ``config.json`` (which config owns the directory) back when it has gone, e.g. ``runs/`` deleted
    mid-run: files written into the directory afterwards are then still known to be this config's."""
    owner = run_dir / "config.json"
    if owner.exists():
        return
    try:
        atomic_write_text(owner, to_json({"run_name": cfg.run_name, "identity": cfg.identity()}, indent=1))
        log(f"warning: {owner} had disappeared during the run; it was written again")
    except OSError as exc:
        log(f"warning: {owner} has disappeared and cannot be written again ({exc.strerror or exc})")


def _drop_torn_checkpoints(ckpt_path: Path, resume: bool, log) -> None:
    """Remove what a process killed while writing a checkpoint left (``.last.pt.<pid>.tmp``: the write is
    a temporary file renamed into place, so ``last.pt`` itself is never torn) and say so: it is why a
    resume continues from an earlier epoch, or from the start when no checkpoint was complete yet.
    Only the holder of the run directory's lock writes there, so no live process owns them."""
    for torn in sorted(ckpt_path.parent.glob(f".{glob.escape(ckpt_path.name)}.*tmp")):
        try:
            size = torn.stat().st_size
            torn.unlink()
        except OSError:
            continue
        where = ("" if not resume else "; --resume continues from the complete checkpoint before it" if ckpt_path.exists()
                 else "; no complete checkpoint exists, so --resume starts from the first epoch")
        log(f"note: a checkpoint write was interrupted ({torn.name}, {size:,} bytes, removed){where}")


def _append(record: dict[str, Any], results_path: Path, log, *, saved_in: Path | None) -> Path | None:
    """Append the record to the suite's file, where suites and reports look, else to
    ``<suite>.recovered.jsonl`` beside it (reports read every ``*.jsonl``); one line says where it went
    when that is not the suite's file.  Written nowhere at all, the record is in the error message."""
    errors = []
    for path in (results_path, results_path.with_suffix(".recovered.jsonl")):
        try:
            append_record(path, record)
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
            continue
        if errors:
            log(f"warning: the record could not be appended to {results_path} ({errors[0]}); it was written to {path}")
        return path
    if saved_in is None:
        raise AdaGrowError(f"the record could not be written anywhere ({'; '.join(errors)}); here it is: {to_json(record)}")
    log(f"warning: the record could not be appended to {results_path} ({'; '.join(errors)}); it is in {saved_in}")
    return None


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (how clusters preempt a job) would end the process silently, mid-epoch; raise
    :class:`Terminated` instead, which ends the run like Ctrl-C.  The old handler is restored after.
    (Signal handlers can only be set in the main thread; elsewhere nothing changes.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        raise Terminated("terminated (SIGTERM)")

    old = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


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


def _example_input(bundle, device, batch: int = 1) -> torch.Tensor:
    """A random input batch (default batch 1): images, or for text full-length sequences of token ids
    (batches are trimmed to their longest sequence, so a real batch would count MACs at a random length)."""
    if len(bundle.input_size) == 1:
        return torch.full((batch, bundle.input_size[0]), 5, dtype=torch.long, device=device)
    return torch.randn(batch, *bundle.input_size, device=device)


def load_summary(samples: list[float | None]) -> dict[str, Any]:
    """Mean and max of the per-epoch load samples against the usable cores; ``busy`` when the mean load exceeds
    the cores (other processes competed for them: the record's times are not the machine's speed)."""
    present = [s for s in samples if s is not None]
    cores = usable_cores()
    if not present:
        return {"cores": cores, "mean_1min": None, "max_1min": None, "busy": None}
    mean = sum(present) / len(present)
    return {"cores": cores, "mean_1min": round(mean, 2), "max_1min": round(max(present), 2),
            "busy": is_busy(mean, cores or 1)}


def summary_line(r: dict[str, Any], saved_to: list[str] | Path | None = None) -> str:
    """The run's closing lines, naming the files it wrote by their full paths; ``saved_to``: where the record
    was written (the summary never claims a file the record did not reach; default: the suite's file)."""
    lat_m = next(iter(r["latency_ms"].values())) if r.get("latency_ms") else {}
    lat = lat_m.get("median_ms", float("nan"))
    how = "median, batch 1" + (f", {lat_m['threads']} thread{'s' * (lat_m['threads'] != 1)}" if lat_m.get("threads") else "")
    if lat_m.get("noisy"):
        how += ", NOISY: the repeats did not settle"
    arch = f" arch {r['arch']}" if r.get("arch") else ""
    secs = sum(r["gpu_seconds"].values())
    if saved_to is None or isinstance(saved_to, Path):
        saved_to = [str(saved_to or Path(r.get("config", {}).get("output_dir", ".")) / f"{r['suite']}.jsonl")]
    text = (f"\n== {r['method']} / {r['dataset']} / {r.get('model')}{arch}\n"
            f"   test {r['test_acc']:.2f}%  (val {r['val_acc']:.2f}%)   params {r['params'] / 1e6:.3f}M   "
            f"MACs {r['macs'] / 1e6:.2f}M   latency {lat:.2f} ms ({how})\n"
            f"   {r['time_unit']} {secs:.1f}   wall {r['wall_seconds']:.1f}s   record -> {', '.join(saved_to)}")
    return text + (f"\n   model -> {r['deploy_model']}" if r.get("deploy_model") else "")


def set_aside(run_dir: Path, log=log_line) -> Path | None:
    """Keep an earlier run's files (checkpoint, deploy model, record) under another name, so that the
    runner, which never repeats a finished run, starts this one from nothing (``--force``)."""
    if not run_dir.exists():
        return None
    aside = run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.rename(aside)
    log(f"--force: the earlier run's files are kept in {aside}")
    return aside
