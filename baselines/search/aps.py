"""APS — affine parameter sharing for channel-number search (NeurIPS 2020), as a Method of the one runner.

One run, two phases:

* "search", epochs ``[0, search_epochs)``: the super-network (:mod:`baselines.search.supernet`) trains
  one sampled sub-network per step; the sharing level is annealed from ordinal to independent over the
  search (APS-T; ``--sharing ordinal`` / ``independent`` hold it fixed, the paper's two baselines).  After
  every search epoch the controller — a categorical policy per layer — is updated by REINFORCE on the
  validation accuracy of ``controller_samples`` sampled sub-networks, penalised above the budget.
* "retrain", the remaining epochs: the chosen widths — the controller's most probable sub-network,
  narrowed where it costs the least probability until it fits the budget — as a fresh
  :class:`~baselines.search.supernet.PlainCNN`, trained from scratch (no weights or optimizer state
  carried over).

The budget is a share of the widest network's MACs (or params), measured by the project's profiler on
the plain network, so the record's MACs of the retrained model are the ones the budget bounds.
Our reading where the paper differs or is silent: the controller is a per-layer policy rather than an
LSTM; the retraining continues the run's learning-rate schedule (it starts where the search left it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from adagrow.engine.method import Method, ModelChange, RunContext
from adagrow.errors import AdaGrowError
from adagrow.measure.profile import profile
from adagrow.methods import METHODS, MethodEntry
from baselines.search.supernet import PlainCNN, SuperNet, annealed_sharing, sharing_level

SHARING = ("anneal", "ordinal", "independent")


@dataclass(frozen=True)
class APSConfig:
    depths: tuple[int, ...] = (1, 2, 2)  # searchable layers per stage (AdaGrow's VGG 1-2-2 layout)
    widths: tuple[int, ...] = (64, 96, 128)  # reference width per stage (AdaGrow's seed widths)
    multipliers: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5)  # candidate widths = reference × these
    budget: float = 0.5  # share of the widest network's cost the chosen one may have
    budget_metric: str = "macs"  # macs | params
    search_epochs: int | None = None  # None: half the run's epochs
    sharing: str = "anneal"  # anneal (APS-T) | ordinal | independent
    final_sharing: float = 0.0  # the sharing level the annealing ends at
    controller_lr: float = 0.1  # learning rate of the architecture controller (REINFORCE)
    controller_samples: int = 8  # sub-networks evaluated per controller update (after each search epoch)

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
        self.baseline: float | None = None  # moving average of the rewards (REINFORCE baseline)
        self.chosen: list[int] | None = None
        self.steps = 0
        self.search_epochs = 1
        self.total_steps = 1
        self.result: dict[str, Any] = {"sharing_levels": [], "controller": []}
        self._shape: tuple[tuple[int, int, int], int] | None = None

    # ---- schedule -----------------------------------------------------------------------------------
    def phase(self, epoch: int) -> str:
        return "search" if epoch < self.search_epochs else "retrain"

    def change_phase(self, epoch: int) -> str:
        return "search"

    def sharing_at(self, step: int) -> float:
        if self.cfg.sharing == "ordinal":
            return 1.0
        if self.cfg.sharing == "independent":
            return 0.0
        return annealed_sharing(step / self.total_steps, self.cfg.final_sharing)

    # ---- Method hooks -------------------------------------------------------------------------------
    def build_model(self, ctx: RunContext) -> nn.Module:
        if len(ctx.input_size) != 3:
            raise AdaGrowError("--method aps searches convolutional networks: give an image dataset")
        self.search_epochs = self.cfg.search_epochs if self.cfg.search_epochs is not None else max(1, ctx.epochs // 2)
        if self.search_epochs >= ctx.epochs:
            raise AdaGrowError(f"--search-epochs {self.search_epochs} leaves none of the run's {ctx.epochs} epochs to "
                               "retrain the chosen network: give more --epochs or fewer --search-epochs")
        self.total_steps = max(1, self.search_epochs * ctx.steps_per_epoch)
        self._shape = (tuple(ctx.input_size), ctx.num_classes)
        self.result["budget"] = self.budget()
        self.result["widest"] = self.cost([len(c) - 1 for c in self.cands])
        if self.cost([0] * len(self.cands)) > self.result["budget"]:
            raise AdaGrowError(f"--budget {self.cfg.budget} is below the narrowest candidate network's "
                               f"{self.cfg.budget_metric}: add smaller --multipliers or raise the budget")
        if self.chosen is not None:  # resumed after the search
            return self.plain(self.chosen)
        net = SuperNet(self.cands, self.cfg.depths, ctx.input_size[0], ctx.num_classes)
        net.set_sharing(self.sharing_at(self.steps))
        net.train_choices = self.sample(self.steps)
        net.eval_choices = self.favourite()
        return net

    def after_step(self, model: nn.Module) -> None:
        if self.chosen is not None or not isinstance(model, SuperNet):
            return
        self.steps += 1
        model.set_sharing(self.sharing_at(self.steps))
        model.train_choices = self.sample(self.steps)

    def on_epoch_end(self, ctx: RunContext, epoch: int, model: nn.Module, metrics: dict[str, float]) -> ModelChange | None:
        if self.chosen is not None:
            return None
        self.result["sharing_levels"].append(sum(sharing_level(layer) for layer in model.layers) / len(model.layers))
        self.update_controller(ctx, model, epoch)
        model.eval_choices = self.favourite()
        if epoch + 1 < self.search_epochs:
            return None
        self.chosen = self.fit_budget(self.favourite())
        widths = model.widths(self.chosen)
        self.result.update({"widths": widths, "cost": self.cost(self.chosen), "search_epochs": self.search_epochs})
        ctx.log(f"  aps: chose widths {widths} ({self.cfg.budget_metric} {self.result['cost']:,} of budget "
                f"{self.result['budget']:,.0f}); retraining from scratch")
        torch.manual_seed(ctx.config.seed)  # the retrained network's initialisation, as a fresh run's
        event = {"kind": "search", "where": "aps", "widths": widths, "params_before": sum(p.numel() for p in model.parameters())}
        return ModelChange(self.plain(self.chosen), event, inherit_optimizer=False)

    def arch(self, model: nn.Module) -> str | None:
        return "-".join(map(str, model.widths)) if isinstance(model, PlainCNN) else None

    def summary(self) -> dict[str, Any]:
        return {"aps": {**self.result, "sharing": self.cfg.sharing, "candidates": self.cands}}

    def state_dict(self) -> dict[str, Any]:
        return {"logits": [t.tolist() for t in self.logits], "baseline": self.baseline, "chosen": self.chosen,
                "steps": self.steps, "result": self.result}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.logits = [torch.tensor(t) for t in state["logits"]]
        self.baseline, self.chosen, self.steps, self.result = state["baseline"], state["chosen"], state["steps"], state["result"]

    # ---- networks and their cost --------------------------------------------------------------------
    def plain(self, choices: list[int]) -> PlainCNN:
        (c, _, _), classes = self._shape
        return PlainCNN([cands[i] for cands, i in zip(self.cands, choices)], self.cfg.depths, c, classes)

    def cost(self, choices: list[int]) -> int:
        """MACs (batch 1) or params of the plain network of these choices, by the project's profiler."""
        return _cost(tuple(tuple(c) for c in self.cands), tuple(choices), self.cfg.depths, self._shape, self.cfg.budget_metric)

    def budget(self) -> float:
        return self.cfg.budget * self.cost([len(c) - 1 for c in self.cands])

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

    def sample(self, step: int) -> list[int]:
        """A sub-network from the policy, drawn with a generator of its own (the run's RNG stream, and so a
        resumed run, does not depend on the search's draws)."""
        g = torch.Generator().manual_seed(step)
        return [int(torch.multinomial(torch.softmax(t, 0), 1, generator=g)) for t in self.logits]

    def reward(self, acc: float, choices: list[int]) -> float:
        """Validation accuracy (0..1), scaled down by (budget / cost)² above the budget."""
        over = self.cost(choices) / self.result["budget"]
        return acc / 100 * (1.0 if over <= 1 else over ** -2)

    def update_controller(self, ctx: RunContext, model: SuperNet, epoch: int) -> None:
        """One REINFORCE step on ``controller_samples`` sub-networks evaluated on the validation split."""
        if ctx.evaluate is None:
            raise AdaGrowError("--method aps evaluates sub-networks through the runner (adagrow train)")
        logits = [t.clone().requires_grad_(True) for t in self.logits]
        loss, rewards = torch.zeros(()), []
        for k in range(self.cfg.controller_samples):
            choices = self.sample(10**9 + epoch * 1000 + k)
            model.eval_choices = choices
            r = self.reward(ctx.evaluate(model, "val")["acc"], choices)
            rewards.append(r)
            advantage = r - (self.baseline if self.baseline is not None else r)
            loss = loss - advantage * sum(torch.log_softmax(t, 0)[i] for t, i in zip(logits, choices))
            self.baseline = r if self.baseline is None else 0.9 * self.baseline + 0.1 * r
        (loss / self.cfg.controller_samples).backward()
        self.logits = [(t - self.cfg.controller_lr * t.grad).detach() for t in logits]
        self.result["controller"].append({"epoch": epoch + 1, "mean_reward": sum(rewards) / len(rewards),
                                          "favourite": model.widths(self.favourite())})


@lru_cache(maxsize=4096)
def _cost(cands: tuple, choices: tuple, depths: tuple, shape: tuple, metric: str) -> int:
    (c, h, w), classes = shape
    net = PlainCNN([cs[i] for cs, i in zip(cands, choices)], depths, c, classes)
    return int(profile(net, (c, h, w))[metric])


METHODS.register("aps", MethodEntry(APSConfig, APS,
                                    "APS: channel-number search by affine parameter sharing, then retraining (NeurIPS 2020)"))
