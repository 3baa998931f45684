"""M-NAS and its baselines (#14, #18): episodes, weight modulation, task-conditioned controller, random
architectures, inner loop, paired evaluation, resume, command."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch

from adagrow.cli import main
from adagrow.data import synthetic
from adagrow.engine.runner import Interrupted
from adagrow.errors import AdaGrowError
from baselines.mnas.config import MetaConfig
from baselines.mnas.controller import Controller, random_arch, reinforce_loss, update_baseline
from baselines.mnas.encoder import TaskEncoder, feature_dim, sample_features
from baselines.mnas.episodes import TEST, TRAIN, Episode, SinusoidTasks, build_tasks
from baselines.mnas.maml import adapt, task_loss
from baselines.mnas.meta import arch_diversity, interval, run_meta
from baselines.mnas.modulation import FilmModulation, WeightModulation, modulate_weight
from baselines.mnas.supernet import SuperNet
from reports import mnas as mnas_report
from reports import render
from tests.conftest import make_tiny_mnist
from tests.test_data_vision import install_md5s

TINY = {"width": 8, "nodes": 2, "embed_dim": 8, "meta_batch": 2, "inner_steps": 1, "eval_inner_steps": 2}


@pytest.fixture
def mnist_root(tmp_path):
    # enough test images that every class has the 6 a 1-shot, 5-query episode needs
    return make_tiny_mnist(tmp_path / "data", n_train=400, n_test=300)


def mnist_config(root, **kw) -> MetaConfig:
    return MetaConfig(**{"task": "mnist", "data_dir": str(root), "queries": 5, **kw})


# ---- episodes ---------------------------------------------------------------------------------
def test_episodes_keep_meta_train_and_meta_test_classes_apart(mnist_root):
    train, test = build_tasks(mnist_config(mnist_root), log=lambda _: None)
    seen_train = {c for i in range(40) for c in train.episode(i).info["classes"]}
    seen_test = {c for i in range(40) for c in test.episode(i).info["classes"]}
    assert seen_train == {0, 1, 2, 3, 4} and seen_test == {5, 6, 7, 8, 9}
    # and the images come from different splits: a meta-test episode's images are test-split images
    assert (train.split, len(train.images), test.split, len(test.images)) == (TRAIN, 400, TEST, 300)
    ep = test.episode(0)
    assert ep.support_x.shape == (5, 1, 32, 32) and ep.query_x.shape == (25, 1, 32, 32)  # MNIST is padded to 32
    assert sorted(ep.support_y.tolist()) == [0, 1, 2, 3, 4] and np.bincount(ep.query_y.numpy()).tolist() == [5] * 5
    # every label's images are of the class the episode gave that label (the tiny images mark their class)
    for label, cls in enumerate(ep.info["classes"]):
        r, col = divmod(cls, 5)
        patch = ep.query_x[ep.query_y == label][:, 0, 6 + r * 10: 14 + r * 10, 4 + col * 5: 8 + col * 5]
        assert patch.min() > 2.0  # the class's bright square, normalised


def test_episodes_are_reproducible_from_their_seed(mnist_root):
    a, _ = build_tasks(mnist_config(mnist_root), log=lambda _: None)
    b, _ = build_tasks(mnist_config(mnist_root), log=lambda _: None)
    c, _ = build_tasks(mnist_config(mnist_root, seed=1), log=lambda _: None)
    same = [torch.equal(a.episode(i).support_x, b.episode(i).support_x) for i in range(5)]
    other = [torch.equal(a.episode(i).support_x, c.episode(i).support_x) for i in range(5)]
    assert all(same) and not any(other)
    assert not torch.equal(a.episode(0).support_x, a.episode(1).support_x)
    s1, s2 = SinusoidTasks(10, 10, 0, TRAIN), SinusoidTasks(10, 10, 0, TEST)
    assert torch.equal(s1.episode(3).query_y, SinusoidTasks(10, 10, 0, TRAIN).episode(3).query_y)
    assert s1.episode(3).info != s2.episode(3).info  # meta-train and meta-test tasks are different streams
    ep = s1.episode(0)
    assert torch.allclose(ep.support_y, ep.info["amplitude"] * torch.sin(ep.support_x - ep.info["phase"]), atol=1e-5)


@pytest.mark.parametrize("kw, message", [({"test_classes": "3,4,5,6,7,8,9"}, "3 meta-train"),
                                         ({"test_classes": "5,x"}, "comma-separated"),
                                         ({"test_classes": "5,6,7,8,12"}, "from 0 to 9"),
                                         ({"ways": 0}, "at least 1"),
                                         ({"modulation": "lora"}, "weight, film, none"),
                                         ({"task": "mnist+cifar10", "test_classes": "5,20"}, "from 0 to 19")])
def test_bad_episode_options_are_one_message_before_any_data(kw, message, tmp_path):
    with pytest.raises(AdaGrowError, match=message):
        MetaConfig(**{"task": "mnist", "data_dir": str(tmp_path / "nothing-here"), **kw}).validate()


def test_too_few_images_per_class_is_one_message(tmp_path):
    root = make_tiny_mnist(tmp_path / "data", n_train=60, n_test=60)
    with pytest.raises(AdaGrowError, match="images per class"):
        build_tasks(mnist_config(root, shots=5, queries=15), log=lambda _: None)


@pytest.fixture
def pool_root(tmp_path, monkeypatch):
    """Tiny MNIST (a bright square per digit) and tiny CIFAR-10 (left half at the class's value), side by side."""
    root = make_tiny_mnist(tmp_path / "data", n_train=400, n_test=300)
    install_md5s(monkeypatch, "cifar10", synthetic.write_cifar(root, "cifar10", per_batch=20, n_test=100))
    return root


def test_a_pool_of_mnist_and_cifar10_gives_meta_test_tasks_with_different_class_sets(pool_root):
    cfg = MetaConfig(task="mnist+cifar10", data_dir=str(pool_root), queries=5)
    assert cfg.class_split() == ([0, 1, 2, 3, 4, 10, 11, 12, 13, 14], [5, 6, 7, 8, 9, 15, 16, 17, 18, 19])
    train, test = build_tasks(cfg, log=lambda _: None)
    train_sets = [frozenset(train.episode(i).info["classes"]) for i in range(60)]
    test_sets = [frozenset(test.episode(i).info["classes"]) for i in range(60)]
    # the pools are disjoint, and each is all of its half: digits and objects
    assert set().union(*train_sets) == {0, 1, 2, 3, 4, 10, 11, 12, 13, 14}
    assert set().union(*test_sets) == {5, 6, 7, 8, 9, 15, 16, 17, 18, 19}
    # the test tasks differ: 60 draws from C(10, 5) = 252 class sets give many sets (not one set permuted),
    # and most mix digits with objects
    assert len(set(test_sets)) >= 40
    assert sum(min(c) < 10 <= max(c) for c in test_sets) >= 40
    for i in range(5):
        ep = test.episode(i)
        assert ep.support_x.shape == (5, 3, 32, 32) and ep.query_x.shape == (25, 3, 32, 32)
        for label, cls in enumerate(ep.info["classes"]):
            x = ep.query_x[ep.query_y == label]
            if cls < 10:  # an MNIST digit: its one channel repeated, its square where the tiny data put it
                assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
                r, col = divmod(cls, 5)
                assert x[:, 0, 6 + r * 10: 14 + r * 10, 4 + col * 5: 8 + col * 5].min() > 2.0
            else:  # a CIFAR-10 class: un-normalised with CIFAR's statistics, its left half is its value
                from adagrow.data import DATASETS

                spec = DATASETS.get("cifar10")
                raw = x * torch.tensor(spec.std).view(1, 3, 1, 1) + torch.tensor(spec.mean).view(1, 3, 1, 1)
                value = synthetic.class_value(cls - 10) / 255
                assert torch.allclose(raw[..., :16], torch.full_like(raw[..., :16], value), atol=1e-5)


def test_meta_test_episodes_are_the_same_for_every_method_of_a_seed(mnist_root):
    def digests(**kw):
        _, test = build_tasks(mnist_config(mnist_root, **kw), log=lambda _: None)
        return [test.episode(i).digest() for i in range(8)]

    mnas = digests()
    assert digests(method="maml") == mnas and digests(method="random", modulation="film") == mnas
    assert digests(seed=1) != mnas and len(set(mnas)) == 8


# ---- modulation of the meta-weights -------------------------------------------------------------------
def test_weight_modulation_equals_a_hand_computed_modulated_conv():
    w = torch.arange(36.0).view(2, 2, 3, 3) / 10 - 1.5  # (out, in, 3, 3)
    a, b = torch.tensor([0.5, -2.0]), torch.tensor([-0.25, 1.0])  # output- and input-channel factors
    x = torch.arange(18.0).view(1, 2, 3, 3) / 7 - 1
    tailored = modulate_weight(w, a, b)
    # one entry by hand: w[1, 0, 2, 2] = (18 + 8) / 10 - 1.5 = 1.1; times (1 - 2) * (1 - 0.25) = -0.825
    assert math.isclose(float(tailored[1, 0, 2, 2]), -0.825, rel_tol=1e-6)
    # the whole convolution by its definition: explicit sums, zero padding 1
    expected = torch.zeros(1, 2, 3, 3)
    for o in range(2):
        for p in range(3):
            for q in range(3):
                total = 0.0
                for i in range(2):
                    for u in range(3):
                        for v in range(3):
                            r, c = p + u - 1, q + v - 1
                            if 0 <= r < 3 and 0 <= c < 3:
                                total += float(w[o, i, u, v]) * (1 + float(a[o])) * (1 + float(b[i])) * float(x[0, i, r, c])
                expected[0, o, p, q] = total
    assert torch.allclose(torch.nn.functional.conv2d(x, tailored, padding=1), expected, atol=1e-5)


def test_weight_modulation_tailors_only_the_kernels_of_the_chosen_architecture():
    torch.manual_seed(0)
    net = SuperNet((1, 8, 8), 3, width=3, nodes=2)  # 3 edges
    mod = WeightModulation(4, net)
    params = dict(net.named_parameters())
    emb = torch.randn(4)
    untouched, _ = mod(emb, params, net, (0, 3, 1))
    assert all(untouched[n] is params[n] or torch.equal(untouched[n], params[n]) for n in params)  # identity at init
    torch.nn.init.uniform_(mod.linear.bias, -0.9, 0.9)
    torch.nn.init.normal_(mod.linear.weight)
    tailored, film = mod(emb, params, net, (0, 3, 1))  # conv3x3, avg pool, conv5x5
    assert film is None
    changed = {n for n in params if not torch.equal(tailored[n], params[n])}
    assert changed == {"cell.e0_conv3x3.0.weight", "cell.e2_conv5x5.0.weight"}  # not the stem, head, BN or unused ops
    for name in changed:
        ratio = tailored[name] / params[name]
        # one factor per (output, input) channel pair, the same on every tap, and of rank one: (1 + a_o)(1 + b_i)
        assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)
        matrix = ratio[:, :, 0, 0]
        assert torch.linalg.matrix_rank(matrix, atol=1e-4) == 1
    # and a different task gets a different tailoring
    other, _ = mod(-emb, params, net, (0, 3, 1))
    assert not torch.allclose(other["cell.e0_conv3x3.0.weight"], tailored["cell.e0_conv3x3.0.weight"])


