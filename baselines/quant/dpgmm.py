"""A one-dimensional truncated Dirichlet-process Gaussian mixture, fitted by variational inference.

BAMC's prior over a layer's weights: w ~ Σ_k π_k N(μ_k, σ²), with π drawn from a DP by truncated
stick-breaking (v_k ~ Beta(1, α), π_k = v_k Π_{j<k}(1 − v_j), v_T = 1) and μ_k ~ N(m₀, s₀²).  The
posterior is approximated by coordinate ascent (Blei & Jordan 2006, "Variational inference for
Dirichlet process mixtures"), the algorithm scikit-learn's ``BayesianGaussianMixture`` runs with
``weight_concentration_prior_type='dirichlet_process'``; weights are scalars, so it fits in a few
lines of torch and scikit-learn is not needed.

One difference from scikit-learn, and why: the component spread σ is *known* (a share of the layer's
weight spread), not inferred.  A component is a quantization level, and the level spacing is what
decides the bit-width; with a free variance the mixture would describe the bell shape of a trained
layer's weights with one or two wide components and call every layer 1 bit wide.  The DP prior then
decides how many levels of that resolution the weights need: components nobody uses lose their mass.

Coordinate ascent alone never removes a duplicated component (two on one cluster split its weights
between them for ever), so after every sweep components whose means are closer than σ (levels the
known spread cannot tell apart) are merged into the heavier one, whose stick then holds their mass;
the emptied one keeps a zero count, and the stick-breaking prior gives it almost no responsibility
afterwards.  Components are kept sorted by mass, the order stick-breaking favours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DPMixture:
    """The variational posterior of one layer's mixture (all tensors of length T, the truncation)."""

    means: torch.Tensor  # posterior mean of μ_k
    mean_var: torch.Tensor  # posterior variance of μ_k
    gamma1: torch.Tensor  # q(v_k) = Beta(gamma1, gamma2)
    gamma2: torch.Tensor
    counts: torch.Tensor  # N_k: expected number of weights per component (on the fitted sample)
    sigma: float  # the known component std
    alpha: float
    prior_mean: float
    prior_var: float

    @property
    def shares(self) -> torch.Tensor:
        """N_k / N: the share of the weights each component explains."""
        return self.counts / self.counts.sum().clamp_min(1e-12)

    def expected_log_pi(self) -> torch.Tensor:
        """E[log π_k] under q: E[log v_k] + Σ_{j<k} E[log(1 − v_j)], with v_T = 1."""
        total = torch.digamma(self.gamma1 + self.gamma2)
        log_v = torch.digamma(self.gamma1) - total
        log_1mv = torch.digamma(self.gamma2) - total
        log_v[-1], log_1mv[-1] = 0.0, 0.0
        return log_v + torch.cumsum(log_1mv, 0) - log_1mv

    def active(self, min_share: float) -> torch.Tensor:
        """Indices of the components that explain at least ``min_share`` of the weights."""
        return torch.nonzero(self.shares >= min_share).flatten()

    def state(self) -> dict:
        return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, state: dict) -> DPMixture:
        return cls(**{k: (torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v) for k, v in state.items()})


def init_mixture(x: torch.Tensor, truncation: int, sigma: float, alpha: float) -> DPMixture:
    """Components at the T quantiles of ``x`` (so every one starts where weights are), equal counts."""
    x = x.detach().double().flatten()
    q = torch.linspace(0.5 / truncation, 1 - 0.5 / truncation, truncation, dtype=torch.float64)
    means = torch.quantile(x, q) if x.numel() <= 2**24 else torch.quantile(x[:2**24], q)
    n = torch.full((truncation,), x.numel() / truncation, dtype=torch.float64)
    ones = torch.ones(truncation, dtype=torch.float64)
    prior_var = float(x.var()) * 4 + sigma**2  # broad: a level may sit anywhere in the weights' range
    mix = DPMixture(means, ones * sigma**2, ones.clone(), ones * alpha, n, sigma, alpha, float(x.mean()), prior_var)
    _update_sticks(mix)
    return mix


