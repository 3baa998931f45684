"""One training epoch and one evaluation pass: the only training loop in the project.

Kept free of bookkeeping (checkpoints, records, W&B live in ``runner.py``) so the hot path is easy to
read and to compare against a bare hand-written loop (``tests/bench_engine.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.engine.optim import lr_at, set_lr
from adagrow.errors import TrainingDiverged

# How often the loss is checked for NaN/inf.  Checking reads a value back from the GPU, which stalls
# the pipeline, so it is done every few steps (a diverged run wastes at most this many steps).
NAN_CHECK_EVERY = 16


def autocast_for(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA; nothing on CPU (bf16 matmuls are slow on most CPUs)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def to_model_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def train_one_epoch(
    model: nn.Module,
    batches,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    total_steps: int,
    base_lr: float,
    warmup_steps: int = 0,
    min_lr: float = 0.0,
    weight_decay: float | None = None,
    min_weight_decay: float | None = None,
    label_smoothing: float = 0.0,
    grad_clip: float | None = None,
    amp: bool = False,
    channels_last: bool = False,
    extra_loss: Callable[[nn.Module], torch.Tensor | None] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    progress=None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[dict[str, float], int]:
    """Train over ``batches`` once; return ({loss, acc}, the global step after the epoch).

    ``forward`` computes the model's output instead of ``model`` itself (its compiled form,
    ``engine/speed.py``); everything else (modes, parameters, hooks) still goes through ``model``.

    With ``min_weight_decay`` the weight decay follows its own per-step cosine from ``weight_decay``
    to it (the released AdaGrow code's recipe); otherwise the optimizer's weight decay is left alone.
    """
    model.train()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    forward = model if forward is None else forward  # (a compiled module has no truth value)
    for i, (x, y) in enumerate(batches):
        set_lr(optimizer, lr_at(step, total_steps, base_lr, warmup_steps, min_lr))
        if min_weight_decay is not None:
            for group in optimizer.param_groups:
                group["weight_decay"] = lr_at(step, total_steps, weight_decay, 0, min_weight_decay)
        with autocast_for(device, amp):
            logits = forward(to_model_layout(x, channels_last))
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
            if extra_loss is not None:
                extra = extra_loss(model)
                if extra is not None:
                    loss = loss + extra
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step(model)
        step += 1
        loss_sum += loss.detach() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
        if (i + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
            raise TrainingDiverged(f"the training loss became {loss_sum.item()} at step {step}; "
                                   "lower the learning rate or check the data")
        if progress is not None:  # see engine/progress.py: reads the loss back only when it prints
            progress.update(step=step, total_steps=total_steps, seen=seen, loss_sum=loss_sum)
    if not torch.isfinite(loss_sum):
        raise TrainingDiverged(f"the training loss became {loss_sum.item()} at step {step}; "
                               "lower the learning rate or check the data")
    seen = max(seen, 1)
    return {"loss": loss_sum.item() / seen, "acc": 100.0 * correct.item() / seen}, step


@torch.no_grad()
def evaluate(model: nn.Module, batches, *, amp: bool = False, channels_last: bool = False,
             progress=None) -> dict[str, float]:
    """Top-1 accuracy (percent) and mean cross-entropy over ``batches``; ``progress`` (``engine/progress.py``)
    hears of each batch."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in batches:
        with autocast_for(device, amp):
            logits = model(to_model_layout(x, channels_last))
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        seen += y.shape[0]
        if progress is not None:
            progress.update(seen=seen)
    if progress is not None:
        progress.close()
    seen = max(seen, 1)
    return {"loss": loss_sum.item() / seen, "acc": 100.0 * correct.item() / seen}
