"""Which of our result records reproduce a thesis row, and what they measured (averaged over seeds).

A training record reproduces row ``(dataset, entry)`` when its ``status`` is ``ok``, its ``dataset``
is the row's and its ``config["tag"]`` is the suite entry name.  Full-profile records are preferred;
when only shorter profiles (smoke) exist they are used and flagged, so the report can mark them.
Several seeds are averaged (and their sample standard deviation kept); the latest record of a seed wins
over older re-runs.
Quantization records (``adagrow.quant.run``) are matched the same way, on the tag of the training
run whose deploy model they quantized, plus the row's ``select`` fields (precision, method).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reports.thesis_reference import MODEL_NAMES

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
    # (p90 - p10) / median of the repeats, the largest over seeds (None: records without it, pre-spread)
    latency_spread: float | None = None
    latency_noisy: bool = False  # some seed's record flags its latency as noisy
    total_s: float | None = None  # optimisation time, summed over phases (GPU- or CPU-seconds)
    # Pruning tables: seconds of the pipeline's phases (pretrain includes a --pretrained source's time).
    pretrain_s: float | None = None
    prune_s: float | None = None
    finetune_s: float | None = None
    arch: str | None = None
    devices: tuple[str, ...] = ()
    # sample standard deviation over the seeds of each metric above that at least two seeds measured
    # ("acc", "params", "macs", "total_s", ...); empty with one seed
    std: dict[str, float] = field(default_factory=dict)

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
    """The ok training records of (dataset, tag): full profile if any, else whatever profile exists.

    A pruned model's row before fine-tuning (``prune-…`` without ``-ft``) is read from the pipeline
    run of its ``-ft`` row, as it was right after the prune (``before_finetuning``)."""
    records = list(records)
    if tag.startswith("prune-") and not tag.endswith("-ft"):
        return [b for b in map(before_finetuning, select_runs(records, dataset, tag + "-ft")) if b is not None]
    ok = [r for r in records if is_training(r) and r.get("status") == "ok" and r.get("dataset") == dataset
          and record_tag(r) == tag]
    full = [r for r in ok if r.get("profile") == "full"]
    return _latest_per_seed(full or ok)


def before_finetuning(record: Record) -> Record | None:
    """A pruning pipeline's record as of right after its prune: the accuracy, params and MACs measured
    then, no fine-tuning seconds (the deploy model's latency is the same: fine-tuning changes values only)."""
    pruning = record.get("pruning") or {}
    after = pruning.get("after_prune")
    if not after:
        return None
    seconds = {k: v for k, v in (record.get("gpu_seconds") or {}).items() if k != "finetune"}
    return {**record, "test_acc": after.get("test_acc"), "params": after.get("params"), "macs": after.get("macs"),
            "gpu_seconds": seconds, "before_finetuning": True}


def phase_seconds(record: Record) -> dict[str, float | None]:
    """Pretrain / prune / fine-tune / total seconds of a record (Tables 3-29, 3-30).  Plain training
    counts as pretraining; a --pretrained source's time is added.  The prune step is in the record's
    ``prune`` phase (with DSP's group learning), its measurements in ``measure`` and ``eval``."""
    secs = record.get("gpu_seconds") or {}
    source = (record.get("pruning") or {}).get("pretrain_seconds") or 0.0
    pretrain = secs.get("pretrain", secs.get("train", 0.0)) + source
    prune = secs.get("prune", 0.0)
    total = sum(secs.values()) + source
    return {"pretrain_s": pretrain, "prune_s": prune, "finetune_s": secs.get("finetune", 0.0), "total_s": total or None}


def _mean(values: list[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _std(values: list[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.stdev(present) if len(present) > 1 else None


def _spread_over_seeds(columns: dict[str, list[float | None]]) -> dict[str, float]:
    return {name: sd for name, values in columns.items() if (sd := _std(values)) is not None}


def latency_of(record: Record) -> tuple[dict[str, Any], str | None]:
    """(measurement, device) of a record's first latency measurement; ({}, None) when it has none.

    The measurement holds ``median_ms`` and, in records written since latencies carry their spread,
    ``spread`` and ``noisy`` too."""
    for device, lat in (record.get("latency_ms") or {}).items():
        if isinstance(lat, dict):
            return lat, device
    return {}, None


def arch_of(record: Record) -> str | None:
    """The architecture a record reports; a fixed model has none of its own, so its model's name."""
    if record.get("arch"):
        return str(record["arch"])
    if record.get("method") == "fixed" and record.get("model"):
        return MODEL_NAMES.get(record["model"], str(record["model"]))
    return None


def summarize(runs: list[Record]) -> Ours | None:
    """Average the records of one row; None when there are none."""
    if not runs:
        return None
    latencies = [latency_of(r) for r in runs]
    spreads = [lat["spread"] for lat, _ in latencies if lat.get("spread") is not None]
    archs = sorted({a for a in map(arch_of, runs) if a})
    seconds = [phase_seconds(r) for r in runs]
    per_seed = {"acc": [r.get("test_acc") for r in runs], "params": [r.get("params") for r in runs],
                "macs": [r.get("macs") for r in runs],
                **{name: [s[name] for s in seconds] for name in ("total_s", "pretrain_s", "prune_s", "finetune_s")}}
    return Ours(
        n=len(runs),
        profiles=tuple(sorted({str(r.get("profile")) for r in runs})),
        **{name: _mean(values) for name, values in per_seed.items()},
        latency_ms=_mean([lat.get("median_ms") for lat, _ in latencies]),
        latency_spread=max(spreads) if spreads else None,
        latency_noisy=any(bool(lat.get("noisy")) for lat, _ in latencies),
        arch=" / ".join(archs) or None,
        devices=tuple(sorted({d for _, d in latencies if d})),
        std=_spread_over_seeds(per_seed),
    )


def _trained_profile(quant: Record, training_profiles: dict[str, str]) -> str:
    """Profile of the run a quantization record started from: its own ``profile`` field if it has one,
    else that of the training record whose run folder it names; "full" when neither is known."""
    return str(quant.get("profile") or training_profiles.get(quant.get("source_checkpoint_run") or "", "full"))


def quant_accuracy(records: Iterable[Record], dataset: str, tag: str, select: dict[str, str]) -> Ours | None:
    """Mean accuracy of the quantization records for one Table 4-1/4-2 row.

    FP32 rows use the records' ``fp32_accuracy`` (measured once per ``quant_table`` call) when no
    record has precision ``fp32`` itself.  A row quantizing a smoke-trained model is smoke too.
    """
    records = list(records)
    mine = [r for r in records if is_quant(r) and r.get("dataset") == dataset and record_tag(r) == tag]
    hits = _latest_per_seed([r for r in mine if all(r.get(k) == v for k, v in select.items())])
    field = "accuracy"
    if not hits and select.get("precision") == "fp32":
        hits, field = _latest_per_seed([r for r in mine if r.get("fp32_accuracy") is not None]), "fp32_accuracy"
    used = [r for r in hits if r.get(field) is not None]
    if not used:
        return None
    training_profiles = {str(r["run_dir"]): str(r.get("profile")) for r in records if is_training(r) and r.get("run_dir")}
    return Ours(n=len(used), profiles=tuple(sorted({_trained_profile(r, training_profiles) for r in used})),
                acc=statistics.fmean(r[field] for r in used), std=_spread_over_seeds({"acc": [r[field] for r in used]}))
