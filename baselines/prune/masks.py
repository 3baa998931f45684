"""Weight masks: choosing them from scores (global, per layer, per row, N:M) and keeping them applied.

A masked layer keeps its ``weight`` Parameter (the same object, so the optimizer keeps its state) and
gets a buffer ``weight_mask`` plus a forward pre-hook that zeroes the masked weights before every
forward: whatever an optimizer step wrote there (momentum, weight decay) is undone before it can act.
Masks therefore stay applied through fine-tuning and are part of ``model.state_dict()``, so a
checkpoint resumes them; ``restore_masks`` re-registers them (as ones) on a freshly built model
before the checkpoint's values are loaded.  (``torch.nn.utils.prune`` would do the same, but its
``weight`` is a computed tensor, which ``copy.deepcopy`` of the model refuses.)

N:M masks follow the input dimension: for a Linear, M consecutive input columns of a row; for a
convolution, M consecutive input channels at the same kernel position (OBC's columns-last order),
which is the layout semi-structured kernels need.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from adagrow.errors import AdaGrowError

SCOPES = ("global", "layer", "row")
_NM = re.compile(r"([0-9]+):([0-9]+)")


def parse_scope(scope: str) -> tuple[int, int] | None:
    """``"2:4"`` -> (2, 4): keep N of every M weights (NVIDIA's convention); None for global/layer/row."""
    if scope in SCOPES:
        return None
    m = _NM.fullmatch(scope)
    if not m or not 0 < int(m.group(1)) < int(m.group(2)):
        raise AdaGrowError(f"--scope {scope!r}: use global, layer, row or N:M with 0 < N < M (e.g. 2:4)")
    return int(m.group(1)), int(m.group(2))


def prunable_layers(model: nn.Module, skip: nn.Module | None) -> dict[str, nn.Module]:
    """Conv2d and Linear layers by name, except ``skip`` (the classifier)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not skip}


# ---- choosing masks from scores (score: a tensor of the weight's shape; low = pruned) -------------------
def kth_threshold(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th smallest value (k >= 1)."""
    return values.flatten().kthvalue(k).values


def lowest_mask(score: torch.Tensor, ratio: float) -> torch.Tensor:
    """Keep all but the ``round(ratio * n)`` lowest entries of ``score`` (ties broken by position): the
    count ``torch.nn.utils.prune`` takes (``_compute_nparams_toprune``) for a global ranking."""
    n = score.numel()
    k = round(ratio * n)
    mask = torch.ones(n, dtype=torch.bool, device=score.device)
    if k:
        mask[score.flatten().argsort(stable=True)[:k]] = False
    return mask.view_as(score)


def global_masks(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """One ranking over every layer's entries."""
    names = list(scores)
    flat = lowest_mask(torch.cat([scores[n].flatten() for n in names]), ratio)
    out, start = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = flat[start:start + size].view_as(scores[n])
        start += size
    return out


def layer_mask(score: torch.Tensor, ratio: float) -> torch.Tensor:
    """Wanda's per-layer rule (``compute_mask(..., "layer")``, ``prune_magnitude``): the threshold is the
    value at position ``int(n * ratio)`` of the sorted scores and every score at most it goes, so
    ``int(n * ratio) + 1`` entries go when the scores are distinct, and ties at the threshold go together."""
    threshold = score.flatten().sort().values[int(score.numel() * ratio)]
    return score > threshold


def row_mask(score: torch.Tensor, ratio: float) -> torch.Tensor:
    """Each output row (first dimension) loses the same share, Wanda's per-row rule: the first
    ``int(row size * ratio)`` of the row stably sorted (ties: the earlier position goes)."""
    rows = score.reshape(score.shape[0], -1)
    k = int(rows.shape[1] * ratio)
    mask = torch.ones_like(rows, dtype=torch.bool)
    if k:
        mask.scatter_(1, rows.argsort(dim=1, stable=True)[:, :k], False)
    return mask.view_as(score)


def columns_last(t: torch.Tensor) -> torch.Tensor:
    """A weight-shaped tensor as rows × input columns, input channels innermost (convs: kh, kw, C)."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1) if t.dim() == 4 else t


def nm_mask(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the ``n`` highest of every ``m`` consecutive input weights of each row (2:4: two of four)."""
    cols = columns_last(score)
    groups = cols.reshape(cols.shape[0], -1, m)
    mask = torch.ones_like(groups, dtype=torch.bool)
    mask.scatter_(2, groups.argsort(dim=2, stable=True)[..., :m - n], False)
    mask = mask.reshape(cols.shape)
    if score.dim() == 4:
        o, c, kh, kw = score.shape
        mask = mask.reshape(o, kh, kw, c).permute(0, 3, 1, 2)
    return mask


def nm_fits(weight: torch.Tensor, m: int) -> bool:
    """N:M groups run along input channels: they need a multiple of M of them."""
    return weight.shape[1] % m == 0


def choose_masks(scores: dict[str, torch.Tensor], scope: str, ratio: float) -> dict[str, torch.Tensor]:
    nm = parse_scope(scope)
    if nm is not None:
        return {name: nm_mask(s, *nm) for name, s in scores.items()}
    if scope == "global":
        return global_masks(scores, ratio)
    if scope == "row":
        return {name: row_mask(s, ratio) for name, s in scores.items()}
    return {name: layer_mask(s, ratio) for name, s in scores.items()}


def requested_sparsity(scope: str, ratio: float) -> float:
    nm = parse_scope(scope)
    return 1 - nm[0] / nm[1] if nm else ratio


# ---- keeping masks applied -------------------------------------------------------------------------
def _zero_masked(module: nn.Module, args) -> None:
    with torch.no_grad():
        module.weight.mul_(module.weight_mask)


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        layer = modules[name]
        layer.register_buffer("weight_mask", mask.to(layer.weight.dtype))
        layer.register_forward_pre_hook(_zero_masked)
        _zero_masked(layer, ())


def restore_masks(model: nn.Module, names: list[str]) -> nn.Module:
    """Register all-ones masks on ``names`` (resume: the checkpoint then loads the saved masks)."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise AdaGrowError(f"cannot resume: the model has no layer(s) {', '.join(missing[:3])}")
    apply_masks(model, {n: torch.ones_like(modules[n].weight) for n in names})
    return model


def masked_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if "weight_mask" in m._buffers}


def fold_masks(model: nn.Module) -> nn.Module:
    """A copy with every mask made permanent (zeros in a plain layer, no mask, no hook): the deploy model."""
    model = copy.deepcopy(model)
    for m in masked_layers(model).values():
        with torch.no_grad():
            m.weight.mul_(m.weight_mask)
        del m._buffers["weight_mask"]
        for key, hook in list(m._forward_pre_hooks.items()):
            if hook is _zero_masked:
                del m._forward_pre_hooks[key]
    return model


def mask_sparsity(model: nn.Module) -> dict[str, float | int]:
    """Share of zeros in the masked layers, and of all parameters."""
    layers = masked_layers(model)
    zeros = sum(int((m.weight_mask == 0).sum()) for m in layers.values())
    size = sum(m.weight_mask.numel() for m in layers.values())
    total = sum(p.numel() for p in model.parameters())
    return {"achieved_sparsity": zeros / max(size, 1), "pruned_weights": zeros, "prunable_weights": size,
            "sparsity_of_all_params": zeros / max(total, 1), "masked_layers": len(layers)}
