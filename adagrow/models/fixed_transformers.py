"""Fixed-size Transformer references (Tables 3-27, 3-28) built from ``transformers`` configurations.

Nothing is downloaded: the models are constructed from a config and randomly initialised.  Sizes
follow the thesis' tables, which name every reference ``D<layers>W<hidden>``:

* ``vit_small`` = D10W512 (8 heads, MLP 2048) and ``vit_base`` = D12W768 (12 heads, MLP 3072), with
  the thesis' patch sizes (2 at 32², 4 at 64², 16 at 224²);
* ``bert_small`` = D10W512 and ``bert_base`` = D12W768, as Table 3-28 lists them.  Note that Google's
  released "BERT-Small" is smaller (4 layers, hidden 512); we follow the thesis so that its rows can
  be reproduced.

Each is wrapped so that ``forward(x)`` returns logits: images ``[B, C, H, W]`` for ViT, token ids
``[B, L]`` (0 = padding, first token ``[CLS]``) for BERT.  Attention runs through PyTorch's SDPA;
``adagrow.measure.profile.count_macs`` counts its matrix products from their shapes, the same for
the ``eager`` implementation.
"""

from __future__ import annotations

import torch
from torch import nn

from adagrow.errors import ArchitectureError
from adagrow.models.transformer import default_patch_size

# name -> (layers, hidden, heads)
FIXED_TRANSFORMERS: dict[str, tuple[int, int, int]] = {
    "vit_small": (10, 512, 8),
    "vit_base": (12, 768, 12),
    "bert_small": (10, 512, 8),
    "bert_base": (12, 768, 12),
}


class _ViTLogits(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


class _BertLogits(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=(ids != 0).long()).logits


def build_fixed_transformer(
    name: str, num_classes: int, input_size: tuple[int, ...], vocab_size: int | None = None
) -> nn.Module:
    """A randomly initialised ``vit_small`` / ``vit_base`` / ``bert_small`` / ``bert_base``.

    ``input_size`` is ``(C, H, W)`` for ViT and ``(max_len,)`` for BERT, which also needs
    ``vocab_size`` (the text dataset's tokenizer size).
    """
    if name not in FIXED_TRANSFORMERS:
        raise ArchitectureError(f"unknown fixed Transformer {name!r}; known: {', '.join(FIXED_TRANSFORMERS)}")
    layers, hidden, heads = FIXED_TRANSFORMERS[name]
    common = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=4 * hidden, num_labels=num_classes)
    if name.startswith("vit"):
        from transformers import ViTConfig, ViTForImageClassification

        if len(input_size) != 3:
            raise ArchitectureError(f"{name} needs input_size=(C, H, W), got {input_size!r}")
        c, h, _ = input_size
        config = ViTConfig(image_size=h, patch_size=default_patch_size(h), num_channels=c, **common)
        config._attn_implementation = "sdpa"
        return _ViTLogits(ViTForImageClassification(config))
    from transformers import BertConfig, BertForSequenceClassification

    if not vocab_size:
        raise ArchitectureError(f"{name} needs vocab_size (from the text dataset's tokenizer)")
    config = BertConfig(vocab_size=vocab_size, max_position_embeddings=input_size[0], pad_token_id=0, **common)
    config._attn_implementation = "sdpa"
    return _BertLogits(BertForSequenceClassification(config))
