"""Seeds derived from (run seed, epoch) alone, so a resumed run replays the same batches."""

from __future__ import annotations

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A well-mixed 63-bit seed for one (seed, epoch, stream); streams separate independent uses."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 | int(state[1])) & ((1 << 63) - 1)


def generator(seed: int) -> torch.Generator:
    """A CPU generator (CPU so the same seed gives the same numbers on every device)."""
    return torch.Generator().manual_seed(seed)
