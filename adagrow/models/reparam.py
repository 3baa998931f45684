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

How training computes the branches (``RepUnit.compute``, set on a whole model with
:func:`set_branch_compute`; the runner picks it per device, ``--branch-compute``):

* ``"loop"`` (default): branch by branch, each its own conv and BN, then a sum: the least arithmetic,
  but one kernel launch (forward and backward) per branch, which is what a GPU waits on;
* ``"batched"``: every conv branch (the main conv included) zero-padded to one kernel size and run as
  ONE conv with n·C_out outputs, ONE BatchNorm over the concatenated channels, then a sum; identity
  and pooling branches are concatenated and share a second BN.  BatchNorm is per channel, so this
  equals the per-branch computation (outputs, gradients, running statistics) to float rounding, with
  a few launches whatever the branch count, at the price of the zero-padded arithmetic (a 1×1 branch
  costs a 3×3 conv).  The parameters stay per branch (concatenated at every forward, which is cheap
  next to the conv), so checkpoints, growth and the optimizer transfer see the same parameters.

Beyond the thesis, a unit can also be *trained in another form* (``train_form``, part of the model):

* ``"bn"`` (default, the thesis): each branch has its own BN, as above;
* ``"orepa"`` (in the manner of OREPA, Hu et al. 2022): each branch's BN is replaced by a per-channel
  linear scale (the branch BN's γ; its β and statistics unused), so that all branches fold into one
  kernel at every step, ``W = pad(W_main) + Σ pad(γ_i · W_i)`` (identity / pooling as diagonal
  kernels), computed as one conv followed by ONE BN after the sum (the unit's own).  A training step
  then costs about the fused model's; the function class is the same, the training dynamics are
  not (no per-branch normalisation), so it is an option that every record states, compared for
  accuracy with the thesis' form.  It fuses exactly like the other: the kernel, then the BN folded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adagrow.errors import ArchitectureError

BRANCH_SPACES = ("thesis", "full")
BRANCH_COMPUTE = ("loop", "batched")  # how training runs a unit's branches (module docstring)
TRAIN_FORMS = ("bn", "orepa")  # what a unit trains: a BN per branch, or branch scales and one BN (module docstring)
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


def _alike(bns: list[nn.BatchNorm2d]) -> bool:
    """Whether these BNs compute as one BN over their concatenated channels: same mode and settings
    (a cumulative average, momentum None, would need each BN's own batch count)."""
    a = bns[0] if bns else None
    return all(bn.training == a.training and bn.momentum == a.momentum and bn.eps == a.eps
               and bn.track_running_stats and bn.affine and a.momentum is not None for bn in bns)


def _group_major(t: torch.Tensor, n: int, g: int) -> torch.Tensor:
    """Channels (branch, group, c) → (group, branch, c), the order a grouped conv of n stacked
    branches produces (its weights must be in that order too)."""
    return t if g == 1 else t.reshape(n, g, -1, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


def _branch_major(t: torch.Tensor, n: int, g: int) -> torch.Tensor:
    """Inverse of :func:`_group_major`."""
    return t if g == 1 else t.reshape(g, n, -1, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


def _sum_branches(y: torch.Tensor, n: int, g: int) -> torch.Tensor:
    """(B, n·C, H, W) in (group, branch, c) channel order → the (B, C, H, W) sum over branches."""
    return y.unflatten(1, (g, n, -1)).sum(2).flatten(1, 2)


def _batch_norm(y: torch.Tensor, bns: list[nn.BatchNorm2d], g: int) -> torch.Tensor:
    """``bns`` (one per branch, in order) applied to their slices of ``y`` as ONE batch norm.

    BN is per channel, so this is each BN on its own slice; the running statistics are updated on
    concatenated copies and written back, so each BN's buffers end exactly as if it had run itself."""
    n, a = len(bns), bns[0]
    stats = [_group_major(torch.cat([getattr(bn, k) for bn in bns]), n, g) for k in ("running_mean", "running_var")]
    weight = _group_major(torch.cat([bn.weight for bn in bns]), n, g)
    bias = _group_major(torch.cat([bn.bias for bn in bns]), n, g)
    out = F.batch_norm(y, stats[0], stats[1], weight, bias, a.training, a.momentum, a.eps)
    if a.training:
        with torch.no_grad():
            for k, new in zip(("running_mean", "running_var"), stats):
                torch._foreach_copy_([getattr(bn, k) for bn in bns], list(_branch_major(new, n, g).chunk(n)))
            torch._foreach_add_([bn.num_batches_tracked for bn in bns], 1)
    return out


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
        train_form: str = "bn",
    ):
        super().__init__()
        if kernel % 2 == 0:
            raise ArchitectureError(f"kernel size must be odd, got {kernel}")
        if branch_space not in BRANCH_SPACES:
            raise ArchitectureError(f"unknown branch space {branch_space!r}; known: {', '.join(BRANCH_SPACES)}")
        if train_form not in TRAIN_FORMS:
            raise ArchitectureError(f"unknown train form {train_form!r}; known: {', '.join(TRAIN_FORMS)}")
        self.branch_space, self.train_form = branch_space, train_form
        self.in_ch, self.out_ch, self.kernel = in_ch, out_ch, kernel
        self.stride, self.groups, self.growable = stride, groups, growable
        self.max_branch_kernel = max_branch_kernel or kernel
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.branches = nn.ModuleList()
        self.compute = "loop"  # "loop" | "batched": the same function, computed differently (module docstring)

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
        if self.train_form == "orepa" and self.branches:
            k = self.fused_size  # one conv of the kernel the branches fold into, then the unit's BN
            return self.bn(F.conv2d(x, self._orepa_kernel(), None, self.stride, k // 2, 1, self.groups))
        convs = [(self.conv, self.bn)] + [(b.conv, b.bn) for b in self.branches if b.spec.kind == "conv"]
        others = [b for b in self.branches if b.spec.kind != "conv"]
        # Batched only where the BNs can act as one (not e.g. while BN recalibration trains the new ones).
        if self.compute == "batched" and self.branches and _alike([bn for _, bn in convs]) and _alike([b.bn for b in others]):
            return self._forward_batched(x, convs, others)
        out = self.bn(self.conv(x))
        for b in self.branches:
            out = out + b(x)
        return out

    def _forward_batched(self, x: torch.Tensor, convs: list[tuple[nn.Conv2d, nn.BatchNorm2d]], others: list[Branch]):
        """The loop's sum with one conv + one BN for all conv branches and one BN for the identity /
        pooling branches (module docstring)."""
        kh = max(conv.kernel_size[0] for conv, _ in convs)
        kw = max(conv.kernel_size[1] for conv, _ in convs)
        n, g = len(convs), self.groups
        w = _group_major(torch.cat([_pad_to(conv.weight, kh, kw) for conv, _ in convs]), n, g)
        y = F.conv2d(x, w, None, self.stride, (kh // 2, kw // 2), 1, g)
        out = _sum_branches(_batch_norm(y, [bn for _, bn in convs], g), n, g)
        if others:
            # Each distinct pooling runs once; the identity needs no op; each branch keeps its own BN.
            feats = {b.spec: b.pool(x) if b.spec.kind == "pool" else x for b in {b.spec: b for b in others}.values()}
            z = torch.cat([feats[b.spec] for b in others], 1)
            out = out + _sum_branches(_batch_norm(z, [b.bn for b in others], 1), len(others), 1)
        return out

    def _orepa_kernel(self) -> torch.Tensor:
        """The "orepa" form's kernel: the main conv plus each branch's kernel scaled by its γ, padded."""
        k = self.fused_size
        weight = _pad_to(self.conv.weight, k, k)
        for br in self.branches:
            weight = weight + _pad_to(br.bn.weight.reshape(-1, 1, 1, 1) * self._branch_kernel(br), k, k)
        return weight

    def _branch_kernel(self, br: Branch) -> torch.Tensor:
        """A branch's linear part as a conv kernel: its conv, or pooling / identity as a conv on the
        channel diagonal (in_ch == out_ch for these)."""
        if br.spec.kind == "conv":
            return br.conv.weight
        ref, k = self.conv.weight, br.spec.kh
        raw = torch.zeros(self.out_ch, self.in_ch // self.groups, k, k, device=ref.device, dtype=ref.dtype)
        idx = torch.arange(self.out_ch, device=ref.device)
        raw[idx, idx % (self.in_ch // self.groups)] = 1.0 / (k * k)
        return raw

    # ----------------------------------------------------------------------------- fusion
    @torch.no_grad()
    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (weight, bias) of the single conv this unit equals in eval mode."""
        kh = kw = self.fused_size
        if self.train_form == "orepa":
            return _fold_bn(self._orepa_kernel(), self.bn)
        w, b = _fold_bn(self.conv.weight, self.bn)
        weight, bias = _pad_to(w, kh, kw), b.clone()
        for br in self.branches:
            w, b = _fold_bn(self._branch_kernel(br), br.bn)
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
        form = "" if self.train_form == "bn" else f", form={self.train_form}"
        return f"stride={self.stride}, groups={self.groups}, space={self.branch_space}{form}, branches=[{names}]"


def set_branch_compute(model: nn.Module, mode: str) -> int:
    """Make every :class:`RepUnit` of ``model`` compute its branches by ``mode`` ("loop" | "batched");
    returns how many units there are.  Units added later (growth) start as "loop": set it again."""
    if mode not in BRANCH_COMPUTE:
        raise ArchitectureError(f"unknown branch compute {mode!r}; known: {', '.join(BRANCH_COMPUTE)}")
    units = [m for m in model.modules() if isinstance(m, RepUnit)]
    for unit in units:
        unit.compute = mode
    return len(units)


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
