"""The re-parameterisable unit: one Conv+BN plus parallel branches that fuse into one conv.

Width growth in AdaGrow (SPEC §3.3) never widens a layer for real.  It adds a parallel branch to a
unit's main ``Conv k×k + BN``; the branch outputs are summed.  The branches a unit may receive
(``branch_space``, bounded by ``max_branch_kernel``, default the unit's own kernel):

* ``"thesis"`` (default): the space of the thesis' Fig. 3-5, {BN-only identity, 1×1, 1×3, 3×1, 3×3,
  3×5, 5×3 conv, m×m average pooling} cut to the bound m: a 3×3 unit gets BN, 1×1, 1×3, 3×1, 3×3 and
  3×3 pooling; with ``max_branch_kernel=5`` it gets exactly Fig. 3-5's eight branches (5×5 pooling);
* ``"full"``: every odd kh×kw conv within the bound and every odd pooling size, i.e. also 1×5, 5×1
  and 5×5 conv and 3×3 pooling at bound 5 (the released code draws its conv branches from this set).
  All
branches are linear in the input in eval mode, so after training the unit folds into one conv with
bias (RepVGG / DiverseBranchBlock): each BN folds into its conv, smaller kernels are zero-padded to
the centre, average pooling becomes ``1/k²`` on the channel diagonal and BN-only an identity kernel.

The fused conv remembers the spatial footprint of every branch (``branch_kernels``) because the
quantizer groups kernel positions by how many branches covered them (SPEC §8).

Training speed: all conv branches of the same kernel shape (the main conv included) run as ONE conv
whose weights are the branches' weights stacked along the output channels; each branch's BN then
normalises its own slice.  BatchNorm is per channel, so this is exactly the per-branch computation,
with one kernel launch instead of one per branch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.errors import ArchitectureError

BRANCH_SPACES = ("thesis", "full")
# Conv footprints of Fig. 3-5 (the sub-fields of a 5×5 receptive field the thesis lists).
THESIS_CONV_SHAPES = ((1, 1), (1, 3), (3, 1), (3, 3), (3, 5), (5, 3))


@dataclass(frozen=True)
class BranchSpec:
    """One kind of branch: ``kind`` is "conv", "pool" or "bn" (identity), with its footprint."""

    kind: str
    kh: int = 1
    kw: int = 1

    @property
    def name(self) -> str:
        if self.kind == "bn":
            return "bn"
        if self.kind == "pool":
            return f"pool{self.kh}x{self.kw}"
        return f"{self.kh}x{self.kw}"

    @staticmethod
    def parse(name: str) -> BranchSpec:
        """Inverse of :attr:`name`: "bn", "pool3x3", "1x3", ..."""
        try:
            if name == "bn":
                return BranchSpec("bn")
            kind = "pool" if name.startswith("pool") else "conv"
            kh, kw = (int(v) for v in name.removeprefix("pool").split("x"))
            return BranchSpec(kind, kh, kw)
        except ValueError:
            raise ArchitectureError(f"unknown branch {name!r}; expected bn, KxK (conv) or poolKxK") from None


# The thesis' "maximal difference" order (§3.3.3(2), Fig. 3-5), used by the greedy branch policy.
GREEDY_ORDER: tuple[BranchSpec, ...] = (
    BranchSpec("bn"),
    BranchSpec("conv", 3, 3),
    BranchSpec("conv", 5, 3),
    BranchSpec("conv", 1, 3),
    BranchSpec("pool", 5, 5),
    BranchSpec("conv", 3, 5),
    BranchSpec("conv", 3, 1),
    BranchSpec("conv", 1, 1),
)


class Branch(nn.Module):
    """A parallel branch: conv (no bias) + BN, average pooling + BN, or BN alone."""

    def __init__(self, spec: BranchSpec, in_ch: int, out_ch: int, stride: int, groups: int):
        super().__init__()
        self.spec = spec
        self.stride = stride
        if spec.kind == "conv":
            self.conv = nn.Conv2d(
                in_ch, out_ch, (spec.kh, spec.kw), stride, (spec.kh // 2, spec.kw // 2), groups=groups, bias=False
            )
        elif spec.kind == "pool":
            self.pool = nn.AvgPool2d(spec.kh, stride, spec.kh // 2, count_include_pad=True)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.kind == "conv":
            x = self.conv(x)
        elif self.spec.kind == "pool":
            x = self.pool(x)
        return self.bn(x)


def _fold_bn(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold ``bn`` into a bias-free conv ``weight``: W' = W·γ/σ, b' = β − μ·γ/σ."""
    t = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return weight * t.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * t


