"""``adagrow meta``: meta-train and meta-test M-NAS or MAML on few-shot episodes (a record per run).

The command reaches the core command line through the ``adagrow.commands`` entry point in
``pyproject.toml`` (``meta = "baselines.mnas.cli:COMMAND"``, :mod:`adagrow.plugins`): the core never
names this module, and it imports only the core's shared option helpers (:mod:`adagrow.cli_options`).
The run's options are the fields of
:class:`~baselines.mnas.config.MetaConfig` (one field, one option, generated as for ``adagrow train``);
where files go and which device computes use the names every other command uses.
"""

from __future__ import annotations

import argparse

from adagrow.cli_options import add_dataclass_options, dataclass_from_args, field_docs, field_help
from adagrow.plugins import Command
from baselines.mnas.config import METHODS, PROFILES, TASKS, MetaConfig

# Options given by the common names below rather than generated from the dataclass.
COMMON = {"task", "method", "profile", "seed", "output_dir", "suite", "data_dir", "device", "threads", "resume"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adagrow meta", description="M-NAS (task-aware architecture + MAML meta-weights) or "
                                "MAML on one fixed architecture, on N-way K-shot episodes or sinusoid regression")
    def doc(name: str, **kw) -> str:
        return field_help(MetaConfig, name, **kw)

    p.add_argument("--task", required=True, choices=TASKS, help=field_docs(MetaConfig)["task"])
    p.add_argument("--method", default="mnas", choices=METHODS, help=doc("method"))
    p.add_argument("--profile", default="full", choices=PROFILES,
                   help="reference: meta-training until the meta-train loss plateaus (at most 800 iterations), 600 "
                        "test episodes; smoke: at most 40 meta-iterations and 100 test episodes (checks the pipeline; "
                        "default: full)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help=doc("seed"))
    p.add_argument("--data-dir", metavar="DIR", help=doc("data_dir"))
    p.add_argument("--output", default="runs", metavar="DIR", help=doc("output_dir"))
    p.add_argument("--suite", default="mnas", metavar="NAME", help=doc("suite"))
    p.add_argument("--device", default="auto", metavar="DEVICE", help=doc("device"))
    p.add_argument("--threads", type=int, metavar="N", help=doc("threads"))
    p.add_argument("--resume", action="store_true", help=field_docs(MetaConfig)["resume"])
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


COMMAND = Command(main, "meta-learning on few-shot tasks: M-NAS (task-aware architectures) or MAML; resumable")