def test_film_on_the_cell_output_is_a_reweighting_of_the_head_not_of_the_cells_kernels():
    """Why FiLM is not the seed's modulation: for a positive scale it equals the head with its input columns
    scaled and its bias shifted (max pooling and averaging commute with a positive per-channel affine map);
    for a negative scale max pooling breaks even that."""
    torch.manual_seed(0)
    net = SuperNet((1, 8, 8), 3, width=4, nodes=2)
    arch, x = (0, 2, 1), torch.randn(6, 1, 8, 8)
    shift = torch.tensor([0.3, -0.2, 0.1, 0.5])
    for scale, equal in ((torch.tensor([0.5, -0.5, 0.2, 0.0]), True), (torch.tensor([-3.0, 0.0, 0.0, 0.0]), False)):
        params = dict(net.named_parameters())
        params["head.weight"] = net.head.weight * (1 + scale)
        params["head.bias"] = net.head.bias + net.head.weight @ shift
        head_tailored = torch.func.functional_call(net, params, (x, arch))
        assert torch.allclose(net(x, arch, (scale, shift)), head_tailored, atol=1e-5) == equal
    film = FilmModulation(4, net)
    same, (s, t) = film(torch.ones(4), dict(net.named_parameters()), net, arch)
    assert s.shape == t.shape == (4,) and all(same[n] is p for n, p in net.named_parameters())


