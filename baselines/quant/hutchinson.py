"""Hutchinson's estimator of the trace of each parameter block's Hessian (HAWQ-v2's sensitivity).

Tr(H) = E[vᵀHv] for any probe v with E[vvᵀ] = I; Rademacher probes (±1) have the smallest variance,
2·Σ_{i≠j} H_ij², and are exact for a diagonal H.  H·v comes from a second backward pass through the
gradient (Pearlmutter's trick, as PyHessian does), so H is never formed.  One probe over all the
blocks at once gives every block's estimate: E[v_lᵀ(Hv)_l] = Tr(H_ll), since the cross terms
v_lᵀH_lk v_k have zero mean for independent probes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def hutchinson_traces(loss_fn: Callable[[], torch.Tensor], params: dict[str, torch.Tensor], probes: int = 32,
                      seed: int = 0) -> dict[str, float]:
    """Estimate Tr(∂²L/∂θ_l²) for every named tensor θ_l in ``params`` from ``probes`` Rademacher probes.

    ``loss_fn`` returns the scalar loss L (the same value every call: fixed data, the model in eval mode).
    The probes are drawn from a generator of their own, so the estimate is reproducible and the caller's
    RNG stream is untouched.
    """
    if probes < 1:
        raise ValueError(f"probes must be at least 1 (got {probes})")
    names = list(params)
    tensors = [params[n] for n in names]
    grads = torch.autograd.grad(loss_fn(), tensors, create_graph=True)
    g = torch.Generator().manual_seed(seed)
    sums = [0.0] * len(names)
    for k in range(probes):
        vs = [(torch.randint(0, 2, t.shape, generator=g) * 2 - 1).to(t.device, t.dtype) for t in tensors]
        hvs = torch.autograd.grad(grads, tensors, grad_outputs=vs, retain_graph=k + 1 < probes)
        for i, (v, hv) in enumerate(zip(vs, hvs)):
            sums[i] += float((v * hv).sum())
    return {n: s / probes for n, s in zip(names, sums)}
