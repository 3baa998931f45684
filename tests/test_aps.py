"""APS: the affine transforms span ordinal sharing and independent candidates, the sharing level falls
along APS-T's schedule, and a run searches within the budget and retrains a plain network of its choice."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from adagrow.config import RunConfig
from adagrow.engine.checkpoint import load_checkpoint
from adagrow.engine.runner import run
from adagrow.errors import AdaGrowError
from adagrow.methods import load_builtin_methods
from baselines.search.aps import APS, APSConfig
from baselines.search.supernet import APSConv, PlainCNN, SuperNet, annealed_sharing, sharing_level
from tests.conftest import tiny_run_config

pytestmark = pytest.mark.filterwarnings("ignore:MNIST. md5")
CANDS = (4, 8, 12)


def test_maximal_sharing_makes_the_candidates_nested_slices_of_the_meta_weights():
    layer = APSConv(3, CANDS)
    layer.sharing = 1.0
    ws = [layer.weight(i) for i in range(3)]
    for small, big in zip(ws, ws[1:]):
        assert torch.equal(big[: small.shape[0]], small)  # ordinal: the first c channels
    assert torch.equal(ws[0], layer.meta[:4])
    assert sharing_level(layer) == pytest.approx(1.0)


def test_zero_sharing_makes_the_candidates_independent():
    layer = APSConv(3, CANDS)
    layer.sharing = 0.0
    assert sharing_level(layer) == pytest.approx(0.0)
    grads = []
    for i in range(3):
        layer.meta.grad = None
        layer.weight(i).sum().backward()
        grads.append(layer.meta.grad.flatten(1).abs().sum(1) > 0)  # the meta rows candidate i uses
    for i in range(3):
        for j in range(i + 1, 3):
            assert not (grads[i] & grads[j]).any()  # no row is shared by two candidates


@pytest.mark.parametrize("s", [0.0, 0.3, 1.0])
def test_a_candidate_weight_is_its_transform_applied_to_the_meta_weights(s):
    layer = APSConv(3, CANDS)
    layer.sharing = s
    for i in range(3):
        expected = (layer.transform(i) @ layer.meta.detach().flatten(1)).reshape(CANDS[i], 3, 3, 3)
        assert torch.allclose(layer.weight(i).detach(), expected, atol=1e-6)


def test_the_sharing_level_falls_monotonically_along_the_annealing_schedule():
    layer = APSConv(3, CANDS)
    levels = []
    for t in torch.linspace(0, 1, 11):
        layer.sharing = annealed_sharing(float(t))
        levels.append(sharing_level(layer))
    assert levels[0] == pytest.approx(1.0) and levels[-1] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(levels, levels[1:]))


def test_the_supernet_runs_any_choice_and_its_widths_match_a_plain_network():
    net = SuperNet([list(CANDS)] * 3, (1, 2), 1, 10)
    x = torch.randn(2, 1, 16, 16)
    for choice in ([0, 1, 2], [2, 0, 1]):
        net.train_choices = choice
        assert net(x).shape == (2, 10)
    plain = PlainCNN(net.widths([2, 0, 1]), (1, 2), 1, 10)
    assert [m.out_channels for m in plain.modules() if isinstance(m, nn.Conv2d)] == [12, 4, 8]


def _cfg(data_dir, out, mcfg, **kw) -> RunConfig:
    return tiny_run_config(data_dir, out, **{"method": "aps", "method_config": mcfg, "keep_checkpoint": True, **kw})


SMALL = APSConfig(depths=(1, 1), widths=(8, 16), multipliers=(0.5, 1.0, 1.5), budget=0.4, search_epochs=2,
                  controller_samples=2)


def test_a_search_meets_the_budget_and_retrains_a_plain_network_of_the_chosen_widths(tiny_mnist, tmp_path):
    rec = run(_cfg(tiny_mnist, tmp_path, SMALL))
    info = rec["aps"]
    model = load_checkpoint(tmp_path / "runs" / rec["run_name"] / "deploy.pt")["model"]
    assert type(model) is PlainCNN and not any(isinstance(m, (APSConv, SuperNet)) for m in model.modules())
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == info["widths"]
    assert rec["macs"] == info["cost"] <= info["budget"] == pytest.approx(0.4 * info["widest"])
    assert rec["arch"] == "-".join(map(str, info["widths"]))
    assert {"search", "retrain"} <= set(rec["gpu_seconds"])
    assert len(info["sharing_levels"]) == 2 and info["sharing_levels"][0] > info["sharing_levels"][1]
    assert rec["growth_events"][0]["kind"] == "search"


def test_resume_after_the_search_retrains_the_same_network(tiny_mnist, tmp_path):
    from adagrow.engine.runner import Interrupted

    cfg = _cfg(tiny_mnist, tmp_path / "a", SMALL)
    full = run(cfg)
    cut = dataclasses.replace(cfg, output_dir=str(tmp_path / "b"))
    with pytest.raises(Interrupted):
        run(cut, interrupt_after=2)
    resumed = run(dataclasses.replace(cut, resume=True))
    assert resumed["aps"]["widths"] == full["aps"]["widths"] and resumed["test_acc"] == full["test_acc"]


def test_an_impossible_budget_and_no_retraining_epoch_are_clear_errors(tiny_mnist, tmp_path):
    with pytest.raises(AdaGrowError, match="narrowest"):
        run(_cfg(tiny_mnist, tmp_path, dataclasses.replace(SMALL, budget=0.01)))
    with pytest.raises(AdaGrowError, match="retrain"):
        run(_cfg(tiny_mnist, tmp_path, SMALL, epochs=2))
    with pytest.raises(AdaGrowError, match="--budget"):
        APSConfig(budget=1.5)


def test_aps_is_registered():
    assert "aps" in load_builtin_methods()


@pytest.mark.parametrize("suite", ["bamc-mnist", "aps-mnist", "bamc-cifar10", "aps-cifar10"])
def test_the_second_thesis_suites_build_valid_run_configs(suite):
    from suites import _load, run_config_for
    from tests.test_suites import fake_args

    entries = _load().get(suite)
    assert any(e.smoke for e in entries)
    for e in entries:
        cfg = run_config_for(e, fake_args(), suite).resolved()
        cfg.validate()
        assert cfg.method == suite.split("-")[0] and cfg.dataset == suite.split("-")[1]


def test_the_aps_report_row_holds_the_run_and_the_paper_cell_stays_empty(tiny_mnist, tmp_path):
    from reports import second_thesis

    rec = run(_cfg(tiny_mnist, tmp_path, SMALL, suite="aps-mnist", tag="aps-vgg122-50"))
    grid = second_thesis.aps_grid(second_thesis.read_records(tmp_path))
    row = next(r for r in grid.rows if r[:2] == ["mnist", "aps-vgg122-50"])
    assert row[2] == rec["arch"] and row[3] == f"{rec['test_acc']:.2f}" and row[-1] == second_thesis.PAPER
    assert all(r[2] == second_thesis.NOT_RUN for r in grid.rows if r[:2] != ["mnist", "aps-vgg122-50"])
    assert second_thesis.main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert "aps-vgg122-50" in (tmp_path / "out" / "second-thesis-aps.md").read_text()


# ---- learned transforms, the controller, the baselines (issue 18, item 8) -----------------------------------
def test_the_sharing_measure_of_a_tiny_layer_is_the_papers_sum_of_squared_overlaps():
    import math

    from baselines.search.supernet import sharing_penalty

    # candidates of 1 and 2 channels over 3 meta rows: P_1 = e_1; P_2 = [(cos t, sin t, 0), e_3]
    layer = APSConv(1, (1, 2), learned=True)
    t = math.pi / 3
    layer.proj.copy_(torch.tensor([[1.0, math.cos(t), 0.0], [0.0, math.sin(t), 0.0], [0.0, 0.0, 1.0]]))
    # Σ_{i<j} ||P_i^T P_j||_F^2 = cos² t = 1/4, over its ordinal value min(1, 2) = 1
    assert sharing_level(layer) == pytest.approx(0.25)
    # the penalty: every ordered pair of distinct columns, 2 · cos² t (P_2's own columns are orthogonal)
    assert float(sharing_penalty(layer.proj)) == pytest.approx(0.5)


def test_learned_transforms_start_ordinal_and_the_penalty_takes_them_to_independent_orthonormal_candidates():
    from baselines.search.supernet import transform_step

    layer = APSConv(3, CANDS, learned=True)
    assert sharing_level(layer) == pytest.approx(1.0, abs=1e-3)
    w_small, w_big = layer.weight(0).detach(), layer.weight(2).detach()
    assert torch.allclose(w_big[:4], w_small, atol=0.05 * float(w_small.abs().max()))  # nested, as ordinal sharing
    levels = []
    for _ in range(300):
        transform_step(layer, 0.02)
        levels.append(sharing_level(layer))
    assert levels[-1] < 1e-4  # independent: no overlap between candidates
    for i in range(3):  # and each candidate's own transform orthonormal (its channels stay distinct)
        p = layer.transform(i)
        assert torch.allclose(p @ p.T, torch.eye(CANDS[i]), atol=1e-3)


def test_the_task_loss_does_not_train_the_transforms():
    layer = APSConv(3, CANDS, learned=True)
    assert "proj" not in dict(layer.named_parameters())
    before = layer.proj.clone()
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    layer(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    assert torch.equal(layer.proj, before) and layer.meta.grad is not None


def test_the_controller_learns_the_rewarded_width_within_a_search(monkeypatch):
    from baselines.search.aps import APS

    aps = APS(dataclasses.replace(SMALL, controller_lr=0.05, entropy_weight=0.0))
    aps.result["budget"] = float("inf")
    monkeypatch.setattr(aps, "cost", lambda choices: 1)
    monkeypatch.setattr(aps, "sub_accuracy", lambda model, choices, x, y: 1.0 if choices[0] == 2 else 0.0)
    aps._val = iter(lambda: (None, None), 0)
    for step in range(200):
        aps.steps = step
        aps.update_controller(None)
    assert aps.favourite()[0] == 2 and torch.softmax(aps.logits[0], 0)[2] > 0.9
    assert sum(aps._epoch["reward"][-20:]) / 20 > sum(aps._epoch["reward"][:20]) / 20  # the reward curve rises


def test_a_learned_search_records_its_reward_curve_and_the_supernets_accuracy(tiny_mnist, tmp_path):
    rec = run(_cfg(tiny_mnist, tmp_path, dataclasses.replace(SMALL, warmup=0.0)))
    curve = rec["aps"]["controller"]
    assert [c["epoch"] for c in curve] == [1, 2] and all(c["updates"] > 0 for c in curve)
    assert all(0 <= c["mean_reward"] <= 1 and 0 <= c["supernet_val_acc"] <= 100 for c in curve)
    assert rec["aps"]["sharing"] == "learned" and rec["aps"]["sharing_levels"][-1] < rec["aps"]["sharing_levels"][0]
    # the finer curve: one mean per block of up to 50 updates inside an epoch, and the supernet's accuracy at the end
    import math

    from baselines.search.aps import REWARD_BLOCK

    assert REWARD_BLOCK == 50
    assert len(rec["aps"]["reward_curve"]) == sum(math.ceil(c["updates"] / 50) for c in curve)
    assert all(0 <= r <= 1 for r in rec["aps"]["reward_curve"])
    assert rec["aps"]["supernet_val_acc"] == curve[-1]["supernet_val_acc"]


@pytest.mark.parametrize("strategy", ["uniform", "random"])
def test_the_width_baselines_are_the_largest_networks_within_the_budget_of_their_multipliers(strategy):
    from baselines.search.aps import APS

    aps = APS(dataclasses.replace(SMALL, strategy=strategy))
    aps._shape = ((1, 16, 16), 10)
    aps.result["budget"] = aps.budget()
    widths = aps.baseline_widths(seed=0)
    mults = aps.result["baseline_multipliers"]
    assert aps.cost_of(widths) <= aps.result["budget"]
    refs = [8, 16]  # SMALL's reference width per layer
    assert widths == [max(1, round(w * m)) for w, m in zip(refs, mults)]
    bigger = [max(1, round(w * m * 1.05)) for w, m in zip(refs, mults)]  # 5% wider is over the budget
    assert aps.cost_of(bigger) > aps.result["budget"]
    if strategy == "uniform":
        assert mults[0] == pytest.approx(mults[1])


def test_a_width_baseline_retrains_for_the_same_epochs_as_aps(tiny_mnist, tmp_path):
    rec = run(_cfg(tiny_mnist, tmp_path, dataclasses.replace(SMALL, strategy="uniform")))
    assert rec["aps"]["strategy"] == "uniform" and rec["macs"] == rec["aps"]["cost"] <= rec["aps"]["budget"]
    assert {"idle", "retrain"} <= set(rec["gpu_seconds"]) and "search" not in rec["gpu_seconds"]
    assert rec["growth_events"][0]["epoch"] == SMALL.search_epochs  # re-initialised where APS retrains


def test_a_width_baseline_waits_out_the_search_epochs_and_retrains_exactly_as_if_it_had_trained_through_them(
        tiny_mnist, tmp_path, monkeypatch):
    """The oracle is the old behaviour: training a throwaway network through the search epochs, then re-initialising
    it. Waiting them out (no step, no evaluation; the schedule moves on) must give the same retrained network, and
    no validation accuracy of the thrown-away network may become the record's best."""
    mcfg = dataclasses.replace(SMALL, strategy="random")
    waited = run(_cfg(tiny_mnist, tmp_path / "waited", mcfg))
    monkeypatch.setattr(APS, "trains", lambda self, epoch: True)
    trained = run(_cfg(tiny_mnist, tmp_path / "trained", mcfg))
    assert waited["test_acc"] == trained["test_acc"] and waited["val_acc"] == trained["val_acc"]
    a = load_checkpoint(tmp_path / "waited" / "runs" / waited["run_name"] / "deploy.pt")["model"].state_dict()
    b = load_checkpoint(tmp_path / "trained" / "runs" / trained["run_name"] / "deploy.pt")["model"].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    skipped = waited["history"][: SMALL.search_epochs]
    assert all(h.get("skipped") and "val_acc" not in h for h in skipped)
    assert [h["lr"] for h in waited["history"][SMALL.search_epochs:]] == [
        h["lr"] for h in trained["history"][SMALL.search_epochs:]]  # the same part of the schedule
    assert waited["best_epoch"] > SMALL.search_epochs


