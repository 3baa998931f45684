"""The public Python API for growable CNNs: build at an architecture, fuse, profile.

>>> from adagrow.api import create_model, fuse, profile
>>> model = create_model("resnet", "1-2-2-1", num_classes=10)   # "0-0-0" is the empty seed
>>> model.grow_depth(); model.grow_width()                       # policy-driven growth steps
>>> profile(fuse(model), (3, 32, 32))                            # {"params": ..., "macs": ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from adagrow.measure.profile import profile as _profile
from adagrow.models.cnn import GrowableCNN
from adagrow.models.reparam import fuse_model


def create_model(family: str, arch: str | Sequence[int], num_classes: int, in_chans: int = 3, **kw: Any) -> nn.Module:
    """A growable model of ``family`` at ``arch``.

    CNNs (vgg | resnet | bottleneck | mobilenetv3): ``arch`` is layers per block.  Transformers
    (vit | bert): ``arch`` is like ``"D4W384"``; pass ``input_size=(C, H, W)`` for ViT (default
    (in_chans, 32, 32)) or ``vocab_size`` / ``max_len`` for BERT
    (see :func:`adagrow.models.transformer.create_transformer`).

    ``arch`` is layers per block, e.g. ``"1-2-2"`` or ``"ResNet-1-2-2-1"``; a malformed string raises
    :class:`~adagrow.errors.ArchitectureError`.  Keyword arguments go to
    :class:`~adagrow.models.cnn.GrowableCNN` (``max_branch_kernel``, ``policy``, ``seed``, ...).
    """
    if family.lower() in ("vit", "bert"):
        from adagrow.models.transformer import create_transformer

        if family.lower() == "vit":
            kw.setdefault("input_size", (in_chans, 32, 32))
        return create_transformer(family.lower(), arch, num_classes, **kw)
    return GrowableCNN(family, arch if isinstance(arch, str) else tuple(arch), num_classes, in_chans, **kw)


def fuse(model: nn.Module) -> nn.Module:
    """The plain deploy model: a copy in eval mode with every re-parameterisable unit fused."""
    return fuse_model(model)


def profile(model: nn.Module, input_size: Sequence[int]) -> dict[str, int]:
    """``{"params", "macs"}`` of ``model`` as given at ``input_size`` (C, H, W), batch 1.

    Pass ``fuse(model)`` for deploy numbers.  For a growable CNN the thesis' own convention is added
    as ``thesis_params`` / ``thesis_macs`` (see :mod:`adagrow.models.cnn_count`).
    """
    out = _profile(model, tuple(input_size))
    if isinstance(model, GrowableCNN) and model.units(growable_only=False):  # not yet fused
        from adagrow.models.cnn_count import thesis_macs, thesis_params

        out.update(thesis_params=thesis_params(model), thesis_macs=thesis_macs(model, tuple(input_size)))
    return out
