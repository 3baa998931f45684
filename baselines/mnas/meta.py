"""The meta-training loop of M-NAS (and of its MAML baseline), meta-test evaluation, checkpoints, the record.

``run_meta(cfg)``:

1. meta-train for ``meta_iters`` iterations (fewer where the plateau rule of ``plateau.py`` stops it first);
   each draws ``meta_batch`` tasks.  Per task (M-NAS): embed
   it (GRU auto-encoder), let the controller sample an architecture, tailor the architecture's
   meta-weights to the task from the embedding (``modulation.py``), adapt the tailored weights with
   ``inner_steps`` MAML steps on the support set, score the query set.  One Adam step on the query loss
   (+ reconstruction) trains the meta-weights, the encoder and the modulation; REINFORCE on the query
   reward trains the controller.  Random baseline: the same with a uniformly random architecture per
   task instead of the controller's.  MAML: one fixed architecture and no encoder, modulation or
   controller.
2. meta-test on ``test_episodes`` unseen tasks (meta-test classes): each adapted with
   ``eval_inner_steps`` steps from the meta-weights and scored on its query set.  M-NAS also scores the
   *transferred* architecture — the one the controller chose for the first meta-test task — on every
   task with the same meta-weights, so the gain of choosing per task is measured on the same episodes.
   The episodes depend on the seed alone, so every method of one seed meets the same ones (the record
   carries their digest and the per-episode scores, for paired comparisons).
3. the record: mean ± 95% interval of the per-episode scores, architectures chosen and how much they
   differ, parameter counts, seconds per phase (GPU-seconds on CUDA, process CPU seconds on a CPU).

Everything random is a function of (seed, iteration or episode index), and a checkpoint is written
atomically every ``checkpoint_every`` iterations or episodes, so ``--resume`` continues a run to the
result it would have reached uninterrupted.  The run directory, the "never run twice" rule and the
record's two copies (``record.json``, one line of ``<output>/<suite>.jsonl``) are the runner's own
functions, not copies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adagrow.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from adagrow.engine.progress import epoch_progress, eval_progress
from adagrow.engine.runlock import run_dir_lock
from adagrow.engine.runner import (
    Interrupted,
    _save_record,
    finished_record,
    interrupt_names_checkpoint,
    prepare_run_dir,
    resolve_device,
)
from adagrow.engine.timing import PhaseTimer
from adagrow.records.env import device_name, git_commit, versions
from baselines.mnas.config import MetaConfig
from baselines.mnas.controller import Controller, random_arch, reinforce_loss, update_baseline
from baselines.mnas.encoder import TaskEncoder, feature_dim, sample_features
from baselines.mnas.episodes import TEST, TRAIN, Episode, build_tasks
from baselines.mnas.maml import adapt, query_output, task_loss, task_score
from baselines.mnas.modulation import build_modulation
from baselines.mnas.plateau import plateau_stop, window_means
from baselines.mnas.supernet import SuperNet, arch_string


@dataclass
class Learner:
    """Everything a meta-training run learns; the M-NAS parts are None where the method has none (MAML:
    all; the random baseline: the controller; ``--modulation none``: the modulator)."""

    net: SuperNet
    encoder: TaskEncoder | None
    modulator: torch.nn.Module | None
    controller: Controller | None
    optimizer: torch.optim.Optimizer
    method: str = "mnas"
    baseline: float | None = None  # REINFORCE's moving-average reward

    def modules(self) -> dict[str, torch.nn.Module]:
        named = {"net": self.net, "encoder": self.encoder, "modulator": self.modulator, "controller": self.controller}
        return {k: m for k, m in named.items() if m is not None}


def build_learner(cfg: MetaConfig, tasks, device: torch.device) -> Learner:
    torch.manual_seed(cfg.seed)  # the initial weights are a function of the seed
    net = SuperNet(tasks.input_shape, tasks.out_dim, width=cfg.width, nodes=cfg.nodes).to(device)
    groups = [{"params": list(net.parameters()), "lr": cfg.meta_lr}]
    encoder = modulator = controller = None
    if cfg.method != "maml":
        modulator = build_modulation(cfg.modulation, cfg.embed_dim, net)
        if modulator is not None:
            modulator = modulator.to(device)
            groups[0]["params"] += list(modulator.parameters())
    if cfg.method == "mnas" or modulator is not None:  # the embedding feeds the controller or the modulation
        encoder = TaskEncoder(feature_dim(tasks.input_shape, cfg.ways), cfg.embed_dim).to(device)
        groups[0]["params"] += list(encoder.parameters())
    if cfg.method == "mnas":
        controller = Controller(cfg.embed_dim, len(net.edges), len(net.ops)).to(device)
        groups.append({"params": list(controller.parameters()), "lr": cfg.controller_lr})
    return Learner(net, encoder, modulator, controller, torch.optim.Adam(groups), method=cfg.method)


def _generator(cfg: MetaConfig, iteration: int) -> torch.Generator:
    """The controller's sampling stream of one iteration (CPU: the same draws on every device)."""
    return torch.Generator().manual_seed(cfg.seed * 1_000_003 + iteration)


