"""``adagrow suite``: run every entry of a suite (resumable), list them, or show their state.

The command reaches the core command line through the ``adagrow.commands`` entry point in
``pyproject.toml`` (:mod:`adagrow.plugins`); the common run options are the core's
(:func:`adagrow.cli_options.add_run_options`), so ``train`` and ``suite`` take the same ones.  ``--quantize``
quantizes the suite's finished runs instead of training (:mod:`suites.quantize`, Table 4-1).
"""

from __future__ import annotations

import argparse

from adagrow.cli_options import add_run_options
from adagrow.plugins import Command


def main(argv: list[str]) -> int:
    from suites import run_suite
    from suites.executors import add_executor_options
    from suites.quantize import add_quantize_options, quantize_suite

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
    add_run_options(p)
    add_executor_options(p)
    add_quantize_options(p)
    args = p.parse_args(argv)
    return quantize_suite(args) if args.quantize else run_suite(args)


COMMAND = Command(main, "run every entry of a suite (a dataset's table or a thesis ablation); resumable")
