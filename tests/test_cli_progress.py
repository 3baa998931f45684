"""What a run prints while it trains: a tqdm bar on a terminal; in a log (no terminal), a line every
few seconds with epoch, step, loss, speed and time left, so a log never stays silent for minutes."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from adagrow.engine.loop import train_one_epoch
from adagrow.engine.progress import BarProgress, EvalLineProgress, LineProgress, announce, epoch_progress
from adagrow.errors import AdaGrowError


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_line_progress_prints_once_per_interval_with_speed_and_time_left():
    clock, lines = Clock(), []
    progress = LineProgress("epoch 2/3", steps=10, every=30, log=lines.append, clock=clock)
    for step in range(1, 11):  # 10 steps of 8 images, 10 s each
        clock.now += 10
        progress.update(step=10 + step, total_steps=30, seen=8 * step, loss_sum=torch.tensor(4.0 * step))
    assert lines == [
        "  epoch 2/3  step 3/10  loss 0.5000  0.80 img/s  left: epoch 1m10s, training 2m50s",
        "  epoch 2/3  step 6/10  loss 0.5000  0.80 img/s  left: epoch 40s, training 2m20s",
        "  epoch 2/3  step 9/10  loss 0.5000  0.80 img/s  left: epoch 10s, training 1m50s",
    ]


def test_meta_training_lines_count_iterations_not_images():
    """M-NAS's meta-training took ~1.3 s per iteration: its lines said "0 img/s".  One iteration per 1.25 s: 0.80 it/s."""
    clock, lines = Clock(), []
    progress = LineProgress("meta-training", steps=800, every=30, log=lines.append, clock=clock, unit="it")
    for it in range(1, 25):
        clock.now += 1.25
        progress.update(step=100 + it, total_steps=800, seen=it, loss_sum=torch.tensor(1.5 * it))
    assert lines == ["  meta-training  step 24/800  loss 1.5000  0.80 it/s  left: epoch 16m10s, training 14m05s"]  # 776 and 676 × 1.25 s


def test_meta_test_lines_count_episodes_not_batches():
    """M-NAS's meta-test scores 600 episodes at ~0.25 s each: 4 episodes per second, 590 left × 0.25 s = 2m28s."""
    clock, lines = Clock(), []
    progress = EvalLineProgress("evaluating meta-test", steps=600, every=2.5, log=lines.append, clock=clock,
                                step="episode", unit="ep")
    for episode in range(1, 11):
        clock.now += 0.25
        progress.update(seen=episode)
    assert lines == ["  evaluating meta-test  episode 10/600  4.00 ep/s  left 2m28s"]


def test_a_log_gets_lines_and_a_terminal_gets_a_bar(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(epoch_progress(0, 1, 5, stream=io.StringIO()), LineProgress)
    bar = epoch_progress(0, 1, 5, stream=Terminal())
    assert isinstance(bar, BarProgress)
    bar.close()
    monkeypatch.setenv("ADAGROW_PROGRESS_EVERY", "2.5")
    assert epoch_progress(0, 1, 5, stream=io.StringIO()).every == 2.5
    monkeypatch.setenv("ADAGROW_PROGRESS_EVERY", "soon")
    with pytest.raises(AdaGrowError, match="ADAGROW_PROGRESS_EVERY"):
        epoch_progress(0, 1, 5, stream=io.StringIO())


def test_training_loop_feeds_the_log_lines():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(5)]
    lines = []
    progress = LineProgress("epoch 1/1", steps=5, every=0, log=lines.append)
    train_one_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.1), step=0, total_steps=5, base_lr=0.1,
                    progress=progress)
    assert [line.split("  ")[2] for line in lines] == [f"step {i}/5" for i in range(1, 6)]
    assert all("loss " in line and "img/s" in line for line in lines)


def test_announce_says_how_long_a_slow_step_took(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("adagrow.engine.progress.time.monotonic", clock)
    lines = []
    with announce("loading cifar10", lines.append, slow=5):
        clock.now += 3
    with announce("loading imdb", lines.append, slow=5):
        clock.now += 125
    assert lines == ["loading cifar10 ...", "loading imdb ...", "loading imdb: done in 2m05s"]