def _pad_to(weight: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Zero-pad a (…, h, w) kernel to (…, kh, kw), centred (odd sizes only)."""
    dh, dw = (kh - weight.shape[-2]) // 2, (kw - weight.shape[-1]) // 2
    return F.pad(weight, (dw, dw, dh, dh))


class RepUnit(nn.Module):
    """Main ``Conv k×k + BN`` plus any number of parallel branches, summed.

    ``growable=False`` marks units that width growth must not touch (stems, 1×1 convs of
    bottlenecks and SE); they still fuse like every unit.  ``max_branch_kernel`` bounds the branch
    footprint (default: the unit's own kernel, so inference cost never rises); ``branch_space``
    ("thesis" | "full") is the set of branch kinds within that bound (module docstring).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        max_branch_kernel: int | None = None,
        growable: bool = True,
        branch_space: str = "thesis",
    ):
        super().__init__()
        if kernel % 2 == 0:
            raise ArchitectureError(f"kernel size must be odd, got {kernel}")
        if branch_space not in BRANCH_SPACES:
            raise ArchitectureError(f"unknown branch space {branch_space!r}; known: {', '.join(BRANCH_SPACES)}")
        self.branch_space = branch_space
        self.in_ch, self.out_ch, self.kernel = in_ch, out_ch, kernel
        self.stride, self.groups, self.growable = stride, groups, growable
        self.max_branch_kernel = max_branch_kernel or kernel
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.branches = nn.ModuleList()

    # ----------------------------------------------------------------------------- structure
    def candidate_branches(self) -> list[BranchSpec]:
        """Every branch kind this unit may receive (SPEC §3.3 search space, ``branch_space``)."""
        sizes = [k for k in (1, 3, 5) if k <= self.max_branch_kernel]
        if self.branch_space == "full":
            convs = [(kh, kw) for kh in sizes for kw in sizes]
            pools = [k for k in sizes if k > 1]
        else:  # Fig. 3-5: its conv footprints within the bound, pooling over the whole bound
            convs = [s for s in THESIS_CONV_SHAPES if max(s) <= self.max_branch_kernel]
            pools = [sizes[-1]] if sizes[-1] > 1 else []
        out = [BranchSpec("conv", kh, kw) for kh, kw in convs]
        if self.in_ch == self.out_ch:  # pooling and BN-only cannot change the channel count
            out += [BranchSpec("pool", k, k) for k in pools]
            if self.stride == 1:
                out.append(BranchSpec("bn"))
        return out

    def add_branch(self, spec: BranchSpec) -> Branch:
        """Append a new branch of kind ``spec`` (freshly initialised: Kaiming conv, γ=1, β=0)."""
        if spec not in self.candidate_branches():
            raise ArchitectureError(
                f"branch {spec.name} is not allowed in a {self.kernel}x{self.kernel} unit "
                f"({self.in_ch}->{self.out_ch}, stride {self.stride}, max kernel {self.max_branch_kernel})"
            )
        branch = Branch(spec, self.in_ch, self.out_ch, self.stride, self.groups)
        ref = self.conv.weight
        branch.to(device=ref.device, dtype=ref.dtype)
        if spec.kind == "conv":
            nn.init.kaiming_normal_(branch.conv.weight, mode="fan_out", nonlinearity="relu")
        self.branches.append(branch)
        return branch

    @property
    def branch_specs(self) -> list[BranchSpec]:
        """The main conv followed by every branch, as specs."""
        return [BranchSpec("conv", self.kernel, self.kernel)] + [b.spec for b in self.branches]

    @property
    def fused_size(self) -> int:
        """Side of the square fused kernel: the largest footprint of any branch."""
        return max(max(s.kh, s.kw) for s in self.branch_specs)

    def bns(self) -> list[nn.BatchNorm2d]:
        return [self.bn] + [b.bn for b in self.branches]

    def importance(self, signed: bool = False) -> float:
        """Mean over branches of the mean |γ| of each branch's BN (signed mean γ if ``signed``)."""
        vals = [(bn.weight.detach().mean() if signed else bn.weight.detach().abs().mean()) for bn in self.bns()]
        return float(torch.stack(vals).mean())

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convs: dict[tuple[int, int], list[tuple[nn.Conv2d, nn.BatchNorm2d]]] = {}
        convs[(self.kernel, self.kernel)] = [(self.conv, self.bn)]
        out: torch.Tensor | None = None
        for b in self.branches:
            if b.spec.kind == "conv":
                convs.setdefault((b.spec.kh, b.spec.kw), []).append((b.conv, b.bn))
            else:
                y = b(x)
                out = y if out is None else out + y
        for (kh, kw), members in convs.items():
            y = self._stacked(x, kh, kw, members)
            out = y if out is None else out + y
        return out

    def _stacked(self, x: torch.Tensor, kh: int, kw: int, members: list[tuple[nn.Conv2d, nn.BatchNorm2d]]):
        """Sum of ``bn_i(conv_i(x))`` over same-shape convs, computed as one conv of stacked weights."""
        if len(members) == 1:
            conv, bn = members[0]
            return bn(conv(x))
        n, g, c = len(members), self.groups, self.out_ch
        w = torch.stack([conv.weight for conv, _ in members])  # (n, C, Cin/g, kh, kw)
        # Order output channels (group, branch, channel-in-group) so the grouped conv stays valid.
        w = w.reshape(n, g, c // g, *w.shape[2:]).transpose(0, 1).reshape(n * c, *w.shape[2:])
        y = F.conv2d(x, w, None, self.stride, (kh // 2, kw // 2), 1, g)
        y = y.reshape(y.shape[0], g, n, c // g, *y.shape[2:]).transpose(1, 2)
        y = y.reshape(y.shape[0], n, c, *y.shape[-2:])
        out = members[0][1](y[:, 0])
        for i in range(1, n):
            out = out + members[i][1](y[:, i])
        return out

    # ----------------------------------------------------------------------------- fusion
    @torch.no_grad()
    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (weight, bias) of the single conv this unit equals in eval mode."""
        kh = kw = self.fused_size
        w, b = _fold_bn(self.conv.weight, self.bn)
        weight, bias = _pad_to(w, kh, kw), b.clone()
        for br in self.branches:
            if br.spec.kind == "conv":
                raw = br.conv.weight
            else:
                # pooling / identity as a conv on the channel diagonal (in_ch == out_ch here)
                k = br.spec.kh
                raw = torch.zeros(self.out_ch, self.in_ch // self.groups, k, k, device=w.device, dtype=w.dtype)
                idx = torch.arange(self.out_ch, device=w.device)
                raw[idx, idx % (self.in_ch // self.groups)] = 1.0 / (k * k)
            w, b = _fold_bn(raw, br.bn)
            weight = weight + _pad_to(w, kh, kw)
            bias = bias + b
        return weight, bias

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """One ``nn.Conv2d`` with bias equal to this unit in eval mode.

        It carries ``branch_kernels``: the (kh, kw) footprint of every branch, main conv first
        (identity → (1, 1), k×k pooling → (k, k)).
        """
        weight, bias = self.fused_kernel()
        kh, kw = weight.shape[-2:]
        conv = nn.Conv2d(self.in_ch, self.out_ch, (kh, kw), self.stride, (kh // 2, kw // 2), groups=self.groups)
        conv.to(device=weight.device, dtype=weight.dtype)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        conv.branch_kernels = [(s.kh, s.kw) for s in self.branch_specs]
        return conv

    def extra_repr(self) -> str:
        names = ",".join(s.name for s in self.branch_specs[1:]) or "-"
        return f"stride={self.stride}, groups={self.groups}, space={self.branch_space}, branches=[{names}]"


def fuse_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every :class:`RepUnit` replaced by its fused conv."""
    import copy

    fused = copy.deepcopy(model).eval()
    _replace_units(fused)
    return fused


def _replace_units(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, RepUnit):
            setattr(module, name, child.fuse())
        else:
            _replace_units(child)
