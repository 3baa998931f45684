"""The DataLoader batch loader for datasets too large to keep on the device (ImageNet subsets).

Images are decoded and transformed per sample by torchvision transforms in ``num_workers``
processes, then each batch is moved to the device (pinned memory, non-blocking copies on CUDA).

Determinism without saving loader state: the sampler, which runs in the main process, yields
``(index, sample_seed)`` pairs drawn from a generator seeded by (seed, epoch); each sample's
transform runs under its own seed.  So the batches depend on (seed, epoch) alone — not on the
number of workers, nor on which worker got which batch — and ``set_epoch`` works with persistent
workers, because the epoch travels through the sampler rather than through the dataset copies the
workers hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from adagrow.data.registry import Augment
from adagrow.data.seeding import epoch_seed, generator


class _SeededSampler(Sampler):
    """Yields ``(position in the subset, sample seed)``; shuffled per epoch when ``shuffle``."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = generator(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=g)
        return iter(zip(order.tolist(), seeds.tolist()))


class _TransformedSubset(Dataset):
    """``base[indices[i]]`` with ``transform`` applied to the image under a per-sample seed."""

    def __init__(self, base: Sequence[tuple[Any, int]], indices: Sequence[int], transform: Callable):
        self.base, self.indices, self.transform = base, list(indices), transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        position, sample_seed = key
        image, label = self.base[self.indices[position]]
        # torchvision transforms draw from torch's global generator: fork it so the main process's
        # generator (num_workers=0) is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed)
            return self.transform(image), label


class StreamingLoader:
    """Batches ``(x float32 NCHW, y int64)`` on ``device`` from a torch DataLoader."""

    def __init__(
        self,
        base: Sequence[tuple[Any, int]],
        indices: Sequence[int],
        transform: Callable,
        *,
        batch_size: int,
        seed: int,
        device: torch.device,
        train: bool,
        num_workers: int = 2,
    ):
        self.device = device
        self._sampler = _SeededSampler(len(indices), seed, shuffle=train)
        self._loader = DataLoader(
            _TransformedSubset(base, indices, transform),
            batch_size=batch_size,
            sampler=self._sampler,
            drop_last=train,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            pin_memory=device.type == "cuda",
            # Its own generator for the workers' base seed, which would otherwise be drawn from
            # (and advance) torch's global generator; augmentation does not depend on it.
            generator=generator(seed),
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration replays."""
        self._sampler.epoch = epoch

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self._loader:
            yield (x.to(self.device, non_blocking=True),
                   y.to(self.device, dtype=torch.int64, non_blocking=True))


def build_transform(augment: Augment, mean: Sequence[float], std: Sequence[float], train: bool,
                    randaugment: int | None = None) -> Callable:
    """torchvision v2 transforms for one split: PIL or uint8 tensor in, normalised float32 out
    (``randaugment=m``: RandAugment with 2 ops of magnitude m after crop and flip, training only)."""
    from torchvision.transforms import v2

    steps: list[Any] = [v2.ToImage()]
    if augment.resized_crop:
        if train:
            steps.append(v2.RandomResizedCrop(augment.size, antialias=True))
        else:
            steps += [v2.Resize(augment.eval_resize, antialias=True), v2.CenterCrop(augment.size)]
    elif train and augment.crop_pad:
        steps.append(v2.RandomCrop(augment.size, padding=augment.crop_pad))
    elif not train:
        # Folder images (Tiny-ImageNet read without the resident loader) are already at size; the
        # crop is a no-op then and a safeguard otherwise.
        steps.append(v2.CenterCrop(augment.size))
    if train and augment.flip:
        steps.append(v2.RandomHorizontalFlip())
    if train and randaugment is not None:
        steps.append(v2.RandAugment(num_ops=2, magnitude=randaugment))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)
