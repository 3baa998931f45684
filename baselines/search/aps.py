"""APS — affine parameter sharing for channel-number search (NeurIPS 2020), as a Method of the one runner.

One run, two phases:

* "search", epochs ``[0, search_epochs)``: the super-network (:mod:`baselines.search.supernet`) trains
  one sampled sub-network per step.  The first ``--warmup`` share of the search samples uniformly and
  keeps the transforms ordinal (the authors' warm-up); then every step moves the sharing level:
  ``--sharing learned`` (APS-T, the default) takes a projected gradient step of the learned transforms
  on the differentiable sharing measure's penalty, ``cosine`` anneals one mixing scalar by a half
  cosine (a fixed schedule; this project's earlier reading), ``ordinal`` / ``independent`` hold either
  extreme (the paper's two baselines).  Every ``--controller-every`` steps after the warm-up the
  controller — a categorical policy per layer — takes a REINFORCE step (Adam, entropy bonus, moving
  baseline, as the authors' code) on the accuracy of ``--controller-samples`` sampled sub-networks,
  each on the next validation batch, scaled down above the budget.
* "retrain", the remaining epochs: the chosen widths — the controller's most probable sub-network,
  narrowed where it costs the least probability until it fits the budget — as a fresh
  :class:`~baselines.search.supernet.PlainCNN`, trained from scratch (no weights or optimizer state
  carried over).

``--strategy uniform|random`` are the baselines at equal cost and equal retraining: one width multiplier
for every layer, or a random multiplier per layer (uniform in the candidates' range, seeded), scaled
together by bisection to the largest network within the same budget; the run has the same schedule
(the search epochs are waited out, ``Method.trains``: nothing is trained or evaluated, the learning-rate
schedule moves on), so the retraining has the same epochs and the same part of the learning-rate schedule
as APS's, and the same fresh initialisation.

The budget is a share of the widest candidate network's MACs (or params), measured by the project's
profiler on the plain network, so the record's MACs of the retrained model are the ones the budget bounds.
Our reading where the paper differs or is silent: the controller is a per-layer policy rather than an
LSTM; the retraining continues the run's learning-rate schedule (it starts where the search left it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from adagrow.engine.method import Method, ModelChange, RunContext
from adagrow.errors import AdaGrowError
from adagrow.measure.profile import profile
from adagrow.methods import METHODS, MethodEntry
from baselines.search.supernet import PlainCNN, SuperNet, annealed_sharing, sharing_level, transform_step

SHARING = ("learned", "cosine", "ordinal", "independent")
# The record's reward curve: the mean reward of every block of this many controller updates (inside an epoch; the
# last block of an epoch may be shorter).  Per epoch alone a 4-epoch search would give three points; 50 updates
# average out most of the single-batch reward noise (one validation batch per update).
REWARD_BLOCK = 50
STRATEGIES = ("search", "uniform", "random")


@dataclass(frozen=True)
class APSConfig:
    depths: tuple[int, ...] = (1, 2, 2)  # searchable layers per stage (AdaGrow's VGG 1-2-2 layout)
    widths: tuple[int, ...] = (64, 96, 128)  # reference width per stage (AdaGrow's seed widths)
    multipliers: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5)  # candidate widths = reference × these
    budget: float = 0.5  # share of the widest network's cost the chosen one may have
    budget_metric: str = "macs"  # macs | params
    search_epochs: int | None = None  # None: half the run's epochs
    sharing: str = "learned"  # learned (APS-T) | cosine (fixed schedule) | ordinal | independent
    final_sharing: float = 0.0  # the mixing scalar the cosine schedule ends at
    transform_lr: float | None = None  # learned: step size on the penalty; None: 1 / the steps after the warm-up
    warmup: float = 1 / 3  # share of the search with uniform sampling and ordinal transforms (authors: 200 of 600 epochs)
    controller_lr: float = 0.01  # Adam on the policy's logits
    controller_every: int = 1  # training steps between controller updates (the authors: every step)
    controller_samples: int = 1  # sub-networks per update, each on its own validation batch
    entropy_weight: float = 4e-3  # bonus on the policy's entropy (the authors' CIFAR script)
    baseline_decay: float = 0.99  # moving average of the rewards (REINFORCE baseline; the authors' gamma)
    strategy: str = "search"  # search (APS) | uniform | random: the baselines at equal cost and retraining
    # --strategy random: which of the seed's random width sets (0, 1, ...): entries random-0..4 of one seed draw
    # five different sets, so three seeds give five sets each (issue 19: at least five at equal MACs)
    random_set: int = 0

    def __post_init__(self):
        problems = [
            (len(self.depths) == len(self.widths) and all(d >= 1 for d in self.depths),
             f"--depths {self.depths} and --widths {self.widths} need one positive entry per stage"),
            (all(w >= 1 for w in self.widths), f"--widths must be positive (got {self.widths})"),
            (len(self.multipliers) >= 1 and all(m > 0 for m in self.multipliers),
             f"--multipliers must be positive (got {self.multipliers})"),
            (0 < self.budget <= 1, f"--budget must be in (0, 1] (a share of the widest network; got {self.budget})"),
            (self.budget_metric in ("macs", "params"), f"--budget-metric must be macs or params (got {self.budget_metric!r})"),
            (self.sharing in SHARING, f"--sharing must be one of {', '.join(SHARING)} (got {self.sharing!r})"),
            (0 <= self.final_sharing <= 1, f"--final-sharing must be in [0, 1] (got {self.final_sharing})"),
            (self.search_epochs is None or self.search_epochs >= 1,
             f"--search-epochs must be at least 1 (got {self.search_epochs})"),
            (self.controller_samples >= 1, f"--controller-samples must be at least 1 (got {self.controller_samples})"),
            (self.controller_lr > 0, f"--controller-lr must be positive (got {self.controller_lr})"),
            (self.controller_every >= 1, f"--controller-every must be at least 1 (got {self.controller_every})"),
            (0 <= self.warmup < 1, f"--warmup must be in [0, 1) (a share of the search; got {self.warmup})"),
            (self.transform_lr is None or self.transform_lr > 0, f"--transform-lr must be positive (got {self.transform_lr})"),
            (self.entropy_weight >= 0, f"--entropy-weight must be 0 or more (got {self.entropy_weight})"),
            (0 <= self.baseline_decay < 1, f"--baseline-decay must be in [0, 1) (got {self.baseline_decay})"),
            (self.strategy in STRATEGIES, f"--strategy must be one of {', '.join(STRATEGIES)} (got {self.strategy!r})"),
            (self.random_set >= 0, f"--random-set must be 0 or more (got {self.random_set})"),
            (self.random_set == 0 or self.strategy == "random",
             f"--random-set {self.random_set} picks one of --strategy random's width sets (got --strategy {self.strategy})"),
        ]
        bad = [message for ok, message in problems if not ok]
        if bad:
            raise AdaGrowError("; ".join(bad))

    def candidates(self) -> list[list[int]]:
        """Candidate widths of every searchable layer (distinct, at least 1 channel)."""
        per_stage = [sorted({max(1, round(w * m)) for m in self.multipliers}) for w in self.widths]
        return [per_stage[s] for s, d in enumerate(self.depths) for _ in range(d)]


class APS(Method):
    name = "aps"

    def __init__(self, cfg: APSConfig):
        self.cfg = cfg
        self.cands = cfg.candidates()
        self.logits = [torch.zeros(len(c)) for c in self.cands]  # the controller's policy per layer
        self.adam = {"m": [torch.zeros(len(c)) for c in self.cands], "v": [torch.zeros(len(c)) for c in self.cands], "t": 0}
        self.baseline: float | None = None  # moving average of the rewards (REINFORCE baseline)
        self.chosen: list[int] | None = None
        self.widths: list[int] | None = None  # a baseline's widths (--strategy uniform|random)
        self.steps = 0
        self.search_epochs = 1
        self.total_steps = 1
        self.warmup_steps = 0
        self.result: dict[str, Any] = {"sharing_levels": [], "controller": [], "reward_curve": []}
        self._epoch: dict[str, list[float]] = {"reward": [], "entropy": []}
        self._shape: tuple[tuple[int, int, int], int] | None = None
        self._val = None  # an endless iterator over validation batches (the controller's rewards)

    # ---- schedule -----------------------------------------------------------------------------------
    def phase(self, epoch: int) -> str:
        if epoch < self.search_epochs:
            return "search" if self.cfg.strategy == "search" else "idle"
        return "retrain"

    def change_phase(self, epoch: int) -> str:
        return "search" if self.cfg.strategy == "search" else "idle"

    def trains(self, epoch: int) -> bool:
        """A baseline waits out APS's search epochs untrained (its network is re-initialised at their end anyway)."""
        return self.cfg.strategy == "search" or epoch >= self.search_epochs

    def sharing_at(self, step: int) -> float:
        """The cosine variant's mixing scalar: 1 through the warm-up, then a half cosine to --final-sharing."""
        if self.cfg.sharing == "ordinal":
            return 1.0
        if self.cfg.sharing == "independent":
            return 0.0
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return annealed_sharing(progress, self.cfg.final_sharing)

    def transform_lr(self) -> float:
        """Given, or 1 / the steps after the warm-up: the transforms leave ordinal sharing about half-way through
        the search and reach independence by its end (the penalty's dynamics: a slow escape from the tie,
        then a fast fall), capped at 0.1 / the candidates per layer, above which a step overshoots (the
        penalty's curvature grows with the number of identical columns)."""
        if self.cfg.transform_lr is not None:
            return self.cfg.transform_lr
        return min(1.0 / max(1, self.total_steps - self.warmup_steps), 0.1 / max(len(c) for c in self.cands))

    # ---- Method hooks -------------------------------------------------------------------------------
    def build_model(self, ctx: RunContext) -> nn.Module:
        if len(ctx.input_size) != 3:
            raise AdaGrowError("--method aps searches convolutional networks: give an image dataset")
        self.search_epochs = self.cfg.search_epochs if self.cfg.search_epochs is not None else max(1, ctx.epochs // 2)
        if self.search_epochs >= ctx.epochs:
            raise AdaGrowError(f"--search-epochs {self.search_epochs} leaves none of the run's {ctx.epochs} epochs to "
                               "retrain the chosen network: give more --epochs or fewer --search-epochs")
        self.total_steps = max(1, self.search_epochs * ctx.steps_per_epoch)
        self.warmup_steps = int(self.cfg.warmup * self.total_steps)
        self._shape = (tuple(ctx.input_size), ctx.num_classes)
        self._val = ctx.val_batches() if ctx.val_batches is not None else None
        self.result["budget"] = self.budget()
        self.result["widest"] = self.cost([len(c) - 1 for c in self.cands])
        if self.cost([0] * len(self.cands)) > self.result["budget"]:
            raise AdaGrowError(f"--budget {self.cfg.budget} is below the narrowest candidate network's "
                               f"{self.cfg.budget_metric}: add smaller --multipliers or raise the budget")
        if self.cfg.strategy != "search":
            if self.widths is None:
                self.widths = self.baseline_widths(ctx.config.seed)
                self.result.update({"widths": self.widths, "cost": self.cost_of(self.widths),
                                    "search_epochs": self.search_epochs})
            return PlainCNN(self.widths, self.cfg.depths, ctx.input_size[0], ctx.num_classes)
        if self.chosen is not None:  # resumed after the search
            return self.plain(self.chosen)
        if ctx.evaluate is None or self._val is None:
            raise AdaGrowError("--method aps evaluates sub-networks through the runner (adagrow train)")
        net = SuperNet(self.cands, self.cfg.depths, ctx.input_size[0], ctx.num_classes,
                       learned=self.cfg.sharing == "learned", seed=ctx.config.seed)
        if self.cfg.sharing != "learned":
            net.set_sharing(self.sharing_at(self.steps))
        net.train_choices = self.sample(self.steps)
        net.eval_choices = self.favourite()
        return net

    def after_step(self, model: nn.Module) -> None:
        if not isinstance(model, SuperNet):
            return
        self.steps += 1
        if self.steps > self.warmup_steps:
            if self.cfg.sharing == "learned":
                for layer in model.layers:
                    transform_step(layer, self.transform_lr())
            if (self.steps - self.warmup_steps) % self.cfg.controller_every == 0:
                self.update_controller(model)
        if self.cfg.sharing != "learned":
            model.set_sharing(self.sharing_at(self.steps))
        model.train_choices = self.sample(self.steps)

    def on_epoch_end(self, ctx: RunContext, epoch: int, model: nn.Module, metrics: dict[str, float]) -> ModelChange | None:
        if self.cfg.strategy != "search":
            if epoch + 1 != self.search_epochs:
                return None
            torch.manual_seed(ctx.config.seed)  # the same fresh initialisation as APS's retrained network
            fresh = PlainCNN(self.widths, self.cfg.depths, ctx.input_size[0], ctx.num_classes)
            event = {"kind": "search", "where": f"aps-{self.cfg.strategy}", "widths": self.widths,
                     "params_before": sum(p.numel() for p in model.parameters())}
            return ModelChange(fresh, event, inherit_optimizer=False)
        if self.chosen is not None:
            return None
        self.result["sharing_levels"].append(sum(sharing_level(layer) for layer in model.layers) / len(model.layers))
        rewards, entropies = self._epoch["reward"], self._epoch["entropy"]
        self.result["controller"].append({
            "epoch": epoch + 1, "updates": len(rewards), "mean_reward": sum(rewards) / len(rewards) if rewards else None,
            "entropy": sum(entropies) / len(entropies) if entropies else self.entropy(),
            "favourite": model.widths(self.favourite()), "supernet_val_acc": metrics["val_acc"]})
        self.result.setdefault("reward_curve", []).extend(
            sum(block) / len(block) for block in (rewards[i:i + REWARD_BLOCK] for i in range(0, len(rewards), REWARD_BLOCK)))
        self._epoch = {"reward": [], "entropy": []}
        model.eval_choices = self.favourite()
        if epoch + 1 < self.search_epochs:
            return None
        self.chosen = self.fit_budget(self.favourite())
        widths = model.widths(self.chosen)
        # the supernet's validation accuracy (its favourite sub-network) when the search ended: did it learn at all?
        self.result.update({"widths": widths, "cost": self.cost(self.chosen), "search_epochs": self.search_epochs,
                            "supernet_val_acc": metrics["val_acc"]})
        ctx.log(f"  aps: chose widths {widths} ({self.cfg.budget_metric} {self.result['cost']:,} of budget "
                f"{self.result['budget']:,.0f}); retraining from scratch")
        torch.manual_seed(ctx.config.seed)  # the retrained network's initialisation, as a fresh run's
        event = {"kind": "search", "where": "aps", "widths": widths, "params_before": sum(p.numel() for p in model.parameters())}
        return ModelChange(self.plain(self.chosen), event, inherit_optimizer=False)

    def arch(self, model: nn.Module) -> str | None:
        return "-".join(map(str, model.widths)) if isinstance(model, PlainCNN) else None

    def summary(self) -> dict[str, Any]:
        return {"aps": {**self.result, "sharing": self.cfg.sharing, "strategy": self.cfg.strategy, "candidates": self.cands}}

    def state_dict(self) -> dict[str, Any]:
        return {"logits": [t.tolist() for t in self.logits], "baseline": self.baseline, "chosen": self.chosen,
                "steps": self.steps, "result": self.result, "widths": self.widths,
                "adam": {"m": [t.tolist() for t in self.adam["m"]], "v": [t.tolist() for t in self.adam["v"]],
                         "t": self.adam["t"]}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.logits = [torch.tensor(t) for t in state["logits"]]
        self.baseline, self.chosen, self.steps, self.result = state["baseline"], state["chosen"], state["steps"], state["result"]
        self.widths = state.get("widths")
        adam = state.get("adam")
        if adam:
            self.adam = {"m": [torch.tensor(t) for t in adam["m"]], "v": [torch.tensor(t) for t in adam["v"]], "t": adam["t"]}

    # ---- networks and their cost --------------------------------------------------------------------
    def plain(self, choices: list[int]) -> PlainCNN:
        (c, _, _), classes = self._shape
        return PlainCNN([cands[i] for cands, i in zip(self.cands, choices)], self.cfg.depths, c, classes)

    def cost(self, choices: list[int]) -> int:
        """MACs (batch 1) or params of the plain network of these choices, by the project's profiler."""
        return self.cost_of([cands[i] for cands, i in zip(self.cands, choices)])

    def cost_of(self, widths: list[int]) -> int:
        return _cost(tuple(widths), self.cfg.depths, self._shape, self.cfg.budget_metric)

    def budget(self) -> float:
        return self.cfg.budget * self.cost([len(c) - 1 for c in self.cands])

    def baseline_widths(self, seed: int) -> list[int]:
        """The baselines' widths: reference width × a multiplier per layer (one for all with ``uniform``, drawn
        uniformly in the candidates' multiplier range with ``random``) × the largest common scale whose
        network fits the budget (bisection; cost grows with the scale)."""
        stage_widths = [w for w, d in zip(self.cfg.widths, self.cfg.depths) for _ in range(d)]
        if self.cfg.strategy == "uniform":
            mults = [1.0] * len(stage_widths)
        else:
            # set 0 draws from the seed alone (as before the option existed); set k > 0 from a seed mixed out of
            # (seed, k) by numpy's SeedSequence (torch's CPU generator keeps only 32 bits of its seed, so a sum such as
            # seed + k·2³² would give every set the same draws)
            k = self.cfg.random_set
            g = torch.Generator().manual_seed(seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
            lo, hi = min(self.cfg.multipliers), max(self.cfg.multipliers)
            mults = [lo + (hi - lo) * float(torch.rand((), generator=g)) for _ in stage_widths]

        def widths(k: float) -> list[int]:
            return [max(1, round(w * m * k)) for w, m in zip(stage_widths, mults)]

        lo_k, hi_k = 0.0, 2 * max(self.cfg.multipliers) / min(mults)
        while self.cost_of(widths(hi_k)) <= self.result["budget"]:
            hi_k *= 2
        for _ in range(40):
            mid = (lo_k + hi_k) / 2
            lo_k, hi_k = (mid, hi_k) if self.cost_of(widths(mid)) <= self.result["budget"] else (lo_k, mid)
        self.result["baseline_multipliers"] = [m * lo_k for m in mults]
        if self.cfg.strategy == "random":
            self.result["random_set"] = self.cfg.random_set
        return widths(lo_k)

    def fit_budget(self, choices: list[int]) -> list[int]:
        """Narrow layers until the network fits the budget, each time the move that saves the most cost per
        unit of policy log-probability it gives up."""
        choices = list(choices)
        while self.cost(choices) > self.result["budget"]:
            here, moves = self.cost(choices), []
            for layer, i in enumerate(choices):
                if i > 0:
                    logp = torch.log_softmax(self.logits[layer], 0)
                    trial = choices[:layer] + [i - 1] + choices[layer + 1:]
                    moves.append(((here - self.cost(trial)) / (float(logp[i] - logp[i - 1]) + 1e-3), trial))
            choices = max(moves, key=lambda m: m[0])[1]
        return choices

    # ---- controller ---------------------------------------------------------------------------------
    def favourite(self) -> list[int]:
        return [int(t.argmax()) for t in self.logits]

    def entropy(self) -> float:
        return float(sum(-(torch.softmax(t, 0) * torch.log_softmax(t, 0)).sum() for t in self.logits))

    def sample(self, seed: int) -> list[int]:
        """A sub-network from the policy, drawn with a generator of its own (the run's RNG stream, and so a
        resumed run, does not depend on the search's draws)."""
        g = torch.Generator().manual_seed(seed)
        return [int(torch.multinomial(torch.softmax(t, 0), 1, generator=g)) for t in self.logits]

    def reward(self, acc: float, choices: list[int]) -> float:
        """Accuracy (0..1), scaled down by (budget / cost)² above the budget."""
        over = self.cost(choices) / self.result["budget"]
        return acc * (1.0 if over <= 1 else over ** -2)

    @torch.no_grad()
    def sub_accuracy(self, model: SuperNet, choices: list[int], x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy (0..1) of one sub-network on one batch, in training mode as the authors' controller step
        (each candidate's BN normalises with the batch's statistics), its running statistics left untouched."""
        bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        momenta = [m.momentum for m in bns]
        kept = model.train_choices
        try:
            for m in bns:
                m.momentum = 0.0
            model.train_choices = choices
            return float((model(x).argmax(1) == y).float().mean())
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom
            model.train_choices = kept

    def update_controller(self, model: SuperNet) -> None:
        """One REINFORCE step: ``--controller-samples`` sub-networks, each rewarded on the next validation batch;
        loss −Σ (r − b) log π(a) − β H(π), one Adam step on the logits, b ← γb + (1 − γ)r."""
        logits = [t.clone().requires_grad_(True) for t in self.logits]
        loss = torch.zeros(())
        for k in range(self.cfg.controller_samples):
            choices = self.sample(10**9 + self.steps * 64 + k)
            x, y = next(self._val)
            r = self.reward(self.sub_accuracy(model, choices, x, y), choices)
            self._epoch["reward"].append(r)
            advantage = r - (self.baseline if self.baseline is not None else r)
            loss = loss - advantage * sum(torch.log_softmax(t, 0)[i] for t, i in zip(logits, choices))
            d = self.cfg.baseline_decay
            self.baseline = r if self.baseline is None else d * self.baseline + (1 - d) * r
        entropy = sum(-(torch.softmax(t, 0) * torch.log_softmax(t, 0)).sum() for t in logits)
        (loss / self.cfg.controller_samples - self.cfg.entropy_weight * entropy).backward()
        self._epoch["entropy"].append(float(entropy.detach()))
        self.logits = self._adam([t.detach() for t in logits], [t.grad for t in logits])

    def _adam(self, params: list[torch.Tensor], grads: list[torch.Tensor], b1: float = 0.5, b2: float = 0.999,
              eps: float = 1e-8) -> list[torch.Tensor]:
        """Adam with the authors' betas (0.5, 0.999); its moments are plain lists in the method's state."""
        self.adam["t"] += 1
        t, out = self.adam["t"], []
        for k, (p, g) in enumerate(zip(params, grads)):
            self.adam["m"][k] = b1 * self.adam["m"][k] + (1 - b1) * g
            self.adam["v"][k] = b2 * self.adam["v"][k] + (1 - b2) * g * g
            m_hat, v_hat = self.adam["m"][k] / (1 - b1**t), self.adam["v"][k] / (1 - b2**t)
            out.append(p - self.cfg.controller_lr * m_hat / (v_hat.sqrt() + eps))
        return out


@lru_cache(maxsize=4096)
def _cost(widths: tuple, depths: tuple, shape: tuple, metric: str) -> int:
    (c, h, w), classes = shape
    net = PlainCNN(list(widths), depths, c, classes)
    return int(profile(net, (c, h, w))[metric])


METHODS.register("aps", MethodEntry(APSConfig, APS,
                                    "APS: channel-number search by affine parameter sharing, then retraining (NeurIPS 2020)"))
