"""``adagrow suite <name> --quantize``: Table 4-1's quantization rows on a suite's own runs, every seed, resumable.

    adagrow suite mnist --profile reference --seeds 0,1,2 --threads 2 --output results --quantize

quantizes the ``mnist`` suite's converged AdaGrow-VGG and ResNet-18 (``QUANT_BASES``; ``--only`` names others) of
each seed at W4A16 and INT8 (and FP16 on CUDA) with rounding, OBS and the thesis' compensation + rearrangement
(``--quant-methods``), and appends one record per (base run, precision, method) to ``<output>/quant-<suite>.jsonl``.

Why a mode of ``adagrow suite`` and not an option of ``adagrow quantize``: a base is "the run the suite wrote", and
that run's name is a hash of its whole resolved config, which includes options the suite was given (``--threads``,
``--epochs``, ``--recipe``, ``--train-subset`` ...).  The one way to find it is to rebuild the config exactly as the
suite did: the same parser (``adagrow suite``'s options, typed the same way), ``suites.run_config_for`` (through
``suites._jobs``, so derived entries resolve as well) and the suite's rule for a finished run, ``suites._done``.  An
option of the core's ``adagrow quantize`` would have to import ``suites`` (the core imports nothing outside it) and
repeat every run option; ``adagrow quantize --checkpoint`` stays the command for one deploy.pt.

Resuming: a (base, precision, method) is done when the records hold it for *this* base record (``base_record``, a
hash of the suite's ok record of that run), so a base rerun with ``--force`` is quantized again while records of the
old run stay in the file.  A base not run yet, or whose deploy.pt is gone (records are committed, ``runs/`` is not),
is one line naming the command that (re)runs it; the other bases are quantized and the command then ends with status 2.
Calibration: ``--calib-size`` training images, chosen by the base's own seed.  FP16 is measured on CUDA only (CPU half
convolutions are emulated); on CPU its rows stay "not run", and the report says why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

from adagrow.errors import AdaGrowError

# The runs a suite's Table 4-1 quantizes when --only names none: issue 19's converged AdaGrow-VGG and ResNet-18
# (the same bases BAMC's reference rows quantize, suites/second_thesis.py).
QUANT_BASES: dict[str, tuple[str, ...]] = {"mnist": ("adagrow-vgg-3b", "fixed-resnet18-thesis")}
# Table 4-1's methods: "direct" (rounding), "OBS" (GPTQ) and the thesis' "proposed" (compensation + rearrangement)
TABLE_METHODS = ("rtn", "obs", "adagrow")
INTEGER = ("w4a16", "int8")


def add_quantize_options(p: argparse.ArgumentParser) -> None:
    from adagrow.quant import METHODS

    g = p.add_argument_group("quantization (Table 4-1) of the suite's finished runs")
    g.add_argument("--quantize", action="store_true",
                   help="quantize each selected entry's run of every seed instead of training (records in "
                   "<output>/quant-<suite>.jsonl; resumable); the other options must be the ones the suite ran with")
    g.add_argument("--quant-methods", default=",".join(TABLE_METHODS), metavar="M,M",
                   help=f"with --quantize: comma-separated, of {', '.join(METHODS)} (default: {','.join(TABLE_METHODS)})")
    g.add_argument("--calib-size", type=int, default=256, metavar="N",
                   help="with --quantize: training images the quantizer calibrates on (default: 256)")
    g.add_argument("--act-calib", default="max", choices=["max", "histogram"],
                   help="with --quantize: INT8's activation range (default: max; docs/methods/quantization.md)")


def _methods(text: str) -> tuple[str, ...]:
    from adagrow.quant import METHODS

    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise AdaGrowError(f"--quant-methods takes a comma-separated list of {', '.join(METHODS)} (got {text!r})")
    return methods


def _entries(args: argparse.Namespace, suite: str) -> list:
    from suites import _load, _select

    if args.only:
        return _select(args)
    names = QUANT_BASES.get(suite)
    if names is None:
        raise AdaGrowError(f"suite {suite!r} has no default runs to quantize; name them with --only")
    return [e for e in _load().get(args.name) if e.name in names]


def base_fingerprint(record: dict[str, Any]) -> str:
    """12 hex digits naming one ok record of a base run (a rerun of the same config gets another)."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]


def rerun_command(args: argparse.Namespace, suite: str, entry: str, seed: int, force: bool) -> str:
    """The ``adagrow suite`` command that (re)runs one base, with every option that enters its run name."""
    parts = ["adagrow", "suite", args.name, "--only", entry, "--seeds", str(seed), "--profile", args.profile]
    if args.suite != "adhoc":
        parts += ["--suite", suite]
    for option in ("recipe", "epochs", "batch_size", "lr", "min_lr", "train_subset", "threads", "tokenizer"):
        if getattr(args, option, None) is not None:
            parts += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    if getattr(args, "latency_threads", 1) != 1:
        parts += ["--latency-threads", str(args.latency_threads)]
    if args.device != "auto":
        parts += ["--device", args.device]
    parts += [f"--{flag.replace('_', '-')}" for flag in ("deterministic", "compile", "no_amp") if getattr(args, flag)]
    parts += ["--output", str(args.output)] + (["--force"] if force else [])
    return shlex.join(parts)


