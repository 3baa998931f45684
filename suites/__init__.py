"""Experiment suites: which runs make up a dataset's table or a thesis ablation (data, not logic).

A suite is a list of :class:`Entry` — method, model/family, recipe and the method's options.  Every
``nox -s <dataset>`` session runs ``adagrow suite <dataset>``; thesis ablations are suites named after
their table (``table3-3``).

Running a suite (``run_suite``) is resumable: an entry is skipped when the suite's results file
already holds an ``ok`` record of *the same resolved configuration* (not merely the same name: a
record of an older smoke profile is not this entry's result), and an interrupted entry continues from
its checkpoint.  ``--force`` reruns entries anyway (a new record; old ones are kept).  One failing
entry does not end the suite: it is reported, the remaining entries run, and the suite ends with a
summary table and a non-zero status.  Ctrl-C still stops everything.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adagrow.registry import Registry


@dataclass(frozen=True)
class Entry:
    name: str  # unique inside the suite; also the run's model label
    dataset: str
    method: str
    model: str | None = None  # fixed: model name; adagrow: family
    recipe: str | None = None  # None: the method's default recipe
    options: dict[str, Any] = field(default_factory=dict)  # fields of the method's config dataclass
    epochs: int | None = None
    smoke: bool = False  # part of the short selection run under ``--profile smoke``


SUITES: Registry[list[Entry]] = Registry("suite")


def _load() -> Registry[list[Entry]]:
    import suites.ablations  # noqa: F401
    import suites.datasets  # noqa: F401
    import suites.growing  # noqa: F401
    import suites.pruning  # noqa: F401
    import suites.second_thesis  # noqa: F401

    return SUITES


def run_config_for(entry: Entry, args: argparse.Namespace, suite: str):
    """The RunConfig of one entry, with the command line's common options applied."""
    from adagrow.config import RunConfig, resolve_recipe
    from adagrow.methods import load_builtin_methods

    method = load_builtin_methods().get(entry.method)
    config_cls, _ = method.resolve(entry.model)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    opts = dict(entry.options)
    if "family" in fields and entry.model:
        opts.setdefault("family", entry.model)
    mcfg = config_cls(**opts)
    recipe = resolve_recipe(entry.method, entry.model, args.recipe or entry.recipe, batch_size=args.batch_size, lr=args.lr,
                            min_lr=args.min_lr, method_config=mcfg)
    return RunConfig(
        dataset=entry.dataset, method=entry.method, model=entry.model, tag=entry.name, recipe=recipe, method_config=mcfg,
        seed=args.seed, profile=args.profile, epochs=args.epochs or entry.epochs, train_subset=args.train_subset,
        data_dir=args.data_dir, download=args.download and not args.no_download, output_dir=args.output,
        suite=suite, device=args.device, amp=not args.no_amp, compile=args.compile, deterministic=args.deterministic,
        threads=args.threads, wandb=args.wandb,
    )


def _done(records: list[dict[str, Any]], cfg) -> dict[str, Any] | None:
    """The latest ``ok`` record of exactly this configuration, or None.

    Judged by the resolved config's identity (``RunConfig.identity``: everything but where the files
    are), not by the entry's name: a record of another profile version, epoch count or method option
    is not this entry's result.  The run directory's name (which carries a hash of that identity)
    must match as well, so the checkpoint and deploy model of a skipped entry are this config's.
    """
    from adagrow.config import identity_of

    want = cfg.identity()
    for r in reversed(records):
        if (r.get("status") == "ok" and Path(r.get("run_dir", "")).name == cfg.run_name
                and identity_of(r.get("config") or {}) == want):
            return r
    return None


def _select(args: argparse.Namespace) -> list[Entry]:
    from adagrow.errors import AdaGrowError

    entries = _load().get(args.name)
    if args.only:
        # comma-separated parts; an entry is selected when its name contains any of them
        parts = [p.strip() for p in args.only.split(",") if p.strip()]
        selected = [e for e in entries if any(p in e.name for p in parts)]
        if not selected:
            raise AdaGrowError(f"no entry of suite {args.name!r} has {args.only!r} in its name; "
                               f"its entries: {', '.join(e.name for e in entries)}")
        return selected
    if args.profile == "smoke" and not args.all:
        # a smoke run of a suite checks the pipeline end to end, not every row: one run per kind
        return [e for e in entries if e.smoke]
    return entries


