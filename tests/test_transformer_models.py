"""Growable ViT / BERT and the fixed `transformers` references: shapes, sizes, masking, MACs."""

import pytest
import torch

from adagrow.errors import ArchitectureError
from adagrow.measure.profile import count_macs, count_params
from adagrow.models.fixed_transformers import build_fixed_transformer
from adagrow.models.transformer import create_transformer, default_patch_size, parse_arch


def test_parse_arch_accepts_both_spellings_and_rejects_bad_widths():
    assert parse_arch("D4W384") == (4, 6)
    assert parse_arch("d6h7") == (6, 7)
    with pytest.raises(ArchitectureError, match="multiple"):
        parse_arch("D4W100")
    with pytest.raises(ArchitectureError, match="malformed"):
        parse_arch("ResNet-1-2-2")


def test_patch_sizes_follow_the_thesis():
    assert [default_patch_size(s) for s in (28, 32, 64, 224)] == [2, 2, 4, 16]


def test_vit_d4w384_matches_the_thesis_parameter_count():
    model = create_transformer("vit", "D4W384", 10, input_size=(3, 32, 32))
    assert model.arch == "D4W384"
    # Table 3-27: 7.10M; thop does not count the positional table and class token (nn.Parameters
    # outside modules), so compare without them.
    loose = model.pos_embed.numel() + model.cls_token.numel()
    assert abs((count_params(model) - loose) / 7.10e6 - 1) < 0.005


def test_vit_forward_shape():
    model = create_transformer("vit", "D2W128", 7, input_size=(1, 28, 28))
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 7)


def test_bert_ignores_padding():
    torch.manual_seed(0)
    model = create_transformer("bert", "D2W128", 2, vocab_size=50, max_len=16).eval()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    padded = torch.cat([ids, torch.zeros(1, 6, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(ids), model(padded), atol=1e-5, rtol=1e-5)
    other = ids.clone()
    other[0, 2] = 12
    assert not torch.allclose(model(ids), model(other))


def test_bert_rejects_sequences_longer_than_max_len():
    model = create_transformer("bert", "D1W128", 2, vocab_size=50, max_len=8)
    with pytest.raises(ArchitectureError, match="max_len"):
        model(torch.ones(1, 9, dtype=torch.long))


def test_macs_include_attention():
    model = create_transformer("vit", "D1W128", 10, input_size=(3, 32, 32))
    n, d = 257, 128  # tokens (256 patches + class token), hidden size
    linear = n * 12 * d * d + 256 * d * 3 * 2 * 2 + d * 10  # q,k,v,proj,fc1,fc2 + patch conv + head
    attention = 2 * n * n * d  # QKᵀ and AV
    macs = count_macs(model, (3, 32, 32))
    assert abs(macs / (linear + attention) - 1) < 0.01  # without attention it would be 25% off


def test_macs_of_a_token_model_use_the_example():
    model = create_transformer("bert", "D1W128", 2, vocab_size=50, max_len=32)
    short = count_macs(model, example=torch.ones(1, 8, dtype=torch.long))
    full = count_macs(model, example=torch.ones(1, 32, dtype=torch.long))
    assert full > 4 * short


def test_fixed_transformer_macs_do_not_depend_on_the_attention_implementation():
    import torch_pruning as tp

    model = build_fixed_transformer("bert_small", 2, (16,), vocab_size=100)
    ids = torch.randint(1, 100, (1, 16), generator=torch.Generator().manual_seed(0))
    layers, n, d = 10, 16, 512
    modules_only, _ = tp.utils.count_ops_and_params(model, ids)
    expected = modules_only + layers * 2 * n * n * d  # QKᵀ and AV of every layer
    assert count_macs(model, example=ids) == expected  # SDPA
    model.model.set_attn_implementation("eager")  # two torch.matmul calls per layer
    assert count_macs(model, example=ids) == expected


def test_fixed_bert_small_is_the_thesis_d10w512_and_returns_logits():
    model = build_fixed_transformer("bert_small", 2, (32,), vocab_size=100)
    bert = model.model.config
    assert (bert.num_hidden_layers, bert.hidden_size, bert.num_attention_heads) == (10, 512, 8)
    ids = torch.tensor([[2, 5, 6, 3, 0, 0]])
    assert model(ids).shape == (1, 2)


def test_fixed_vit_base_config_and_logits():
    model = build_fixed_transformer("vit_base", 10, (3, 32, 32))
    vit = model.model.config
    assert (vit.num_hidden_layers, vit.hidden_size, vit.patch_size) == (12, 768, 2)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_fixed_transformer_errors():
    with pytest.raises(ArchitectureError, match="unknown"):
        build_fixed_transformer("bert_huge", 2, (32,), vocab_size=10)
    with pytest.raises(ArchitectureError, match="vocab_size"):
        build_fixed_transformer("bert_base", 2, (32,))