def test_the_default_modulation_is_the_weights_and_it_learns_in_meta_training(tmp_path):
    from baselines.mnas.episodes import build_tasks as tasks_of
    from baselines.mnas.meta import build_learner, train_iteration

    cfg = sine_config(tmp_path)
    assert cfg.modulation == "weight"
    train, _ = tasks_of(cfg)
    learner = build_learner(cfg, train, torch.device("cpu"))
    assert isinstance(learner.modulator, WeightModulation)
    train_iteration(cfg, learner, train, 0, torch.device("cpu"))
    assert learner.modulator.linear.weight.abs().sum() > 0  # the meta-gradient reaches the modulation
    for method, kind in (("mnas", "film"), ("random", "none")):
        other = build_learner(dataclasses.replace(cfg, method=method, modulation=kind), train, torch.device("cpu"))
        assert (other.modulator is None) == (kind == "none") and (other.controller is None) == (method == "random")


# ---- the random-architecture baseline ------------------------------------------------------------------
def test_random_architectures_are_uniform_independent_and_reproducible():
    draws = np.array([random_arch(6, 6, 0, TEST, i) for i in range(3000)])
    freq = np.bincount(draws.ravel(), minlength=6) / draws.size
    assert np.abs(freq - 1 / 6).max() < 0.015  # 18000 draws: the standard error is 0.003
    pairs = np.bincount(draws[:, 0] * 6 + draws[:, 1], minlength=36) / len(draws)
    assert np.abs(pairs - 1 / 36).max() < 0.015  # edges drawn independently
    assert all(random_arch(6, 6, 0, TEST, i) == tuple(draws[i]) for i in range(10))
    assert [random_arch(6, 6, 1, TEST, i) for i in range(10)] != [tuple(d) for d in draws[:10]]
    assert [random_arch(6, 6, 0, TRAIN, i) for i in range(10)] != [tuple(d) for d in draws[:10]]


