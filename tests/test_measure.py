"""Params / MACs conventions and the latency record."""

import timm
import torch
from torch import nn

from adagrow.measure.latency import measure_latency
from adagrow.measure.profile import count_macs, count_params, profile


def test_resnet18_at_224_matches_the_published_pin():
    # thop / Torch-Pruning: 11.69M params, 1.82 GMACs (the thesis' "FLOPs" are these MACs)
    p = profile(timm.create_model("resnet18"), (3, 224, 224))
    assert round(p["params"] / 1e6, 2) == 11.69
    assert round(p["macs"] / 1e9, 2) == 1.82


def test_conv_macs_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_macs(conv, (3, 16, 16)) == 8 * 16 * 16 * 3 * 9
    assert count_params(conv) == 8 * 3 * 9


def test_attention_matmuls_are_counted():
    class Attn(nn.Module):
        def forward(self, x):  # (1, L, D) as one head
            q = x.unsqueeze(1)
            return torch.nn.functional.scaled_dot_product_attention(q, q, q).squeeze(1)

    L, D = 16, 8
    # QK^T and AV: 2 · L · L · D multiply-adds
    assert count_macs(Attn(), (L, D)) == 2 * L * L * D


def test_latency_record_names_its_settings():
    stats = measure_latency(nn.Linear(8, 8), torch.randn(1, 8), warmup=2, repeats=5, threads=1)
    assert stats["repeats"] == 5 and stats["threads"] == 1 and stats["batch"] == 1
    assert stats["median_ms"] > 0 and stats["device"].startswith("cpu")
    assert {"mean_ms", "std_ms", "dtype", "channels_last", "compiled"} <= set(stats)
