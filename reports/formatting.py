"""How numbers look in every report table: counts in the thesis' K/M/G style, seconds, percentages.

The table modules (``reports.generate`` for the thesis' tables, ``reports.second_thesis``,
``reports.mnas``) all import this module and none imports another, so one number is written the same
way in every table.
"""

from __future__ import annotations

from typing import Any

MISSING = "—"  # a cell with no value


def format_count(x: float) -> str:
    """669290 -> "669.29K", 2.65e6 -> "2.65M", 1.83e9 -> "1.83G" (the thesis' style)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}"
    return f"{x:.0f}"


def format_metric(column: str, value: Any) -> str:
    """One cell of a metric column: counts for params / MACs, whole seconds for ``*_s``, two decimals else."""
    if value is None:
        return MISSING
    if column in ("params", "macs"):
        return format_count(value)
    if column.endswith("_s"):
        return f"{value:.0f}s"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