# ---- inner loop ---------------------------------------------------------------------------------
@pytest.mark.parametrize("image", [False, True])
def test_inner_loop_adaptation_lowers_the_task_loss(image, mnist_root):
    torch.manual_seed(0)
    if image:
        ep = build_tasks(mnist_config(mnist_root), log=lambda _: None)[1].episode(0)
        net = SuperNet((1, 32, 32), 5, width=8, nodes=2)
    else:
        ep = SinusoidTasks(10, 10, 0, TRAIN).episode(0)
        net = SuperNet((1,), 1, width=40, nodes=2)
    arch = (0, 1, 2)  # conv3x3, conv5x5, max pool (images); linear+ReLU, linear+tanh, identity (vectors)
    params = dict(net.named_parameters())
    before = task_loss(net(ep.support_x, arch), ep.support_y, image).item()
    fast = adapt(net, params, arch, None, ep.support_x, ep.support_y, steps=5, lr=0.01 if not image else 0.1,
                 classification=image, create_graph=False)
    after = task_loss(torch.func.functional_call(net, fast, (ep.support_x, arch)), ep.support_y, image).item()
    assert after < 0.8 * before
    # the meta-weights themselves are untouched (fast weights are separate tensors)
    assert all(torch.equal(p, dict(net.named_parameters())[n]) for n, p in params.items())
    assert all(fast[n] is params[n] for n in params if n not in net.active_names(arch))


def test_inner_loop_is_differentiable_with_respect_to_the_meta_weights():
    torch.manual_seed(0)
    net, ep, arch = SuperNet((1,), 1, width=16, nodes=2), SinusoidTasks(5, 5, 0, TRAIN).episode(0), (0, 0, 1)
    params = dict(net.named_parameters())
    fast = adapt(net, params, arch, None, ep.support_x, ep.support_y, steps=2, lr=0.01, classification=False,
                 create_graph=True)
    loss = task_loss(torch.func.functional_call(net, fast, (ep.query_x, arch)), ep.query_y, False)
    loss.backward()
    assert net.head.weight.grad is not None and net.head.weight.grad.abs().sum() > 0
    assert net.cell["e0_fc_relu"][0].weight.grad is not None
    assert net.cell["e0_fc_tanh"][0].weight.grad is None  # an operation the architecture does not use


