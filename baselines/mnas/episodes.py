"""Tasks for meta-learning: N-way K-shot image episodes from disjoint class splits, and sinusoid regression.

An episode is a function of ``(seed, split, index)`` alone: ``episode(i)`` draws from its own
``numpy`` generator seeded with those three numbers.  So an episode is reproducible from its seed,
meta-training and meta-test episodes never share a stream, and resuming a run needs no sampler state
(the loop just asks for the next index).

Image episodes: meta-train episodes draw from the *train* split's images of the meta-train classes,
meta-test episodes from the *test* split's images of the meta-test classes, so neither classes nor
images are shared.  Labels inside an episode are 0..N-1 in a random order per episode.  The classes
come from a *pool* of one dataset (10 classes) or several (``mnist+cifar10``: 20 classes, digits and
objects), so with a pool of ten meta-test classes a 5-way task is one of C(10, 5) = 252 class sets —
all digits, all objects, or a mix — rather than the same five classes in another label order.

An episode depends on the seed and its index only, never on the method: M-NAS, MAML and the random
baseline of one seed are scored on the same meta-test episodes (paired).

Sinusoid (Finn et al., MAML, 2017): y = A sin(x - phi), A ~ U[0.1, 5], phi ~ U[0, pi], x ~ U[-5, 5];
K support and Q query points per task.  Tasks are continuous: meta-train and meta-test differ in their
random stream, not in a set of classes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from adagrow.errors import AdaGrowError
from baselines.mnas.config import CLASSES_PER_DATASET, POOLS

TRAIN, TEST = 0, 1  # the split's number in an episode's seed


@dataclass(frozen=True)
class Episode:
    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    info: dict  # classes (images) or amplitude / phase (sinusoid): what the task is

    def digest(self) -> str:
        """A short hash of the episode's tensors: equal digests, the same task (images, labels, order)."""
        h = hashlib.sha1()
        for t in (self.support_x, self.support_y, self.query_x, self.query_y):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

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


@dataclass(frozen=True)
class Source:
    """One dataset's split in a class pool: uint8 images, labels, its normalisation, and where its classes
    start in the pool's numbering (MNIST 0-9 and CIFAR-10 10-19 in ``mnist+cifar10``)."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    offset: int = 0


class FewShotTasks:
    """N-way K-shot episodes over ``classes`` of a pool of one or more datasets' splits.

    Images are normalised with their own dataset's statistics on the way out; a dataset with fewer
    channels than the pool's widest (MNIST beside CIFAR-10) has its one channel repeated, so every
    episode has one input shape whatever its classes' datasets."""

    classification = True

    def __init__(self, sources: list[Source], classes: list[int], *, ways: int, shots: int, queries: int, seed: int,
                 split: int):
        self.sources, self.classes = list(sources), list(classes)
        self.ways, self.shots, self.queries, self.seed, self.split = ways, shots, queries, seed, split
        shapes = {tuple(s.images.shape[2:]) for s in sources}
        if len(shapes) != 1:
            raise AdaGrowError(f"a class pool needs one image size, its datasets have {sorted(shapes)}")
        self.input_shape, self.out_dim = (max(s.images.shape[1] for s in sources), *shapes.pop()), ways
        self.by_class: dict[int, tuple[int, np.ndarray]] = {}  # pool class -> (source, image indices)
        for c in self.classes:
            owner = [i for i, s in enumerate(sources) if s.offset <= c < s.offset + CLASSES_PER_DATASET]
            if not owner:
                raise AdaGrowError(f"class {c} is in none of the pool's datasets")
            src = sources[owner[0]]
            self.by_class[c] = (owner[0], torch.nonzero(src.labels == c - src.offset).flatten().numpy())
        short = {c: len(i) for c, (_, i) in self.by_class.items() if len(i) < shots + queries}
        if short:
            raise AdaGrowError(f"{shots}-shot episodes with {queries} queries need {shots + queries} images per class; "
                               f"classes {sorted(short)} have only {sorted(short.values())}")
        if len(self.classes) < ways:
            raise AdaGrowError(f"{ways}-way episodes need {ways} classes, the split has {len(self.classes)}")

    @property
    def images(self) -> torch.Tensor:
        """The first dataset's images (a one-dataset pool's only ones)."""
        return self.sources[0].images

    def episode(self, index: int) -> Episode:
        rng = _rng(self.seed, self.split, index)
        chosen = rng.choice(self.classes, size=self.ways, replace=False)  # position in `chosen` = episode label
        support, query = [], []
        for c in chosen:
            source, pool = self.by_class[int(c)]
            picked = rng.choice(pool, size=self.shots + self.queries, replace=False)
            support.append([(source, int(i)) for i in picked[: self.shots]])
            query.append([(source, int(i)) for i in picked[self.shots:]])
        s_idx = [x for part in support for x in part]
        q_idx = [x for part in query for x in part]
        s_lab = np.repeat(np.arange(self.ways), self.shots)
        q_lab = np.repeat(np.arange(self.ways), self.queries)
        s_perm, q_perm = rng.permutation(len(s_idx)), rng.permutation(len(q_idx))
        return Episode(self._images([s_idx[i] for i in s_perm]), torch.as_tensor(s_lab[s_perm]),
                       self._images([q_idx[i] for i in q_perm]), torch.as_tensor(q_lab[q_perm]),
                       {"classes": [int(c) for c in chosen]})

    def _images(self, picked: list[tuple[int, int]]) -> torch.Tensor:
        out = torch.empty((len(picked), *self.input_shape))
        for source in {s for s, _ in picked}:
            rows = [k for k, (s, _) in enumerate(picked) if s == source]
            src = self.sources[source]
            x = src.images[torch.as_tensor([picked[k][1] for k in rows])].float() / 255.0
            x = (x - torch.tensor(src.mean).view(1, -1, 1, 1)) / torch.tensor(src.std).view(1, -1, 1, 1)
            out[torch.as_tensor(rows)] = x.expand(-1, self.input_shape[0], -1, -1)
        return out


def build_tasks(cfg, log=print) -> tuple[object, object]:
    """(meta-train tasks, meta-test tasks) of a :class:`~baselines.mnas.config.MetaConfig`."""
    if cfg.task == "sinusoid":
        return (SinusoidTasks(cfg.shots, cfg.queries, cfg.seed, TRAIN), SinusoidTasks(cfg.shots, cfg.queries, cfg.seed, TEST))
    from adagrow.data import DATASETS, resolve_cache_dir, resolve_data_dir
    from adagrow.data.arrays import load_arrays
    from adagrow.engine.progress import announce

    train_classes, test_classes = cfg.class_split()
    data_dir = resolve_data_dir(cfg.data_dir)
    train_sources, test_sources = [], []
    for k, name in enumerate(POOLS[cfg.task]):
        spec = DATASETS.get(name)
        with announce(f"loading {name} from {data_dir}", log):
            train, test = load_arrays(spec, data_dir, resolve_cache_dir(), download=False)
        # meta-train episodes use the train split's images, meta-test episodes the test split's
        train_sources.append(Source(train.images, train.labels, spec.mean, spec.std, k * CLASSES_PER_DATASET))
        test_sources.append(Source(test.images, test.labels, spec.mean, spec.std, k * CLASSES_PER_DATASET))
    common = {"ways": cfg.ways, "shots": cfg.shots, "queries": cfg.queries, "seed": cfg.seed}
    return (FewShotTasks(train_sources, train_classes, split=TRAIN, **common),
            FewShotTasks(test_sources, test_classes, split=TEST, **common))
