"""Which of our result records reproduce a thesis row, and what they measured (averaged over seeds).

A training record reproduces row ``(dataset, entry)`` when its ``status`` is ``ok``, its ``dataset``
is the row's and its ``config["tag"]`` is the suite entry name.  Full-profile records are preferred;
when only shorter profiles (smoke) exist they are used and flagged, so the report can mark them.
Several seeds are averaged; the latest record of a seed wins over older re-runs.
Quantization records (``adagrow.quant.run``) are matched the same way, on the tag of the training
run whose deploy model they quantized, plus the row's ``select`` fields (precision, method).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True)
class Ours:
    """Our measurement of one row: means over ``n`` seeds (None where no record had the value)."""

    n: int
    profiles: tuple[str, ...]  # profiles of the records used ("full", or e.g. "smoke")
    acc: float | None = None
    params: float | None = None
    macs: float | None = None
    latency_ms: float | None = None  # median batch-1 latency, mean over seeds
    total_s: float | None = None  # optimisation time, summed over phases (GPU- or CPU-seconds)
    arch: str | None = None
    devices: tuple[str, ...] = ()

    @property
    def smoke(self) -> bool:
        """True when no full-profile record was available."""
        return "full" not in self.profiles


def record_tag(record: Record) -> str | None:
    """The suite entry name of a record: its config's ``tag`` (training) or its ``tag`` field
    (quantization records name the training run they started from)."""
    config = record.get("config")
    if isinstance(config, dict) and config.get("tag"):
        return config["tag"]
    return record.get("tag")


def is_training(record: Record) -> bool:
    return "status" in record and isinstance(record.get("config"), dict)


def is_quant(record: Record) -> bool:
    return "precision" in record and "accuracy" in record


def _latest_per_seed(records: list[Record]) -> list[Record]:
    """Keep the last record of each seed (records are in file order, so the latest run wins)."""
    by_seed: dict[Any, Record] = {}
    for r in records:
        by_seed[r.get("seed")] = r
    return list(by_seed.values())


def select_runs(records: Iterable[Record], dataset: str, tag: str) -> list[Record]:
    """The ok training records of (dataset, tag): full profile if any, else whatever profile exists."""
    ok = [r for r in records if is_training(r) and r.get("status") == "ok" and r.get("dataset") == dataset
          and record_tag(r) == tag]
    full = [r for r in ok if r.get("profile") == "full"]
    return _latest_per_seed(full or ok)


def _mean(values: list[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None


def latency_of(record: Record) -> tuple[float | None, str | None]:
    """(median ms, device) of a record's first latency measurement."""
    for device, lat in (record.get("latency_ms") or {}).items():
        if isinstance(lat, dict):
            return lat.get("median_ms"), device
    return None, None


def summarize(runs: list[Record]) -> Ours | None:
    """Average the records of one row; None when there are none."""
    if not runs:
        return None
    latencies = [latency_of(r) for r in runs]
    archs = sorted({str(r["arch"]) for r in runs if r.get("arch")})
    return Ours(
        n=len(runs),
        profiles=tuple(sorted({str(r.get("profile")) for r in runs})),
        acc=_mean([r.get("test_acc") for r in runs]),
        params=_mean([r.get("params") for r in runs]),
        macs=_mean([r.get("macs") for r in runs]),
        latency_ms=_mean([ms for ms, _ in latencies]),
        total_s=_mean([sum((r.get("gpu_seconds") or {}).values()) or None for r in runs]),
        arch=" / ".join(archs) or None,
        devices=tuple(sorted({d for _, d in latencies if d})),
    )


def quant_accuracy(records: Iterable[Record], dataset: str, tag: str, select: dict[str, str]) -> Ours | None:
    """Mean accuracy of the quantization records for one Table 4-1/4-2 row.

    FP32 rows use the records' ``fp32_accuracy`` (measured once per ``quant_table`` call) when no
    record has precision ``fp32`` itself.
    """
    mine = [r for r in records if is_quant(r) and r.get("dataset") == dataset and record_tag(r) == tag]
    hits = [r for r in mine if all(r.get(k) == v for k, v in select.items())]
    values = [r.get("accuracy") for r in _latest_per_seed(hits)]
    if not hits and select.get("precision") == "fp32":
        with_fp32 = [r for r in mine if r.get("fp32_accuracy") is not None]
        values = [r.get("fp32_accuracy") for r in _latest_per_seed(with_fp32)]
    values = [v for v in values if v is not None]
    if not values:
        return None
    return Ours(n=len(values), profiles=("full",), acc=statistics.fmean(values))
