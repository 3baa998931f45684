"""Experiment suites: which runs make up a dataset's table or a thesis ablation (data, not logic).

A suite is a list of :class:`Entry` — method, model/family, recipe and the method's options.  Every
``nox -s <dataset>`` session runs ``adagrow suite <dataset>``; thesis ablations are suites named after
their table (``table3-3``).  Suites are resumable: an entry that already has an ``ok`` record in the
suite's results file is skipped, and an interrupted entry continues from its checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
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
        threads=args.threads, wandb=args.wandb, resume=True,
    )


def _done(results: Path, run_name: str) -> bool:
    from adagrow.records.store import read_records

    if not results.exists():
        return False
    return any(r.get("status") == "ok" and Path(r.get("run_dir", "")).name == run_name for r in read_records(results))


def run_suite(args: argparse.Namespace) -> int:
    from adagrow.engine.runner import run

    entries = _load().get(args.name)
    if args.only:
        entries = [e for e in entries if args.only in e.name]
    elif args.profile == "smoke" and not args.all:
        # a smoke run of a suite checks the pipeline end to end, not every row: one run per kind
        entries = [e for e in entries if e.smoke]
    suite = args.name if args.suite == "adhoc" else args.suite
    configs = [(e, run_config_for(e, args, suite)) for e in entries]
    results = Path(args.output) / f"{suite}.jsonl"
    if args.list:
        for e, cfg in configs:
            print(f"{e.name:<40} {e.method:<8} {cfg.recipe.name:<20} {'done' if _done(results, cfg.run_name) else ''}")
        return 0
    summary = []
    for i, (e, cfg) in enumerate(configs, 1):
        if _done(results, cfg.run_name):
            print(f"[{i}/{len(configs)}] {e.name}: already done, skipped")
            continue
        print(f"[{i}/{len(configs)}] {e.name}")
        r = run(cfg)
        summary.append((e.name, r["test_acc"], r["params"], r["macs"]))
    if summary:
        print(f"\nsuite {suite}: {len(summary)} runs finished; records in {results}")
        for name, acc, params, macs in summary:
            print(f"  {name:<40} test {acc:6.2f}%  params {params / 1e6:8.3f}M  MACs {macs / 1e6:9.2f}M")
    return 0
