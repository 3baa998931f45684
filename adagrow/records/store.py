"""Result records: one JSON object per run, appended as one line to a JSONL file per suite.

Many processes may append to one file at once (a suite split across jobs, a quantization table
beside a training run).  ``append_record`` therefore never rewrites the file: it takes an exclusive
``flock`` on it, writes the new line with one ``O_APPEND`` write and fsyncs, so writers never lose or
interleave each other's lines and a writer killed mid-append leaves nothing behind but, at worst, an
incomplete last line.  Readers skip (and report) lines that are not valid JSON, not valid UTF-8 or not
a JSON object rather than failing, so a file damaged by other means still yields its good records, and the next
append starts on a fresh line.  (``flock`` is POSIX: Linux and macOS, where this harness runs.)
"""

from __future__ import annotations

import fcntl
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


def to_json(record: dict[str, Any], **kwargs) -> str:
    """The record as strict JSON (what every record file holds), e.g. for a run's ``record.json``."""
    return json.dumps(_clean(record), sort_keys=True, allow_nan=False, **kwargs)


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
    """Append one record as one JSON line; safe with any number of concurrent writers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (to_json(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file is closed
        if not _ends_with_newline(fd):
            line = b"\n" + line  # the last line was cut short: never glue a record onto it
        _write_all(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_records(paths: Path | Iterable[Path]) -> list[dict[str, Any]]:
    """All valid records of one JSONL file, or of every ``*.jsonl`` under a directory."""
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        paths = sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
    out = []
    for p in paths:
        for n, raw in enumerate(Path(p).read_bytes().splitlines(), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                print(f"warning: {p}:{n} is not valid UTF-8 and was skipped")
                continue
            except json.JSONDecodeError:
                print(f"warning: {p}:{n} is not valid JSON and was skipped")
                continue
            if isinstance(record, dict):
                out.append(record)
            else:  # valid JSON but no record ([1, 2], "text"): every reader expects an object
                print(f"warning: {p}:{n} is a JSON {type(record).__name__}, not a record (an object), and was skipped")
    return out


def check_writable(path: Path, option: str, *, directory: bool = False) -> None:
    """Refuse, in one line and before any work, an output ``path`` (a file, or with ``directory`` a folder)
    that could not be written: an existing folder where a file goes (or the reverse), a regular file
    where a parent folder goes, or a place without write permission.  Nothing is created."""
    from adagrow.errors import AdaGrowError

    path = Path(path)
    if not str(path).strip():
        raise AdaGrowError(f"{option} is empty; give a {'folder' if directory else 'file'}")
    if path.exists():
        if directory and not path.is_dir():
            raise AdaGrowError(f"{option} {path} is a file, not a folder")
        if not directory and path.is_dir():
            raise AdaGrowError(f"{option} {path} is a folder; give a file name")
        if not os.access(path, os.W_OK):
            raise AdaGrowError(f"{option} {path} is not writable")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise AdaGrowError(f"{option} {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AdaGrowError(f"{option} {path} cannot be created: {parent} is not writable")
