"""Training throughput: ``adagrow bench --train``.

For a model on a dataset's input shape (random tensors of that shape: no data is read), each row is
one way of training it, timed over the same batches:

* ``family:arch`` (e.g. ``vgg:1-2-2``): ``plain``, the architecture built directly (one Conv+BN per
  unit: the cost of the model AdaGrow fuses to); ``grown-loop`` and ``grown-batched``, the same
  architecture with ``--branches`` random branches per growable unit as AdaGrow grows them, its
  branches computed one by one or as one padded conv (:mod:`adagrow.models.reparam`); ``grown-orepa``,
  the same trained in the "orepa" form (branches folded into one kernel at every step, one BN);
* a fixed model name (``resnet18``, ...): ``fixed``.

Per row: the median training step (forward, backward, SGD step) after a warm-up, images per second,
the time of one epoch of the dataset's training split (less the 10% validation hold-out), and the
arithmetic of a step (forward + backward FLOPs counted by ``torch.utils.flop_counter``: convolutions
and matrix products as they run, zero padding included), each also as a ratio to ``plain``.  On CUDA
the achieved fraction of the device's peak (FLOPs / step time / peak; peak from :data:`PEAK_TFLOPS` for
the dtype the step runs in, or ``--peak-tflops``).  ``--compile`` adds each row compiled, with its
compile seconds.  Then two shares of an epoch: the runner's loop against a bare hand-written loop on
the same model and batches, and (for ``family:arch``) the growth machinery: one width and one depth
growth with the optimizer rebuilt and its state carried over.

Steps run in the runner's settings: bf16 autocast and channels-last on CUDA (``--no-amp``), fp32 on CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.errors import AdaGrowError

# Dense tensor-core peaks from NVIDIA's datasheets, TFLOP/s: (name fragment, bf16, tf32).  The first
# fragment the device name contains wins (so "H100 PCIe" before "H100").  fp32 convolutions run in
# TF32 on these devices (cuDNN's default), bf16 under autocast.
PEAK_TFLOPS = (
    ("H200", 989.4, 494.7),
    ("H100 PCIe", 756.0, 378.0),
    ("H100", 989.4, 494.7),
    ("A100", 312.0, 156.0),
    ("L40S", 362.1, 183.2),
    ("RTX 4090", 165.2, 82.6),
    ("RTX 3090", 71.0, 35.6),
)
VAL_FRACTION = 0.1  # the runner holds this much of the training split out for validation


def peak_tflops(device_name: str, bf16: bool) -> float | None:
    for fragment, bf16_peak, tf32_peak in PEAK_TFLOPS:
        if fragment.lower() in device_name.lower():
            return bf16_peak if bf16 else tf32_peak
    return None


# ---- the models ----------------------------------------------------------------------------------
def variants(model: str, num_classes: int, input_size: tuple[int, ...], branches: int, seed: int
             ) -> list[tuple[str, Callable[[], nn.Module]]]:
    """``[(row name, builder)]`` for ``model`` (a fixed name or ``family:arch``)."""
    in_chans = input_size[0]
    if ":" not in model:
        from adagrow.engine.fixed import build_reference

        return [("fixed", lambda: build_reference(model, num_classes, input_size))]
    from adagrow.api import create_model
    from adagrow.models.reparam import set_branch_compute

    family, arch = model.split(":", 1)
    create_model(family, arch, num_classes, in_chans)  # a bad family or arch fails here, before any timing

    def plain(train_form: str = "bn"):
        torch.manual_seed(seed)
        return create_model(family, arch, num_classes, in_chans, seed=seed, train_form=train_form)

    def grown(mode: str, train_form: str = "bn") -> Callable[[], nn.Module]:
        def build():
            model = plain(train_form)
            for _ in range(branches):  # one branch per growable unit each time, drawn by the model's policy
                model.grow_width(units=[name for name, _ in model.units()])
            set_branch_compute(model, mode)
            return model
        return build

    return [("plain", plain), ("grown-loop", grown("loop")), ("grown-batched", grown("batched")),
            ("grown-orepa", grown("loop", "orepa"))]


# ---- measurements --------------------------------------------------------------------------------
class Step:
    """One training step of ``model`` (through ``forward``) on a fixed batch, in the runner's settings."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, amp: bool, channels_last: bool,
                 forward: Callable | None = None):
        from adagrow.engine.loop import autocast_for, to_model_layout
        from adagrow.engine.optim import build_optimizer

        self.model, self.forward = model, model if forward is None else forward
        self.x, self.y = to_model_layout(x, channels_last), y
        self.autocast = lambda: autocast_for(x.device, amp)
        self.opt = build_optimizer("sgd", model.parameters(), 0.01, 5e-4, 0.9)
        model.train()

    def __call__(self) -> None:
        with self.autocast():
            loss = F.cross_entropy(self.forward(self.x).float(), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def time_ms(run: Callable[[], object], device: torch.device, steps: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``steps`` calls after ``warmup`` untimed ones (CUDA events on GPU)."""
    from adagrow.measure.latency import _cpu_timer, _cuda_timer

    timer = _cuda_timer if device.type == "cuda" else _cpu_timer
    for _ in range(warmup):
        run()
    return [timer(run) for _ in range(steps)]


def train_flops(step: Step) -> int:
    """FLOPs of one forward + backward (convolutions and matrix products, as they run)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        with step.autocast():
            loss = F.cross_entropy(step.forward(step.x).float(), step.y)
        loss.backward()
    step.opt.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def loop_overhead(model: nn.Module, input_size, num_classes: int, batch: int, steps: int, device, *, amp: bool,
                  channels_last: bool, rounds: int = 3) -> dict:
    """One epoch of ``steps`` batches through the runner's ``train_one_epoch`` vs a bare loop (same
    model, loader and batches); median seconds of ``rounds`` epochs each after one warm-up epoch."""
    from adagrow.data.resident import ResidentLoader
    from adagrow.engine.loop import autocast_for, to_model_layout, train_one_epoch
    from adagrow.engine.optim import build_optimizer

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (steps * batch, *input_size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, num_classes, (steps * batch,), generator=g)
    c = input_size[0]
    loader = ResidentLoader(images, labels, batch_size=batch, mean=(0.5,) * c, std=(0.25,) * c, seed=0,
                            device=device, train=True, crop_pad=4, flip=True)
    opt = build_optimizer("sgd", model.parameters(), 0.01, 5e-4, 0.9)

    def bare():
        model.train()
        for x, y in loader:
            with autocast_for(device, amp):
                loss = F.cross_entropy(model(to_model_layout(x, channels_last)).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)

    def runner():
        train_one_epoch(model, loader, opt, step=0, total_steps=10 * steps, base_lr=0.01, amp=amp,
                        channels_last=channels_last)
        _sync(device)

    out = {}
    for name, epoch in (("bare_s", bare), ("runner_s", runner)):
        epoch()
        out[name] = statistics.median(_seconds(epoch) for _ in range(rounds))
    out["runner_over_bare"] = out["runner_s"] / out["bare_s"]
    out["steps"] = steps
    return out


def growth_seconds(model: nn.Module, device: torch.device) -> dict:
    """Seconds of one width growth (a branch on each chosen unit) and one depth growth of a copy of
    ``model``, each with the optimizer rebuilt and its state carried over, as the runner does."""
    from adagrow.engine.optim import build_optimizer, transfer_state
    from adagrow.engine.speed import has_units
    from adagrow.models.reparam import set_branch_compute

    model = copy.deepcopy(model)
    opt = build_optimizer("sgd", model.parameters(), 0.01, 5e-4, 0.9)
    for p in model.parameters():  # one step, so there is momentum to carry over
        p.grad = torch.zeros_like(p)
    opt.step()
    mode = next((m.compute for m in model.modules() if hasattr(m, "compute")), "loop")
    out = {}
    for kind, grow in (("width_s", model.grow_width), ("depth_s", model.grow_depth)):
        def change(grow=grow):
            nonlocal opt
            grow()
            model.to(device)
            if has_units(model):
                set_branch_compute(model, mode)
            new = build_optimizer("sgd", model.parameters(), 0.01, 5e-4, 0.9)
            transfer_state(opt, new)  # growth keeps every old parameter object
            opt = new
            _sync(device)
        out[kind] = _seconds(change)
    return out


def _seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- the command ---------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    from adagrow.data import DATASETS

    p = argparse.ArgumentParser(prog="adagrow bench --train", description="training throughput of a model: "
                                "grown against its plain architecture, runner against a bare loop")
    p.add_argument("--dataset", default="cifar10", choices=DATASETS.names(),
                   help="the input shape and classes (default: cifar10)")
    p.add_argument("--model", default="vgg:1-2-2",
                   help="family:arch (plain and grown rows) or a fixed model name (default: vgg:1-2-2)")
    p.add_argument("--branches", type=int, default=3, help="random branches per growable unit of the grown rows (default: 3)")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="training batch (default: 32)")
    p.add_argument("--steps", type=int, default=10, metavar="N", help="timed steps per row (after --warmup; default: 10)")
    p.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed steps first (default: 3)")
    p.add_argument("--only", help="only these rows, comma-separated (e.g. plain,grown-batched)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: torch's)")
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA (TF32 convolutions) instead of bf16")
    p.add_argument("--compile", action="store_true", help="also time each row compiled (torch.compile)")
    p.add_argument("--peak-tflops", type=float, help="the device's peak for the step's dtype (default: table)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the weights and branches (default: 0)")
    p.add_argument("--output", metavar="FILE", help="append the record to this JSONL file")
    args = p.parse_args(argv)
    for name in ("branches", "batch", "steps"):
        if getattr(args, name) < 1:
            raise AdaGrowError(f"--{name} must be at least 1 (got {getattr(args, name)})")
    if args.warmup < 0 or (args.peak_tflops is not None and not args.peak_tflops > 0):
        raise AdaGrowError("--warmup must be at least 0 and --peak-tflops positive")
    return args


def bench_train(args: argparse.Namespace, log=print) -> dict:
    from adagrow.data import DATASETS
    from adagrow.engine.runner import resolve_device
    from adagrow.engine.speed import Compiler
    from adagrow.records.env import device_name, git_commit, versions

    spec = DATASETS.get(args.dataset)
    if spec.kind != "vision":
        raise AdaGrowError("adagrow bench --train measures image models")
    device = resolve_device(args.device)
    rows_to_build = variants(args.model, spec.num_classes, spec.input_size, args.branches, args.seed)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {name for name, _ in rows_to_build}
        if unknown:
            raise AdaGrowError(f"--only {args.only}: no row {', '.join(sorted(unknown))} for --model {args.model} "
                               f"(rows: {', '.join(name for name, _ in rows_to_build)})")
        rows_to_build = [(n, b) for n, b in rows_to_build if n in wanted]
    if args.threads:
        torch.set_num_threads(args.threads)
    amp = device.type == "cuda" and not args.no_amp
    channels_last = device.type == "cuda"
    name = device_name(device)
    peak = args.peak_tflops or (peak_tflops(name, amp) if device.type == "cuda" else None)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, *spec.input_size, generator=g).to(device)
    y = torch.randint(0, spec.num_classes, (args.batch,), generator=g).to(device)
    steps_per_epoch = math.ceil(spec.train_size * (1 - VAL_FRACTION) / args.batch)

    rows, models = [], {}
    for row, build in rows_to_build:
        model = build().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        models[row] = model
        runs = [(row, None, 0.0)]
        if args.compile:
            compiler = Compiler(True, lambda: x, amp=amp, channels_last=channels_last)
            forward = compiler.forward(model)
            runs.append((f"{row}+compile", forward, compiler.seconds))
        flops = train_flops(Step(model, x, y, amp=amp, channels_last=channels_last))  # eager: compiled code hides it
        for label, forward, compile_s in runs:
            step = Step(model, x, y, amp=amp, channels_last=channels_last, forward=forward)
            ms = time_ms(step, device, args.steps, args.warmup)
            median = statistics.median(ms)
            r = {"row": label, "step_ms": median, "p10_ms": min(ms), "p90_ms": max(ms), "steps": len(ms),
                 "images_per_s": args.batch / median * 1e3, "epoch_s": median / 1e3 * steps_per_epoch,
                 "train_gflop": flops / 1e9, "params": sum(p.numel() for p in model.parameters())}
            if forward is not None:
                r["compile_s"] = compile_s
            if peak:
                r["peak_fraction"] = flops / (median / 1e3) / (peak * 1e12)
            rows.append(r)
            log(f"  {label:<22} {median:9.1f} ms/step  {r['images_per_s']:9.1f} img/s  {r['train_gflop']:7.2f} GFLOP")
    base = next((r for r in rows if r["row"] == "plain"), None)
    for r in rows:
        if base is not None:
            r["time_vs_plain"] = r["step_ms"] / base["step_ms"]
            r["flop_vs_plain"] = r["train_gflop"] / base["train_gflop"]

    loop_row = next((n for n in ("grown-batched", "grown-loop", "grown-orepa", "plain", "fixed") if n in models), None)
    overhead = None
    if loop_row is not None:
        overhead = {"row": loop_row, **loop_overhead(models[loop_row], spec.input_size, spec.num_classes, args.batch,
                                                     min(args.steps, 20), device, amp=amp, channels_last=channels_last)}
    growth = None
    grown_row = next((n for n in ("grown-batched", "grown-loop", "grown-orepa", "plain") if n in models), None)
    if grown_row is not None:
        growth = {"row": grown_row, **growth_seconds(models[grown_row], device)}
        epoch_s = next(r["epoch_s"] for r in rows if r["row"] == grown_row)
        growth["share_of_epoch"] = (growth["width_s"] + growth["depth_s"]) / epoch_s
    return {
        "kind": "bench-train", "model": args.model, "dataset": args.dataset, "input_size": list(spec.input_size),
        "batch": args.batch, "branches": args.branches if ":" in args.model else None,
        "steps_per_epoch": steps_per_epoch, "amp": amp, "channels_last": channels_last,
        "peak_tflops": peak, "peak_from": "--peak-tflops" if args.peak_tflops else ("table" if peak else None),
        "rows": rows, "runner_vs_bare": overhead, "growth": growth,
        "device": name, "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "versions": versions(), "git_commit": git_commit(),
    }