# ---- the controller depends on the task ------------------------------------------------------------
def _line_episode(index: int) -> Episode:
    rng = np.random.default_rng([7, index])
    x = torch.as_tensor(rng.uniform(-5, 5, (10, 1)), dtype=torch.float32)
    y = float(rng.uniform(-0.5, 0.5)) * x + float(rng.uniform(6, 10))
    return Episode(x, y, x, y, {})


def test_controller_learns_different_architectures_for_different_task_families():
    """A short meta-training of encoder + controller on a toy problem with two task families (sinusoids and
    lines lying above every sinusoid) where the reward wants a different operation on edge 0 for each: the controller, conditioned on
    the task embedding, ends up choosing each family's operation.  An unconditioned policy could not
    (one distribution for both families gets at most half the reward)."""
    torch.manual_seed(0)
    sines = SinusoidTasks(10, 0, 0, TRAIN)
    encoder, controller = TaskEncoder(feature_dim((1,), 1), 16), Controller(16, edges=3, ops=4)
    opt = torch.optim.Adam([*encoder.parameters(), *controller.parameters()], lr=1e-2)
    wanted = {"sine": 1, "line": 2}  # fc_tanh on edge 0 for sinusoids, identity for lines
    baseline, gen = None, torch.Generator().manual_seed(0)
    for step in range(150):
        episodes = [("sine", sines.episode(step)), ("line", _line_episode(step))]
        samples, recon = [], 0.0
        for _, ep in episodes:
            emb, r = encoder(sample_features(ep, 1))
            samples.append(controller.sample(emb.detach(), gen))
            recon = recon + r
        rewards = torch.tensor([float(s.arch[0] == wanted[fam]) for (fam, _), s in zip(episodes, samples, strict=True)])
        b = baseline if baseline is not None else float(rewards.mean())
        loss = reinforce_loss(samples, rewards, b, 1e-3) + recon
        baseline = update_baseline(baseline, rewards, 0.9)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        chosen = {fam: [controller.best(encoder(sample_features(ep, 1))[0])[0] for ep in eps]
                  for fam, eps in (("sine", [sines.episode(1000 + i) for i in range(10)]),
                                   ("line", [_line_episode(1000 + i) for i in range(10)]))}
    assert chosen["sine"].count(wanted["sine"]) >= 8 and chosen["line"].count(wanted["line"]) >= 8


def test_controller_output_is_a_function_of_the_embedding():
    torch.manual_seed(0)
    controller = Controller(4, edges=6, ops=6)
    a, b = controller.distribution(torch.ones(4)).probs, controller.distribution(-torch.ones(4)).probs
    assert not torch.allclose(a, b)
    s1 = controller.sample(torch.ones(4), torch.Generator().manual_seed(3))
    s2 = controller.sample(torch.ones(4), torch.Generator().manual_seed(3))
    assert s1.arch == s2.arch and len(s1.arch) == 6  # sampling is reproducible from its generator


# ---- the whole run: records, resume -----------------------------------------------------------------
def sine_config(tmp_path, **kw) -> MetaConfig:
    base = {"task": "sinusoid", "shots": 5, "queries": 5, "inner_lr": 0.01, "meta_iters": 6, "test_episodes": 6,
            "checkpoint_every": 3, "output_dir": str(tmp_path), **TINY}
    return MetaConfig(**{**base, **kw})


def _comparable(record: dict) -> dict:
    return {k: record.get(k) for k in ("test", "archs", "transfer", "meta_train_final", "params")}


@pytest.mark.parametrize("stop_after", [1, 3])  # 1: during meta-training; 3: during meta-test
def test_meta_training_and_adaptation_resume_to_the_same_result(tmp_path, stop_after):
    straight = run_meta(sine_config(tmp_path / "a"), log=lambda _: None)
    with pytest.raises(Interrupted):
        run_meta(sine_config(tmp_path / "b"), interrupt_after=stop_after, log=lambda _: None)
    resumed = run_meta(sine_config(tmp_path / "b", resume=True), log=lambda _: None)
    assert _comparable(resumed) == _comparable(straight)
    assert resumed["test"]["episodes"] == 6 and len(resumed["archs"]["counts"]) >= 1


