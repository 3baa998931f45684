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


def growing_entries(dataset: str, methods: tuple[str, ...] = GROWING_BASELINES) -> list[Entry]:
    """One entry per method, family and block count; the VGG 3-block ones are the smoke selection."""
    return [Entry(f"{method}-{family}-{blocks}b", dataset, method, family, options={"blocks": blocks},
                  smoke=(family, blocks) == ("vgg", 3))
            for method in methods for family in FAMILIES for blocks in (3, 4)]


SUITES.register("table3-31", growing_entries("cifar10", (*GROWING_BASELINES, "adagrow")))
