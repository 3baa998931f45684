"""Params / MACs conventions and the latency record."""

import itertools
import random

import pytest
import timm
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from adagrow.errors import AdaGrowError
from adagrow.measure.latency import NOISY_SPREAD, measure_latency
from adagrow.measure.profile import count_macs, count_params, profile
from adagrow.models.cnn import GrowableCNN
from adagrow.models.reparam import BranchSpec, RepUnit, fuse_model, set_branch_compute
from adagrow.models.transformer import create_transformer


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


def test_attention_macs_do_not_depend_on_the_kernel():
    # On CPU the default SDPA kernel is the flash one, which torch's FlopCounterMode cannot see,
    # while the math fallback decomposes into bmm: the count must be the shapes' 2·L²·d either way.
    import torch_pruning as tp

    model = create_transformer("vit", "D2W128", 10, input_size=(3, 16, 16))
    n, d = 8 * 8 + 1, 128  # tokens (patches of 2 + class token), hidden size
    modules_only, _ = tp.utils.count_ops_and_params(model, torch.randn(1, 3, 16, 16))
    expected = modules_only + 2 * (2 * n * n * d)  # two layers, each QKᵀ and AV
    assert count_macs(model, (3, 16, 16)) == expected
    with sdpa_kernel(SDPBackend.MATH):
        assert count_macs(model, (3, 16, 16)) == expected


def test_unfused_unit_counts_every_branch():
    unit = RepUnit(4, 4, kernel=3)
    for name in ("3x3", "1x1", "pool3x3", "bn"):
        unit.add_branch(BranchSpec.parse(name))
    out = 4 * 8 * 8  # output elements at 8x8
    # main 3x3 and the 3x3 branch (run as one stacked F.conv2d), the 1x1 conv, the 3x3 average pool
    # (one op per input element) and five BNs (scale and shift: two per element)
    by_hand = out * (4 * 9) * 2 + out * 4 + out + 5 * 2 * out
    assert count_macs(unit, (4, 8, 8)) == by_hand
    assert count_macs(unit.fuse(), (4, 8, 8)) == out * 4 * 9 + out  # one 3x3 conv with bias


def test_batched_unit_counts_what_it_runs():
    unit = RepUnit(4, 4, kernel=3)
    for name in ("3x3", "1x1", "pool3x3", "bn", "pool3x3"):
        unit.add_branch(BranchSpec.parse(name))
    set_branch_compute(unit, "batched")
    out = 4 * 8 * 8
    # one conv of three 3x3 kernels (the 1x1 zero-padded: its padding is computed too), the 3x3 pooling
    # once (both pooling branches read it), and the six BNs of the two concatenated batch norms
    assert count_macs(unit, (4, 8, 8)) == out * (4 * 9) * 3 + out + 6 * 2 * out


def test_grown_unfused_model_costs_at_least_its_fused_model():
    model = GrowableCNN("vgg", "1-1-1")
    plain = count_macs(model, (3, 32, 32))
    for _, unit in model.units():
        for name in ("3x3", "1x1", "1x3"):
            unit.add_branch(BranchSpec.parse(name))
    grown, fused = count_macs(model, (3, 32, 32)), count_macs(fuse_model(model), (3, 32, 32))
    # Each unit now runs its 3x3 conv twice plus a 1x1 and a 1x3 conv: about (2 + 1/9 + 3/9)x the convs.
    assert grown > 2 * plain and fused <= plain < grown

def test_latency_record_names_its_settings_and_spread():
    stats = measure_latency(nn.Linear(8, 8), torch.randn(1, 8), warmup=2, repeats=5, threads=1)
    assert stats["repeats"] == 5 and stats["threads"] == 1 and stats["batch"] == 1
    assert stats["median_ms"] > 0 and stats["device"].startswith("cpu")
    assert stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"] and stats["iqr_ms"] >= 0
    assert stats["spread"] == (stats["p90_ms"] - stats["p10_ms"]) / stats["median_ms"]
    assert stats["noisy"] == (stats["spread"] > NOISY_SPREAD) and stats["warmup"] >= 2
    assert {"mean_ms", "std_ms", "dtype", "channels_last", "compiled"} <= set(stats)


def fake_timer(values):
    """A timer that runs the forward but reports the next of ``values`` (ms) as its duration."""
    it = iter(values)

    def timer(run):
        run()
        return next(it)

    return timer