def test_a_run_records_mnas_and_its_baselines_on_image_episodes(mnist_root, tmp_path):
    common = {"meta_iters": 2, "test_episodes": 4, "output_dir": str(tmp_path), **TINY}
    mnas = run_meta(mnist_config(mnist_root, **common), log=lambda _: None)
    maml = run_meta(mnist_config(mnist_root, method="maml", **common), log=lambda _: None)
    rand = run_meta(mnist_config(mnist_root, method="random", **common), log=lambda _: None)
    lines = [json.loads(x) for x in (tmp_path / "mnas.jsonl").read_text().splitlines()]
    assert [r["method"] for r in lines] == ["mnas", "maml", "random"]
    # paired: the three scored the same episodes, those the task sampler gives for this seed
    _, test = build_tasks(mnist_config(mnist_root), log=lambda _: None)
    from baselines.mnas.meta import episodes_digest

    expected = episodes_digest([test.episode(i).digest() for i in range(4)])
    assert mnas["episodes"]["digest"] == maml["episodes"]["digest"] == rand["episodes"]["digest"] == expected
    assert len(maml["episode_scores"]) == 4 and math.isclose(np.mean(maml["episode_scores"]), maml["test"]["mean"],
                                                             abs_tol=1e-3)
    # the random baseline: the uniform draw of each test episode, and no transferred architecture
    names = ("c3", "c5", "mp", "ap", "id", "0")
    drawn = ["-".join(names[a] for a in random_arch(3, 6, 0, TEST, i)) for i in range(4)]
    assert sum(rand["archs"]["counts"].values()) == 4 and rand["archs"]["counts"] == {
        a: drawn.count(a) for a in drawn} and "transfer" not in rand
    assert rand["config"]["modulation"] == "weight" and "controller_params" not in rand
    assert mnas["metric"] == "accuracy" and 0 <= mnas["test"]["mean"] <= 100 and mnas["test"]["episodes"] == 4
    assert "transfer" in mnas and "transfer" not in maml
    assert maml["archs"]["distinct"] == 1 and maml["archs"]["most_common"] == "c3-c3-c3"
    assert mnas["gpu_seconds"]["meta_train"] > 0 and mnas["gpu_seconds"]["adapt"] > 0
    assert mnas["config"]["task"] == "mnist" and mnas["versions"]["torch"] and "device" in mnas
    # the report: M-NAS, its transferred architecture and MAML, each from these records
    table = render.markdown(mnas_report.grid(lines))
    assert "M-NAS (per-task architecture)" in table and "transferred" in table and "MAML, fixed architecture" in table
    assert "random architecture per task" in table
    assert f"{maml['test']['mean']:.2f}% ± {maml['test']['ci95']:.2f}" in table
    # the paired difference from MAML, by its definition: mean and 1.96 standard errors of per-episode differences
    d = np.array(rand["episode_scores"]) - np.array(maml["episode_scores"])
    half = 1.96 * d.std(ddof=1) / math.sqrt(4)
    assert f"{'+' if d.mean() >= 0 else '−'}{abs(d.mean()):.2f} ± {half:.2f}" in table
    # a finished run is not repeated: the same config returns its record
    again = run_meta(mnist_config(mnist_root, **common), log=lambda _: None)
    assert again["run_name"] == mnas["run_name"] and len((tmp_path / "mnas.jsonl").read_text().splitlines()) == 3


def test_interval_and_architecture_diversity():
    got = interval([1.0, 2.0, 3.0])
    assert got["mean"] == 2.0 and math.isclose(got["ci95"], 1.96 / math.sqrt(3)) and got["episodes"] == 3
    div = arch_diversity(["c3-c3", "c3-mp", "c3-c3", "c5-mp"])
    assert div["distinct"] == 3 and div["most_common"] == "c3-c3" and div["most_common_share"] == 0.5
    # pairs: (0,1)1 (0,2)0 (0,3)2 (1,2)1 (1,3)1 (2,3)2 -> 7/6
    assert math.isclose(div["mean_pairwise_edge_distance"], 7 / 6)


