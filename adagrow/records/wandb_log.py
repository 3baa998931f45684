"""Weights & Biases logging that can never fail a run.

Off by default.  ``offline`` writes runs under ``<output>/wandb/`` (never into the current directory)
for a later ``wandb sync``; ``online`` needs a login.  W&B missing, misconfigured or unreachable, or
any call of it failing, only prints a warning: the run goes on and its record is unchanged.  Runs are
organised as group = ``<suite>/<dataset>``, job type = method, the resolved config attached.

What a training run logs (step = epoch; step 0 is the model before training), see docs/wandb.md:

* ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``lr``, ``epoch``;
* ``model/params``, ``model/macs`` and ``model/arch`` every epoch, so a line chart shows the model grow;
* ``time/<phase>``: the seconds spent so far per phase (train, grow, eval...);
* ``growth/events``: a table of every growth or prune event (:data:`EVENT_COLUMNS`), logged again
  with all events so far at each event; ``growth/params_after`` and ``growth/val_acc_after`` at it;
* the final record as the run's summary, with ``latency/median_ms`` and ``time/<phase>`` flattened;
* with ``--wandb-artifacts`` the deploy model (``deploy.pt``) as a ``model`` artifact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adagrow.records.store import to_json

PROJECT = "adagrow-bench"
EVENT_COLUMNS = ("epoch", "kind", "location", "module", "params_before", "params_after", "val_acc_before",
                 "val_acc_after")
# Record fields left out of the summary: lists of every epoch / event (history and the events table
# have them) and the config (the run's W&B config already).
_NOT_SUMMARY = ("history", "growth_events", "config")


def start_run(mode: str, **init: Any):
    """``wandb.init(mode=mode, project=PROJECT, **init)``, or None (with one warning) if W&B is off,
    missing or fails to start."""
    if mode == "off":
        return None
    try:
        import wandb

        return wandb.init(mode=mode, project=PROJECT, **init)
    except Exception as exc:  # noqa: BLE001 - logging must never end a run
        print(f"warning: W&B disabled for this run ({type(exc).__name__}: {exc})")
        return None


def event_row(event: Mapping[str, Any]) -> list[Any]:
    """One row of the growth-events table from a record's ``growth_events`` entry: location is its
    ``where`` (a block, or the units widened), module its ``what`` (the layer or branch kinds added)."""

    def text(v: Any) -> str | None:
        return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else (None if v is None else str(v))

    return [event.get("epoch"), event.get("kind"), text(event.get("where")), text(event.get("what")),
            event.get("params_before"), event.get("params_after"), event.get("val_acc_before"),
            event.get("val_acc_after")]


def json_values(value: Any) -> Any:
    """``value`` as plain JSON values for W&B's summary: as a record file holds it (NaN as null), and
    anything JSON has no type for (a path) as its text."""
    return json.loads(to_json(value, default=str))


def summary_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The run summary of a result record: its fields (but :data:`_NOT_SUMMARY`), plus the latency's
    median and the phase seconds under fixed keys a dashboard can plot whatever the device."""
    out = json_values({k: v for k, v in record.items() if k not in _NOT_SUMMARY})
    for device, lat in (record.get("latency_ms") or {}).items():
        out.update({"latency/median_ms": lat.get("median_ms"), "latency/device": device})
    out.update({f"time/{phase}": s for phase, s in (record.get("gpu_seconds") or {}).items()})
    return out


class WandbLogger:
    def __init__(self, mode: str, *, directory: Path, name: str, group: str, job_type: str, config: dict[str, Any],
                 tags: list[str], resume_id: str | None = None, artifacts: bool = False,
                 macs_of: Callable[[Any], int] | None = None):
        """``macs_of(model)``: the MACs of the model being trained, measured only when it changed."""
        self.artifacts, self._macs_of, self._size_key, self._macs = artifacts, macs_of, None, None
        self.run = start_run(mode, dir=str(directory), name=name, group=group, job_type=job_type, config=config,
                             tags=tags, id=resume_id, resume="allow" if resume_id else None,
                             reinit="finish_previous")

    @property
    def run_id(self) -> str | None:
        return getattr(self.run, "id", None)

    def _guarded(self, what: str, fn: Callable[[], Any]) -> Any:
        if self.run is None:
            return None
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - logging must never end a run
            print(f"warning: W&B {what} failed ({type(exc).__name__}: {exc})")
            return None

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._guarded("log", lambda: self.run.log(metrics, step=step))

    def epoch(self, metrics: Mapping[str, Any], model, arch: str | None, seconds: Mapping[str, float] | None = None) -> None:
        """One epoch's metrics (``train_loss`` -> ``train/loss``...), the size of ``model`` as it is now
        (after the epoch's growth or pruning) and the phase seconds so far, at step ``metrics["epoch"]``."""

        def row() -> dict[str, Any]:
            # metrics["params"] is counted before the epoch's change; model/params after it
            out = {re.sub(r"^(train|val)_", r"\1/", k): v for k, v in metrics.items() if k != "params"}
            out.update(self._size(model, arch))
            out.update({f"time/{phase}": s for phase, s in (seconds or {}).items()})
            return out

        if self.run is not None:
            self.log(self._guarded("epoch", row) or {}, step=int(metrics["epoch"]))

    def _size(self, model, arch: str | None) -> dict[str, Any]:
        from adagrow.measure.profile import count_params

        params = count_params(model)
        key = (id(model), params, arch)
        if key != self._size_key and self._macs_of is not None:
            import torch

            self._size_key, self._macs = key, None
            try:  # a forward pass at batch 1 that must not move the run's random streams (W&B never changes a run)
                with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []):
                    self._macs = int(self._macs_of(model))
            except Exception as exc:  # noqa: BLE001 - no MACs in W&B, the rest still logged
                print(f"warning: W&B: MACs of the model not counted ({type(exc).__name__}: {exc})")
        return {"model/params": params, **({"model/macs": self._macs} if self._macs is not None else {}),
                **({"model/arch": arch} if arch is not None else {})}

    def event(self, event: Mapping[str, Any], events: list[Mapping[str, Any]]) -> None:
        """A growth or prune event: its scalars at its epoch, and the table of ``events`` (all so far)."""

        def log() -> None:
            import wandb

            table = wandb.Table(columns=list(EVENT_COLUMNS), data=[event_row(e) for e in events])
            self.run.log({"growth/events": table, "growth/params_after": event.get("params_after"),
                          "growth/val_acc_after": event.get("val_acc_after")}, step=int(event["epoch"]))

        self._guarded("event", log)

    def finish(self, record: Mapping[str, Any] | None = None, deploy: Path | None = None) -> None:
        """The record as the run's summary, the deploy model as an artifact (with ``artifacts``), then finish."""
        if record:
            self._guarded("summary", lambda: self.run.summary.update(summary_of(record)))
        if deploy is not None and self.artifacts:
            self._guarded("artifact", lambda: self._log_artifact(record or {}, deploy))
        if self.run is not None:
            self._guarded("finish", lambda: self.run.finish())
        self.run = None

    def _log_artifact(self, record: Mapping[str, Any], path: Path) -> None:
        import wandb

        # artifact names allow letters, digits, - _ . only (run names may hold + = , @)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"deploy-{record.get('run_name') or self.run.name}")[:128]
        meta = json_values({k: record.get(k) for k in ("method", "dataset", "arch", "test_acc", "params", "macs")})
        art = wandb.Artifact(name, type="model", metadata=meta)
        art.add_file(str(path), name="deploy.pt")
        self.run.log_artifact(art)
