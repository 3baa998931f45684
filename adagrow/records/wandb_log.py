"""Weights & Biases logging that can never fail a run.

Off by default.  ``offline`` writes runs under ``<output>/wandb/`` (never into the current directory)
for a later ``wandb sync``; ``online`` needs a login.  W&B missing, misconfigured or unreachable only
prints one warning.  Runs are organised as group = ``<suite>/<dataset>``, job type = method, the
resolved config attached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class WandbLogger:
    def __init__(self, mode: str, *, directory: Path, name: str, group: str, job_type: str, config: dict[str, Any],
                 tags: list[str], resume_id: str | None = None):
        self.run = None
        if mode == "off":
            return
        try:
            import wandb

            self.run = wandb.init(mode=mode, dir=str(directory), project="adagrow-bench", name=name, group=group,
                                  job_type=job_type, config=config, tags=tags, id=resume_id,
                                  resume="allow" if resume_id else None, reinit="finish_previous")
        except Exception as exc:  # noqa: BLE001 - logging must never end a run
            print(f"warning: W&B disabled for this run ({type(exc).__name__}: {exc})")
            self.run = None

    @property
    def run_id(self) -> str | None:
        return getattr(self.run, "id", None)

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self.run is not None:
            try:
                self.run.log(metrics, step=step)
            except Exception as exc:  # noqa: BLE001
                print(f"warning: W&B log failed ({exc})")

    def finish(self, summary: dict[str, Any] | None = None) -> None:
        if self.run is None:
            return
        try:
            for k, v in (summary or {}).items():
                if isinstance(v, (int, float, str, bool)) or v is None:
                    self.run.summary[k] = v
            self.run.finish()
        except Exception as exc:  # noqa: BLE001
            print(f"warning: W&B finish failed ({exc})")
        self.run = None