# ---- issue 19: the reference rows (five random width sets per seed, equal MACs, the search's record) -----------------
def _macs_by_hand(widths, depths=(1, 2, 2), chans=1, side=28, classes=10) -> int:
    """MACs of PlainCNN at batch 1, counted by hand in thop / ptflops' convention: a 3×3 conv costs cin·9 per output
    element, its BN two (scale, shift), its ReLU one, a 2×2 max-pool one per input element, the linear head in·out
    plus its bias; the global average pool is a function call (F.adaptive_avg_pool2d), which module hooks do not see."""
    stages = [s for s, d in enumerate(depths) for _ in range(d)]
    total, cin = 0, chans
    for i, w in enumerate(widths):
        out = w * side * side
        total += out * cin * 9 + 2 * out + out
        if i + 1 < len(stages) and stages[i + 1] != stages[i]:
            total += out
            side //= 2
        cin = w
    return total + cin * classes + classes


def test_the_macs_counted_by_hand_are_the_projects_count_of_a_plain_network():
    from adagrow.measure.profile import profile

    for widths in ([5, 7, 9, 11, 13], [68, 101, 101, 135, 135]):
        assert profile(PlainCNN(widths, (1, 2, 2), 1, 10), (1, 28, 28))["macs"] == _macs_by_hand(widths)