def test_stable_latency_stops_early_and_is_not_noisy():
    stats = measure_latency(nn.Identity(), torch.zeros(1), warmup=3, repeats=200, min_repeats=20,
                            timer=fake_timer(itertools.repeat(5.0)))
    # warm-up: 3 forwards were not 200 ms yet, so 40; then two rounds of 20 agree and stop
    assert stats["warmup"] == 40 and stats["repeats"] == 40
    assert stats["median_ms"] == 5.0 and stats["spread"] == 0 and not stats["noisy"]


def test_wild_latency_runs_to_the_limit_and_is_flagged():
    rng = random.Random(0)
    wild = (rng.lognormvariate(3, 1) for _ in itertools.count())  # median ~20 ms, heavy tail
    stats = measure_latency(nn.Identity(), torch.zeros(1), repeats=200, timer=fake_timer(wild))
    assert stats["repeats"] == 200 and stats["noisy"]
    assert stats["spread"] > 1 and stats["p90_ms"] > 2 * stats["median_ms"] and stats["iqr_ms"] > 0


def test_noisy_latency_stops_at_the_time_budget():
    alternating = itertools.cycle([50.0, 150.0])
    stats = measure_latency(nn.Identity(), torch.zeros(1), repeats=200, min_repeats=20, budget_s=1.0,
                            timer=fake_timer(alternating))
    assert stats["repeats"] == 20 and stats["noisy"]  # the first round already took 2 s


@pytest.mark.parametrize("load, busy", [(1.9, False), (2.4, False), (4.1, True)])
def test_a_cpu_latency_says_whether_other_work_loaded_the_machine(monkeypatch, load, busy):
    """A steady spread does not prove a quiet machine: a second 2-thread job on 2 cores gives steady, slower
    repeats.  The 1-minute load as the timing ends, against the usable cores (2 here): above 2.5, busy."""
    import adagrow.measure.latency as latency

    monkeypatch.setattr(latency, "machine_load", lambda: load)
    monkeypatch.setattr(latency, "usable_cores", lambda: 2)
    stats = measure_latency(nn.Identity(), torch.zeros(1), warmup=1, repeats=20, timer=fake_timer(itertools.repeat(5.0)))
    assert not stats["noisy"] and stats["load_1min"] == load and stats["busy"] is busy


def test_latency_rejects_no_repeats():
    with pytest.raises(AdaGrowError, match="repeats"):
        measure_latency(nn.Identity(), torch.zeros(1), repeats=0)


@pytest.mark.gpu
def test_macs_and_latency_on_cuda():
    model = create_transformer("vit", "D2W128", 10, input_size=(3, 16, 16))
    cpu = count_macs(model, (3, 16, 16))
    assert count_macs(model.cuda(), (3, 16, 16)) == cpu  # flash / efficient kernels counted as the CPU's
    stats = measure_latency(model, torch.randn(1, 3, 16, 16, device="cuda"), repeats=50)
    assert stats["threads"] is None and 20 <= stats["repeats"] <= 50 and stats["p10_ms"] <= stats["p90_ms"]


@pytest.mark.parametrize("spec, unfused_taps", [("pool5x5", None), ("3x5", 9 + 15)])
def test_where_a_fused_unit_costs_more_than_its_branches(spec, unfused_taps):
    """The two cases the profile docstring names (issue 20, item 19), counted by hand: a unit fuses into
    one dense K×K kernel, K its longest branch side, which can hold more taps than the branches compute."""
    from adagrow.measure import profile as profile_module

    unit = RepUnit(4, 4, kernel=3, max_branch_kernel=5, branch_space="full")
    unit.add_branch(BranchSpec.parse(spec))
    out = 4 * 8 * 8
    bns = 2 * 2 * out  # main BN and the branch's BN: scale and shift per element
    if unfused_taps is None:  # 3x3 conv, and 5x5 average pooling: one op per element (ptflops' convention)
        by_hand = out * 4 * 9 + out + bns
    else:
        by_hand = out * 4 * unfused_taps + bns
    fused_by_hand = out * 4 * 25 + out  # one 5x5 conv with bias
    assert count_macs(unit, (4, 8, 8)) == by_hand < fused_by_hand == count_macs(unit.fuse(), (4, 8, 8))
    doc = profile_module.__doc__
    assert "**pooling**" in doc and "**non-square**" in doc and "3×5" in doc
