"""The one prepared GPU check: ``nox -s gpu`` (or ``python -m adagrow.engine.gpu_check``).

GPU time comes in short loans (about 15 minutes), and none of it should go to writing scripts.  On
one CUDA device, within ``--budget-min`` (12) minutes, in this order:

(a) the headline row: AdaGrow ResNet with 4 blocks on the real CIFAR-10 for its full 100 epochs
    (the thesis reports 1,649 s of optimisation time on an RTX 3090);
(b) the fixed ResNet-18 under the same runner, for as many epochs as the remaining budget allows
    (estimated from a few timed training steps; its record says how many, its tag says why);
(c) batch-1 fp32 latency (CUDA events) of the thesis' grown CIFAR-10 architectures (Table 3-19),
    fused, and of the fixed references, as long as budget remains.

The check keeps its own time: each part runs under a deadline (the budget less a reserve for (c));
a training run that would overrun is interrupted at its last checkpoint like Ctrl-C (``status``
"stopped at budget" in the summary; the headline continues from there the next time, ``--resume``
being set for it).  Every record goes to ``<output>/gpu-check.jsonl`` (default ``results/``) with the
device named: the runner's records of (a) and (b), one ``kind: latency`` record per model, and one
``kind: gpu-check`` summary (parts, seconds, budget); a Markdown summary is printed for the README.

CIFAR-10 can travel as pieces of at most 60 MiB (``split -b 60m cifar-10-python.tar.gz
cifar-10-python.tar.gz.part-``): ``--pieces DIR`` reassembles ``cifar-10-python.tar.gz.part-*`` in
name order into the data directory and checks torchvision's md5 before any training.

``--tiny`` runs the same code on the CPU in well under a minute: a synthetic CIFAR-10 archive cut
into pieces and reassembled, a 2-epoch headline with one growth, one epoch of a small fixed model
(MobileNetV3-small: a ResNet-18 step takes seconds on two cores), two latencies
(``tests/test_gpu_check.py``; CI).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import shutil
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from adagrow.errors import AdaGrowError

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # torchvision's CIFAR10.tgz_md5
PIECE_MAX_BYTES = 60 * 2**20
# Table 3-19's grown AdaGrow architectures on CIFAR-10 and the fixed references it compares them with.
THESIS_GROWN = (("resnet", "1-2-2"), ("resnet", "1-2-2-1"), ("bottleneck", "2-2-2"), ("bottleneck", "2-2-2-2"),
                ("vgg", "1-2-2"), ("vgg", "1-1-2-2"), ("mobilenetv3", "2-3-3"), ("mobilenetv3", "2-2-3-2"))
FIXED_REFERENCES = ("resnet18", "resnet34", "resnet50", "resnet101", "vgg11", "vgg16", "mobilenetv3_small",
                    "mobilenetv3_large")
SUITE = "gpu-check"


@dataclass(frozen=True)
class Plan:
    """What the check runs.  :data:`FULL` is the GPU check; :data:`TINY` the same path on a CPU."""

    device: str = "cuda"
    budget_s: float = 12 * 60
    latency_reserve_s: float = 90.0  # kept free of training for part (c): 16 models at about 5 s each
    headline_epochs: int | None = None  # None: the adagrow recipe's 100
    fixed_model: str = "resnet18"
    fixed_recipe: str = "standard"  # SGD 0.1, cosine: the strong CIFAR recipe (the thesis' Adam recipe is weaker)
    fixed_max_epochs: int | None = None  # None: the recipe's
    train_subset: int | None = None
    test_subset: int | None = None
    batch_size: int | None = None  # None: the recipes' (128)
    grow_interval: int | None = None  # None: AdaGrow's (3)
    latency_repeats: int = 200  # per model in (c), and the runs' own deploy-model latency
    latency_budget_s: float = 2.0  # most seconds of timed forwards per model in (c)
    grown: tuple[tuple[str, str], ...] = THESIS_GROWN
    fixed: tuple[str, ...] = FIXED_REFERENCES
    compile: bool = False
    branch_compute: str = "auto"


FULL = Plan()
# The same path at a CPU's scale: a small fixed model (a ResNet-18 step takes seconds on two cores).
TINY = Plan(device="cpu", budget_s=300, latency_reserve_s=10, headline_epochs=2, fixed_model="mobilenetv3_small",
            fixed_max_epochs=1, train_subset=32, test_subset=20, batch_size=16, grow_interval=1, latency_repeats=3,
            latency_budget_s=0.2, grown=(("vgg", "1-1-1"),), fixed=("mobilenetv3_small",))


# ---- CIFAR-10 in pieces ---------------------------------------------------------------------------
def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_file(path: Path, out_dir: Path, piece_bytes: int = PIECE_MAX_BYTES) -> list[Path]:
    """Cut ``path`` into ``<name>.part-aa``, ``-ab``, ... of at most ``piece_bytes`` (as ``split -b``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pieces = []
    with open(path, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(piece_bytes), b"")):
            piece = out_dir / f"{path.name}.part-{chr(97 + i // 26)}{chr(97 + i % 26)}"
            piece.write_bytes(block)
            pieces.append(piece)
    return pieces