def test_five_random_width_sets_per_seed_differ_and_fit_the_macs_budget_of_the_reference_rows():
    from baselines.search.aps import APS
    from suites.second_thesis import APS_BUDGET, APS_RANDOM_SETS

    widest = [round(w * 1.5) for w, d in zip((64, 96, 128), (1, 2, 2)) for _ in range(d)]  # the largest multiplier
    budget = APS_BUDGET * _macs_by_hand(widest)
    drawn = {}
    for seed in (0, 1, 2):
        for k in range(APS_RANDOM_SETS):
            aps = APS(APSConfig(budget=APS_BUDGET, strategy="random", random_set=k))
            aps._shape = ((1, 28, 28), 10)
            aps.result["budget"] = aps.budget()
            assert aps.result["budget"] == pytest.approx(budget)
            widths = aps.baseline_widths(seed)
            macs = _macs_by_hand(widths)
            assert 0.9 * budget <= macs <= budget  # equal MACs: within the budget and close to it
            drawn[(seed, k)] = tuple(widths)
    assert len(set(drawn.values())) == len(drawn) == 15  # every (seed, set) its own widths
    # set 0 is the draw of the seed alone (records made before the option existed stay what they were)
    legacy = APS(APSConfig(budget=APS_BUDGET, strategy="random"))
    legacy._shape = ((1, 28, 28), 10)
    legacy.result["budget"] = legacy.budget()
    assert tuple(legacy.baseline_widths(1)) == drawn[(1, 0)]