def embed(learner: Learner, episode: Episode, ways: int) -> tuple[torch.Tensor | None, torch.Tensor | float]:
    """(embedding, reconstruction loss) of one task; (None, 0) for a method without an encoder."""
    if learner.encoder is None:
        return None, 0.0
    return learner.encoder(sample_features(episode, ways))


def tailor(learner: Learner, embedding: torch.Tensor | None, arch: tuple[int, ...], *, meta_gradient: bool):
    """(weights the inner loop starts from, FiLM or None) for one task: the meta-weights as modulated by
    the task's embedding.  Without ``meta_gradient`` (meta-test) they are fresh leaves, cut from the graph."""
    net = learner.net
    params = dict(net.named_parameters())
    film = None
    if learner.modulator is not None:
        with torch.set_grad_enabled(meta_gradient):
            params, film = learner.modulator(embedding, params, net, arch)
    if not meta_gradient:
        params = {n: p.detach().requires_grad_() for n, p in params.items()}
        film = None if film is None else tuple(f.detach() for f in film)
    return params, film


def train_iteration(cfg: MetaConfig, learner: Learner, tasks, iteration: int, device: torch.device) -> dict[str, float]:
    """One meta-iteration over ``meta_batch`` tasks; returns its mean query loss (after adaptation) and reward."""
    net, mnas = learner.net, learner.controller is not None
    query_loss, recon_loss, samples, rewards = 0.0, 0.0, [], []
    for b in range(cfg.meta_batch):
        index = iteration * cfg.meta_batch + b
        ep = tasks.episode(index).to(device)
        embedding, recon = embed(learner, ep, cfg.ways)
        recon_loss = recon_loss + recon
        if mnas:
            sample = learner.controller.sample(embedding.detach(), _generator(cfg, index))
            arch, samples = sample.arch, samples + [sample]
        elif learner.method == "random":
            arch = random_arch(len(net.edges), len(net.ops), cfg.seed, TRAIN, index)
        else:
            arch = net.fixed_arch()
        params, film = tailor(learner, embedding, arch, meta_gradient=True)
        fast = adapt(net, params, arch, film, ep.support_x, ep.support_y, steps=cfg.inner_steps, lr=cfg.inner_lr,
                     classification=tasks.classification, create_graph=not cfg.first_order)
        out = query_output(net, fast, arch, film, ep.query_x)
        query_loss = query_loss + task_loss(out, ep.query_y, tasks.classification)
        rewards.append(_reward(task_score(out.detach(), ep.query_y, tasks.classification), tasks.classification))
    reward = torch.tensor(rewards)
    loss = (query_loss + cfg.recon_weight * recon_loss) / cfg.meta_batch
    if mnas:
        baseline = learner.baseline if learner.baseline is not None else float(reward.mean())
        loss = loss + reinforce_loss(samples, reward.to(device), baseline, cfg.entropy_weight)
        learner.baseline = update_baseline(learner.baseline, reward, cfg.baseline_decay)
    learner.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    learner.optimizer.step()
    return {"loss": float(query_loss.detach()) / cfg.meta_batch, "reward": float(reward.mean())}


def _reward(score: float, classification: bool) -> float:
    """Higher is better: accuracy as a fraction, or the negative MSE."""
    return score / 100.0 if classification else -score


def choose_arch(cfg: MetaConfig, learner: Learner, episode: Episode, index: int):
    """(architecture, embedding) for meta-test task ``index``: the controller's most likely choice, a
    uniformly random one (the random baseline), or the fixed one (MAML)."""
    net = learner.net
    with torch.no_grad():
        embedding, _ = embed(learner, episode, cfg.ways)
    if learner.controller is not None:
        return learner.controller.best(embedding), embedding
    if learner.method == "random":
        return random_arch(len(net.edges), len(net.ops), cfg.seed, TEST, index), embedding
    return net.fixed_arch(), embedding


