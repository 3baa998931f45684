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


SAME_ENTRY = ("tag", "suite", "dataset", "profile")  # what makes two runs the same suite entry (any seed, any setting)


# bumped when the runner's or a method's computation was fixed: their older records are redone, whatever the options
NUMERICS = ("numerics", "method_numerics")


def near_miss(records: list[dict[str, Any]], cfg) -> str | None:
    """Why no record counts as this job's result although an ``ok`` one of the same entry, seed and profile exists: the
    settings in which the closest such record differs (``threads: recorded 2, here default``), or None.

    A forgotten option (``--threads 2``, ``--recipe``) otherwise reruns hours of finished work without a word;
    ``--status`` and the suite's run say which settings to pass to reuse the record, or that the record predates a
    fix of the method (its numerics version), which no option undoes."""
    from adagrow.config import identity_of

    want = cfg.identity()
    best: list[str] | None = None
    for r in records:
        have = identity_of(r.get("config") or {})
        if r.get("status") != "ok" or any(have.get(k) != want.get(k) for k in (*SAME_ENTRY, "seed")):
            continue
        diffs = _differences(have, want)
        if diffs and (best is None or len(diffs) < len(best)):
            best = diffs
    if not best:
        return None
    differs = "; ".join(best[:4]) + ("; …" if len(best) > 4 else "")
    if any(d.split(":")[0] in NUMERICS for d in best):  # a fix of the method: no option brings the record back
        return f"its record of this entry and seed predates the method's numerics version here ({differs})"
    return f"a record of this entry and seed differs in {differs}; pass the recorded settings to reuse that record"


def expected_seconds(records: list[dict[str, Any]], cfg) -> float | None:
    """What a pending job will take, judged by its entry's finished runs: the median wall time of the ``ok`` records
    of the same entry and profile, whatever their seed or other settings (None: none has run).  A planning figure,
    not a promise: a run under load took longer (its record's ``machine_load`` says so)."""
    want = cfg.identity()
    times = sorted(r["wall_seconds"] for r in records
                   if r.get("status") == "ok" and isinstance(r.get("wall_seconds"), (int, float))
                   and all((r.get("config") or {}).get(k) == want.get(k) for k in SAME_ENTRY))
    return times[len(times) // 2] if times else None


def _differences(have: dict[str, Any], want: dict[str, Any], prefix: str = "") -> list[str]:
    """``name: recorded X, here Y`` for each setting that differs (one level into nested options)."""
    out = []
    for key in sorted(have.keys() | want.keys()):
        a, b = have.get(key), want.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and not prefix:
            out += _differences(a, b, f"{key}.")
        else:
            out.append(f"{prefix}{key}: recorded {_setting(a)}, here {_setting(b)}")
    return out


def _setting(value: Any) -> str:
    return "default" if value is None else _clip(str(value), 40)


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}%"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
