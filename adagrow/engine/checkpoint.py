"""Checkpoints written atomically, with every RNG state needed for an exact resume, and read safely.

Reading never runs code from the file (``load_checkpoint``).  A ``.pt`` file is a pickle, and a pickle
can name any function to call (``os.system``); ``torch.load(weights_only=False)`` would call it.  Every
checkpoint is therefore read with ``weights_only=True``: torch's restricted unpickler builds tensors,
containers and numbers only, plus the globals we allow explicitly.  Which globals a file names is read
first, without running anything (``torch.serialization.get_unsafe_globals_in_checkpoint``), and allowed
only when it is data (numpy arrays and dtypes of RNG states, ``random.Random``, torch's version string)
or a *class* of a model: an ``nn.Module`` (or a dataclass, enum or transformers config it holds) from
torch, torchvision, timm, transformers, torch-pruning or this repository.  A class is only built from
its saved attributes; of functions, only the tensor math of ``torch.nn.functional`` / ``torch._C._nn``
(an activation a model holds), never any other function of those packages (``torch.load``...).
A file naming anything else is refused in one line before it is unpickled.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import os
import random
import re
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
    # per process: two processes saving the same file never share (and delete) one temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename: a crash never leaves a renamed, empty last.pt
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# Packages whose model classes a checkpoint of this harness may hold (deploy.pt pickles the module itself).
TRUSTED_PACKAGES = ("torch", "torchvision", "timm", "transformers", "torch_pruning", "adagrow", "baselines")
# Data types outside those classes: RNG states (numpy arrays, random.Random) and torch's version string.
DATA_GLOBALS = frozenset({"numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct", "numpy.ndarray",
                          "numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar",
                          "numpy.dtype", "random.Random", "torch.torch_version.TorchVersion"})
_NUMPY_DTYPE = re.compile(r"numpy\.dtypes\.\w+DType")
# Activation functions a model may hold as an attribute (transformers' GELUActivation holds gelu): tensor
# math only; these two namespaces have no file, process or import function.
TENSOR_FUNCTION_MODULES = ("torch._C._nn", "torch.nn.functional")


def load_checkpoint(path: Path, *, what: str = "checkpoint", fix: str = "delete it to start the run afresh",
                    map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint without running code from it; refuse, in one line naming the file, a file
    that is missing, not a checkpoint, or names anything but data and model classes.  ``what`` names the
    file in messages (``--pretrained``), ``fix`` says what to do about a corrupt one (a resume checkpoint:
    delete it; a user's own model: nothing of the kind)."""
    path = Path(path)
    if path.is_dir():
        raise AdaGrowError(f"{what} {path} is a directory, not a checkpoint file")
    if not path.exists():
        raise AdaGrowError(f"no {what} at {path}")
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - not a torch zip file at all: truncated, or something else
        raise AdaGrowError(_unreadable(what, path, exc, fix)) from None
    allowed = []
    for name in names:
        obj = _allowed_global(name)
        if obj is None:
            raise AdaGrowError(f"{what} {path} was not loaded: it refers to {name}, which no checkpoint of this harness "
                               "holds (only tensors, numbers and model classes are loaded; a file from elsewhere?)")
        allowed.append(obj)
        if name == "numpy.dtype":  # a dtype is built as an instance of its own class (numpy.dtypes.UInt32DType)
            allowed += _numpy_dtype_classes()
    try:
        with torch.serialization.safe_globals(allowed):
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        raise AdaGrowError(_unreadable(what, path, exc, fix)) from None
    if not isinstance(payload, dict):
        raise AdaGrowError(f"{what} {path} is not a checkpoint of this harness (it holds a {type(payload).__name__})")
    return payload


def _numpy_dtype_classes() -> list[type]:
    import numpy as np

    return [c for c in vars(np.dtypes).values() if isinstance(c, type) and issubclass(c, np.dtype)]


def _unreadable(what: str, path: Path, exc: Exception, fix: str) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    # torch's weights-only refusal is a paragraph; its one telling line names what could not be built
    telling = [line for line in lines if line.startswith(("WeightsUnpickler error", "Can only build", "Unsupported"))]
    detail = (telling[-1] if telling else lines[0] if lines else "")[:300]
    return f"{what} {path} is corrupt or unreadable ({type(exc).__name__}{': ' + detail if detail else ''})" + (
        f"; {fix}" if fix else "")


def _allowed_global(name: str) -> Any:
    """The object ``name`` refers to when a checkpoint may hold it (see the module's docstring), else None.
    Nothing outside the trusted packages is imported: importing a module can run code of its own."""
    module, _, attr = name.rpartition(".")
    if not (name in DATA_GLOBALS or _NUMPY_DTYPE.fullmatch(name) or module.split(".")[0] in TRUSTED_PACKAGES):
        return None
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None
    if name in DATA_GLOBALS or _NUMPY_DTYPE.fullmatch(name):
        return obj
    if not isinstance(obj, type):  # a function of a trusted package can still do anything (torch.load)...
        return obj if module in TENSOR_FUNCTION_MODULES and callable(obj) else None  # ...but not these
    if issubclass(obj, (torch.nn.Module, enum.Enum)) or dataclasses.is_dataclass(obj):
        return obj
    # a transformers model holds its configuration object
    return obj if any(c.__name__ == "PretrainedConfig" for c in obj.__mro__) else None
