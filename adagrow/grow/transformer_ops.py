"""Width and depth growth of the growable Transformers, new-parameter init and optimizer-slot fill.

A growth builds a model of the grown spec and copies the old weights in (``regrow``).  Because the
models keep every old tensor in the *leading* slice of its successor (see
``adagrow.models.transformer``), one rule covers every tensor: ``new[:n0, :n1, …] = old``; what lies
outside that slice is new and is initialised by the chosen scheme.  The copy is reported as a
``param_map`` (new parameter -> (old parameter, slices)) for the runner's ``transfer_state``, which
carries optimizer state into the same slices and zero-fills the rest (Table 3-16's best).

Initialisation schemes for new values (Table 3-15):

* ``normal<σ>`` (default ``normal0.1``, the thesis' choice), ``uniform<a>`` (U(−a, a)), ``zeros``;
* ``fit_global``: a Gaussian with the mean and std of the tensor the new values continue (for a new
  layer: the same tensor of the layer it is inserted after);
* ``fit_left`` / ``fit_center`` / ``fit_right``: the same, fitted only to the first / middle / last
  head-sized band (64 features) of that tensor (our reading of the thesis' "local fit" options);
* ``inherit``: the model's own initialiser (truncated N(0, 0.02), LayerNorm γ=1, β=0);
* local learning (``local_learning``) starts from ``normal0.1`` and then trains only the new values
  for a few Adam steps (``train_new_values``).

Note: LayerNorm re-normalises over the grown hidden size, so even all-zero new slots change the
function slightly; growth here is not function-preserving, by the thesis' design.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.errors import AdaGrowError
from adagrow.models.transformer import HEAD_DIM, GrowableTransformer, TransformerSpec, build_transformer

INIT_SCHEMES = "zeros | uniform<a> | normal<σ> | fit_global | fit_left | fit_center | fit_right | inherit"
_NUMBERED = re.compile(r"(uniform|normal)(\d*\.?\d+(?:e-?\d+)?)")
_FIXED = ("zeros", "fit_global", "fit_left", "fit_center", "fit_right", "inherit")

ParamMap = dict[nn.Parameter, tuple[nn.Parameter, tuple[slice, ...] | None]]


def check_scheme(scheme: str) -> None:
    """Raise :class:`AdaGrowError` unless ``scheme`` names an init scheme."""
    if scheme not in _FIXED and not _NUMBERED.fullmatch(scheme):
        raise AdaGrowError(f"unknown init scheme {scheme!r}; known: {INIT_SCHEMES}")


def _band(ref: torch.Tensor, where: str) -> torch.Tensor:
    """A head-sized band of ``ref`` along its last dimension of at least ``HEAD_DIM`` features."""
    dims = [d for d in range(ref.dim()) if ref.shape[d] >= HEAD_DIM]
    if not dims:
        return ref
    dim, n = dims[-1], ref.shape[dims[-1]]
    start = {"fit_left": 0, "fit_center": (n - HEAD_DIM) // 2, "fit_right": n - HEAD_DIM}[where]
    return ref.narrow(dim, start, HEAD_DIM)


def new_values(scheme: str, shape: torch.Size, generator: torch.Generator,
               ref: torch.Tensor | None = None) -> torch.Tensor:
    """Values (float32, CPU) for new slots of ``shape`` under ``scheme``.

    ``ref`` is the tensor the new values continue, needed by the ``fit_*`` schemes.
    """
    m = _NUMBERED.fullmatch(scheme)
    if m:
        scale = float(m.group(2))
        if m.group(1) == "normal":
            return torch.randn(shape, generator=generator) * scale
        return (torch.rand(shape, generator=generator) * 2 - 1) * scale
    if scheme == "zeros":
        return torch.zeros(shape)
    if scheme.startswith("fit_"):
        if ref is None:
            raise AdaGrowError(f"init {scheme!r} needs an existing tensor to fit")
        sample = (ref if scheme == "fit_global" else _band(ref, scheme)).detach().float().cpu().flatten()
        std = float(sample.std()) if sample.numel() > 1 else 0.0
        return torch.randn(shape, generator=generator) * std + float(sample.mean())
    raise AdaGrowError(f"unknown init scheme {scheme!r}; known: {INIT_SCHEMES}")


@dataclass
class Growth:
    """The result of one growth step."""

    model: GrowableTransformer
    param_map: ParamMap  # new parameter -> (old parameter, slices of the new one it fills; None = whole)
    new_masks: dict[str, torch.Tensor]  # parameter name -> bool mask of its new values (absent: none new)


@torch.no_grad()
def regrow(old: GrowableTransformer, spec: TransformerSpec, source: Callable[[str], str | None],
           init: str, generator: torch.Generator,
           reference: Callable[[str], str | None] | None = None) -> Growth:
    """A model of ``spec`` whose parameter ``name`` continues ``old``'s parameter ``source(name)``.

    Old values fill the leading slice; the rest (and parameters whose source is None) get ``init``.
    ``reference(name)`` names the old tensor the ``fit_*`` schemes fit to (default: the source).
    """
    check_scheme(init)
    reference = reference or source
    ref_param = next(old.parameters())
    model = build_transformer(spec, generator).to(device=ref_param.device, dtype=ref_param.dtype)
    model.train(old.training)
    old_params = dict(old.named_parameters())
    param_map: ParamMap = {}
    masks: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        src = old_params.get(source(name) or "")
        if src is not None and src.shape == p.shape:
            p.copy_(src)
            param_map[p] = (src, None)
            continue
        mask = torch.ones(p.shape, dtype=torch.bool, device=p.device)
        slices = tuple(slice(0, n) for n in src.shape) if src is not None else None
        if slices is not None:
            mask[slices] = False
        if init != "inherit":
            ref = old_params.get(reference(name) or "")
            p.copy_(torch.where(mask, new_values(init, p.shape, generator, ref).to(p), p))
        if src is not None:
            p[slices] = src
            param_map[p] = (src, slices)
        masks[name] = mask
    return Growth(model, param_map, masks)


def widen(model: GrowableTransformer, init: str, generator: torch.Generator, heads: int = 1) -> Growth:
    """Add ``heads`` attention heads: every layer, embedding, LayerNorm, MLP and the head widen."""
    return regrow(model, model.spec.grown(heads=heads), lambda name: name, init, generator)


def deepen(model: GrowableTransformer, after: int, init: str, generator: torch.Generator) -> Growth:
    """Insert a new layer right after layer ``after`` (0-based); later layers shift by one.

    The ``fit_*`` schemes fit the new layer's tensors to those of layer ``after``.
    """
    if not 0 <= after < model.spec.depth:
        raise AdaGrowError(f"cannot insert after layer {after} of a {model.spec.depth}-layer model")
    new_index = after + 1

    def renumber(name: str, to_index: Callable[[int], int | None]) -> str | None:
        parts = name.split(".")
        if parts[0] != "blocks":
            return name
        i = to_index(int(parts[1]))
        return None if i is None else ".".join([parts[0], str(i), *parts[2:]])

    def source(name: str) -> str | None:
        return renumber(name, lambda i: None if i == new_index else (i if i < new_index else i - 1))

    def reference(name: str) -> str | None:
        return renumber(name, lambda i: after if i == new_index else None)

    return regrow(model, model.spec.grown(depth=1), source, init, generator, reference)


def layer_importance(model: GrowableTransformer, norm: str = "norm2") -> list[float]:
    """Mean |γ| of each layer's LayerNorm ``norm`` ("norm2": after attention, the thesis' text;
    "norm1": before attention, the released code's ``layers.{i}.0.norm``)."""
    return [float(getattr(block, norm).weight.detach().abs().mean()) for block in model.blocks]


