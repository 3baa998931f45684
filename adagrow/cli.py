"""The ``adagrow`` command: one function per sub-command, dispatched by :func:`main`.

``adagrow --help`` (or ``adagrow help``) lists the commands, one line each; ``adagrow <command> --help``
(or ``adagrow help <command>``) is that command's argparse help.  The core's commands are ``COMMANDS``;
commands of other packages (``adagrow meta`` from ``baselines/``) come from the ``adagrow.commands``
entry-point group (:mod:`adagrow.plugins`), so the core never names them.  Options of a method's own
config (e.g. AdaGrow's ``--width-ratio``) and the common run options take their descriptions, choices
and defaults from the config dataclasses (:mod:`adagrow.cli_options`), so a new knob is one documented
field, not a parser edit.  Errors the user can fix (:class:`AdaGrowError`) print one line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from adagrow.cli_options import add_dataclass_options, add_run_options, dataclass_from_args
from adagrow.errors import AdaGrowError


def _refuse_bad_numbers(*, at_least_1: dict[str, float | None]) -> None:
    """One line naming every option below 1 (None: not given), before any work."""
    problems = [f"{name} must be at least 1 (got {v})" for name, v in at_least_1.items() if v is not None and v < 1]
    if problems:
        raise AdaGrowError("; ".join(problems))


# ---- the sub-commands -------------------------------------------------------------------------
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
        deterministic=args.deterministic, threads=args.threads, latency_threads=args.latency_threads,
        wandb=args.wandb, wandb_artifacts=args.wandb_artifacts, resume=args.resume,
        tag=args.tag, keep_checkpoint=args.keep_checkpoint, branch_compute=args.branch_compute,
        tokenizer=getattr(args, "tokenizer", None),
    )


def cmd_train(argv: list[str]) -> int:
    from adagrow.cli_options import field_docs, field_help
    from adagrow.config import RunConfig
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
    p.add_argument("--dataset", required=True, choices=DATASETS.names(),
                   help="what to train on (adagrow datasets shows which are present)")
    p.add_argument("--method", default="fixed", choices=methods.names(),
                   help="fixed: a fixed-size reference; adagrow: grow from a seed; the rest: the baselines "
                   "(default: fixed).  A method's own options are listed below with --method M --help")
    p.add_argument("--model", help="fixed: reference model name (resnet18, vgg16, vit_small, ...), or vit / bert with --arch "
                   "(the growable Transformer at that fixed size); growing methods: "
                   "the family (vgg, resnet, bottleneck, mobilenetv3, vit, bert)")
    add_run_options(p)
    p.add_argument("--tag", metavar="NAME", help=field_help(RunConfig, "tag", describe="the model's name"))
    p.add_argument("--keep-checkpoint", action="store_true", help=field_docs(RunConfig)["keep_checkpoint"])
    p.add_argument("--branch-compute", default="auto", choices=["auto", "loop", "batched"],
                   help=field_help(RunConfig, "branch_compute"))
    p.add_argument("--force", action="store_true", help="run again even if this exact run has finished (its earlier "
                   "files are set aside, not deleted; a new record is added)")
    add_dataclass_options(p, config_cls, title=f"options of --method {known.method}")
    args = p.parse_args(argv)
    args.family = getattr(args, "mc_family", None)
    extra = {"family": family} if family and has_family else {}
    cfg = build_run_config(args, dataclass_from_args(config_cls, args, extra))
    run(cfg, force=args.force)
    return 0


def cmd_bench(argv: list[str]) -> int:
    if "--train" in argv:  # training throughput: its own options (adagrow bench --train --help)
        from adagrow.measure.train_bench import main as bench_train

        return bench_train([a for a in argv if a != "--train"])
    import torch

    from adagrow.data import DATASETS
    from adagrow.engine.fixed import FIXED_MODELS, build_reference
    from adagrow.engine.progress import announce
    from adagrow.engine.runner import resolve_device
    from adagrow.measure.latency import measure_latency, measure_throughput
    from adagrow.measure.profile import profile

    p = argparse.ArgumentParser(prog="adagrow bench", description="params, MACs, batch-1 latency and throughput of "
                                "one model, randomly initialised (the figures do not depend on training)")
    p.add_argument("--dataset", default="cifar10", choices=DATASETS.names(),
                   help="fixes the input size and the classes (default: cifar10)")
    p.add_argument("--model", default="resnet18", help=f"a fixed model ({', '.join(FIXED_MODELS)}) or "
                   "family:arch for a grown model, e.g. resnet:1-2-2-1 (default: resnet18)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=200, metavar="N", help="most timed batch-1 forwards (default: 200)")
    p.add_argument("--batch", type=int, default=256, metavar="N", help="batch for throughput (default: 256)")
    p.add_argument("--output", metavar="FILE", help="also append the figures, as one JSON record, to this JSONL file")
    p.add_argument("--train", action="store_true", help="training throughput instead (adagrow bench --train --help)")
    args = p.parse_args(argv)
    _refuse_bad_numbers(at_least_1={"--batch": args.batch, "--threads": args.threads, "--repeats": args.repeats})
    if args.output is not None:
        from adagrow.records.store import check_writable

        check_writable(Path(args.output), "--output")
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
    with announce(f"counting params and MACs of {args.model} at {'x'.join(map(str, spec.input_size))}", slow=0):
        sizes = profile(model, spec.input_size)
    with announce(f"timing up to {args.repeats} batch-1 forwards on {device}", slow=0):
        latency = measure_latency(model, x, repeats=args.repeats, threads=args.threads)
    with announce(f"timing throughput at batch {args.batch}", slow=0):
        throughput = measure_throughput(model, x, batch=args.batch, threads=args.threads)
    out = {"model": args.model, "dataset": args.dataset, **sizes, "latency_ms": latency, "throughput": throughput}
    print(bench_table(out))
    if args.output:
        from adagrow.records.env import git_commit, versions
        from adagrow.records.store import append_record

        append_record(Path(args.output), {**out, "kind": "bench", "versions": versions(), "git_commit": git_commit()})
        print(f"record -> {args.output}")
    return 0


def bench_table(out: dict) -> str:
    """The figures of ``adagrow bench`` as a small table a reader can take in at a glance."""
    lat, thr = out["latency_ms"], out["throughput"]
    rows = [("model", f"{out['model']} on {out['dataset']} input"),
            ("params", f"{out['params']:,} ({out['params'] / 1e6:.2f}M)"),
            ("MACs", f"{out['macs']:,} ({out['macs'] / 1e6:.1f}M, batch 1)"),
            ("latency", f"{lat['median_ms']:.3f} ms median, p10-p90 {lat['p10_ms']:.3f}-{lat['p90_ms']:.3f} ms "
                        f"({lat['repeats']} batch-1 forwards)"),
            ("throughput", f"{thr['items_per_s']:,.0f} images/s at batch {thr['batch']}"),
            ("device", f"{lat['device']}" + (f", {lat['threads']} threads" if lat.get("threads") else ""))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def cmd_datasets(argv: list[str]) -> int:
    from adagrow.data import DATASETS, dataset_status, download_dataset, resolve_data_dir
    from adagrow.errors import DatasetError

    p = argparse.ArgumentParser(prog="adagrow datasets", description="which datasets are present and verified, "
                                "where each comes from; --download fetches what is missing")
    p.add_argument("--data-dir", metavar="DIR", help="dataset root (default: $ADAGROW_DATA, else ./data)")
    p.add_argument("--download", nargs="?", const="all", metavar="NAME|all",
                   help="fetch a missing dataset (or all of them) through torchvision / Hugging Face datasets")
    args = p.parse_args(argv)
    root = resolve_data_dir(args.data_dir)
    print(f"data directory: {root}")
    if args.download is not None:
        names = DATASETS.names() if args.download == "all" else [DATASETS.get(args.download).name]
        failed = 0
        for name in names:  # one line each, whatever happens to the others
            try:
                print(f"  {name:<13} ok        {download_dataset(name, root)}", flush=True)
            except DatasetError as exc:
                failed += 1
                print(f"  {name:<13} failed    {exc}", flush=True)
        return 1 if failed else 0
    for row in dataset_status(root):
        print(f"  {row['name']:<13} {row['status']:<9} {row.get('detail', '')}")
        if row.get("source"):
            src = row["source"]
            print(f"  {'':<13} source: {src['library']} {src['id']} @ {src['revision']}")
        if row["status"] in ("missing", "corrupt") and row.get("howto"):
            print(f"  {'':<13} -> {row['howto']}")
    return 0


def cmd_quantize(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="adagrow quantize", description="quantize a trained model and evaluate it")
    p.add_argument("--checkpoint", required=True, type=Path, help="a deploy.pt written by `adagrow train`")
    p.add_argument("--precision", default="w4a16", choices=["fp16", "int8", "w4a16"],
                   help="the format to quantize to (default: w4a16: 4-bit weights, 16-bit activations)")
    p.add_argument("--method", default="adagrow", choices=QUANT_METHODS,
                   help="rounding (rtn), GPTQ-style OBS compensation (obs; actorder: columns in activation order), or "
                   "the thesis' compensation "
                   "(adagrow) and rearrangement (adagrow-rerank) (default: adagrow)")
    p.add_argument("--table", action="store_true",
                   help="every method at W4A16 and INT8 (and FP16 on CUDA): one record each and a Markdown table")
    p.add_argument("--data-dir", metavar="DIR", help="dataset root (default: $ADAGROW_DATA, else ./data)")
    p.add_argument("--calib-size", type=int, default=256, metavar="N",
                   help="training images the quantizer calibrates on (default: 256)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="picks the calibration images (default: 0)")
    p.add_argument("--act-calib", default="max", choices=["max", "histogram"],
                   help="INT8: the activations' range: the largest |x| of the calibration images, or the least-error "
                   "clipping of torch's HistogramObserver (default: max; docs/methods/quantization.md)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--output", default="results/quant.jsonl", metavar="FILE",
                   help="records are appended here; --table also writes FILE.md (default: results/quant.jsonl)")
    args = p.parse_args(argv)
    from adagrow.data import resolve_data_dir
    from adagrow.engine.runner import resolve_device
    from adagrow.quant import quant_table
    from adagrow.records.env import device_name, git_commit, versions
    from adagrow.records.store import append_record, atomic_write_text, check_writable

    _refuse_bad_numbers(at_least_1={"--calib-size": args.calib_size})
    if not 0 <= args.seed < 2**32:
        raise AdaGrowError(f"--seed must be in [0, 2**32) (got {args.seed})")
    if not args.checkpoint.exists():
        raise AdaGrowError(f"no checkpoint at {args.checkpoint}")
    check_writable(Path(args.output), "--output")
    if args.table:
        check_writable(Path(args.output).with_suffix(".md"), "--output (its table)")
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
                          calib_size=args.calib_size, seed=args.seed, device=device, on_record=save,
                          act_calib=args.act_calib)
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


COMMANDS = {  # the core's commands: name -> (function, the one line `adagrow --help` shows)
    "train": (cmd_train, "train one method on one dataset (a fixed model, or AdaGrow growing one)"),
    "bench": (cmd_bench, "params, MACs, latency and throughput of a model"),
    "datasets": (cmd_datasets, "which datasets are present, verified or missing, and how to get them"),
    "quantize": (cmd_quantize, "quantize a trained model (FP16 / INT8 / W4A16) and evaluate it"),
}


def commands() -> dict:
    """The core's commands, then those the ``adagrow.commands`` entry points add (e.g. ``meta`` from
    ``baselines/``), loaded only when asked for.  A plug-in that fails to load is listed with its error."""
    from adagrow.plugins import Command, plugins

    found = dict(COMMANDS)
    for plugin in plugins("adagrow.commands"):
        if plugin.name in found:
            continue
        try:
            command = plugin.load()
        except Exception as exc:  # noqa: BLE001 - one broken plug-in must not take the others down
            def broken(argv, exc=exc, name=plugin.name):
                raise AdaGrowError(f"the command {name!r} could not be loaded: {exc}")

            command = Command(broken, f"(unavailable: {exc})")
        found[plugin.name] = (command.run, command.summary)
    return dict(sorted(found.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER)))


# The order `adagrow --help` lists commands in (names only; plug-in commands not named here come last).
ORDER = ("train", "suite", "bench", "datasets", "quantize", "report", "meta")


def version() -> str:
    """``0.1.0 (commit 1a2b3c4d, torch 2.6.0+cpu, Python 3.11.7)``: what a bug report needs."""
    import platform

    import torch

    from adagrow import __version__
    from adagrow.records.env import git_commit

    commit = git_commit()
    where = f"commit {commit[:12] if not commit.endswith('-dirty') else commit[:8] + '-dirty'}" if commit else \
        "not a git checkout"
    return f"{__version__} ({where}, torch {torch.__version__}, Python {platform.python_version()})"


def usage(found: dict) -> str:
    width = max(map(len, found))
    lines = ["usage: adagrow <command> [options]     (adagrow <command> --help, or adagrow help <command>)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in found.items()]
    lines += [f"  {'help':<{width}}  this help, or a command's (adagrow help train)", "",
              "options:", "  -h, --help  show this help", "  --version   show the version, commit and torch version", "",
              "example:  adagrow suite mnist --profile smoke --data-dir ../shared/data"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not sys.stdout.isatty() and hasattr(sys.stdout, "reconfigure"):
        # a log file would otherwise receive progress in 8 KB blocks, minutes late
        sys.stdout.reconfigure(line_buffering=True)
    found = commands()
    if not argv:  # as argparse does when a required command is missing: usage on stderr, status 2
        print(f"{usage(found)}\n\nadagrow: error: a command is required", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help") or argv == ["help"]:
        print(usage(found))
        return 0
    if argv[0] == "help":  # adagrow help train [--method adagrow] == adagrow train [--method adagrow] --help
        argv = [*argv[1:], "--help"]
    if argv[0] == "--version":
        print(f"adagrow {version()}")
        return 0
    if argv[0] not in found:
        print(f"{usage(found)}\n\nadagrow: error: unknown command {argv[0]!r} (choose from {', '.join(found)})",
              file=sys.stderr)
        return 2
    try:
        return found[argv[0]][0](argv[1:])
    except AdaGrowError as exc:
        print(f"adagrow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"adagrow: {interrupted_message(argv[0], exc)}", file=sys.stderr)
        return 130


def interrupted_message(command: str, exc: KeyboardInterrupt) -> str:
    """What an interrupt (Ctrl-C, SIGTERM) leaves: the runner sets ``exc.checkpoint`` to the checkpoint
    (None before the first one); a checkpoint is only promised where one exists."""
    ckpt = getattr(exc, "checkpoint", "unknown")
    if command == "suite":
        then = ("this one continues from its checkpoint" if ckpt is not None and ckpt != "unknown"
                else "this one starts again (it had no checkpoint yet)" if ckpt is None
                else "this one continues from its last checkpoint, if it wrote one")
        return f"interrupted; run the same command again: finished entries are skipped and {then}"
    if ckpt is None:
        return "interrupted before the first checkpoint: there is nothing to resume; run the command again to start afresh"
    if ckpt == "unknown":
        return "interrupted; re-run with --resume to continue from the last checkpoint, if one was written"
    return f"interrupted; the last checkpoint is kept ({ckpt}): re-run with --resume to continue"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
