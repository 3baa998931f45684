"""Table 3-31: the growing methods compared on CIFAR-10 (suite ``table3-31``), and the growing
baselines' entries of every vision dataset's suite.

Each of RandGrow, SplitGrow, MoGrow (``baselines/grow``) and AdaGrow runs in the four CNN families
with 3 and 4 blocks, under its default options and the shared recipe (``adagrow``).  Entry names are
``<method>-<family>-<blocks>b``, the keys under which ``reports/thesis_reference.py`` stores the
thesis' Table 3-31 rows; the AdaGrow entries repeat the CIFAR-10 suite's.  A smoke run of a suite
takes one entry per method (VGG, 3 blocks).
"""

from __future__ import annotations

from suites.registry import SUITES, Entry

GROWING_BASELINES = ("randgrow", "splitgrow", "mogrow")
FAMILIES = ("resnet", "bottleneck", "vgg", "mobilenetv3")


def growing_entries(dataset: str, methods: tuple[str, ...] = GROWING_BASELINES, reference: bool = False) -> list[Entry]:
    """One entry per method, family and block count; the VGG 3-block ones are the smoke selection and, with
    ``reference``, part of the reference selection, beside their capped twins (:func:`capped_entries`)."""
    return [Entry(f"{method}-{family}-{blocks}b", dataset, method, family, options={"blocks": blocks},
                  smoke=(family, blocks) == ("vgg", 3), reference=reference and (family, blocks) == ("vgg", 3))
            for method in methods for family in FAMILIES for blocks in (3, 4)]


def capped_entries(dataset: str, family: str = "vgg", blocks: int = 3) -> list[Entry]:
    """Issue 19: each grower once more, capped at the final size of the same seed's AdaGrow run (+10%,
    ``suites.derive.CAP_BAND``), so a table separates "grew bigger" from "grew better".  Only VGG with 3
    blocks: the one family a 2-core CPU affords three seeds of (the uncapped twins are the same family)."""
    return [Entry(f"{method}-{family}-{blocks}b-capped", dataset, method, family,
                  options={"blocks": blocks, **CAPPED_SEEDS.get(method, {})}, reference=True,
                  derive={"max_params": ("params_cap", dataset, f"adagrow-{family}-{blocks}b")})
            for method in GROWING_BASELINES]


# A capped grower must start below the cap.  RandGrow's default seed (one layer per stage, AutoGrow's) already is
# AdaGrow's MNIST size (VGG 1-1-1: 435,914 params against AdaGrow's 0-1-1 / 1-1-1), so its capped run starts from
# the thesis' own RandGrow seed, the empty 0-0-0 (AdaGrow's seed).  MoGrow's default target 4-4-4 starts at 2-2-2
# (703,466, above any MNIST AdaGrow), so its capped run targets 2-2-2 and starts at 1-1-1: at this size MoGrow has
# at most one stage of room, which the table shows as it is.  SplitGrow's seed (a quarter of the widths) fits.
CAPPED_SEEDS = {"randgrow": {"seed_arch": "0-0-0"}, "mogrow": {"target_arch": "2-2-2"}}


SUITES.register("table3-31", growing_entries("cifar10", (*GROWING_BASELINES, "adagrow")))