def test_a_random_set_is_only_an_option_of_the_random_baseline():
    with pytest.raises(AdaGrowError, match="--random-set 2 picks one of --strategy random"):
        APSConfig(strategy="uniform", random_set=2)
    with pytest.raises(AdaGrowError, match="--random-set must be 0 or more"):
        APSConfig(strategy="random", random_set=-1)


def test_the_reference_selection_runs_aps_against_uniform_and_five_random_sets_with_equal_epochs():
    from suites import _load, run_config_for
    from suites.second_thesis import APS_EPOCHS, APS_SEARCH_EPOCHS
    from tests.test_suites import fake_args

    ref = [e for e in _load().get("aps-mnist") if e.reference]
    assert [e.name for e in ref] == ["aps-ref", "aps-ref-uniform"] + [f"aps-ref-random-{k}" for k in range(5)]
    configs = [run_config_for(e, fake_args(profile="reference"), "aps-mnist").resolved() for e in ref]
    for cfg in configs:
        cfg.validate()
        m = cfg.method_config
        assert (cfg.profile, cfg.total_epochs, m.search_epochs, m.budget) == ("reference", 6, 3, 0.5)
        assert cfg.train_subset is None  # the whole training split
    assert (APS_EPOCHS, APS_SEARCH_EPOCHS) == (6, 3)
    assert [c.method_config.strategy for c in configs] == ["search", "uniform"] + ["random"] * 5
    assert [c.method_config.random_set for c in configs[2:]] == [0, 1, 2, 3, 4]
    assert len({c.run_name for c in configs}) == len(configs)