def responsibilities(mix: DPMixture, x: torch.Tensor) -> torch.Tensor:
    """q(z_i = k) ∝ exp(E[log π_k] − E[(x_i − μ_k)²] / 2σ²), shape [n, T]."""
    x = x.detach().double().flatten()[:, None]
    sq = (x - mix.means[None]) ** 2 + mix.mean_var[None]
    return torch.softmax(mix.expected_log_pi()[None] - sq / (2 * mix.sigma**2), dim=1)


def fit(x: torch.Tensor, mix: DPMixture, iters: int = 200, tol: float = 1e-4) -> DPMixture:
    """Coordinate ascent from ``mix`` (a fresh :func:`init_mixture` or a previous fit: warm start)."""
    x = x.detach().double().flatten()
    for _ in range(iters):
        r = responsibilities(mix, x)
        before = mix.counts.clone()
        mix.counts = r.sum(0)
        precision = 1 / mix.prior_var + mix.counts / mix.sigma**2
        mix.mean_var = 1 / precision
        mix.means = mix.mean_var * (mix.prior_mean / mix.prior_var + (r * x[:, None]).sum(0) / mix.sigma**2)
        _merge_close(mix)
        _sort_by_mass(mix)
        _update_sticks(mix)
        if torch.sort(mix.counts).values.sub(torch.sort(before).values).abs().max() < tol * x.numel():
            break
    return mix


def _update_sticks(mix: DPMixture) -> None:
    """q(v_k) = Beta(1 + N_k, α + Σ_{j>k} N_j)."""
    later = mix.counts.flip(0).cumsum(0).flip(0) - mix.counts
    mix.gamma1 = 1 + mix.counts
    mix.gamma2 = mix.alpha + later


def _merge_close(mix: DPMixture) -> None:
    """Merge every used component into a heavier used one less than σ away (heaviest first)."""
    used = [int(k) for k in torch.argsort(mix.counts, descending=True) if mix.counts[k] > 0.5]
    kept: list[int] = []
    for k in used:
        target = next((j for j in kept if abs(float(mix.means[j] - mix.means[k])) < mix.sigma), None)
        if target is None:
            kept.append(k)
            continue
        total = mix.counts[target] + mix.counts[k]
        mix.means[target] = (mix.means[target] * mix.counts[target] + mix.means[k] * mix.counts[k]) / total
        mix.counts[target], mix.counts[k] = total, 0.0
        mix.means[k] = mix.prior_mean


def _sort_by_mass(mix: DPMixture) -> None:
    order = torch.argsort(mix.counts, descending=True, stable=True)
    mix.means, mix.mean_var, mix.counts = mix.means[order], mix.mean_var[order], mix.counts[order]


def neg_log_prior(w: torch.Tensor, levels: torch.Tensor, log_pi: torch.Tensor, sigma: float) -> torch.Tensor:
    """Σ_i −log Σ_k π_k N(w_i | μ_k, σ²) (up to a constant), differentiable in ``w``.

    Only the two levels either side of each weight enter the sum: with σ a small share of the
    spacing, the others contribute nothing measurable, and this keeps memory at O(n) instead of
    O(n·T) for layers of millions of weights.  ``levels`` must be sorted ascending.
    """
    flat = w.flatten().float()
    idx = torch.bucketize(flat.detach(), levels).clamp(1, levels.numel() - 1) if levels.numel() > 1 else None
    if idx is None:
        return ((flat - levels[0]) ** 2).sum() / (2 * sigma**2)
    pair = torch.stack([idx - 1, idx], 1)
    logits = log_pi[pair] - (flat[:, None] - levels[pair]) ** 2 / (2 * sigma**2)
    return -torch.logsumexp(logits, dim=1).sum()