def assemble_pieces(pieces_dir: Path, dest: Path, md5: str = CIFAR10_MD5) -> Path:
    """Concatenate ``<dest name>.part-*`` from ``pieces_dir`` in name order into ``dest`` and check its
    md5; a missing, extra or damaged piece is one message and leaves nothing at ``dest``."""
    pieces = sorted(Path(pieces_dir).glob(f"{dest.name}.part-*"))
    if not pieces:
        raise AdaGrowError(f"--pieces {pieces_dir}: no {dest.name}.part-* files there "
                           f"(make them with: split -b 60m {dest.name} {dest.name}.part-)")
    if dest.is_file() and md5_of(dest) == md5:
        return dest  # already reassembled by an earlier run
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".assembling")
    with open(tmp, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    got = md5_of(tmp)
    if got != md5:
        tmp.unlink()
        raise AdaGrowError(f"the {len(pieces)} pieces in {pieces_dir} ({pieces[0].name} .. {pieces[-1].name}) "
                           f"reassemble to md5 {got}, not {md5}: a piece is missing, extra or damaged")
    tmp.replace(dest)
    return dest


# ---- the budget -----------------------------------------------------------------------------------
def within(deadline: float, fn: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", fn())``, or ``("stopped at budget", None)`` if ``fn`` was still running at ``deadline``
    (``time.perf_counter()`` seconds): it is interrupted like Ctrl-C, so a training run keeps its last
    checkpoint."""
    fired = threading.Event()

    def interrupt():
        fired.set()
        # a real SIGINT (not _thread.interrupt_main): it also wakes a main thread blocked in a system call
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    # A process started in the background by a non-interactive shell (`cmd &` in a script) inherits SIGINT as
    # ignored, and the deadline would never stop anything: take Ctrl-C's default handler for the part's duration.
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(max(0.0, deadline - time.perf_counter()), interrupt)
    timer.start()
    try:
        try:
            result = fn()
        finally:
            timer.cancel()
        if fired.is_set():  # it fired just as fn returned: take the pending interrupt here
            time.sleep(0.1)
    except KeyboardInterrupt:
        if not fired.is_set():
            raise
        return "stopped at budget", None
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    return "ok", result


# ---- the parts ------------------------------------------------------------------------------------
def _run_config(plan: Plan, method: str, model: str, data_dir: Path, output: Path, **kw):
    from adagrow.config import RunConfig, resolve_recipe

    recipe = resolve_recipe(method, model, kw.pop("recipe", None), batch_size=plan.batch_size,
                            method_config=kw.get("method_config"))
    return RunConfig(dataset="cifar10", method=method, model=model, recipe=recipe, data_dir=str(data_dir),
                     output_dir=str(output), suite=SUITE, device=plan.device, compile=plan.compile,
                     branch_compute=plan.branch_compute, train_subset=plan.train_subset, test_subset=plan.test_subset,
                     latency_repeats=plan.latency_repeats, **kw)


def headline_config(plan: Plan, data_dir: Path, output: Path):
    from adagrow.grow.method import AdaGrowConfig

    options = {"family": "resnet", "blocks": 4}
    if plan.grow_interval is not None:
        options["grow_interval"] = plan.grow_interval
    return _run_config(plan, "adagrow", "resnet", data_dir, output, method_config=AdaGrowConfig(**options),
                       epochs=plan.headline_epochs, tag="adagrow-resnet-4b", resume=True)


def fixed_epochs(plan: Plan, seconds: float, device: torch.device, data_dir: Path, output: Path, log) -> dict:
    """How many epochs of the fixed model (ResNet-18) fit in ``seconds``: a few timed training steps at
    the recipe's batch, times the steps of an epoch, plus a quarter for evaluation, and on a GPU 30 s
    for the run's own costs (loading, testing, measuring)."""
    from adagrow.data import DATASETS
    from adagrow.engine.fixed import build_reference
    from adagrow.measure.train_bench import VAL_FRACTION, Step, time_ms

    cfg = _run_config(plan, "fixed", plan.fixed_model, data_dir, output, recipe=plan.fixed_recipe).resolved()
    spec = DATASETS.get("cifar10")
    batch = cfg.recipe.batch_size
    cuda = device.type == "cuda"
    model = build_reference(plan.fixed_model, spec.num_classes, spec.input_size).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    x, y = torch.randn(batch, *spec.input_size, device=device), torch.randint(0, 10, (batch,), device=device)
    step_s = statistics.median(time_ms(Step(model, x, y, amp=cuda and cfg.amp, channels_last=cuda), device,
                                       steps=5 if cuda else 2, warmup=3 if cuda else 1)) / 1e3
    images = cfg.train_subset or round(spec.train_size * (1 - VAL_FRACTION))
    epoch_s = 1.25 * step_s * math.ceil(images / batch)
    limit = cfg.total_epochs if plan.fixed_max_epochs is None else plan.fixed_max_epochs
    epochs = max(0, min(limit, int((seconds - 30.0 * cuda) / epoch_s)))
    log(f"fixed {plan.fixed_model}: {step_s * 1e3:.1f} ms per step of {batch} -> about {epoch_s:.1f} s per epoch; "
        f"{epochs} epoch(s) fit in {seconds:.0f} s")
    return {"epochs": epochs, "estimated_epoch_s": epoch_s, "step_ms": step_s * 1e3}


def latencies(plan: Plan, device: torch.device, deadline: float, output: Path, env: dict, log) -> list[dict]:
    """Part (c): one ``kind: latency`` record per model, until ``deadline``."""
    from adagrow.api import create_model, fuse
    from adagrow.data import DATASETS
    from adagrow.engine.fixed import build_reference
    from adagrow.measure.latency import measure_latency
    from adagrow.measure.profile import profile
    from adagrow.records.store import append_record

    spec = DATASETS.get("cifar10")
    models: list[tuple[str, Callable]] = [
        (f"adagrow-{family}:{arch}", lambda f=family, a=arch: fuse(create_model(f, a, num_classes=spec.num_classes)))
        for family, arch in plan.grown]
    models += [(name, lambda n=name: build_reference(n, spec.num_classes, spec.input_size)) for name in plan.fixed]
    records = []
    for name, build in models:
        if time.perf_counter() >= deadline:
            log(f"  latency: budget spent, {name} and the rest not measured")
            break
        model = build().to(device).eval()
        x = torch.randn(1, *spec.input_size, device=device)
        rec = {"kind": "latency", "suite": SUITE, "model": name, "fused": name.startswith("adagrow-"),
               "dataset": "cifar10", **profile(model, spec.input_size),
               "latency_ms": measure_latency(model, x, repeats=plan.latency_repeats, budget_s=plan.latency_budget_s),
               **env}
        append_record(output / f"{SUITE}.jsonl", rec)
        records.append(rec)
        log(f"  latency {name:<28} {rec['latency_ms']['median_ms']:.3f} ms  ({rec['params'] / 1e6:.2f}M params)")
        del model
    return records


# ---- the check ------------------------------------------------------------------------------------
def run_check(plan: Plan, *, data_dir: Path, output: Path, pieces: Path | None = None, md5: str = CIFAR10_MD5,
              log=print) -> dict:
    """Run the parts within ``plan.budget_s``; return (and append) the summary record.  ``pieces``: a
    folder of archive pieces to reassemble into ``data_dir`` first, checked against ``md5``."""
    from adagrow.engine.runner import resolve_device, run
    from adagrow.records.env import device_name, git_commit, versions
    from adagrow.records.store import append_record

    t0 = time.perf_counter()
    device = resolve_device(plan.device)
    if not plan.device.startswith("cpu") and device.type != "cuda":
        raise AdaGrowError("the GPU check needs a CUDA device (or --tiny for its CPU rehearsal)")
    output.mkdir(parents=True, exist_ok=True)
    if pieces is not None:
        with _phase("reassembling CIFAR-10 from its pieces", log):
            assemble_pieces(pieces, data_dir / CIFAR10_ARCHIVE, md5)
    env = {"device": device_name(device), "versions": versions(), "git_commit": git_commit()}
    deadline = t0 + plan.budget_s
    train_until = deadline - plan.latency_reserve_s
    parts = []

    def part(name: str, fn: Callable[[], Any], extra: dict | None = None) -> Any:
        start = time.perf_counter()
        log(f"== ({name}) {extra or ''}")
        status, result = within(train_until, fn)
        row = {"part": name, "status": status, "seconds": round(time.perf_counter() - start, 1), **(extra or {})}
        if isinstance(result, dict):
            row.update({k: result.get(k) for k in ("run_name", "test_acc", "arch", "epochs", "gpu_seconds")})
        parts.append(row)
        log(f"   ({name}) {status} in {row['seconds']:.1f} s")
        return result

    part("headline", lambda: run(headline_config(plan, data_dir, output), log=log))
    estimate = fixed_epochs(plan, train_until - time.perf_counter(), device, data_dir, output, log)
    if estimate["epochs"] >= 1:
        cfg = _run_config(plan, "fixed", plan.fixed_model, data_dir, output, recipe=plan.fixed_recipe,
                          epochs=estimate["epochs"], tag=f"fixed-{plan.fixed_model}-{estimate['epochs']}ep-in-budget")
        part("fixed", lambda: run(cfg, log=log), estimate)
    else:
        parts.append({"part": "fixed", "status": "skipped: no epoch fits in the budget left", **estimate})
    start = time.perf_counter()
    log("== (latency) batch 1, fp32")
    measured = latencies(plan, device, deadline, output, env, log)
    parts.append({"part": "latency", "status": "ok" if len(measured) == len(plan.grown) + len(plan.fixed) else
                  "stopped at budget", "seconds": round(time.perf_counter() - start, 1), "models": len(measured)})
    summary = {"kind": "gpu-check", "suite": SUITE, "tiny": plan.device == "cpu", "plan": dataclasses.asdict(plan),
               "budget_s": plan.budget_s, "seconds": round(time.perf_counter() - t0, 1), "parts": parts, **env}
    append_record(output / f"{SUITE}.jsonl", summary)
    log(markdown(summary, measured))
    return summary


@contextmanager
def _phase(what: str, log) -> Iterator[None]:
    t = time.perf_counter()
    log(f"{what} ...")
    yield
    log(f"{what}: {time.perf_counter() - t:.1f} s")


def markdown(summary: dict, latency: list[dict]) -> str:
    """The check as README rows: each part's result and time, then the latencies."""
    lines = [f"GPU check on {summary['device']} ({summary['seconds']:.0f} s of a {summary['budget_s'] / 60:.0f}-minute "
             f"budget; records in {SUITE}.jsonl)", "", "| part | status | result | seconds |", "|---|---|---|---|"]
    for p in summary["parts"]:
        result = f"{p['test_acc']:.2f}% test, {p.get('epochs')} epochs" if p.get("test_acc") is not None else ""
        lines.append(f"| {p['part']} | {p['status']} | {result} | {p.get('seconds', '')} |")
    if latency:
        lines += ["", "| model (batch 1, fp32) | params | MACs | latency ms (median) |", "|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['params'] / 1e6:.2f}M | {r['macs'] / 1e6:.1f}M | "
                  f"{r['latency_ms']['median_ms']:.3f} |" for r in latency]
    return "\n".join(lines) + "\n"


# ---- the tiny rehearsal ---------------------------------------------------------------------------
@contextmanager
def tiny_cifar10(root: Path) -> Iterator[tuple[Path, Path, str]]:
    """A synthetic CIFAR-10 archive cut into pieces: ``(data dir, pieces dir, the archive's md5)``.
    torchvision checks every CIFAR file against its own md5 table; while inside, the table holds the
    synthetic files' md5s instead (restored after), which is the only thing the tiny mode fakes."""
    from torchvision.datasets import CIFAR10

    from adagrow.data import synthetic

    staging, data_dir, pieces = root / "staging", root / "data", root / "pieces"
    members = synthetic.write_cifar(staging, archive=True)
    archive = staging / CIFAR10_ARCHIVE
    md5 = md5_of(archive)
    split_file(archive, pieces, piece_bytes=max(1, archive.stat().st_size // 3))
    table = {"train_list": CIFAR10.train_list, "test_list": CIFAR10.test_list, "meta": CIFAR10.meta}
    try:
        CIFAR10.train_list = [[f, members[f"{CIFAR10.base_folder}/{f}"]] for f, _ in table["train_list"]]
        CIFAR10.test_list = [[f, members[f"{CIFAR10.base_folder}/{f}"]] for f, _ in table["test_list"]]
        CIFAR10.meta = {**table["meta"], "md5": members[f"{CIFAR10.base_folder}/{table['meta']['filename']}"]}
        yield data_dir, pieces, md5
    finally:
        for k, v in table.items():
            setattr(CIFAR10, k, v)


# ---- the command ----------------------------------------------------------------------------------
def _plan(args: argparse.Namespace) -> Plan:
    changes: dict[str, Any] = {"compile": args.compile, "branch_compute": args.branch_compute}
    if args.budget_min is not None:
        if not args.budget_min > 0:
            raise AdaGrowError(f"--budget-min must be positive (got {args.budget_min})")
        changes["budget_s"] = args.budget_min * 60
    if args.device:
        changes["device"] = args.device
    return dataclasses.replace(TINY if args.tiny else FULL, **changes)


def main(argv: list[str] | None = None) -> int:
    import sys

    from adagrow.data import resolve_data_dir

    p = argparse.ArgumentParser(prog="nox -s gpu --", description="the one prepared GPU check (module docstring)")
    p.add_argument("--budget-min", type=float, help="minutes for the whole check (default 12; --tiny: 5)")
    p.add_argument("--pieces", type=Path, help=f"a folder of {CIFAR10_ARCHIVE}.part-* (split -b 60m) to reassemble")
    p.add_argument("--data-dir", help="dataset root (default: $ADAGROW_DATA, else ./data)")
    p.add_argument("--output", type=Path, help="where records go (default: results/; --tiny: runs/gpu-check-tiny)")
    p.add_argument("--device", help="the CUDA device (default cuda)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training runs")
    p.add_argument("--branch-compute", choices=["auto", "loop", "batched"], default="auto")
    p.add_argument("--tiny", action="store_true", help="the same check on the CPU with synthetic data, in seconds")
    args = p.parse_args(argv)
    try:
        plan, output = _plan(args), args.output or Path("runs/gpu-check-tiny" if args.tiny else "results")
        if args.tiny:
            with tempfile.TemporaryDirectory() as tmp, tiny_cifar10(Path(tmp)) as (data_dir, pieces, md5):
                run_check(plan, data_dir=data_dir, output=output, pieces=pieces, md5=md5)
        else:
            run_check(plan, data_dir=resolve_data_dir(args.data_dir), output=output, pieces=args.pieces)
    except AdaGrowError as exc:
        print(f"gpu check: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
