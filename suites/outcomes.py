"""What became of each entry of a suite run, and the small text helpers its tables share (used by
``suites`` and ``suites.executors`` alike, so neither imports the other for them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """What became of one entry (under one seed) in this invocation."""

    name: str
    # "ok" (ran now) | "done" (an earlier record, skipped) | "failed" | "running" (by another process) |
    # "waiting" (a derived entry whose source run has no record, or whose base checkpoint is gone)
    status: str
    record: dict[str, Any] | None = None
    error: str = ""


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


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}%"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
