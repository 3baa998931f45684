"""What every dataset loader returns: three batch loaders plus the facts the record needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


class BatchLoader(Protocol):
    """An iterable of ``(inputs, targets)`` batches, already on the run's device.

    ``set_epoch(e)`` reseeds shuffling and augmentation from ``(seed, e)`` alone, so that a run
    resumed at epoch ``e`` sees exactly the batches an uninterrupted run would have seen, without
    saving any loader state in the checkpoint.
    """

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


@dataclass
class DataBundle:
    name: str
    train: BatchLoader
    val: BatchLoader
    test: BatchLoader
    # The shape one example is fed to the model with: (C, H, W) for images, (seq_len,) for text.
    input_size: tuple[int, ...]
    num_classes: int
    # train_size / val_size / test_size, resident (bool), augmentation, and for text vocab_size,
    # max_len, tokenizer hash: everything the record should say about the data.
    meta: dict[str, Any] = field(default_factory=dict)
    # ``calibration(n)``: the first ``n`` examples of the training split (a seeded random sample: the split is a
    # permutation) as evaluation sees data, without augmentation, what post-training quantization calibrates on
    # (PyTorch's PTQ recipe, GPTQ); None where the training loader does not augment (text).
    calibration: Callable[[int], BatchLoader] | None = None