# ---- the command ---------------------------------------------------------------------------------
def test_adagrow_meta_command_writes_a_record(tmp_path, capsys):
    rc = main(["meta", "--task", "sinusoid", "--meta-iters", "2", "--test-episodes", "3", "--shots", "5",
               "--inner-lr", "0.01", "--width", "8", "--nodes", "2", "--output", str(tmp_path), "--suite", "m"])
    assert rc == 0
    (record,) = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert record["config"]["meta_iters"] == 2 and record["config"]["shots"] == 5 and record["metric"] == "mse"
    assert "meta-test" in capsys.readouterr().out


def test_the_meta_test_prints_progress_lines_in_a_log(tmp_path, monkeypatch):
    """600 meta-test episodes take minutes on a CPU: a log gets a line per interval (here every episode)."""
    monkeypatch.setenv("ADAGROW_PROGRESS_EVERY", "0")
    lines: list[str] = []
    cfg = MetaConfig(task="sinusoid", meta_iters=2, test_episodes=3, shots=5, inner_lr=0.01, width=8, nodes=2,
                     output_dir=str(tmp_path), suite="m")
    run_meta(cfg, log=lines.append)
    shown = [re.fullmatch(r"  evaluating meta-test  episode (\d)/3  [\d.,]+ ep/s  left \w+", x) for x in lines]
    assert [m.group(1) for m in shown if m] == ["1", "2", "3"]


