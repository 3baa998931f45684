"""``adagrow meta``: meta-train and meta-test M-NAS or MAML on few-shot episodes (a record per run).

``adagrow.cli`` imports this module only when the command runs (``importlib``), so the core package
never imports ``baselines`` at import time.  The run's options are the fields of
:class:`~baselines.mnas.config.MetaConfig` (one field, one option, generated as for ``adagrow train``);
where files go and which device computes use the names every other command uses.
"""

from __future__ import annotations

import argparse

from adagrow.cli import add_dataclass_options, dataclass_from_args
from baselines.mnas.config import METHODS, TASKS, MetaConfig

# Options given by the common names below rather than generated from the dataclass.
COMMON = {"task", "method", "profile", "seed", "output_dir", "suite", "data_dir", "device", "threads", "resume"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adagrow meta", description="M-NAS (task-aware architecture + MAML meta-weights) or "
                                "MAML on one fixed architecture, on N-way K-shot episodes or sinusoid regression")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--method", default="mnas", choices=METHODS)
    p.add_argument("--profile", default="full", choices=["full", "smoke"],
                   help="smoke: at most 40 meta-iterations and 100 test episodes (checks the pipeline)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="dataset root (default: $ADAGROW_DATA, else ./data)")
    p.add_argument("--output", default="runs", help="records go to <output>/<suite>.jsonl, runs to <output>/runs/")
    p.add_argument("--suite", default="mnas", help="name of the results file (default: mnas)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    add_dataclass_options(p, MetaConfig, skip=COMMON, title="options of the meta-learning run")
    return p


def main(argv: list[str]) -> int:
    from baselines.mnas.meta import run_meta

    args = parser().parse_args(argv)
    common = {"task": args.task, "method": args.method, "profile": args.profile, "seed": args.seed,
              "output_dir": args.output, "suite": args.suite, "data_dir": args.data_dir, "device": args.device,
              "threads": args.threads, "resume": args.resume}
    run_meta(dataclass_from_args(MetaConfig, args, common))
    return 0
