"""Growable CNNs: VGG, ResNet (basic), ResNet-Bottleneck and MobileNetV3 (SPEC §3.2).

A model is a stem, compute blocks separated by down-sampling transitions, and a head.  The seed
model (``"0-0-0"``) has empty blocks; depth growth inserts layers into blocks, width growth adds
re-parameterisable branches to units.  ``grow_depth()`` / ``grow_width()`` run one growth step
driven by the model's :class:`~adagrow.grow.policies.GrowthPolicy` and its own random generator, so
growth can be driven outside the runner; the policy logic lives in :mod:`adagrow.grow.ops`.

``structure()`` describes the current architecture (layers per block and every unit's branches) and
``GrowableCNN.from_structure`` rebuilds it, which is how a grown run is resumed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adagrow.errors import ArchitectureError
from adagrow.models.arch import format_arch, parse_arch
from adagrow.models.cnn_blocks import BasicLayer, BottleneckLayer, Head, Layer, MobileLayer, Stem, Transition, VGGLayer
from adagrow.models.reparam import BRANCH_SPACES, TRAIN_FORMS, BranchSpec, RepUnit


@dataclass(frozen=True)
class FamilySpec:
    """Widths per block (3- and 4-block layouts), the layer type, kernels and the stem stride."""

    layer: type[Layer]
    widths3: tuple[int, ...]
    widths4: tuple[int, ...]
    kernels3: tuple[int, ...] = (3, 3, 3)
    kernels4: tuple[int, ...] = (3, 3, 3, 3)
    stem_stride: int = 1


FAMILIES: dict[str, FamilySpec] = {
    "vgg": FamilySpec(VGGLayer, (64, 96, 128), (64, 96, 128, 256)),
    "resnet": FamilySpec(BasicLayer, (64, 96, 128), (64, 96, 128, 256)),
    "bottleneck": FamilySpec(BottleneckLayer, (64, 96, 128), (64, 96, 128, 256)),
    # depth-wise kernel 3 in the first block group, 5 after; stride-2 stem (released code)
    "mobilenetv3": FamilySpec(MobileLayer, (32, 64, 96), (16, 32, 64, 96), (3, 5, 5), (3, 5, 5, 5), stem_stride=2),
}


def family_spec(family: str) -> FamilySpec:
    try:
        return FAMILIES[family.lower()]
    except KeyError:
        raise ArchitectureError(f"unknown CNN family {family!r}; known: {', '.join(FAMILIES)}") from None


class GrowableCNN(nn.Module):
    """A growable CNN of one family at a given architecture (layers per block)."""

    def __init__(
        self,
        family: str,
        arch: str | tuple[int, ...] = "0-0-0",
        num_classes: int = 10,
        in_chans: int = 3,
        max_branch_kernel: int | None = None,
        transition_bn_on_path: bool = True,
        policy: Any = None,
        seed: int = 0,
        branch_space: str = "thesis",
        widths: tuple[int, ...] | None = None,
        train_form: str = "bn",
    ):
        super().__init__()
        from adagrow.grow.policies import GrowthPolicy  # the policy is a plain frozen dataclass

        depths = parse_arch(arch)
        spec = family_spec(family)
        if branch_space not in BRANCH_SPACES:
            raise ArchitectureError(f"unknown branch space {branch_space!r}; known: {', '.join(BRANCH_SPACES)}")
        if train_form not in TRAIN_FORMS:
            raise ArchitectureError(f"unknown train form {train_form!r}; known: {', '.join(TRAIN_FORMS)}")
        self.family = family.lower()
        self.spec = spec
        self.widths = spec.widths3 if len(depths) == 3 else spec.widths4
        if widths is not None:  # other widths per block (SplitGrow grows them); None: the family's
            if len(widths) != len(depths) or min(widths) < 1:
                raise ArchitectureError(f"widths {widths} do not give {len(depths)} positive block widths")
            self.widths = tuple(int(w) for w in widths)
        self.kernels = spec.kernels3 if len(depths) == 3 else spec.kernels4
        self.num_classes, self.in_chans = num_classes, in_chans
        self.max_branch_kernel = max_branch_kernel
        self.branch_space = branch_space  # "thesis" (Fig. 3-5) | "full"; see adagrow.models.reparam
        self.train_form = train_form  # "bn" (the thesis) | "orepa" (branch scales, one BN); ditto
        self.policy = policy if policy is not None else GrowthPolicy()
        self.rng = random.Random(seed)  # every growth decision draws from here; its state is saved
        self.last_grown_block: int | None = None

        self.stem = Stem(in_chans, self.widths[0], spec.stem_stride)
        self.blocks = nn.ModuleList(nn.Sequential() for _ in depths)
        self.transitions = nn.ModuleList(
            Transition(a, b, max_branch_kernel, transition_bn_on_path) for a, b in zip(self.widths, self.widths[1:])
        )
        self.head = Head(self.widths[-1], num_classes)
        self._set_branch_space(self.transitions)
        for stage, n in enumerate(depths):
            for _ in range(n):
                self.blocks[stage].append(self.new_layer(stage))
        for m in self.modules():
            init_module(m)

    # ----------------------------------------------------------------------------- structure
    def new_layer(self, stage: int) -> Layer:
        """A freshly initialised layer for block ``stage`` (on the model's device)."""
        mbk = self.max_branch_kernel
        if mbk is not None:
            mbk = max(mbk, self.kernels[stage])
        layer = self.spec.layer(self.widths[stage], self.kernels[stage], mbk)
        for m in layer.modules():
            init_module(m)
        self._set_branch_space(layer)
        ref = self.head.fc.weight
        return layer.to(device=ref.device, dtype=ref.dtype)

    def _set_branch_space(self, module: nn.Module) -> None:
        """Give every unit of ``module`` the model's branch space and train form (one setting each for
        the whole model)."""
        for m in module.modules():
            if isinstance(m, RepUnit):
                m.branch_space, m.train_form = self.branch_space, self.train_form

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(b) for b in self.blocks)

    def arch(self) -> str:
        """Layers per block, e.g. ``"1-2-2"``."""
        return format_arch(self.depths)

    def units(self, growable_only: bool = True) -> list[tuple[str, RepUnit]]:
        """Named re-parameterisable units (width-growth candidates when ``growable_only``)."""
        return [(n, m) for n, m in self.named_modules() if isinstance(m, RepUnit) and (m.growable or not growable_only)]

    def structure(self) -> dict[str, Any]:
        """Everything that fixes the architecture: family, layers per block, branches per unit."""
        return {
            "family": self.family,
            "arch": self.arch(),
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
            "max_branch_kernel": self.max_branch_kernel,
            "branch_space": self.branch_space,
            "train_form": self.train_form,
            "transition_bn_on_path": self.transitions[0].bn_on_path if len(self.transitions) else True,
            "branches": {n: [s.name for s in u.branch_specs[1:]] for n, u in self.units(False) if u.branches},
            "widths": list(self.widths),
        }

    @classmethod
    def from_structure(cls, structure: dict[str, Any], policy: Any = None, seed: int = 0) -> GrowableCNN:
        """Rebuild the architecture described by :meth:`structure` (weights freshly initialised)."""
        model = cls(
            structure["family"], structure["arch"], structure["num_classes"], structure["in_chans"],
            structure["max_branch_kernel"], structure["transition_bn_on_path"], policy, seed,
            # checkpoints written before the setting existed grew in what is now the "full" space
            structure.get("branch_space", "full"), structure.get("widths"), structure.get("train_form", "bn"),
        )
        units = dict(model.units(False))
        for name, branches in structure["branches"].items():
            for b in branches:
                units[name].add_branch(BranchSpec.parse(b))
        return model

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage, block in enumerate(self.blocks):
            if stage > 0:
                x = self.transitions[stage - 1](x)
            x = block(x)
        return self.head(x)

    # ----------------------------------------------------------------------------- growth
    def grow_depth(self, stage: int | None = None, position: int | None = None, n: int | None = None, **kw):
        """Insert ``n`` layers (policy default) into block ``stage`` at ``position`` (policy-chosen
        when None); returns the event dict (see :func:`adagrow.grow.ops.grow_depth`)."""
        from adagrow.grow.ops import grow_depth

        return grow_depth(self, stage, position, n, **kw)

    def grow_width(self, units: list[str] | None = None, branches: list[str] | None = None, **kw):
        """Add one branch to each chosen unit (policy-chosen when None); returns the event dict."""
        from adagrow.grow.ops import grow_width

        return grow_width(self, units, branches, **kw)


def init_module(m: nn.Module) -> None:
    """The model's own initialiser ("inherited" init): Kaiming (fan-out) convs, γ=1, β=0, small head."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.001)
        nn.init.zeros_(m.bias)

