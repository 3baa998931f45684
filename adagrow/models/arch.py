"""Architecture strings such as ``"1-2-2-1"`` or ``"ResNet-1-2-2-1"``: layers per block.

The thesis names grown CNNs by the number of layers in each compute block (SPEC §3.2); 3 numbers mean
two down-samplings, 4 numbers three.  ``"0-0-0"`` is the seed model with empty blocks.
"""

from __future__ import annotations

import re

from adagrow.errors import ArchitectureError

_ARCH = re.compile(r"^(?:(?P<family>[A-Za-z][A-Za-z0-9]*)-)?(?P<depths>\d+(?:-\d+)*)$")
FAMILY_ALIASES = {
    "vgg": "vgg",
    "resnet": "resnet",
    "basic": "resnet",
    "bottleneck": "bottleneck",
    "bottleneckresnet": "bottleneck",
    "mobilenet": "mobilenetv3",
    "mobilenetv3": "mobilenetv3",
}


def parse_arch(arch: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``"1-2-2"`` or ``"VGG-1-2-2"`` (or a sequence of ints) -> ``(1, 2, 2)``; 3 or 4 blocks."""
    if isinstance(arch, (tuple, list)):
        depths = tuple(arch)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in depths):
            raise ArchitectureError(f"architecture {arch!r} must be a sequence of integers")
    else:
        m = _ARCH.match(str(arch).strip())
        if not m:
            raise ArchitectureError(
                f"malformed architecture string {arch!r}: expected layers per block separated by '-', "
                "e.g. '1-2-2' (3 blocks) or 'ResNet-1-2-2-1' (4 blocks)"
            )
        family = m.group("family")
        if family and family.lower().replace("-", "") not in FAMILY_ALIASES:
            raise ArchitectureError(f"unknown family prefix {family!r} in architecture {arch!r}")
        depths = tuple(int(v) for v in m.group("depths").split("-"))
    if len(depths) not in (3, 4):
        raise ArchitectureError(
            f"architecture {arch!r} has {len(depths)} blocks; AdaGrow CNNs have 3 (two down-samplings) or 4"
        )
    if any(d < 0 for d in depths):
        raise ArchitectureError(f"architecture {arch!r} has a negative block depth")
    return depths


def format_arch(depths: tuple[int, ...] | list[int]) -> str:
    """``(1, 2, 2)`` -> ``"1-2-2"``."""
    return "-".join(str(d) for d in depths)


def family_of(arch: str) -> str | None:
    """The canonical family named by an architecture string's prefix, or None."""
    m = _ARCH.match(str(arch).strip())
    if not m or not m.group("family"):
        return None
    return FAMILY_ALIASES.get(m.group("family").lower())
