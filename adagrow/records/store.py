"""Result records: one JSON object per run, appended to a JSONL file per suite.

Every write goes to a temporary file in the same directory which then atomically replaces the
original (``os.replace``), so a run killed mid-write leaves either the old file or the new one,
never a broken line.  Readers skip (and report) lines that are not valid JSON rather than failing,
so a file damaged by other means still yields its good records.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None (JSON has no NaN), tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new content, nothing between."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a result file is not
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, atomically."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    line = json.dumps(_clean(record), sort_keys=True, allow_nan=False)
    atomic_write_text(path, old + line + "\n")


def read_records(paths: Path | Iterable[Path]) -> list[dict[str, Any]]:
    """All valid records of one JSONL file, or of every ``*.jsonl`` under a directory."""
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        paths = sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
    out = []
    for p in paths:
        for n, line in enumerate(Path(p).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"warning: {p}:{n} is not valid JSON and was skipped")
    return out