def table(record: dict) -> str:
    """The record as a Markdown table and two lines (runner overhead, growth share)."""
    peak = record["peak_tflops"] is not None
    head = ["row", "ms/step", "img/s", "epoch s", "GFLOP/step", "× plain time", "× plain FLOP"]
    head += ["compile s"] if any("compile_s" in r for r in record["rows"]) else []
    head += ["of peak"] if peak else []
    lines = [f"Training {record['model']} on {record['dataset']}-shaped batches of {record['batch']} on "
             f"{record['device']} ({'bf16' if record['amp'] else 'fp32'}); epoch = {record['steps_per_epoch']} steps", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in record["rows"]:
        cells = [r["row"], f"{r['step_ms']:.1f}", f"{r['images_per_s']:.0f}", f"{r['epoch_s']:.1f}",
                 f"{r['train_gflop']:.2f}", _ratio(r.get("time_vs_plain")), _ratio(r.get("flop_vs_plain"))]
        cells += [f"{r['compile_s']:.1f}" if "compile_s" in r else ""] if "compile s" in head else []
        cells += [f"{100 * r['peak_fraction']:.1f}%"] if peak else []
        lines.append("| " + " | ".join(cells) + " |")
    o, gr = record["runner_vs_bare"], record["growth"]
    if o:
        lines += ["", f"runner vs bare loop ({o['row']}, {o['steps']} steps): {o['runner_s']:.3f} s vs "
                      f"{o['bare_s']:.3f} s = {o['runner_over_bare']:.3f}×"]
    if gr:
        lines += [f"growth machinery ({gr['row']}): width {gr['width_s']:.3f} s + depth {gr['depth_s']:.3f} s = "
                  f"{100 * gr['share_of_epoch']:.2f}% of an epoch"]
    return "\n".join(lines) + "\n"


def _ratio(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def main(argv: list[str]) -> int:
    from adagrow.records.store import append_record

    args = parse_args(argv)
    record = bench_train(args)
    print(table(record))
    if args.output:
        append_record(Path(args.output), record)
        print(f"record -> {args.output}")
    else:
        print(json.dumps({k: v for k, v in record.items() if k != "versions"}, indent=1))
    return 0
