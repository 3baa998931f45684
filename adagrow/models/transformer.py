"""Growable Transformers: a ViT and a BERT-style encoder whose width and depth AdaGrow can change.

Both are plain PyTorch (our own attention on ``F.scaled_dot_product_attention``) because widening is
simplest when we own every tensor's layout.  A model is fully described by a frozen
:class:`TransformerSpec`; growth builds a model of a new spec and copies the old weights in
(``adagrow.grow.transformer``).  Two layout choices make that copy trivial:

* the query, key and value projections are three separate ``Linear`` layers, and head ``i`` owns
  rows ``64·i … 64·i+63`` of each, so adding a head appends rows and columns: every old tensor sits
  in the *leading* slice (``[:n0, :n1, …]``) of its grown successor;
* the model is isotropic (every layer has the same hidden size = 64 × heads), so one width describes
  all layers, the embeddings, the positional table, every LayerNorm, the MLPs and the head.

Blocks are pre-LN (``x + attn(norm1(x))``, ``x + mlp(norm2(x))``), which trains stably from scratch
at the small sizes AdaGrow starts from.  ``norm2`` follows the attention sub-layer: its |γ| is the
layer importance the thesis' greedy depth growth ranks (§3.4.1, "层后归一中的缩放因子").

Architecture strings are ``D<layers>W<hidden>`` (``D4W384`` = 4 layers, 6 heads of 64), as in the
thesis' Tables 3-27/3-28; ``d4h6`` (the released code's spelling) is accepted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.errors import ArchitectureError

HEAD_DIM = 64
MLP_RATIO = 4
FAMILIES = ("vit", "bert")


@dataclass(frozen=True)
class TransformerSpec:
    """Everything needed to build a growable Transformer (and to rebuild it on resume)."""

    family: str  # "vit" | "bert"
    depth: int  # number of encoder layers
    heads: int  # attention heads; hidden size = heads * head_dim
    num_classes: int
    head_dim: int = HEAD_DIM
    mlp_ratio: int = MLP_RATIO
    dropout: float = 0.0
    # ViT only
    image_size: int = 32
    in_chans: int = 3
    patch_size: int = 2
    # BERT only
    vocab_size: int = 0
    max_len: int = 0

    @property
    def dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def arch(self) -> str:
        return f"D{self.depth}W{self.dim}"

    def grown(self, heads: int = 0, depth: int = 0) -> TransformerSpec:
        """The spec with ``heads`` more heads and ``depth`` more layers."""
        return replace(self, heads=self.heads + heads, depth=self.depth + depth)


def parse_arch(arch: str, head_dim: int = HEAD_DIM) -> tuple[int, int]:
    """``"D4W384"`` (or ``"d4h6"``) -> ``(depth, heads)``."""
    text = arch.strip()
    m = re.fullmatch(r"[Dd](\d+)[Ww](\d+)", text)
    if m:
        depth, width = int(m.group(1)), int(m.group(2))
        if width % head_dim:
            raise ArchitectureError(f"width {width} in {arch!r} is not a multiple of the head size {head_dim}")
        heads = width // head_dim
    else:
        m = re.fullmatch(r"[Dd](\d+)[Hh](\d+)", text)
        if not m:
            raise ArchitectureError(
                f"malformed Transformer architecture {arch!r}: expected D<layers>W<width>, e.g. D4W384"
            )
        depth, heads = int(m.group(1)), int(m.group(2))
    if depth < 1 or heads < 1:
        raise ArchitectureError(f"architecture {arch!r} needs at least one layer and one head")
    return depth, heads


def default_patch_size(image_size: int) -> int:
    """The thesis' patches: 2 at 32² (and MNIST's 28²), 4 at 64², 16 at 224²."""
    if image_size <= 32:
        return 2
    if image_size <= 64:
        return 4
    return 16


class Attention(nn.Module):
    """Multi-head self-attention; head ``i`` owns rows ``[i·hd, (i+1)·hd)`` of q, k and v."""

    def __init__(self, dim: int, head_dim: int, dropout: float):
        super().__init__()
        self.head_dim = head_dim
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        h = d // self.head_dim

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, h, self.head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LN encoder layer: attention then a GELU MLP, each on a residual branch."""

    def __init__(self, dim: int, head_dim: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, head_dim, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class GrowableTransformer(nn.Module):
    """Shared trunk: ``blocks`` + final LayerNorm + a linear head on the first token."""

    def __init__(self, spec: TransformerSpec):
        super().__init__()
        self.spec = spec
        d = spec.dim
        self.blocks = nn.ModuleList(Block(d, spec.head_dim, spec.mlp_ratio, spec.dropout) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, spec.num_classes)

    @property
    def arch(self) -> str:
        return self.spec.arch

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input -> (token embeddings [B, N, D], attention mask or None)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, mask = self.embed(x)
        for block in self.blocks:
            h = block(h, mask)
        return self.head(self.norm(h)[:, 0])

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """BERT/ViT-style init: weights N(0, 0.02) truncated at ±2σ, biases 0, LayerNorm γ=1 β=0.

        Drawn from ``generator`` so that a run's models (the seed and every grown one) depend on
        the run seed alone.
        """
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.Embedding)):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04, generator=generator)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for p in self.parameters(recurse=False):  # positional table, class token
            nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04, generator=generator)


