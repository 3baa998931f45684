"""The ``adagrow`` command: one function per sub-command, dispatched by :func:`main`.

``adagrow --help`` lists the commands (``COMMANDS``, one line each); ``adagrow <command> --help`` is
that command's argparse help.  Options of a method's own config (e.g. AdaGrow's ``--width-ratio``)
are generated from its frozen dataclass, so a new knob is one field, not a parser edit.  Errors the
user can fix (:class:`AdaGrowError`) print one line and exit with status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import typing
from pathlib import Path

from adagrow.errors import AdaGrowError


# ---- generic: dataclass fields <-> command-line options -----------------------------------------
def _parse_value(text: str, annotation) -> object:
    """Parse a command-line string for a field annotated ``annotation`` (str form allowed)."""
    ann = str(annotation)
    if text.lower() in ("none", "null") and "None" in ann:
        return None
    if ann.startswith("bool") or ann == "<class 'bool'>":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise AdaGrowError(f"expected true/false, got {text!r}")
    for kind, conv in (("int", int), ("float", float)):
        if ann.startswith(kind) or ann == f"<class '{kind}'>":
            try:
                value = conv(text)
            except ValueError:
                raise AdaGrowError(f"expected a number, got {text!r}") from None
            if not math.isfinite(value):
                raise AdaGrowError(f"expected a finite number, got {text!r}")
            return value
    if "tuple" in ann:
        return tuple(_parse_value(t, ann.split("[", 1)[1].split(",")[0].strip(" ]")) for t in text.split(","))
    return text


def add_dataclass_options(parser: argparse.ArgumentParser, cls, skip: set[str] = frozenset(), title: str = "") -> None:
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls) if cls else {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        group.add_argument("--" + f.name.replace("_", "-"), dest=f"mc_{f.name}", default=None, metavar="V",
                           help=f"(default: {default!r}; type {hints.get(f.name, f.type)})")


def dataclass_from_args(cls, args: argparse.Namespace, extra: dict | None = None):
    hints = typing.get_type_hints(cls)
    kwargs = dict(extra or {})
    for f in dataclasses.fields(cls):
        raw = getattr(args, f"mc_{f.name}", None)
        if raw is not None and not raw.strip():
            raise AdaGrowError(f"--{f.name.replace('_', '-')} was given an empty value; leave the option out for its default")
        if raw is not None:
            try:
                kwargs[f.name] = _parse_value(raw, hints.get(f.name, f.type))
            except AdaGrowError as exc:
                raise AdaGrowError(f"--{f.name.replace('_', '-')}: {exc}") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise AdaGrowError(f"invalid {cls.__name__}: {exc}") from None


# ---- the sub-commands -------------------------------------------------------------------------
def _common_run_options(p: argparse.ArgumentParser) -> None:
    from adagrow.config import PROFILES, RECIPES

    p.add_argument("--data-dir", help="dataset root (default: $ADAGROW_DATA, else ./data)")
    p.add_argument("--no-download", action="store_true", help="never try to download a missing dataset")
    p.add_argument("--download", action="store_true", help="download a missing dataset if online")
    p.add_argument("--output", default="runs", help="where result records and runs go (default: runs/, ignored by git; "
                   "--output results adds to the committed reference set)")
    p.add_argument("--profile", default="full", choices=PROFILES.names(), help="smoke: about a minute on a CPU")
    p.add_argument("--recipe", choices=RECIPES.names(), help="training recipe (default: the method's)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--min-lr", type=float, help="where the cosine of the learning rate ends (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--train-subset", type=int)
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model for training (again after each growth)")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--wandb", default="off", choices=["off", "offline", "online"],
                   help="log to Weights & Biases (offline: <output>/wandb/, for a later `wandb sync`; docs/wandb.md)")
    p.add_argument("--wandb-artifacts", action="store_true", help="with --wandb: also log the deploy model as an artifact")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.add_argument("--suite", default="adhoc", help="name of the results file (<output>/<suite>.jsonl)")


def build_run_config(args: argparse.Namespace, method_config) -> RunConfig:  # noqa: F821
    from adagrow.config import RunConfig, resolve_recipe

    model = args.model or getattr(args, "family", None)
    recipe = resolve_recipe(args.method, model, args.recipe, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
                            method_config=method_config)
    return RunConfig(
        dataset=args.dataset, method=args.method, model=model, recipe=recipe,
        method_config=method_config, seed=args.seed, profile=args.profile, epochs=args.epochs,
        train_subset=args.train_subset, data_dir=args.data_dir, download=args.download and not args.no_download,
        output_dir=args.output, suite=args.suite, device=args.device, amp=not args.no_amp, compile=args.compile,
        deterministic=args.deterministic, threads=args.threads, wandb=args.wandb, wandb_artifacts=args.wandb_artifacts,
        resume=args.resume, tag=args.tag, keep_checkpoint=args.keep_checkpoint, branch_compute=args.branch_compute,
    )


def cmd_train(argv: list[str]) -> int:
    from adagrow.data import DATASETS
    from adagrow.engine.runner import run
    from adagrow.methods import load_builtin_methods

    methods = load_builtin_methods()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--method", default="fixed")
    pre.add_argument("--family")
    pre.add_argument("--model")
    known, _ = pre.parse_known_args(argv)
    # The run's model picks the method's options (--model vit: Transformer AdaGrow) and is its family.
    if known.family and known.model and known.family != known.model:
        raise AdaGrowError(f"--model {known.model} and --family {known.family} disagree; give one of them")
    family = known.model or known.family
    config_cls, _ = methods.get(known.method).resolve(family)
    has_family = "family" in {f.name for f in dataclasses.fields(config_cls)}

    p = argparse.ArgumentParser(prog="adagrow train", description="train one method on one dataset")
    p.add_argument("--dataset", required=True, choices=DATASETS.names())
    p.add_argument("--method", default="fixed", choices=methods.names())
    p.add_argument("--model", help="fixed: reference model name (resnet18, vgg16, vit_small, ...)")
    _common_run_options(p)
    p.add_argument("--tag", help="a label of yours in the run's name (default: the model's name)")
    p.add_argument("--keep-checkpoint", action="store_true",
                   help="keep the resume checkpoint last.pt after the run has finished (default: only deploy.pt)")
    p.add_argument("--branch-compute", default="auto", choices=["auto", "loop", "batched"],
                   help="how re-parameterisable units compute their branches: one by one, or as one padded conv "
                   "(the same function); auto: the faster on this device, measured (default)")
    add_dataclass_options(p, config_cls, title=f"options of --method {known.method}")
    args = p.parse_args(argv)
    args.family = getattr(args, "mc_family", None)
    extra = {"family": family} if family and has_family else {}
    cfg = build_run_config(args, dataclass_from_args(config_cls, args, extra))
    run(cfg)
    return 0


def cmd_suite(argv: list[str]) -> int:
    from suites import run_suite
    from suites.executors import add_executor_options

    p = argparse.ArgumentParser(
        prog="adagrow suite", description="run every entry of a suite; entries with a record of the same "
        "config in <output>/<suite>.jsonl are skipped, interrupted ones continue from their checkpoint")
    p.add_argument("name", help="suite name: a dataset (mnist, cifar10, ...) or a thesis table (table3-2, ...)")
    p.add_argument("--list", action="store_true", help="only list the entries (and which are done)")
    p.add_argument("--only", help="run only entries whose name contains this text (several: comma-separated)")
    p.add_argument("--all", action="store_true", help="with --profile smoke: every entry, not the smoke selection")
    p.add_argument("--force", action="store_true", help="rerun entries that are done (a new record; old ones are kept)")
    p.add_argument("--status", action="store_true",
                   help="show each entry × seed as done / running / failed / pending (with the error of a failed one)")
    p.add_argument("--seeds", help="run every entry under each of these seeds, e.g. 0,1,2 (instead of --seed)")
    _common_run_options(p)
    add_executor_options(p)
    args = p.parse_args(argv)
    return run_suite(args)


def cmd_bench(argv: list[str]) -> int:
    if "--train" in argv:  # training throughput: its own options (adagrow bench --train --help)
        from adagrow.measure.train_bench import main as bench_train

        return bench_train([a for a in argv if a != "--train"])
    import torch

    from adagrow.data import DATASETS
    from adagrow.engine.fixed import FIXED_MODELS, build_reference
    from adagrow.engine.runner import resolve_device
    from adagrow.measure.latency import measure_latency, measure_throughput
    from adagrow.measure.profile import profile

    p = argparse.ArgumentParser(prog="adagrow bench", description="params, MACs, latency, throughput")
    p.add_argument("--dataset", default="cifar10", choices=DATASETS.names())
    p.add_argument("--model", default="resnet18", help=f"a fixed model ({', '.join(FIXED_MODELS)}) or "
                   "family:arch for a grown model, e.g. resnet:1-2-2-1")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--batch", type=int, default=256, help="batch for throughput")
    p.add_argument("--output", help="append the figures as a record to this JSONL file")
    p.add_argument("--train", action="store_true", help="training throughput instead (adagrow bench --train --help)")
    args = p.parse_args(argv)
    spec = DATASETS.get(args.dataset)
    if spec.kind != "vision":
        raise AdaGrowError("adagrow bench measures image models; text models are measured by `adagrow train`")
    device = resolve_device(args.device)
    if ":" in args.model:
        from adagrow import create_model, fuse

        family, arch = args.model.split(":", 1)
        model = fuse(create_model(family, arch, num_classes=spec.num_classes, in_chans=spec.input_size[0]))
    else:
        model = build_reference(args.model, spec.num_classes, spec.input_size)
    model = model.to(device).eval()
    x = torch.randn(1, *spec.input_size, device=device)
    out = {"model": args.model, "dataset": args.dataset, **profile(model, spec.input_size),
           "latency_ms": measure_latency(model, x, repeats=args.repeats, threads=args.threads),
           "throughput": measure_throughput(model, x, batch=args.batch, threads=args.threads)}
    print(json.dumps(out, indent=2))
    if args.output:
        from adagrow.records.env import git_commit, versions
        from adagrow.records.store import append_record

        append_record(Path(args.output), {**out, "kind": "bench", "versions": versions(), "git_commit": git_commit()})
    return 0


def cmd_datasets(argv: list[str]) -> int:
    from adagrow.data import dataset_status, resolve_data_dir

    p = argparse.ArgumentParser(prog="adagrow datasets", description="which datasets are present and verified")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    root = resolve_data_dir(args.data_dir)
    print(f"data directory: {root}")
    for row in dataset_status(root):
        print(f"  {row['name']:<13} {row['status']:<9} {row.get('detail', '')}")
        if row["status"] in ("missing", "corrupt") and row.get("howto"):
            print(f"  {'':<13} -> {row['howto']}")
    return 0


def cmd_quantize(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="adagrow quantize", description="quantize a trained model and evaluate it")
    p.add_argument("--checkpoint", required=True, type=Path, help="a deploy.pt written by `adagrow train`")
    p.add_argument("--precision", default="w4a16", choices=["fp16", "int8", "w4a16"])
    p.add_argument("--method", default="adagrow", choices=QUANT_METHODS)
    p.add_argument("--table", action="store_true",
                   help="every method at W4A16 and INT8 (and FP16 on CUDA): one record each and a Markdown table")
    p.add_argument("--data-dir")
    p.add_argument("--calib-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--output", default="results/quant.jsonl")
    args = p.parse_args(argv)
    from adagrow.data import resolve_data_dir
    from adagrow.engine.runner import resolve_device
    from adagrow.quant import quant_table
    from adagrow.records.env import device_name, git_commit, versions
    from adagrow.records.store import append_record, atomic_write_text

    if not args.checkpoint.exists():
        raise AdaGrowError(f"no checkpoint at {args.checkpoint}")
    device = resolve_device(args.device)
    precisions, methods = (args.precision,), (args.method,)
    if args.table:
        # FP16 is a GPU deployment format (CPU half-precision convolutions are emulated and very slow)
        precisions, methods = ("w4a16", "int8") + (("fp16",) if device.type == "cuda" else ()), QUANT_METHODS
    env = {"device": device_name(device), "versions": versions(), "git_commit": git_commit(),
           "checkpoint": str(args.checkpoint)}

    def save(rec: dict) -> None:  # each record as soon as it is measured
        append_record(Path(args.output), {**rec, **env})
        print(f"{rec['precision']:>6} {rec['quant_method']:<15} test {rec['accuracy']:.2f}%", flush=True)

    records = quant_table(args.checkpoint, resolve_data_dir(args.data_dir), precisions=precisions, methods=methods,
                          calib_size=args.calib_size, seed=args.seed, device=device, on_record=save)
    table = quant_markdown(records, env)
    print(table)
    if args.table:
        md = Path(args.output).with_suffix(".md")
        atomic_write_text(md, table)
        print(f"table -> {md}")
    return 0


QUANT_METHODS = ("rtn", "obs", "actorder", "adagrow", "adagrow-rerank")


def quant_markdown(records: list[dict], env: dict) -> str:
    """The records of one quantization command as a Markdown table (accuracy and mean layer error)."""
    first = records[0]
    lines = [f"Quantization of `{env['checkpoint']}` ({first.get('dataset')}, {first.get('tag') or first.get('model')}, "
             f"arch {first.get('arch')}); FP32 test accuracy {first.get('fp32_accuracy')}%; measured on "
             f"{env['device']}, commit {env['git_commit']}.", "",
             "| precision | method | test acc (%) | mean rel. layer output error | seconds |", "|---|---|---|---|---|"]
    for r in records:
        err = r.get("mean_rel_error")
        lines.append(f"| {r['precision']} | {r['quant_method']} | {r['accuracy']:.2f} | "
                     f"{'' if err is None else f'{err:.3e}'} | {r.get('seconds', 0):.1f} |")
    return "\n".join(lines) + "\n"


def cmd_meta(argv: list[str]) -> int:
    # M-NAS lives in baselines/ (a competitor, not the core); imported by name only when the command runs,
    # so importing adagrow never imports baselines (and a tree without baselines still has every other command)
    import importlib

    return importlib.import_module("baselines.mnas.cli").main(argv)


def cmd_report(argv: list[str]) -> int:
    from reports.generate import main as report_main

    return report_main(argv)


COMMANDS = {  # name -> (function, the one line `adagrow --help` shows)
    "train": (cmd_train, "train one method on one dataset (a fixed model, or AdaGrow growing one)"),
    "suite": (cmd_suite, "run every entry of a suite (a dataset's table or a thesis ablation); resumable"),
    "bench": (cmd_bench, "params, MACs, latency and throughput of a model"),
    "datasets": (cmd_datasets, "which datasets are present, verified or missing, and how to get them"),
    "quantize": (cmd_quantize, "quantize a trained model (FP16 / INT8 / W4A16) and evaluate it"),
    "report": (cmd_report, "rebuild the thesis' tables and plots from result records"),
    "meta": (cmd_meta, "meta-learning on few-shot tasks: M-NAS (task-aware architectures) or MAML; resumable"),
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("adagrow-bench")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: adagrow <command> [options]     (adagrow <command> --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "options:", "  -h, --help  show this help", "  --version   show the version", "",
              "example:  adagrow suite mnist --profile smoke --data-dir ../shared/data"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not sys.stdout.isatty() and hasattr(sys.stdout, "reconfigure"):
        # a log file would otherwise receive progress in 8 KB blocks, minutes late
        sys.stdout.reconfigure(line_buffering=True)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(f"adagrow {version()}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"{usage()}\n\nadagrow: error: unknown command {argv[0]!r} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]][0](argv[1:])
    except AdaGrowError as exc:
        print(f"adagrow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = ("run the same command again: finished entries are skipped and this one continues from its "
                 "checkpoint") if argv[0] == "suite" else "re-run with --resume"
        print(f"adagrow: interrupted; the last checkpoint is kept ({again})", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