def adapt_and_score(cfg: MetaConfig, learner: Learner, episode: Episode, arch, embedding, classification: bool) -> float:
    """Tailor the meta-weights to one task, adapt them (no meta-gradient) and score its query set."""
    params, film = tailor(learner, embedding, arch, meta_gradient=False)
    fast = adapt(learner.net, params, arch, film, episode.support_x, episode.support_y, steps=cfg.eval_inner_steps,
                 lr=cfg.inner_lr, classification=classification, create_graph=False)
    with torch.no_grad():
        return task_score(query_output(learner.net, fast, arch, film, episode.query_x), episode.query_y, classification)


@dataclass
class Progress:
    """Where a run is (all of it is in the checkpoint)."""

    iteration: int = 0  # meta-iterations done
    episode: int = 0  # meta-test episodes done
    scores: list[float] = dataclasses.field(default_factory=list)
    archs: list[str] = dataclasses.field(default_factory=list)
    transfer_scores: list[float] = dataclasses.field(default_factory=list)
    transfer_arch: tuple[int, ...] | None = None
    digests: list[str] = dataclasses.field(default_factory=list)  # one per meta-test episode: pairing check
    train_log: list[dict[str, float]] = dataclasses.field(default_factory=list)
    # why meta-training ended early (the plateau rule's verdict, see plateau.py); None: it ran or runs to the cap
    stopped: dict[str, Any] | None = None


def run_meta(cfg: MetaConfig, *, interrupt_after: int | None = None, log=print) -> dict[str, Any]:
    """Meta-train and meta-test one configuration; its record (also written to disk).

    ``interrupt_after=k`` raises :class:`Interrupted` after the k-th checkpoint (tests of resume)."""
    cfg = cfg.resolved()
    cfg.validate()
    device = resolve_device(cfg.device)
    run_dir = prepare_run_dir(cfg)
    with run_dir_lock(run_dir), interrupt_names_checkpoint(run_dir / "last.pt"):  # one process per run, as train
        return _run_meta(cfg, run_dir, device, interrupt_after=interrupt_after, log=log)


def _run_meta(cfg: MetaConfig, run_dir: Path, device, *, interrupt_after: int | None, log) -> dict[str, Any]:
    done = finished_record(cfg, run_dir, log)
    if done is not None:
        return done
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    wall0 = time.perf_counter()
    timer = PhaseTimer(device)
    with timer.phase("data"):
        train_tasks, test_tasks = build_tasks(cfg, log)
    learner = build_learner(cfg, train_tasks, device)
    state = Progress()
    ckpt = run_dir / "last.pt"
    if cfg.resume and ckpt.exists():
        state = _restore(load_checkpoint(ckpt), learner, timer)
        log(f"resumed {cfg.run_name}: {state.iteration} meta-iterations and {state.episode} test episodes done")
    saves = [0]

    def checkpoint() -> None:
        _save(ckpt, cfg, learner, timer, state)
        saves[0] += 1
        if interrupt_after is not None and saves[0] >= interrupt_after:
            raise Interrupted(f"stopped after checkpoint {saves[0]}")

    _meta_train(cfg, learner, train_tasks, state, timer, device, checkpoint, log)
    _meta_test(cfg, learner, test_tasks, state, timer, device, checkpoint, log)
    record = build_record(cfg, learner, state, timer, device, run_dir, wall=time.perf_counter() - wall0)
    _save_record(record, run_dir, Path(cfg.output_dir) / f"{cfg.suite}.jsonl", log)
    ckpt.unlink(missing_ok=True)
    log(summary_line(record))
    return record


def _meta_train(cfg, learner, tasks, state: Progress, timer, device, checkpoint, log) -> None:
    if state.iteration >= cfg.meta_iters or state.stopped is not None:
        return
    log(f"meta-training {cfg.method} on {cfg.task}: {cfg.meta_iters} iterations of {cfg.meta_batch} tasks")
    # a line every 30 s (a bar on a terminal): iterations per second and the mean meta-loss since this process began
    progress = epoch_progress(0, 1, cfg.meta_iters - state.iteration, log=log, desc="meta-training", unit="it")
    loss_sum, first = torch.zeros(()), state.iteration
    while state.iteration < cfg.meta_iters:
        with timer.phase("meta_train"):
            stats = train_iteration(cfg, learner, tasks, state.iteration, device)
        if not math.isfinite(stats["loss"]):
            from adagrow.errors import TrainingDiverged

            raise TrainingDiverged(f"meta-loss became {stats['loss']} at iteration {state.iteration}; lower --inner-lr "
                                   "or --meta-lr")
        state.iteration += 1
        state.train_log.append(stats)
        loss_sum += stats["loss"]
        progress.update(step=state.iteration, total_steps=cfg.meta_iters, seen=state.iteration - first, loss_sum=loss_sum)
        if cfg.plateau_window and state.iteration % cfg.plateau_window == 0:
            state.stopped = plateau_stop([s["loss"] for s in state.train_log], window=cfg.plateau_window,
                                         patience=cfg.plateau_patience, min_delta=cfg.plateau_min_delta)
        if state.stopped is not None:
            log(f"meta-training stopped at iteration {state.iteration}: the meta-train loss has not improved for "
                f"{cfg.plateau_patience} windows of {cfg.plateau_window} iterations")
            checkpoint()
            break
        if state.iteration % cfg.checkpoint_every == 0 or state.iteration == cfg.meta_iters:
            checkpoint()
    progress.close()


