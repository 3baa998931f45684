"""Checkpoints written atomically, with every RNG state needed for an exact resume."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adagrow.errors import AdaGrowError


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a half-written file, and an
    interrupt (Ctrl-C, SIGTERM) during the save leaves no temporary copy either."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        # Our own file: it holds optimizer state, RNG states and config objects, so not weights-only.
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise AdaGrowError(f"no checkpoint at {path}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise AdaGrowError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
                           "delete it to start the run afresh") from None