def test_adagrow_meta_bad_option_is_one_line(capsys, tmp_path):
    assert main(["meta", "--task", "mnist", "--test-classes", "1,2", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "meta-test classes" in err[0]


def test_the_core_does_not_import_baselines_at_import_time():
    import subprocess
    import sys

    code = "import sys, adagrow.cli; print(any(m.startswith('baselines') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_config_identity_leaves_out_where_files_go(tmp_path):
    a, b = MetaConfig(output_dir="x", device="cpu"), MetaConfig(output_dir="y", device="auto", resume=True)
    assert a.run_name == b.run_name
    assert MetaConfig(inner_lr=0.5).run_name != a.run_name
    assert dataclasses.replace(a, profile="smoke").resolved().meta_iters == 40


# ---- issue 19: the reference profile (plateau rule, cap, 600 paired episodes) -------------------------------------
def test_the_plateau_rule_stops_after_patience_windows_without_improvement_on_a_fabricated_curve():
    from baselines.mnas.plateau import plateau_stop, window_means

    # windows of 2: means 4, 2, 1.9, 1.95, 3.  Window 1 improves on 4 by 2 (> 10% of 4); window 2's 1.9 is only 0.1
    # below 2 (< 10% of 2 = 0.2): stale 1; window 3's 1.95: stale 2 = patience, so it stops after 4 windows = 8 iterations
    losses = [4, 4, 2, 2, 1.8, 2.0, 1.95, 1.95, 3, 3]
    assert window_means(losses, 2) == pytest.approx([4, 2, 1.9, 1.95, 3])
    assert plateau_stop(losses, window=2, patience=2, min_delta=0.1) == {"iteration": 8, "best_window": 1, "best_mean": 2}
    assert plateau_stop(losses[:7], window=2, patience=2, min_delta=0.1) is None  # 3 complete windows: one stale
    assert plateau_stop(losses, window=2, patience=1, min_delta=0.1)["iteration"] == 6
    # no threshold: 1.9 < 2 improves, 1.95 and 3 do not: stale twice at window 4
    assert plateau_stop(losses, window=2, patience=2, min_delta=0.0) == {"iteration": 10, "best_window": 2,
                                                                         "best_mean": pytest.approx(1.9)}
    # a curve that keeps falling by 20% a window never stops; an equal window is no improvement (strictly below)
    assert plateau_stop([0.8**k for k in range(40)], window=4, patience=1, min_delta=0.1) is None
    assert plateau_stop([1.0] * 6, window=3, patience=1, min_delta=0.0)["iteration"] == 6


def test_the_reference_profile_sets_its_numbers_and_keeps_the_other_profiles_as_they_were():
    ref = MetaConfig(task="mnist+cifar10", profile="reference").resolved()
    assert (ref.meta_iters, ref.plateau_window, ref.plateau_patience, ref.plateau_min_delta, ref.test_episodes) == (
        800, 50, 4, 0.01, 600)
    assert ref.test_classes == "5,6,7,8,9,15,16,17,18,19"  # meta-test classes apart from meta-train ones
    assert MetaConfig(profile="reference", meta_iters=300).resolved().meta_iters == 300  # the cap only lowers
    assert MetaConfig(profile="reference", test_episodes=1000).resolved().test_episodes == 1000  # at least 600
    for profile in ("full", "smoke"):
        assert MetaConfig(profile=profile).resolved().plateau_window == 0  # no rule: a fixed number of iterations
    assert MetaConfig().resolved().meta_iters == 2000


def test_an_unknown_meta_profile_or_plateau_setting_is_one_message(capsys, tmp_path):
    with pytest.raises(AdaGrowError, match="choose one of full, reference, smoke"):
        MetaConfig(profile="converged").validate()
    with pytest.raises(AdaGrowError, match="--plateau-patience >= 1"):
        MetaConfig(plateau_window=10, plateau_patience=0).validate()
    with pytest.raises(SystemExit):
        main(["meta", "--task", "sinusoid", "--profile", "converged", "--output", str(tmp_path)])
    assert "invalid choice: 'converged'" in capsys.readouterr().err


def _fabricated_losses(monkeypatch, curve):
    """Meta-training that logs ``curve``'s losses (the real iteration runs; only its reported loss is replaced)."""
    from baselines.mnas import meta

    real = meta.train_iteration

    def fake(cfg, learner, tasks, iteration, device):
        return {**real(cfg, learner, tasks, iteration, device), "loss": curve[iteration]}

    monkeypatch.setattr(meta, "train_iteration", fake)


def test_a_run_stops_where_the_plateau_rule_says_and_records_when_and_why(tmp_path, monkeypatch):
    # windows of 3: means 5, 3, 3, 3 -> windows 2 and 3 are stale, patience 2: the run stops after 12 of 30 iterations
    _fabricated_losses(monkeypatch, [5] * 3 + [3] * 27)
    cfg = sine_config(tmp_path, meta_iters=30, plateau_window=3, plateau_patience=2, plateau_min_delta=0.05)
    rec = run_meta(cfg, log=lambda _: None)
    assert rec["meta_train_stop"] == {"iteration": 12, "reason": "plateau", "cap": 30, "window": 3, "patience": 2,
                                      "min_delta": 0.05, "window_means": [5, 3, 3, 3], "best_window": 1, "best_mean": 3}
    assert rec["test"]["episodes"] == 6  # and then it meta-tests


def test_a_run_that_keeps_improving_ends_at_the_cap_and_a_resumed_plateau_stays_stopped(tmp_path, monkeypatch):
    _fabricated_losses(monkeypatch, [10 - k * 0.5 for k in range(12)])
    rec = run_meta(sine_config(tmp_path / "a", meta_iters=12, plateau_window=3, plateau_patience=1), log=lambda _: None)
    assert rec["meta_train_stop"]["reason"] == "cap" and rec["meta_train_stop"]["iteration"] == 12
    assert run_meta(sine_config(tmp_path / "c", meta_iters=6), log=lambda _: None)["meta_train_stop"] == {
        "iteration": 6, "reason": "fixed", "cap": 6}
    _fabricated_losses(monkeypatch, [5] * 3 + [3] * 27)
    cfg = sine_config(tmp_path / "b", meta_iters=30, plateau_window=3, plateau_patience=2, checkpoint_every=30)
    with pytest.raises(Interrupted):  # the first checkpoint is the one written when the rule stopped training
        run_meta(cfg, interrupt_after=1, log=lambda _: None)
    resumed = run_meta(dataclasses.replace(cfg, resume=True), log=lambda _: None)
    assert resumed["meta_train_stop"]["iteration"] == 12 and resumed["meta_train_stop"]["reason"] == "plateau"


def test_the_reference_profiles_meta_test_episodes_are_the_same_for_every_method(pool_root):
    def digests(**kw):
        cfg = MetaConfig(**{"task": "mnist+cifar10", "data_dir": str(pool_root), "queries": 5, "profile": "reference",
                            **kw}).resolved()
        _, test = build_tasks(cfg, log=lambda _: None)
        return [test.episode(i).digest() for i in range(0, 600, 75)]

    mnas = digests()
    assert digests(method="maml") == mnas == digests(method="random") and len(set(mnas)) == 8
    assert digests(profile="full") == mnas  # the profile changes how long meta-training runs, not the episodes
