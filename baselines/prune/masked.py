"""What magnitude and Wanda pruning share: score every prunable weight, mask the lowest, keep the masks.

The two differ only in the score (|W| vs |W|·‖X‖).  The masked model is dense: its params and MACs
are the dense model's and its latency is the dense latency, so the record says ``physical: false``.
With an N:M scope of 2:4 on CUDA, the deploy model's Linear layers run PyTorch's semi-structured
sparse kernels where the device supports them (fp16, compute capability ≥ 8.0); otherwise the record
says ``sparse_kernel: simulated`` and why, and claims no speed-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adagrow.engine.method import RunContext
from baselines.prune import masks as M
from baselines.prune.pipeline import PipelineOptions, PruningPipeline, classifier


@dataclass(frozen=True)
class MaskOptions(PipelineOptions):
    # Which weights are ranked together: global (all layers), layer, row (each output row of each layer
    # loses the same share), or N:M (keep N of every M along the input dimension, e.g. 2:4; --ratio unused).
    scope: str = "global"
    # "all": convolutions and Linear layers (the classifier stays dense); "linear": Linear layers only.
    layers: str = "all"

    def __post_init__(self):
        super().__post_init__()
        M.parse_scope(self.scope)
        if self.layers not in ("all", "linear"):
            from adagrow.errors import AdaGrowError

            raise AdaGrowError(f"--layers {self.layers!r}: use all or linear")


class MaskedPipeline(PruningPipeline):
    """Mask the lowest-scoring weights once, at the prune point; fine-tune with the masks applied."""

    physical = False
    keeps_optimizer = True  # the weights stay the same Parameter objects (as weight_orig)

    def __init__(self, cfg: MaskOptions):
        super().__init__(cfg)
        self.masked: list[str] = []
        self.kernel_note: str | None = None

    def scores(self, ctx: RunContext, model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def layers_to_prune(self, model: nn.Module) -> tuple[dict[str, nn.Module], dict[str, list[str]]]:
        """(layers pruned, layers left dense under the record key that says why: ``left_dense_for_nm``,
        those whose input width an N:M pattern does not fit)."""
        layers = M.prunable_layers(model, classifier(model))
        if self.cfg.layers == "linear":
            layers = {n: m for n, m in layers.items() if isinstance(m, nn.Linear)}
        nm = M.parse_scope(self.cfg.scope)
        skipped = [n for n, m in layers.items() if nm is not None and not M.nm_fits(m.weight, nm[1])]
        return {n: m for n, m in layers.items() if n not in skipped}, {"left_dense_for_nm": skipped}

    def prune(self, ctx: RunContext, model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
        layers, left_dense = self.layers_to_prune(model)
        for why, names in left_dense.items():
            if names:
                ctx.log(f"  {self.name}: {len(names)} layer(s) left dense ({why}): {', '.join(names[:4])}"
                        + (" ..." if len(names) > 4 else ""))
        with torch.no_grad():
            masks = M.choose_masks(self.scores(ctx, model, layers), self.cfg.scope, self.cfg.ratio)
        M.apply_masks(model, masks)
        self.masked = list(masks)
        return model, {"requested_sparsity": M.requested_sparsity(self.cfg.scope, self.cfg.ratio), "scope": self.cfg.scope,
                       **M.mask_sparsity(model), **left_dense}

    def restore(self, model: nn.Module) -> nn.Module:
        return M.restore_masks(model, self.masked)

    def deploy_model(self, model: nn.Module) -> nn.Module:
        deploy = M.fold_masks(model)
        if M.parse_scope(self.cfg.scope) == (2, 4) and M.masked_layers(model):
            deploy, self.kernel_note = semi_structured(deploy, list(M.masked_layers(model)))
        return deploy

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if M.parse_scope(self.cfg.scope) is not None:
            out["pruning"]["sparse_kernel"] = self.kernel_note or "simulated: masks only (dense kernels)"
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "masked": self.masked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.masked = state["masked"]


class SemiStructuredLinear(nn.Module):
    """A 2:4-sparse Linear on PyTorch's semi-structured kernels (fp16 weights; input cast to fp16 and back)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        from torch.sparse import to_sparse_semi_structured

        self.weight = nn.Parameter(to_sparse_semi_structured(linear.weight.detach().half()), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().half(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.half(), self.weight, self.bias).to(x.dtype)


def semi_structured(model: nn.Module, names: list[str]) -> tuple[nn.Module, str]:
    """Swap the 2:4-masked Linear layers for semi-structured sparse ones where this device can run them."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        return model, "simulated: semi-structured sparse kernels need CUDA"
    if torch.cuda.get_device_capability(device) < (8, 0):
        return model, "simulated: semi-structured sparse kernels need compute capability 8.0 or more"
    modules = dict(model.named_modules())
    swapped, failures = 0, []
    for name in names:
        layer = modules[name]
        if not isinstance(layer, nn.Linear):
            continue  # no semi-structured convolution kernels: convolutions stay masked-dense
        try:
            sparse = SemiStructuredLinear(layer)
            sparse(torch.zeros(64, layer.in_features, device=device))  # fails here if the kernel does not run
        except (RuntimeError, NotImplementedError) as exc:
            failures.append(f"{name}: {str(exc).splitlines()[0][:80]}")
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, sparse)
        swapped += 1
    if not swapped:
        return model, "simulated: " + ("; ".join(failures[:2]) or "no 2:4 Linear layer")
    return model, f"semi-structured fp16 on {swapped} Linear layer(s)" + (f"; {len(failures)} left masked" if failures else "")


__all__ = ["MaskOptions", "MaskedPipeline"]