def fill_new_optimizer_slots(optimizer: torch.optim.Optimizer, param_map: ParamMap, scheme: str,
                             generator: torch.Generator) -> int:
    """Overwrite the zero-filled new slots of carried optimizer state with ``scheme`` values.

    For Table 3-16's "inherit, then uniform / Gaussian new slots" options, after
    ``adagrow.engine.optim.transfer_state``.  Second moments (Adam's ``exp_avg_sq``) must stay
    non-negative, so they receive absolute values.  Returns the number of state tensors touched.
    """
    touched = 0
    for p, (_, slices) in param_map.items():
        if slices is None or p not in optimizer.state:
            continue
        new = torch.ones(p.shape, dtype=torch.bool, device=p.device)
        new[slices] = False
        for key, buf in optimizer.state[p].items():
            if torch.is_tensor(buf) and buf.shape == p.shape:
                values = new_values(scheme, p.shape, generator).to(buf)
                if key.endswith("_sq"):
                    values = values.abs()
                buf.copy_(torch.where(new, values, buf))
                touched += 1
    return touched


def train_new_values(model: nn.Module, masks: dict[str, torch.Tensor],
                     batches: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int, lr: float = 1e-3) -> None:
    """Local-learning init (Table 3-15): a few Adam steps that move only the new values.

    Old values get zero gradients, and Adam's update of a slot whose gradient was always zero is
    exactly zero, so they stay bit-identical.
    """
    params = dict(model.named_parameters())
    trainable = [params[name] for name in masks]
    frozen = [p for name, p in params.items() if name not in masks]
    for p in frozen:
        p.requires_grad_(False)
    hooks = [params[name].register_hook(lambda g, m=mask: g * m) for name, mask in masks.items()]
    opt = torch.optim.Adam(trainable, lr=lr)
    try:
        for step, (x, y) in enumerate(batches):
            if step >= steps:
                break
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    finally:
        for h in hooks:
            h.remove()
        for p in frozen:
            p.requires_grad_(True)