def stop_summary(cfg: MetaConfig, state: Progress) -> dict[str, Any]:
    """When and why meta-training ended: the plateau rule, the cap, or a fixed number of iterations (no rule),
    with the rule's numbers and the window means it judged (so the curve is in the record)."""
    reason = "plateau" if state.stopped is not None else ("cap" if cfg.plateau_window else "fixed")
    out: dict[str, Any] = {"iteration": state.iteration, "reason": reason, "cap": cfg.meta_iters}
    if cfg.plateau_window:
        out.update({"window": cfg.plateau_window, "patience": cfg.plateau_patience, "min_delta": cfg.plateau_min_delta,
                    "window_means": [round(m, 5) for m in window_means([s["loss"] for s in state.train_log],
                                                                       cfg.plateau_window)]})
        if state.stopped is not None:
            out.update({"best_window": state.stopped["best_window"], "best_mean": state.stopped["best_mean"]})
    return out


def _meta_test(cfg, learner, tasks, state: Progress, timer, device, checkpoint, log) -> None:
    if state.episode >= cfg.test_episodes:
        return
    log(f"meta-test: {cfg.test_episodes} episodes, {cfg.eval_inner_steps} adaptation steps each")
    for module in learner.modules().values():
        module.eval()
    # a line every 30 s: 600 episodes take minutes on a CPU (resumed: counts the episodes still to do)
    first = state.episode
    progress = eval_progress("meta-test", cfg.test_episodes - first, log=log, step="episode", unit="ep")
    while state.episode < cfg.test_episodes:
        ep = tasks.episode(state.episode)
        state.digests.append(ep.digest())
        ep = ep.to(device)
        with timer.phase("adapt"):
            arch, embedding = choose_arch(cfg, learner, ep, state.episode)
            state.scores.append(adapt_and_score(cfg, learner, ep, arch, embedding, tasks.classification))
        state.archs.append(arch_string(learner.net.ops, arch))
        if learner.controller is not None:
            if state.transfer_arch is None:  # the architecture found for the first task, transferred to all
                state.transfer_arch = arch
            with timer.phase("adapt_transfer"):
                state.transfer_scores.append(adapt_and_score(cfg, learner, ep, state.transfer_arch, embedding,
                                                             tasks.classification))
        state.episode += 1
        progress.update(seen=state.episode - first)
        if state.episode % cfg.checkpoint_every == 0 or state.episode == cfg.test_episodes:
            checkpoint()
    progress.close()


def _save(path: Path, cfg: MetaConfig, learner: Learner, timer: PhaseTimer, state: Progress) -> None:
    save_checkpoint(path, {
        "identity": cfg.identity(), "modules": {k: m.state_dict() for k, m in learner.modules().items()},
        "optimizer": learner.optimizer.state_dict(), "baseline": learner.baseline, "timer": timer.state_dict(),
        "progress": dataclasses.asdict(state), "rng": rng_state(),
    })


def _restore(saved: dict[str, Any], learner: Learner, timer: PhaseTimer) -> Progress:
    for name, module in learner.modules().items():
        module.load_state_dict(saved["modules"][name])
    learner.optimizer.load_state_dict(saved["optimizer"])
    learner.baseline = saved["baseline"]
    timer.load_state_dict(saved["timer"])
    set_rng_state(saved["rng"])
    progress = Progress(**saved["progress"])
    if progress.transfer_arch is not None:
        progress.transfer_arch = tuple(progress.transfer_arch)
    return progress


