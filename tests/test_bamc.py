"""BAMC: the Dirichlet-process mixture finds a layer's levels, the bit-widths meet a budget, and a
quantized model holds at most 2^b values per layer (codebook) or per row (re-quantized)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from adagrow.engine.checkpoint import load_checkpoint
from adagrow.engine.runner import Interrupted, run
from adagrow.errors import AdaGrowError
from adagrow.methods import load_builtin_methods
from baselines.quant import bits as B
from baselines.quant.bamc import BAMCConfig
from baselines.quant.dpgmm import fit, init_mixture, neg_log_prior
from tests.test_prune import _cfg, tiny_models  # noqa: F401  (tiny_models is a fixture)

pytestmark = [pytest.mark.filterwarnings("ignore:MNIST. md5"), pytest.mark.usefixtures("tiny_models")]


def clustered(centres, n: int = 3000, spread: float = 0.01, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([c + spread * torch.randn(n, generator=g) for c in centres])


def test_a_layer_of_three_separated_clusters_gets_three_components_and_two_bits():
    layer = nn.Linear(300, 30)
    layer.weight.data = clustered((-0.5, 0.1, 0.8))[torch.randperm(9000)].reshape(30, 300)
    w = layer.weight.detach().flatten()
    mix = fit(w, init_mixture(w, truncation=16, sigma=0.25 * float(w.std()), alpha=0.5))
    active = mix.active(0.005)
    assert len(active) == 3
    assert B.bits_for(len(active)) == 2
    assert torch.allclose(torch.sort(mix.means[active]).values.float(), torch.tensor([-0.5, 0.1, 0.8]), atol=0.01)


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_the_component_count_follows_the_clusters(k):
    w = clustered([float(c) for c in torch.linspace(-1, 1, k)], n=1000)
    mix = fit(w, init_mixture(w, truncation=32, sigma=0.2 * float(w.std()) if k > 1 else 0.05, alpha=0.5))
    assert len(mix.active(0.005)) == k


def test_bits_for():
    assert [B.bits_for(k) for k in (1, 2, 3, 4, 5, 16, 17)] == [1, 1, 2, 2, 3, 4, 5]


@pytest.mark.parametrize("budget", [1.0, 2.0, 2.5, 3.0])
def test_the_bit_widths_respect_the_average_bit_budget_and_take_bits_where_they_cost_least(budget):
    # a: 8 clusters in 4 tight pairs (3 bits, but 4 levels lose little); b: a Gaussian with 8 levels (3 bits);
    # c: 4 clear clusters (2 bits)
    pairs = (-1.0, -0.95, -0.35, -0.3, 0.3, 0.35, 0.95, 1.0)
    a = clustered(pairs, n=500, spread=0.005)
    b = torch.randn(4000, generator=torch.Generator().manual_seed(1))
    c = clustered((-1.0, -0.3, 0.3, 1.0), n=1000)
    samples = {"a": a, "b": b, "c": c}
    gauss = B.lloyd(b, torch.quantile(b, torch.linspace(0.05, 0.95, 8)))  # the best 8 levels of a Gaussian
    levels = {"a": torch.tensor(pairs, dtype=torch.float64), "b": gauss, "c": torch.tensor([-1.0, -0.3, 0.3, 1.0])}
    bits = {"a": 3, "b": 3, "c": 2}
    counts = {n: x.numel() for n, x in samples.items()}
    out = B.fit_budget(bits, counts, samples, levels, budget)
    avg = sum(bits[n] * counts[n] for n in bits) / sum(counts.values())
    assert avg <= budget + 1e-9
    assert all(len(out[n]) <= 2 ** bits[n] for n in bits)
    if budget == 2.5:  # one bit off the paired clusters costs less than one off the Gaussian or the clear clusters
        assert bits == {"a": 2, "b": 3, "c": 2}


def test_no_budget_keeps_the_inferred_widths_and_a_budget_below_one_bit_is_refused():
    x = clustered((-1.0, 1.0))
    bits = {"l": 1}
    B.fit_budget(bits, {"l": x.numel()}, {"l": x}, {"l": torch.tensor([-1.0, 1.0])}, None)
    assert bits == {"l": 1}
    with pytest.raises(AdaGrowError, match="below the 1 bit"):
        B.fit_budget(bits, {"l": x.numel()}, {"l": x}, {"l": torch.tensor([-1.0, 1.0])}, 0.5)
    with pytest.raises(AdaGrowError, match="--avg-bits"):
        BAMCConfig(avg_bits=0.5)


def test_the_prior_pulls_each_weight_towards_its_nearest_level():
    w = torch.tensor([-0.9, -0.2, 0.15, 0.8], requires_grad=True)
    levels = torch.tensor([-1.0, 0.0, 1.0])
    neg_log_prior(w, levels, torch.log(torch.full((3,), 1 / 3)), sigma=0.1).backward()
    assert torch.equal(torch.sign(w.grad), torch.tensor([1.0, -1.0, 1.0, -1.0]))  # descent moves towards -1, 0, 0, 1


def test_lloyd_and_snap_give_at_most_the_requested_levels():
    x = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    levels = B.lloyd(x, x[:4])
    q = B.snap(x, levels)
    assert len(torch.unique(q)) <= 4 and B.relative_error(x, q) < 0.15


def test_bamc_is_registered():
    assert "bamc" in load_builtin_methods()


def distinct_per_layer(model: nn.Module) -> dict[str, int]:
    return {n: len(torch.unique(m.weight)) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


@pytest.mark.parametrize("variant", ["train", "posthoc"])
def test_a_bamc_run_quantizes_every_layer_to_at_most_2_to_the_b_values_and_records_it(variant, tiny_mnist, tmp_path):
    mcfg = BAMCConfig(variant=variant, max_bits=4, update_every=5, avg_bits=3.0, compare=(), resolution_sweep=())
    rec = run(_cfg(tiny_mnist, tmp_path, "bamc", mcfg, epochs=2))
    info = rec["bamc"]
    layers = {r["name"]: r for r in info["layers"]}
    model = load_checkpoint(tmp_path / "runs" / rec["run_name"] / "deploy.pt")["model"]
    for name, count in distinct_per_layer(model).items():
        assert count <= 2 ** layers[name]["bits"], name
        assert layers[name]["bits"] <= layers[name]["inferred_bits"] <= 4
    assert info["avg_bits"] <= 3.0 + 1e-9
    assert set(info["uniform"]) == {"w4", "w8"} and info["uniform"]["w4"]["size_bytes"] < info["uniform"]["w8"]["size_bytes"]
    assert info["size_bytes"] < info["float_size_bytes"]
    assert {"search", "quantize"} <= set(rec["gpu_seconds"])
    assert ("bamc" in rec["gpu_seconds"]) == (variant == "train")
    assert rec["growth_events"][-1]["kind"] == "quantize"
    assert "rescaled" not in info  # a run that pretrains itself is not rescaled (only a trained start is)


@pytest.mark.parametrize("quantizer", ["rtn", "obs"])
def test_requantizing_keeps_2_to_the_b_values_per_row(quantizer, tiny_mnist, tmp_path):
    # obs calibrates on training images without augmentation (the runner's calibration_batches)
    mcfg = BAMCConfig(variant="posthoc", max_bits=3, quantizer=quantizer, compare=(), calib_size=32)
    rec = run(_cfg(tiny_mnist, tmp_path, "bamc", mcfg, epochs=1))
    bits = {r["name"]: r["bits"] for r in rec["bamc"]["layers"]}
    model = load_checkpoint(tmp_path / "runs" / rec["run_name"] / "deploy.pt")["model"]
    for name, m in model.named_modules():
        if name in bits:
            rows = m.weight.detach().flatten(1)
            assert max(len(torch.unique(r)) for r in rows) <= 2 ** bits[name]


def test_resume_during_the_prior_phase_equals_an_uninterrupted_run(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, tmp_path / "full", "bamc", BAMCConfig(max_bits=3, update_every=3, compare=(), resolution_sweep=()), epochs=3, keep_checkpoint=True)
    full = run(cfg)
    cut = dataclasses.replace(cfg, output_dir=str(tmp_path / "cut"))
    with pytest.raises(Interrupted):
        run(cut, interrupt_after=2)
    resumed = run(dataclasses.replace(cut, resume=True))
    assert resumed["test_acc"] == full["test_acc"]
    assert [r["bits"] for r in resumed["bamc"]["layers"]] == [r["bits"] for r in full["bamc"]["layers"]]


def test_bamc_without_a_trained_start_is_one_clear_error(tiny_mnist, tmp_path):
    with pytest.raises(AdaGrowError, match="trained model"):
        run(_cfg(tiny_mnist, tmp_path, "bamc", BAMCConfig(bamc_epochs=2), epochs=2))


def test_the_bamc_report_has_bamc_uniform_and_float_rows_from_one_run(tiny_mnist, tmp_path):
    from reports import second_thesis

    mcfg = BAMCConfig(variant="posthoc", max_bits=3, hessian_probes=2, hessian_samples=32)
    rec = run(_cfg(tiny_mnist, tmp_path, "bamc", mcfg, epochs=1, suite="bamc-mnist", tag="bamc-vgg122-posthoc"))
    rows = [r for r in second_thesis.bamc_grid(second_thesis.read_records(tmp_path)).rows if r[:2] == ["mnist", "bamc-vgg122-posthoc"]]
    above = ["uniform-above allocation, same format"] if "uniform-above" in rec["bamc"]["baselines"] else []
    assert [r[2].strip() for r in rows] == [
        f"BAMC (bits {rec['bamc']['bits_status']})", "before quantization (the model quantized)",
        "uniform allocation, same format", *above, "random allocation, same format",
        "hessian allocation, same format", "uniform W4 (rtn)", "uniform W8 (rtn)", "float32 (start)"]
    assert rows[0][3] == f"{rec['test_acc']:.2f}" and rows[0][5] == f"{rec['bamc']['avg_bits']:.2f}"
    assert all(r[-1] == second_thesis.PAPER for r in rows)


# ---- issue 18, item 7: the prior's scale, the resolution sweep, the baselines at matched bits -----------------
def test_the_prior_term_is_lambda_times_the_mean_negative_log_mixture_density_per_weight():
    from baselines.quant.bamc import BAMC
    from baselines.quant.dpgmm import DPMixture

    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    model[0].weight.data = torch.tensor([[-1.0, -0.9], [1.1, 0.2]])
    model[1].weight.data = torch.tensor([[0.05, -0.05]])
    levels, sigma = torch.tensor([-1.0, 1.0]), 0.5
    log_pi = torch.log(torch.tensor([0.25, 0.75]))
    method = BAMC(BAMCConfig(prior_weight=2.0))
    method.n_train = 7
    method.mixtures = {n: DPMixture(levels, levels, levels, levels, levels, sigma, 0.5, 0.0, 1.0) for n in ("0", "1")}
    method._prior = {n: (levels, log_pi) for n in ("0", "1")}

    def nlp(w):  # −log Σ_k π_k exp(−(w − μ_k)² / 2σ²), by hand
        return -torch.log(0.25 * torch.exp(-(w + 1) ** 2 / (2 * sigma**2)) + 0.75 * torch.exp(-(w - 1) ** 2 / (2 * sigma**2)))

    weights = torch.cat([model[0].weight.flatten(), model[1].weight.flatten()]).detach()
    assert float(method.extra_loss(model)) == pytest.approx(2.0 * float(nlp(weights).mean()), rel=1e-5)
    data = BAMC(BAMCConfig(prior_weight=2.0, prior_scale="data"))
    data.n_train, data.mixtures, data._prior = 7, method.mixtures, method._prior
    assert float(data.extra_loss(model)) == pytest.approx(2.0 * float(nlp(weights).sum()) / 7, rel=1e-5)


def test_a_layer_of_almost_only_zeros_keeps_its_prior_term_of_order_one():
    """A converged ResNet-18's dead layers: 4 live weights in 200,000, which the 10,000-weight sample misses.
    Gaussian components of std r·s (s: the layer's weight std) cost each weight (w − μ)² / 2(r·s)² nats at
    most from its nearest level, so the mean over the layer is about 1 / 2r² = 8 at r = 0.25 with a single
    level at 0.  A component std taken from the sample (all zeros but noise) made it ~10^9."""
    from baselines.quant.bamc import BAMC, spreads

    layer = nn.Linear(2000, 100, bias=False)
    w = 1e-9 * torch.randn(100, 2000, generator=torch.Generator().manual_seed(1))
    w.view(-1)[torch.tensor([11, 50_001, 120_007, 199_999])] = torch.tensor([0.05, -0.04, 0.03, -0.05])
    layer.weight.data = w
    model = nn.Sequential(layer)
    method = BAMC(BAMCConfig(resolution=0.25, sample=10_000))
    sample = method._sample(layer.weight, seed=0)
    assert sample.abs().max() < 1e-6  # the sample holds none of the live weights
    method.mixtures = method._fit_mixtures({"0": sample}, spreads(method.layers(model)), 0.25)
    method._refresh_prior(model)
    assert method.mixtures["0"].sigma == pytest.approx(0.25 * float(w.std()))
    assert float(method.extra_loss(model).detach()) < 8 * 1.1 + 5  # 1/2r², plus the −log π of the level(s)


def test_hutchinson_is_exact_for_a_diagonal_hessian_and_unbiased_for_a_full_one():
    from baselines.quant.hutchinson import hutchinson_traces

    d = torch.tensor([1.0, 2.0, -0.5, 4.0])
    x = torch.zeros(4, requires_grad=True)
    est = hutchinson_traces(lambda: 0.5 * (d * x * x).sum(), {"x": x}, probes=3)
    assert est["x"] == pytest.approx(float(d.sum()))  # vᵀDv = Σ d_i v_i² = tr D for ±1 probes
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g)
    a = m @ m.T  # the Hessian of ½ yᵀAy (y = [u; w]): blocks A_uu (4×4) and A_ww (2×2)
    u, w = torch.zeros(4, requires_grad=True), torch.zeros(2, requires_grad=True)
    probes = 1000
    est = hutchinson_traces(lambda: 0.5 * torch.cat([u, w]) @ a @ torch.cat([u, w]), {"u": u, "w": w}, probes=probes)
    for name, own, other in (("u", slice(0, 4), slice(4, 6)), ("w", slice(4, 6), slice(0, 4))):
        block = a[own, own]
        # one probe's variance: 2 Σ_{i≠j} A_ij² within the block, plus Σ A_ij² of its cross terms with the other block
        var = 2 * (block.pow(2).sum() - block.diagonal().pow(2).sum()) + a[own, other].pow(2).sum()
        assert abs(est[name] - float(block.trace())) < 4 * float((var / probes).sqrt())


def test_the_hessian_allocation_minimises_the_hawq_sensitivity_under_the_budget():
    import itertools

    from baselines.quant import allocate as A

    counts = {"a": 100, "b": 100, "c": 200}
    traces = {"a": 50.0, "b": 1.0, "c": 10.0}
    errors = {n: {b: 4.0 ** -b * s for b in range(1, 5)} for n, s in (("a", 1.0), ("b", 2.0), ("c", 1.0))}
    bits = A.hessian_allocation(counts, traces, errors, 2.5, 4)

    def total(bb):
        return sum(traces[n] / counts[n] * errors[n][bb[n]] for n in counts)

    feasible = [dict(zip(counts, bb)) for bb in itertools.product(range(1, 5), repeat=3)]
    feasible = [bb for bb in feasible if A.average(bb, counts) <= 2.5]
    assert total(bits) == pytest.approx(min(total(bb) for bb in feasible))  # HAWQ-v2's optimum, by enumeration
    assert bits["a"] > bits["b"]  # the sensitive layer keeps its bits


def test_uniform_and_random_allocations_stay_within_the_budget():
    from baselines.quant import allocate as A

    counts = {"a": 10, "b": 300, "c": 40}
    assert A.uniform(counts, 3.0, 6) == {"a": 3, "b": 3, "c": 3} and A.uniform(counts, 2.7, 6) == {"a": 2, "b": 2, "c": 2}
    r = A.random_allocation(counts, 2.5, 6, seed=1)
    assert A.average(r, counts) <= 2.5 and all(1 <= b <= 6 for b in r.values())
    assert r == A.random_allocation(counts, 2.5, 6, seed=1) and A.average(r, counts) > 2.5 - 300 / 350  # the last bit taken is at most the largest layer's


def test_the_two_uniform_rows_bracket_a_fractional_average_and_meet_a_whole_one():
    # BAMC's reference run averaged 2.81 bits: uniformly, 2 bits is the width below it and 3 the one above
    from baselines.quant import allocate as A

    counts = {"a": 10, "b": 300}
    assert A.uniform(counts, 2.81, 6) == {"a": 2, "b": 2} and A.uniform_above(counts, 2.81, 6) == {"a": 3, "b": 3}
    assert A.uniform_above(counts, 3.0, 6) == A.uniform(counts, 3.0, 6) == {"a": 3, "b": 3}
    assert A.uniform_above(counts, 5.5, 5) == {"a": 5, "b": 5}  # never above the widest width


def test_bits_are_called_inferred_only_where_the_resolution_sweep_leaves_them_unchanged():
    from baselines.quant.bamc import BAMC

    method = BAMC(BAMCConfig(resolution=0.25, resolution_sweep=(0.5, 2.0), max_bits=5))
    clusters = clustered((-1.0, -0.3, 0.3, 1.0), n=250, spread=0.002)  # 4 levels at any sensible resolution
    gauss = torch.randn(600, generator=torch.Generator().manual_seed(0)).double()
    samples = {"clusters": clusters.double(), "gauss": gauss}
    counts = {"clusters": 1000, "gauss": 1000}  # equal counts: the stable share is one half
    spread = {n: float(x.std()) for n, x in samples.items()}
    inferred = {n: B.bits_for(len(m.active(0.005))) for n, m in method._fit_mixtures(samples, spread, 0.25).items()}
    stable = method._resolution_sweep(samples, spread, counts, inferred)
    assert stable == {"clusters": True, "gauss": False}
    sweep = method.result["resolution_sweep"]
    assert [r["bits"]["clusters"] for r in sweep] == [2, 2, 2]
    assert sweep[0]["bits"]["gauss"] > sweep[-1]["bits"]["gauss"]  # finer resolution, more levels: not inferred
    assert method.result["bits_status"] == "set by --resolution" and method.result["stable_share"] == 0.5


def test_a_bamc_run_records_the_snap_and_the_baselines_at_its_average_width_in_its_format(tiny_mnist, tmp_path, capsys):
    mcfg = BAMCConfig(variant="posthoc", max_bits=3, hessian_probes=2, hessian_samples=32)
    rec = run(_cfg(tiny_mnist, tmp_path, "bamc", mcfg, epochs=1))
    out = capsys.readouterr().out  # the minutes of allocations and evaluations each say so as they end
    for kind, row in rec["bamc"]["baselines"].items():
        assert f"bamc: {kind} allocation at {row['avg_bits']:.2f} bits: test acc {row['test_acc']:.2f}" in out
    assert "bamc: Hessian traces of" in out
    info = rec["bamc"]
    assert info["before_snap"]["test_acc"] == info["float"]["test_acc"]  # posthoc: the trained float model
    assert info["after_snap"]["test_acc"] == rec["test_acc"]
    whole = abs(info["avg_bits"] - round(info["avg_bits"])) < 1e-9
    assert set(info["baselines"]) == {"uniform", "random", "hessian"} | (set() if whole else {"uniform-above"})
    for kind, row in info["baselines"].items():
        assert len(row["bits"]) == len(info["layers"])
        if kind == "uniform-above":  # the next whole width above BAMC's average, in every layer
            assert row["bits"] == [int(info["avg_bits"]) + 1] * len(info["layers"])
        else:
            assert row["avg_bits"] <= info["avg_bits"] + 1e-9
    assert set(info["hessian_traces"]) == {r["name"] for r in info["layers"]}
    assert info["bits_status"] in ("inferred", "set by --resolution") and len(info["resolution_sweep"]) == 3


def test_a_baseline_allocation_is_a_run_of_its_own(tiny_mnist, tmp_path):
    mcfg = BAMCConfig(variant="posthoc", allocation="uniform", avg_bits=2.0, max_bits=3)
    rec = run(_cfg(tiny_mnist, tmp_path, "bamc", mcfg, epochs=1))
    assert rec["bamc"]["allocation"] == "uniform" and all(r["bits"] == 2 for r in rec["bamc"]["layers"])
    model = load_checkpoint(tmp_path / "runs" / rec["run_name"] / "deploy.pt")["model"]
    assert all(n <= 4 for n in distinct_per_layer(model).values())  # a 2-bit codebook per layer
    with pytest.raises(AdaGrowError, match="baseline"):
        BAMCConfig(allocation="random")


def test_bamc_starts_from_a_base_run_named_not_pathed_and_checks_it_only_when_the_run_starts(tmp_path):
    """Issue 19: BAMC's reference rows quantize the mnist suite's converged runs (Entry.derive fills base_run)."""
    from types import SimpleNamespace

    from baselines.quant.bamc import BAMC, BAMCConfig
    from suites import _load

    cfg = BAMCConfig(base_run="mnist-fixed-resnet18-thesis-thesis-reference-s0-aeb72d19")  # no such file: still builds
    with pytest.raises(AdaGrowError, match="must be the name of a run directory"):
        BAMCConfig(base_run="../elsewhere")
    with pytest.raises(AdaGrowError, match="not both"):
        BAMCConfig(base_run="a", pretrained="b.pt")
    with pytest.raises(AdaGrowError, match=r"--base-run .*: no such file .*runs/mnist-fixed-resnet18.*run that base first"):
        BAMC(cfg).check_ready(SimpleNamespace(output_dir=str(tmp_path)))
    run = tmp_path / "runs" / cfg.base_run
    run.mkdir(parents=True)
    (run / "deploy.pt").write_bytes(b"")
    BAMC(cfg).check_ready(SimpleNamespace(output_dir=str(tmp_path)))  # present: nothing to say

    mnist = {e.name: e for e in _load().get("mnist")}
    rows = [e for e in _load().get("bamc-mnist") if e.reference]
    assert {e.name for e in rows} == {"bamc-adagrow-vgg-ref", "bamc-resnet18-ref"}
    for e in rows:  # each quantizes a converged model of the same profile's mnist suite
        (what, suite, base), = e.derive.values()
        assert (what, suite) == ("run", "mnist") and mnist[base].reference and e.epochs == 2


def test_a_trained_start_trains_with_the_prior_from_its_convolutions_at_initialisation_scale(tiny_mnist, tmp_path):
    """--rescale init (default): the pretrained model's BatchNorm-fed convolutions are rescaled before the prior's
    training (the factors recorded); --rescale none leaves them as trained."""
    plain = BAMCConfig(variant="posthoc", max_bits=3, compare=(), resolution_sweep=())
    first = run(_cfg(tiny_mnist, tmp_path / "a", "bamc", plain, epochs=1))
    deploy = str(tmp_path / "a" / "runs" / first["run_name"] / "deploy.pt")
    mcfg = BAMCConfig(pretrained=deploy, max_bits=3, compare=(), resolution_sweep=(), uniform_bits=(4,))
    rec = run(_cfg(tiny_mnist, tmp_path / "b", "bamc", mcfg, epochs=1))
    assert set(rec["bamc"]["rescaled"]) == {"0", "3"}  # chain: conv → BN twice
    kept = run(_cfg(tiny_mnist, tmp_path / "c", "bamc", dataclasses.replace(mcfg, rescale="none"), epochs=1))
    assert "rescaled" not in kept["bamc"]
