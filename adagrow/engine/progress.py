"""Training progress: a tqdm bar on a terminal, a plain line every N seconds anywhere else.

A run written to a log file (``nohup``, a batch job, ``nox -s mnist > log``) cannot redraw a bar, and
tqdm then prints nothing at all: a CPU smoke run used to be silent for minutes.  ``epoch_progress``
therefore picks a bar when stdout is a terminal and :class:`LineProgress` otherwise, which prints
epoch, step, mean loss, images per second and the time left, every ``$ADAGROW_PROGRESS_EVERY`` seconds
(default 30).  Both take the same ``update`` call from the training loop.

Every line a run prints (:func:`log_line`, the default ``log`` of the runner) starts with the time of
day, as HF, Lightning and timm logs do, so a log shows when each epoch ended and how long a step took.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from adagrow.errors import AdaGrowError

DEFAULT_EVERY = 30.0  # seconds between two progress lines in a log


def stamp(message: str, now: float | None = None) -> str:
    """``message`` with the local time of day in front (``12:03:04 epoch 1/8 ...``); leading blank lines stay
    in front of the stamp, continuation lines are indented under the message."""
    body = message.lstrip("\n")
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    return "\n" * (len(message) - len(body)) + f"{clock} " + body.replace("\n", "\n" + " " * (len(clock) + 1))


def log_line(message: str) -> None:
    """Print one message of a run, time-stamped (the default ``log`` of the runner and the progress lines)."""
    print(stamp(message), flush=True)


def progress_every() -> float:
    """Seconds between progress lines: ``$ADAGROW_PROGRESS_EVERY``, else 30."""
    raw = os.environ.get("ADAGROW_PROGRESS_EVERY", "").strip()
    if not raw:
        return DEFAULT_EVERY
    try:
        value = float(raw)
    except ValueError:
        raise AdaGrowError(f"$ADAGROW_PROGRESS_EVERY must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise AdaGrowError(f"$ADAGROW_PROGRESS_EVERY must be >= 0 seconds, got {raw!r}")
    return value


def epoch_progress(epoch: int, epochs: int, steps: int, *, stream=None, log: Callable[[str], None] = log_line,
                   desc: str | None = None, unit: str = "img"):
    """The progress reporter of one training epoch (``epoch`` counts from 0), for ``stream`` (stdout); ``desc``
    replaces "epoch 1/1" and ``unit`` what ``seen`` counts (meta-training: "meta-training", iterations)."""
    stream = sys.stdout if stream is None else stream
    desc = desc or f"epoch {epoch + 1}/{epochs}"
    if _is_terminal(stream):
        return BarProgress(steps, desc, stream)
    return LineProgress(desc, steps, every=progress_every(), log=log, unit=unit)


def format_rate(per_second: float, unit: str) -> str:
    """``850 img/s``; below 10 per second two decimals (a meta-iteration takes over a second: not "0 it/s")."""
    return f"{per_second:,.0f} {unit}/s" if per_second >= 10 else f"{per_second:.2f} {unit}/s"


def eval_progress(what: str, steps: int, *, stream=None, log: Callable[[str], None] = print, step: str = "batch",
                  unit: str = "img"):
    """The progress reporter of one evaluation pass (``what``: "val", "test"): the same bar or lines as
    training gets, so a long evaluation on a CPU is never silent for minutes.  ``step`` names what ``steps``
    counts and ``unit`` what ``seen`` counts (M-NAS's meta-test: episodes, "ep")."""
    stream = sys.stdout if stream is None else stream
    desc = f"evaluating {what}"
    if _is_terminal(stream):
        return BarProgress(steps, desc, stream)
    return EvalLineProgress(desc, steps, every=progress_every(), log=log, step=step, unit=unit)


@contextmanager
def announce(what: str, log: Callable[[str], None] = log_line, slow: float = 5.0) -> Iterator[None]:
    """Say that ``what`` starts, and when it took more than ``slow`` seconds, how long it took
    (loading a dataset the first time can take minutes: extraction, decoding, tokenizing)."""
    log(f"{what} ...")
    start = time.monotonic()
    yield
    took = time.monotonic() - start
    if took > slow:
        log(f"{what}: done in {format_duration(took)}")


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class BarProgress:
    """A tqdm bar that disappears when the epoch ends (the epoch's summary line replaces it)."""

    def __init__(self, steps: int, desc: str, stream):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=steps, desc=desc, leave=False, dynamic_ncols=True, file=stream)

    def update(self, **_) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class LineProgress:
    """One line every ``every`` seconds: ``epoch 3/12  step 120/500  loss 0.4123  850 img/s  left: epoch
    45s, training 25m10s`` ("training" counts the remaining training steps of the run at this epoch's
    speed; evaluation and growth come on top)."""

    def __init__(self, desc: str, steps: int, *, every: float, log: Callable[[str], None] = log_line,
                 clock: Callable[[], float] = time.monotonic, unit: str = "img"):
        self.desc, self.steps, self.every, self.log, self.clock, self.unit = desc, steps, every, log, clock, unit
        self.start = self.last = clock()
        self.done = 0

    def update(self, *, step: int, total_steps: int, seen: int, loss_sum: torch.Tensor) -> None:
        """Called after each training step; ``loss_sum`` is only read back (a GPU sync) when a line is due."""
        self.done += 1
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        per_step = elapsed / self.done
        loss = loss_sum.item() / max(seen, 1)
        self.log(f"  {self.desc}  step {self.done}/{self.steps}  loss {loss:.4f}  {format_rate(seen / elapsed, self.unit)}  "
                 f"left: epoch {format_duration(per_step * (self.steps - self.done))}, "
                 f"training {format_duration(per_step * (total_steps - step))}")

    def close(self) -> None:
        pass


class EvalLineProgress:
    """One line every ``every`` seconds of an evaluation pass: ``evaluating val  batch 12/40  850 img/s  left 45s``."""

    def __init__(self, desc: str, steps: int, *, every: float, log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic, step: str = "batch", unit: str = "img"):
        self.desc, self.steps, self.every, self.log, self.clock = desc, steps, every, log, clock
        self.step, self.unit = step, unit
        self.start = self.last = clock()
        self.done = 0

    def update(self, *, seen: int, **_) -> None:
        self.done += 1
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        left = elapsed / self.done * (self.steps - self.done)
        rate = format_rate(seen / elapsed, self.unit)
        self.log(f"  {self.desc}  {self.step} {self.done}/{self.steps}  {rate}  left {format_duration(left)}")

    def close(self) -> None:
        pass


def format_duration(seconds: float) -> str:
    """``45s``, ``2m05s``, ``3h07m``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
