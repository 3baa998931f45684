"""A growable Transformer trained at one fixed architecture: the "trained from scratch at the final size"
control of the growing literature (issue 19: a fixed BERT of the grown size beside the grown one).

``--method fixed --model bert --arch D3W384`` builds :class:`~adagrow.models.transformer.GrowableBERT` (or
the ViT with ``--model vit``) directly at the architecture a grown run's record names (its ``arch``), with
the same tokenizer, embeddings, positional table, pre-LN blocks and head as the grown model and the grower's
own initialiser, freshly drawn, and trains it without any growth.  Only where the weights come from
differs: the grown model's are inherited through its growth events, these start from scratch.
The fixed references of the thesis' tables (``bert_small`` ...) are ``transformers`` models instead
(:mod:`adagrow.models.fixed_transformers`); this is the control at exactly the grown shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from adagrow.engine.method import Method, RunContext
from adagrow.errors import AdaGrowError
from adagrow.models.transformer import FAMILIES, GrowableTransformer, build_transformer, make_spec, parse_arch


@dataclass(frozen=True)
class FixedGrownConfig:
    family: Literal["vit", "bert"] = "bert"  # the growable Transformer (the run's --model sets it)
    # the architecture to train, e.g. D3W384 (3 layers, width 384): a grown run's record's ``arch``; required
    arch: str | None = None
    vocab_size: int | None = None  # BERT: filled from the text dataset's meta when None (as the grower)
    max_len: int | None = None  # BERT: filled from the text dataset's meta when None (as the grower)
    dropout: float = 0.0  # dropout in attention and MLP (the grower's default)

    def __post_init__(self):  # checked when the options are parsed, before any data loads
        if self.family not in FAMILIES:
            raise AdaGrowError(f"unknown Transformer family {self.family!r}; known: {', '.join(FAMILIES)}")
        if self.arch is not None:
            parse_arch(self.arch)  # a malformed string is one ArchitectureError naming the expected form
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise AdaGrowError(f"dropout must be in [0, 1) (got {self.dropout})")


class FixedGrownMethod(Method):
    """Train a growable Transformer at the fixed architecture ``cfg.arch``; it never changes."""

    name = "fixed"

    def __init__(self, cfg: FixedGrownConfig):
        self.cfg = cfg

    def check_ready(self, config) -> None:
        # Refused when the run starts (before any data loads), not in the config: a suite builds this config
        # before the grown run it takes ``arch`` from has finished (Entry.derive).
        if self.cfg.arch is None:
            raise AdaGrowError(f"--method fixed --model {self.cfg.family} needs --arch D<layers>W<width> "
                               "(e.g. D3W384, the arch a grown run's record names)")

    def build_model(self, ctx: RunContext) -> nn.Module:
        meta = ctx.data_meta or {}
        spec = make_spec(self.cfg.family, self.cfg.arch, ctx.num_classes, input_size=ctx.input_size,
                         vocab_size=self.cfg.vocab_size or meta.get("vocab_size"),
                         max_len=self.cfg.max_len or meta.get("max_len"), dropout=self.cfg.dropout)
        # its own generator: the weights depend on the run seed alone, not on what drew from the global RNG
        generator = torch.Generator().manual_seed(int(getattr(ctx.config, "seed", 0)))
        return build_transformer(spec, generator).to(ctx.device)

    def arch(self, model: nn.Module) -> str | None:
        return model.spec.arch if isinstance(model, GrowableTransformer) else None
