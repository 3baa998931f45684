"""The task-aware controller: task embedding -> a distribution over cell architectures, trained by REINFORCE.

An MLP maps the embedding to one categorical distribution per edge (edges independent given the task;
our choice — a recurrent controller that conditions each edge on the previous ones is the usual NAS
alternative, and the paper's exact form is not in the material we hold).  Training samples an
architecture per task; the reward is the *adapted* model's query accuracy (classification) or negative
query MSE (regression); the update is REINFORCE with a moving-average baseline and an entropy bonus.
At meta-test time the controller's most likely architecture is used (no sampling).

:func:`random_arch` is the random-architecture baseline's "controller": every edge's operation drawn
uniformly and independently from the same search space, from a stream that depends on the seed and the
task's index only (so a resumed run, and every run of one seed, draws the same architectures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical


@dataclass
class Sample:
    arch: tuple[int, ...]
    log_prob: torch.Tensor
    entropy: torch.Tensor


class Controller(nn.Module):
    def __init__(self, embed_dim: int, edges: int, ops: int, hidden: int = 64):
        super().__init__()
        self.edges, self.ops = edges, ops
        self.net = nn.Sequential(nn.Linear(embed_dim, hidden), nn.Tanh(), nn.Linear(hidden, edges * ops))

    def distribution(self, embedding: torch.Tensor) -> Categorical:
        return Categorical(logits=self.net(embedding).view(self.edges, self.ops))

    def sample(self, embedding: torch.Tensor, generator: torch.Generator) -> Sample:
        """One architecture drawn with ``generator`` (its own stream: a resumed run draws the same ones)."""
        dist = self.distribution(embedding)
        choice = torch.multinomial(dist.probs.detach().cpu(), 1, generator=generator).flatten().to(embedding.device)
        return Sample(tuple(int(c) for c in choice), dist.log_prob(choice).sum(), dist.entropy().sum())

    def best(self, embedding: torch.Tensor) -> tuple[int, ...]:
        with torch.no_grad():
            return tuple(int(c) for c in self.net(embedding).view(self.edges, self.ops).argmax(1))


def reinforce_loss(samples: list[Sample], rewards: torch.Tensor, baseline: float, entropy_weight: float) -> torch.Tensor:
    """Policy-gradient loss of one batch of tasks: -(R - b) log p(arch | task) - entropy bonus."""
    log_probs = torch.stack([s.log_prob for s in samples])
    entropy = torch.stack([s.entropy for s in samples])
    return -((rewards - baseline) * log_probs).mean() - entropy_weight * entropy.mean()


def update_baseline(baseline: float | None, rewards: torch.Tensor, decay: float) -> float:
    mean = float(rewards.mean())
    return mean if baseline is None else decay * baseline + (1 - decay) * mean


RANDOM_STREAM = 2  # the random baseline's draws: a stream apart from the episodes' (splits 0 and 1)


def random_arch(edges: int, ops: int, seed: int, split: int, index: int) -> tuple[int, ...]:
    """A uniformly random architecture for task ``index`` of ``split`` (0 meta-train, 1 meta-test)."""
    rng = np.random.default_rng([seed, RANDOM_STREAM, split, index])
    return tuple(int(a) for a in rng.integers(0, ops, size=edges))
