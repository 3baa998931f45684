"""One process per run directory: an exclusive ``flock`` on ``<run dir>/job.lock``.

Two processes running the same configuration on one ``--output`` would share a run directory: both
would train, both would checkpoint to one ``last.pt`` and both would append an ``ok`` record.  Whoever
runs a configuration therefore holds this lock while it runs (``run_dir_lock``; suite jobs take it with
``claim``, which the runner inside them then reuses).  The kernel (or the NFS lock manager) drops the
lock of a process that died, so a stale lock never blocks anyone.  The lock file says who holds it
(host, pid, since when), for the message of the process that is turned away.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adagrow.errors import AdaGrowError

LOCK = "job.lock"  # in the run directory
_HELD: set[Path] = set()  # run directories this process holds the lock of (through ``claim``)


@contextmanager
def claim(run_dir: Path, wait_s: float = 2.0) -> Iterator[bool]:
    """Hold the run directory's lock for the block (True), or yield False when another holder has it.
    It waits a moment first: ``adagrow suite --status`` takes the lock for an instant to look.  Not
    re-entrant: a second ``claim`` of a held directory, even in this process, yields False."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise AdaGrowError(f"--output {run_dir.parent.parent} cannot be written: {exc.strerror or exc}") from None
    key = run_dir.resolve()
    try:
        deadline = time.monotonic() + wait_s
        while not _try_lock(fd, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(0.1)
        _say_who(fd)
        _HELD.add(key)
        try:
            yield True
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process while the block runs, or refuse in one line naming the
    process that holds it.  A directory this process already holds (a suite job's ``claim``) is reused."""
    if run_dir.resolve() in _HELD:
        yield
        return
    with claim(run_dir) as claimed:
        if not claimed:
            raise AdaGrowError(f"another process ({holder(run_dir)}) is running this configuration in {run_dir}; "
                               "wait for it to finish (running it again then returns its record), or give this run "
                               "another --output or --tag")
        yield


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:  # another process holds it
        return False
    except OSError as exc:  # e.g. Lustre mounted without -o flock
        raise AdaGrowError(f"the file system of --output refuses locks ({exc.strerror or exc}), which concurrent runs "
                           "need: use an --output where flock works (Lustre: mount with -o flock)") from None


def _say_who(fd: int) -> None:
    """Write the holder's host, pid and start time into the lock file (best effort: only a message uses it)."""
    note = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
    except OSError:
        pass


def holder(run_dir: Path) -> str:
    """``pid 123 on host, since 2025-01-01 10:00:00`` of the lock's holder, as far as its file says."""
    try:
        note = json.loads((run_dir / LOCK).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        note = {}
    return f"pid {note.get('pid', '?')} on {note.get('host', '?')}, since {note.get('since', '?')}"


def is_running(run_dir: Path) -> bool:
    """Whether a live process holds the run directory's lock."""
    if not (run_dir / LOCK).exists():
        return False
    fd = os.open(run_dir / LOCK, os.O_RDONLY)
    try:
        return not _try_lock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)
