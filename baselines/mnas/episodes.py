"""Tasks for meta-learning: N-way K-shot image episodes from disjoint class splits, and sinusoid regression.

An episode is a function of ``(seed, split, index)`` alone: ``episode(i)`` draws from its own
``numpy`` generator seeded with those three numbers.  So an episode is reproducible from its seed,
meta-training and meta-test episodes never share a stream, and resuming a run needs no sampler state
(the loop just asks for the next index).

Image episodes: meta-train episodes draw from the *train* split's images of the meta-train classes,
meta-test episodes from the *test* split's images of the meta-test classes, so neither classes nor
images are shared.  Labels inside an episode are 0..N-1 in a random order per episode.

Sinusoid (Finn et al., MAML, 2017): y = A sin(x - phi), A ~ U[0.1, 5], phi ~ U[0, pi], x ~ U[-5, 5];
K support and Q query points per task.  Tasks are continuous: meta-train and meta-test differ in their
random stream, not in a set of classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from adagrow.errors import AdaGrowError

TRAIN, TEST = 0, 1  # the split's number in an episode's seed


@dataclass(frozen=True)
class Episode:
    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    info: dict  # classes (images) or amplitude / phase (sinusoid): what the task is

    def to(self, device: torch.device) -> Episode:
        return Episode(self.support_x.to(device), self.support_y.to(device), self.query_x.to(device),
                       self.query_y.to(device), self.info)


def _rng(seed: int, split: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, split, index])


class SinusoidTasks:
    """The sinusoid regression family; ``classification`` is False (loss MSE)."""

    classification = False
    input_shape = (1,)
    out_dim = 1

    def __init__(self, shots: int, queries: int, seed: int, split: int):
        self.shots, self.queries, self.seed, self.split = shots, queries, seed, split

    def episode(self, index: int) -> Episode:
        rng = _rng(self.seed, self.split, index)
        amplitude, phase = rng.uniform(0.1, 5.0), rng.uniform(0.0, math.pi)
        x = rng.uniform(-5.0, 5.0, size=(self.shots + self.queries, 1))
        y = amplitude * np.sin(x - phase)
        x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        return Episode(x[: self.shots], y[: self.shots], x[self.shots:], y[self.shots:],
                       {"amplitude": float(amplitude), "phase": float(phase)})


class FewShotTasks:
    """N-way K-shot episodes over ``classes`` of one image split (uint8 images, normalised on the way out)."""

    classification = True

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[int], *, ways: int, shots: int,
                 queries: int, seed: int, split: int, mean: tuple[float, ...], std: tuple[float, ...]):
        self.images, self.classes = images, list(classes)
        self.ways, self.shots, self.queries, self.seed, self.split = ways, shots, queries, seed, split
        self.input_shape, self.out_dim = tuple(images.shape[1:]), ways
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self.by_class = {c: torch.nonzero(labels == c).flatten().numpy() for c in self.classes}
        short = {c: len(i) for c, i in self.by_class.items() if len(i) < shots + queries}
        if short:
            raise AdaGrowError(f"{shots}-shot episodes with {queries} queries need {shots + queries} images per class; "
                               f"classes {sorted(short)} have only {sorted(short.values())}")
        if len(self.classes) < ways:
            raise AdaGrowError(f"{ways}-way episodes need {ways} classes, the split has {len(self.classes)}")

    def episode(self, index: int) -> Episode:
        rng = _rng(self.seed, self.split, index)
        chosen = rng.choice(self.classes, size=self.ways, replace=False)  # position in `chosen` = episode label
        support, query = [], []
        for pool in (self.by_class[int(c)] for c in chosen):
            picked = rng.choice(pool, size=self.shots + self.queries, replace=False)
            support.append(picked[: self.shots])
            query.append(picked[self.shots:])
        s_idx, q_idx = np.concatenate(support), np.concatenate(query)
        s_lab = np.repeat(np.arange(self.ways), self.shots)
        q_lab = np.repeat(np.arange(self.ways), self.queries)
        s_perm, q_perm = rng.permutation(len(s_idx)), rng.permutation(len(q_idx))
        return Episode(self._images(s_idx[s_perm]), torch.as_tensor(s_lab[s_perm]), self._images(q_idx[q_perm]),
                       torch.as_tensor(q_lab[q_perm]), {"classes": [int(c) for c in chosen]})

    def _images(self, idx: np.ndarray) -> torch.Tensor:
        x = self.images[torch.as_tensor(idx)].float() / 255.0
        return (x - self.mean) / self.std


def build_tasks(cfg, log=print) -> tuple[object, object]:
    """(meta-train tasks, meta-test tasks) of a :class:`~baselines.mnas.config.MetaConfig`."""
    if cfg.task == "sinusoid":
        return (SinusoidTasks(cfg.shots, cfg.queries, cfg.seed, TRAIN), SinusoidTasks(cfg.shots, cfg.queries, cfg.seed, TEST))
    from adagrow.data import DATASETS, resolve_cache_dir, resolve_data_dir
    from adagrow.data.arrays import load_arrays
    from adagrow.engine.progress import announce

    spec = DATASETS.get(cfg.task)
    train_classes, test_classes = cfg.class_split(spec.num_classes)
    data_dir = resolve_data_dir(cfg.data_dir)
    with announce(f"loading {cfg.task} from {data_dir}", log):
        train, test = load_arrays(spec, data_dir, resolve_cache_dir(), download=False)
    common = {"ways": cfg.ways, "shots": cfg.shots, "queries": cfg.queries, "seed": cfg.seed, "mean": spec.mean,
              "std": spec.std}
    return (FewShotTasks(train.images, train.labels, train_classes, split=TRAIN, **common),
            FewShotTasks(test.images, test.labels, test_classes, split=TEST, **common))
