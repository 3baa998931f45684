"""Fixed-size reference models (the "fixed" rows of Tables 3-19 ... 3-28), trained from scratch.

CNNs come from timm, built for each dataset's channels and classes.  The thesis' MACs show that its
ResNets used the small-input stem (a 3×3 stride-1 convolution and no max-pool) at every resolution
(e.g. ResNet-18: 558.39M MACs at 32², 27.34G at 224² = 49 × 558M), except on MNIST where 36.12M MACs
match timm's ImageNet stem.  ``stem="auto"`` (default) reproduces exactly that; ``small`` and
``imagenet`` force one stem everywhere.  Transformers (ViT / BERT) come from ``transformers`` configurations;
``--model vit|bert --arch D3W384`` trains the growable Transformer at that fixed size instead
(:mod:`adagrow.engine.fixed_grown`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from adagrow.engine.fixed_grown import FixedGrownConfig, FixedGrownMethod
from adagrow.engine.method import Method, RunContext
from adagrow.errors import AdaGrowError
from adagrow.methods import METHODS, MethodEntry

# our name -> timm name
TIMM_MODELS = {
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "vgg11": "vgg11_bn",
    "vgg16": "vgg16_bn",
    "mobilenetv3_small": "mobilenetv3_small_100",
    "mobilenetv3_large": "mobilenetv3_large_100",
}
TRANSFORMER_MODELS = ("vit_small", "vit_base", "bert_small", "bert_base")
FIXED_MODELS = tuple(TIMM_MODELS) + TRANSFORMER_MODELS


@dataclass(frozen=True)
class FixedConfig:
    # ResNets only: "auto" (as the thesis: small stem, ImageNet stem on 1-channel MNIST) | "small" | "imagenet"
    stem: Literal["auto", "small", "imagenet"] = "auto"
    drop_rate: float = 0.0  # dropout before the classifier (timm's drop_rate)

    def __post_init__(self):  # checked when the options are parsed, before any data loads
        if not (isinstance(self.drop_rate, (int, float)) and 0 <= self.drop_rate < 1):
            raise ValueError(f"drop_rate must be in [0, 1) (got {self.drop_rate})")
        if self.stem not in ("auto", "small", "imagenet"):
            raise ValueError(f"stem must be auto, small or imagenet (got {self.stem!r})")


def build_reference(name: str, num_classes: int, input_size: tuple[int, ...], stem: str = "auto",
                    drop_rate: float = 0.0, vocab_size: int | None = None) -> nn.Module:
    """A fixed-size reference model, randomly initialised."""
    if name in TRANSFORMER_MODELS:
        from adagrow.models.fixed_transformers import build_fixed_transformer

        return build_fixed_transformer(name, num_classes, input_size, vocab_size=vocab_size)
    if name not in TIMM_MODELS:
        raise AdaGrowError(f"unknown fixed model {name!r}; known: {', '.join(FIXED_MODELS)}")
    import timm

    in_chans = input_size[0]
    model = timm.create_model(TIMM_MODELS[name], pretrained=False, num_classes=num_classes,
                              in_chans=in_chans, drop_rate=drop_rate)
    if stem == "auto":
        stem = "imagenet" if in_chans == 1 else "small"
    if stem not in ("small", "imagenet"):
        raise AdaGrowError(f"unknown stem {stem!r}; use auto, small or imagenet")
    if name.startswith("resnet") and stem == "small":
        model.conv1 = nn.Conv2d(in_chans, model.conv1.out_channels, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model


class FixedMethod(Method):
    """Train a fixed-size model: the method decides nothing after it has built the model."""

    name = "fixed"

    def __init__(self, cfg: FixedConfig):
        self.cfg = cfg

    def build_model(self, ctx: RunContext) -> nn.Module:
        if not ctx.config.model:
            raise AdaGrowError(f"--method fixed needs --model, one of: {', '.join(FIXED_MODELS)}")
        return build_reference(ctx.config.model, ctx.num_classes, ctx.input_size, self.cfg.stem,
                               self.cfg.drop_rate, vocab_size=ctx.data_meta.get("vocab_size"))


# --model vit / bert: a growable Transformer at a fixed --arch (the grown size's from-scratch control)
_AT_ARCH = (FixedGrownConfig, FixedGrownMethod)
METHODS.register("fixed", MethodEntry(FixedConfig, FixedMethod, "a fixed-size reference model (timm / transformers), "
                                      "or a growable Transformer at a fixed --arch (--model vit|bert)",
                                      by_family={"vit": _AT_ARCH, "bert": _AT_ARCH}))