class GrowableViT(GrowableTransformer):
    """Vision Transformer: patch embedding (a strided conv), a class token and a learned positional table."""

    def __init__(self, spec: TransformerSpec):
        super().__init__(spec)
        if spec.image_size % spec.patch_size:
            raise ArchitectureError(f"image size {spec.image_size} is not divisible by patch {spec.patch_size}")
        d = spec.dim
        self.patch_embed = nn.Conv2d(spec.in_chans, d, spec.patch_size, stride=spec.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, (spec.image_size // spec.patch_size) ** 2 + 1, d))

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        h = self.patch_embed(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        return h + self.pos_embed, None


class GrowableBERT(GrowableTransformer):
    """BERT-style encoder from scratch; token id 0 is padding and is masked out as an attention key.

    Inputs are token ids ``[B, L]`` with ``L <= max_len`` whose first token is ``[CLS]``; the head
    reads the first position.
    """

    def __init__(self, spec: TransformerSpec):
        super().__init__(spec)
        if spec.vocab_size < 1 or spec.max_len < 1:
            raise ArchitectureError("a BERT model needs vocab_size and max_len (from the text dataset)")
        d = spec.dim
        self.tok_embed = nn.Embedding(spec.vocab_size, d)
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.max_len, d))
        self.embed_norm = nn.LayerNorm(d)

    def embed(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = ids.shape[1]
        if n > self.spec.max_len:
            raise ArchitectureError(f"sequence of {n} tokens exceeds the model's max_len {self.spec.max_len}")
        h = self.embed_norm(self.tok_embed(ids) + self.pos_embed[:, :n])
        mask = (ids != 0)[:, None, None, :]  # [B, 1, 1, L]: True = may attend to this key
        return h, mask


def build_transformer(spec: TransformerSpec, generator: torch.Generator | None = None) -> GrowableTransformer:
    """A randomly initialised growable model of ``spec``."""
    if spec.family == "vit":
        model: GrowableTransformer = GrowableViT(spec)
    elif spec.family == "bert":
        model = GrowableBERT(spec)
    else:
        raise ArchitectureError(f"unknown Transformer family {spec.family!r}; known: {', '.join(FAMILIES)}")
    model.reset_parameters(generator)
    return model


def make_spec(
    family: str,
    arch: str,
    num_classes: int,
    *,
    input_size: tuple[int, ...] | None = None,
    vocab_size: int | None = None,
    max_len: int | None = None,
    patch_size: int | None = None,
    dropout: float = 0.0,
) -> TransformerSpec:
    """Resolve the user-facing arguments of :func:`create_transformer` into a spec."""
    depth, heads = parse_arch(arch)
    if family == "vit":
        if not input_size or len(input_size) != 3:
            raise ArchitectureError(f"a ViT needs input_size=(C, H, W), got {input_size!r}")
        c, h, w = input_size
        if h != w:
            raise ArchitectureError(f"the ViT expects square images, got {h}x{w}")
        return TransformerSpec("vit", depth, heads, num_classes, dropout=dropout, image_size=h, in_chans=c,
                               patch_size=patch_size or default_patch_size(h))
    if family == "bert":
        length = max_len or (input_size[0] if input_size else None)
        if not vocab_size or not length:
            raise ArchitectureError("a BERT model needs vocab_size and max_len (or input_size=(max_len,))")
        return TransformerSpec("bert", depth, heads, num_classes, dropout=dropout, vocab_size=vocab_size,
                               max_len=length)
    raise ArchitectureError(f"unknown Transformer family {family!r}; known: {', '.join(FAMILIES)}")


def create_transformer(
    family: str,
    arch: str,
    num_classes: int,
    *,
    input_size: tuple[int, ...] | None = None,
    vocab_size: int | None = None,
    max_len: int | None = None,
    patch_size: int | None = None,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> GrowableTransformer:
    """A growable ViT (``input_size=(C, H, W)``) or BERT (``vocab_size``, ``max_len``) of ``arch``.

    >>> create_transformer("vit", "D4W384", 10, input_size=(3, 32, 32)).arch
    'D4W384'
    """
    spec = make_spec(family, arch, num_classes, input_size=input_size, vocab_size=vocab_size,
                     max_len=max_len, patch_size=patch_size, dropout=dropout)
    return build_transformer(spec, generator)