def _done_pairs(records: list[dict], run_name: str, fingerprint: str, calib_size: int, seed: int,
                act_calib: str) -> set:
    # an INT8 record is done only under the same activation calibration (records without one used the maximum), and
    # a calibrated record only on the calibration data of today's code (adagrow.quant.run.CALIB_DATA)
    from adagrow.quant.run import CALIB_DATA, act_calib_of, calib_data

    return {(r.get("precision"), r.get("quant_method")) for r in records
            if r.get("kind") == "quant" and r.get("base_run") == run_name and r.get("base_record") == fingerprint
            and r.get("calib_size") == calib_size and r.get("seed") == seed
            and act_calib_of(r) in (None, act_calib)
            and calib_data(r) in (None, CALIB_DATA)}


def quantize_suite(args: argparse.Namespace) -> int:
    """Quantize the selected entries' runs of every seed; 0 when each is quantized (now or before)."""
    import torch

    from adagrow.data import resolve_data_dir
    from adagrow.engine.runner import resolve_device
    from adagrow.quant import quant_table
    from adagrow.records.env import device_name, git_commit, versions
    from adagrow.records.store import append_record, check_writable, read_records
    from suites import _done, _jobs
    from suites.executors import parse_seeds

    if args.executor != "local":
        raise AdaGrowError("--quantize runs here, one base after another: leave out --executor")
    if args.calib_size < 1:
        raise AdaGrowError(f"--calib-size must be at least 1 (got {args.calib_size})")
    methods = _methods(args.quant_methods)
    suite = args.name if args.suite == "adhoc" else args.suite
    seeds = parse_seeds(args.seeds) if args.seeds else (args.seed,)
    jobs, waiting = _jobs(_entries(args, suite), seeds, args, suite)
    out = Path(args.output) / f"quant-{suite}.jsonl"
    check_writable(out, "--output")
    runs = read_records(Path(args.output) / f"{suite}.jsonl") if (Path(args.output) / f"{suite}.jsonl").exists() else []
    quants = read_records(out) if out.exists() else []
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    # FP16 is a GPU deployment format (CPU half-precision convolutions are emulated and very slow)
    precisions = INTEGER + (("fp16",) if device.type == "cuda" else ())
    wanted = [(p, m) for p in precisions for m in (methods if p in INTEGER else ("cast",))]
    env = {"device": device_name(device), "versions": versions(), "git_commit": git_commit()}
    problems = [f"{label}: {why}" for label, why in waiting.items()]
    for job in jobs:
        entry = job.cfg.tag
        record = _done(runs, job.cfg)
        if record is None:
            problems.append(f"{job.label}: not run yet (run it: {rerun_command(args, suite, entry, job.cfg.seed, False)})")
            continue
        fingerprint = base_fingerprint(record)
        done = _done_pairs(quants, job.cfg.run_name, fingerprint, args.calib_size, job.cfg.seed, args.act_calib)
        todo = [pair for pair in wanted if pair not in done]
        deploy = job.run_dir / "deploy.pt"
        if not todo and not args.force:
            print(f"{job.label}: done ({len(wanted)} records), skipped; --force quantizes it again", flush=True)
            continue
        if not deploy.is_file():
            problems.append(f"{job.label}: its deploy.pt is gone (records are committed, runs/ is not): rerun it with "
                            f"{rerun_command(args, suite, entry, job.cfg.seed, True)}  [{deploy}]")
            continue
        if args.list or args.status:
            print(f"{job.label}: {len(wanted) - len(todo)} of {len(wanted)} records, pending", flush=True)
            continue
        base = {"suite": suite, "entry": entry, "base_run": job.cfg.run_name, "base_seed": job.cfg.seed,
                "profile": job.cfg.profile, "base_record": fingerprint, "base_test_acc": record.get("test_acc"),
                "checkpoint": str(deploy), **env}

        def save(rec: dict, base=base, label=job.label) -> None:  # each record as soon as it is measured
            append_record(out, {**rec, **base})
            print(f"{label}: {rec['precision']:>6} {rec['quant_method']:<15} test {rec['accuracy']:.2f}% "
                  f"(FP32 {rec['fp32_accuracy']:.2f}%)", flush=True)

        print(f"{job.label}: quantizing {deploy} ({len(todo)} of {len(wanted)} to do)", flush=True)
        skip = None if args.force else (lambda p, m, todo=set(todo): (p, m) not in todo)
        quant_table(deploy, resolve_data_dir(args.data_dir), precisions=precisions, methods=methods,
                    calib_size=args.calib_size, seed=job.cfg.seed, device=device, on_record=save, skip=skip,
                    act_calib=args.act_calib)
    if device.type != "cuda" and not (args.list or args.status):
        print("FP16 not measured: it is quantized on CUDA only (CPU half-precision convolutions are emulated)")
    if args.list or args.status:
        for line in problems:
            print(line)
        return 0
    print(f"records in {out}")
    if problems:
        raise AdaGrowError("\n".join(problems))
    return 0