@dataclass(frozen=True)
class Outcome:
    """What became of one entry in this invocation."""

    name: str
    status: str  # "ok" (ran now) | "done" (an earlier record, skipped) | "failed"
    record: dict[str, Any] | None = None
    error: str = ""


def run_suite(args: argparse.Namespace) -> int:
    """Run (or list) a suite's entries; 0 if every entry has a result, 1 if any failed."""
    from adagrow.records.store import read_records

    suite = args.name if args.suite == "adhoc" else args.suite
    configs = [(e, run_config_for(e, args, suite)) for e in _select(args)]
    results = Path(args.output) / f"{suite}.jsonl"
    records = read_records(results) if results.exists() else []
    if args.list:
        print(f"suite {suite}: {len(configs)} entries; records in {results}")
        for e, cfg in configs:
            print(f"  {e.name:<40} {e.method:<8} {cfg.recipe.name:<20} {'done' if _done(records, cfg) else ''}")
        return 0
    outcomes = [_run_entry(f"[{i}/{len(configs)}] {e.name}", e, cfg, records, args.force)
                for i, (e, cfg) in enumerate(configs, 1)]
    print(summary_table(suite, outcomes, results), flush=True)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _run_entry(head: str, entry: Entry, cfg, records: list[dict[str, Any]], force: bool) -> Outcome:
    """Run one entry unless it is done; a failure is reported and returned, never raised (but Ctrl-C is)."""
    from adagrow.engine.runner import run
    from adagrow.errors import AdaGrowError

    done = None if force else _done(records, cfg)
    if done is not None:
        print(f"{head}: done (test {_pct(done.get('test_acc'))}), skipped; --force reruns it", flush=True)
        return Outcome(entry.name, "done", done)
    print(head, flush=True)
    run_dir = Path(cfg.output_dir) / "runs" / cfg.run_name  # where the runner keeps this config's files
    if force:
        _set_aside(run_dir)
    try:
        # continue an interrupted run of this very config; anything else starts afresh
        return Outcome(entry.name, "ok", run(dataclasses.replace(cfg, resume=(run_dir / "last.pt").exists())))
    except AdaGrowError as exc:  # the user can fix it (missing data, NaN loss): one message
        print(f"{head} failed: {exc}", file=sys.stderr, flush=True)
        return Outcome(entry.name, "failed", error=str(exc))
    except Exception as exc:  # a bug: keep its traceback, but let the other entries run
        traceback.print_exc()
        print(f"{head} failed with an unexpected {type(exc).__name__} (traceback above)", file=sys.stderr, flush=True)
        return Outcome(entry.name, "failed", error=f"{type(exc).__name__}: {exc}")


def _set_aside(run_dir: Path) -> None:
    """--force: keep an earlier run's files (checkpoint, deploy model) under another name, so that the
    runner, which never repeats a finished run, starts this one from nothing."""
    if run_dir.exists():
        aside = run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.rename(aside)
        print(f"  --force: the earlier run's files are kept in {aside}", flush=True)


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}%"


def summary_table(suite: str, outcomes: list[Outcome], results: Path) -> str:
    """The end-of-suite table: one row per entry with its status and, when it has one, its result."""
    from adagrow.engine.progress import format_duration

    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "done", "failed")}
    width = max([len("entry"), *(len(o.name) for o in outcomes)])
    lines = [f"\nsuite {suite}: {counts['ok']} ran, {counts['done']} done before (skipped), {counts['failed']} failed; "
             f"records in {results}",
             f"  {'entry':<{width}}  {'status':<7} {'test acc':>8} {'params':>9} {'MACs':>10} {'time':>7}"]
    for o in outcomes:
        if o.status == "failed":
            first_line = o.error.strip().splitlines()[0] if o.error.strip() else "failed"
            lines.append(f"  {o.name:<{width}}  {'FAILED':<7} {_clip(first_line, 100)}")
            continue
        r = o.record or {}
        params = f"{r['params'] / 1e6:.3f}M" if r.get("params") is not None else "-"
        macs = f"{r['macs'] / 1e6:.2f}M" if r.get("macs") is not None else "-"
        secs = format_duration(r["wall_seconds"]) if r.get("wall_seconds") is not None else "-"
        lines.append(f"  {o.name:<{width}}  {o.status:<7} {_pct(r.get('test_acc')):>8} {params:>9} {macs:>10} {secs:>7}")
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