# ---- the record -------------------------------------------------------------------------------
def interval(scores: list[float]) -> dict[str, float]:
    """Mean and the half-width of its 95% normal interval (1.96 standard errors), as few-shot papers report."""
    values = np.asarray(scores, dtype=np.float64)
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": float(values.mean()), "ci95": float(half), "episodes": len(values)}


def arch_diversity(archs: list[str]) -> dict[str, Any]:
    """How much the per-task architectures differ: distinct count, the commonest and its share, and the
    mean number of edges on which two tasks' architectures differ (over all pairs; 0: one architecture)."""
    counts = Counter(archs)
    top, n_top = counts.most_common(1)[0]
    edges = [a.split("-") for a in archs]
    pairs = list(combinations(range(len(edges)), 2))
    if len(pairs) > 20000:  # a fixed, seeded subset of pairs keeps this quick for thousands of tasks
        rng = np.random.default_rng(0)
        pairs = [pairs[i] for i in rng.choice(len(pairs), 20000, replace=False)]
    distance = float(np.mean([sum(x != y for x, y in zip(edges[i], edges[j], strict=True)) for i, j in pairs])) if pairs else 0.0
    return {"distinct": len(counts), "most_common": top, "most_common_share": n_top / len(archs),
            "mean_pairwise_edge_distance": distance, "edges": len(edges[0]), "counts": dict(counts.most_common(20))}


def build_record(cfg: MetaConfig, learner: Learner, state: Progress, timer: PhaseTimer, device, run_dir: Path, *,
                 wall: float) -> dict[str, Any]:
    net = learner.net
    seconds = dict(timer.seconds)
    per_task = seconds.get("adapt", 0.0) / max(state.episode, 1)
    record = {
        "kind": "meta", "status": "ok", "suite": cfg.suite, "run_name": cfg.run_name, "run_dir": str(run_dir),
        "dataset": cfg.task, "method": cfg.method, "tag": cfg.tag, "profile": cfg.profile, "seed": cfg.seed,
        "config": dataclasses.asdict(cfg), "metric": "accuracy" if cfg.task != "sinusoid" else "mse",
        "test": interval(state.scores), "archs": arch_diversity(state.archs),
        # which episodes were scored (equal digests: the same tasks, so records can be compared per episode)
        "episodes": {"count": len(state.digests), "digest": episodes_digest(state.digests)},
        "episode_scores": [round(x, 4) for x in state.scores],
        "params": net.num_params(_arch_of(net, Counter(state.archs).most_common(1)[0][0])),
        "supernet_params": sum(p.numel() for p in net.parameters()),
        # the key suites and summaries read; for regression there is no accuracy
        "test_acc": interval(state.scores)["mean"] if cfg.task != "sinusoid" else None,
        "time_unit": timer.unit, "gpu_seconds": seconds, "wall_seconds": wall,
        "seconds_per_task_adaptation": per_task,
        "meta_train_final": state.train_log[-1] if state.train_log else None,
        "meta_train_stop": stop_summary(cfg, state),
        "device": device_name(device), "versions": versions(), "git_commit": git_commit(),
    }
    if state.transfer_scores:
        record["transfer"] = {**interval(state.transfer_scores), "arch": arch_string(net.ops, state.transfer_arch),
                              "scores": [round(x, 4) for x in state.transfer_scores]}
    if learner.controller is not None:
        extra = {n: m for n, m in learner.modules().items() if n != "net"}
        record["controller_params"] = sum(p.numel() for m in extra.values() for p in m.parameters())
    return record


def episodes_digest(digests: list[str]) -> str:
    """One digest of the meta-test episodes, in order (from each episode's own digest)."""
    return hashlib.sha1("".join(digests).encode()).hexdigest()[:16]


def _arch_of(net: SuperNet, text: str) -> tuple[int, ...]:
    """Back from ``arch_string`` to op indices (for the parameter count of the commonest architecture)."""
    from baselines.mnas.supernet import SHORT

    short_to_index = {SHORT[op]: i for i, op in enumerate(net.ops)}
    return tuple(short_to_index[s] for s in text.split("-"))


def summary_line(r: dict[str, Any]) -> str:
    unit = "%" if r["metric"] == "accuracy" else " MSE"
    test = r["test"]
    line = f"{r['run_name']}: meta-test {test['mean']:.3f}{unit} ± {test['ci95']:.3f} over {test['episodes']} tasks"
    if "transfer" in r:
        line += f"; transferred arch {r['transfer']['mean']:.3f}{unit} ± {r['transfer']['ci95']:.3f}"
    return line + f"; {r['archs']['distinct']} distinct architectures"

