"""Which of our result records reproduce a thesis row, and what they measured (averaged over seeds).

A training record reproduces row ``(dataset, entry)`` when its ``status`` is ``ok``, its ``dataset``
is the row's and its ``config["tag"]`` is the suite entry name.  A cell never mixes profiles: the records
of one profile are used, ``full`` if any, else ``reference`` (the converged CPU profile), else ``smoke``,
and the cell names its profile when it is not ``full``.  Within the profile, only the newest numerics
version is used (``adagrow.config.NUMERICS_VERSION``, then the method's own version: older code computed
differently).  Several seeds are
averaged, with the sample standard deviation and the 95% confidence half-width kept (``reports.stats``);
the latest record of a seed wins over older re-runs.  Latencies measured with different CPU thread counts
are never averaged: such a cell has no latency and says why.
Quantization records (``adagrow.quant.run``) are matched the same way, on the tag of the training
run whose deploy model they quantized, plus the row's ``select`` fields (precision, method); their profile and
seed are those of that training run (``trained_profile``, ``quant_seed``).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.stats import mean_ci
from reports.thesis_reference import MODEL_NAMES

Record = dict[str, Any]
# Which profile a cell shows when several were run: the thesis' own schedule first, then the converged CPU
# profile, then the pipeline check.  Any other profile comes after these, alphabetically.
PROFILE_PREFERENCE = ("full", "reference", "smoke")


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
    latency_noisy: bool = False  # some seed's latency was noisy or taken under load (``latency_doubtful``)
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
    # half-width of the 95% Student-t confidence interval of each metric's mean (same keys as ``std``)
    ci: dict[str, float] = field(default_factory=dict)
    latency_threads: tuple[int, ...] = ()  # CPU thread counts the latencies were measured with
    numerics: int | None = None  # the numerics version of the records used (adagrow.config)

    @property
    def profile(self) -> str:
        return self.profiles[0] if len(self.profiles) == 1 else "+".join(self.profiles)

    @property
    def smoke(self) -> bool:
        """True when the records are a pipeline check (smoke, or any profile that is neither full nor
        reference): not comparable with the thesis."""
        return not ({"full", "reference"} & set(self.profiles))

    @property
    def latency_mixed(self) -> bool:
        """The seeds' latencies were measured with different CPU thread counts (so none is shown)."""
        return len(self.latency_threads) > 1


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


def latest_per_seed(records: list[Record]) -> list[Record]:
    """Keep the last record of each seed (records are in file order, so the latest run wins)."""
    by_seed: dict[Any, Record] = {}
    for r in records:
        by_seed[r.get("seed")] = r
    return list(by_seed.values())


def numerics_of(record: Record) -> int:
    """The numerics version a record was computed with (1: records from before the version existed)."""
    config = record.get("config")
    return int(config.get("numerics", 1)) if isinstance(config, dict) else 1


def version_of(record: Record) -> tuple[int, int]:
    """The numerics version, then its method's own (``method_numerics``; 1 where the method has none or the record
    predates it): the newer of two records of one row is the larger pair."""
    config = record.get("config")
    own = config.get("method_numerics") if isinstance(config, dict) else None
    return numerics_of(record), int(own or 1)


def newest_version(records: list[Record]) -> list[Record]:
    """The records of the newest (numerics, method numerics) version among ``records``."""
    if not records:
        return []
    newest = max(map(version_of, records))
    return [r for r in records if version_of(r) == newest]


def one_profile(records: list[Record]) -> list[Record]:
    """The records of the preferred profile present (``PROFILE_PREFERENCE``), of its newest numerics."""
    profiles = {str(r.get("profile")) for r in records}
    if not profiles:
        return []
    rank = {p: i for i, p in enumerate(PROFILE_PREFERENCE)}
    chosen = min(profiles, key=lambda p: (rank.get(p, len(rank)), p))
    return newest_version([r for r in records if str(r.get("profile")) == chosen])


def select_runs(records: Iterable[Record], dataset: str, tag: str) -> list[Record]:
    """The ok training records of (dataset, tag), of one profile (``one_profile``), the latest per seed.

    A pruned model's row before fine-tuning (``prune-…`` without ``-ft``) is read from the pipeline
    run of its ``-ft`` row, as it was right after the prune (``before_finetuning``)."""
    records = list(records)
    if tag.startswith("prune-") and not tag.endswith("-ft"):
        return [b for b in map(before_finetuning, select_runs(records, dataset, tag + "-ft")) if b is not None]
    ok = [r for r in records if is_training(r) and r.get("status") == "ok" and r.get("dataset") == dataset
          and record_tag(r) == tag]
    return latest_per_seed(one_profile(ok))


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


# A pruning row measures pruning only when its dense base has learned (issue 19: never prune a model that has
# not).  Test accuracy (%) a base must reach, per dataset; below it the row is flagged.  SST-2 / IMDB: 70% —
# chance is 50% and a bag-of-words classifier reaches about 80%, so a base under 70% has barely learned.
BASE_BARS: dict[str, float] = {"sst2": 70.0, "imdb": 70.0}


def base_below_bar(record: Record) -> str | None:
    """Why a pruning record's base does not count as learned (its dataset's ``BASE_BARS``), or None: the
    record is no pruning run, its dataset has no bar, or its base reached it.  The base's accuracy is the
    one the pipeline measured just before its prune (``pruning.dense.test_acc``)."""
    pruning = record.get("pruning")
    bar = BASE_BARS.get(str(record.get("dataset")))
    if not isinstance(pruning, dict) or bar is None:
        return None
    acc = (pruning.get("dense") or {}).get("test_acc")
    if acc is None:
        return f"base accuracy not recorded (bar {bar:g}%)"
    return f"base {acc:.1f}% < {bar:g}%" if acc < bar else None


def source_seconds(record: Record) -> float | None:
    """The training seconds of the trained model a run started from (``--pretrained`` / ``--base-run``: a pruning
    or BAMC run), which another run spent and Tables 3-29/3-30 count in the total; None for a run from scratch."""
    for block in ("pruning", "bamc"):
        seconds = (record.get(block) or {}).get("pretrain_seconds")
        if seconds:
            return float(seconds)
    return None


def phase_seconds(record: Record) -> dict[str, float | None]:
    """Pretrain / prune / fine-tune / total seconds of a record (Tables 3-29, 3-30).  Plain training
    counts as pretraining; a --pretrained source's time is added.  The prune step is in the record's
    ``prune`` phase (with DSP's group learning), its measurements in ``measure`` and ``eval``."""
    secs = record.get("gpu_seconds") or {}
    source = source_seconds(record) or 0.0
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


def _ci_over_seeds(columns: dict[str, list[float | None]]) -> dict[str, float]:
    out = {}
    for name, values in columns.items():
        present = [float(v) for v in values if v is not None]
        if len(present) > 1:
            out[name] = mean_ci(present).half_width
    return out


def latency_of(record: Record) -> tuple[dict[str, Any], str | None]:
    """(measurement, device) of a record's first latency measurement; ({}, None) when it has none.

    The measurement holds ``median_ms`` and, in records written since latencies carry their spread,
    ``spread`` and ``noisy`` too."""
    for device, lat in (record.get("latency_ms") or {}).items():
        if isinstance(lat, dict):
            return lat, device
    return {}, None


def latency_doubtful(record: Record) -> bool:
    """Whether a record's latency measures the machine as much as the model: its repeats were noisy, or the
    machine's load exceeded its cores as the timing ended (``busy``; records before that field: the run's own
    ``machine_load``, whose timing includes the latency's)."""
    lat, _ = latency_of(record)
    if lat.get("noisy"):
        return True
    if "busy" in lat:
        return bool(lat["busy"])
    return bool((record.get("machine_load") or {}).get("busy"))


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
    threads = tuple(sorted({lat["threads"] for lat, _ in latencies if lat.get("threads") is not None}))
    mixed = len(threads) > 1  # never average latencies of different thread counts
    archs = sorted({a for a in map(arch_of, runs) if a})
    seconds = [phase_seconds(r) for r in runs]
    per_seed = {"acc": [r.get("test_acc") for r in runs], "params": [r.get("params") for r in runs],
                "macs": [r.get("macs") for r in runs],
                **{name: [s[name] for s in seconds] for name in ("total_s", "pretrain_s", "prune_s", "finetune_s")}}
    return Ours(
        n=len(runs),
        profiles=tuple(sorted({str(r.get("profile")) for r in runs})),
        **{name: _mean(values) for name, values in per_seed.items()},
        latency_ms=None if mixed else _mean([lat.get("median_ms") for lat, _ in latencies]),
        latency_spread=None if mixed else (max(spreads) if spreads else None),
        latency_noisy=any(map(latency_doubtful, runs)),
        arch=" / ".join(archs) or None,
        devices=tuple(sorted({d for _, d in latencies if d})),
        std=_spread_over_seeds(per_seed),
        ci=_ci_over_seeds(per_seed),
        latency_threads=threads,
        numerics=max(map(numerics_of, runs)),
    )


def _profile_in_run_name(run_dir: str) -> str | None:
    """The profile a run directory's name carries (``RunConfig.run_stem``: ``…-<profile>-s<seed>[-<hash>]``)."""
    from adagrow.config import PROFILES

    names = "|".join(map(re.escape, PROFILES.names()))
    m = re.search(rf"-({names})-s[0-9]+(-[0-9a-f]{{8}})?$", Path(run_dir).name) if run_dir else None
    return m.group(1) if m else None


def trained_profile(quant: Record, training_profiles: dict[str, str]) -> str:
    """Profile of the run a quantization record started from: its own ``profile`` field if it has one,
    else that of the training record whose run folder it names, else the one that folder's name carries
    (records of older code whose training record is gone); "full" when none is known."""
    run_dir = str(quant.get("source_checkpoint_run") or "")
    return str(quant.get("profile") or training_profiles.get(run_dir) or _profile_in_run_name(run_dir) or "full")


def quant_seed(record: Record) -> Any:
    """The seed a quantization record belongs to: its base run's (``base_seed``), else its own (calibration) seed."""
    return record.get("base_seed") if record.get("base_seed") is not None else record.get("seed")


def training_profiles(records: Iterable[Record]) -> dict[str, str]:
    """run folder -> profile of every training record (for quantization records that do not name their profile)."""
    return {str(r["run_dir"]): str(r.get("profile")) for r in records if is_training(r) and r.get("run_dir")}


def act_calib(record: Record) -> str | None:
    """INT8's activation calibration of a quantization record (``adagrow.quant.run.act_calib_of``)."""
    from adagrow.quant.run import act_calib_of

    return act_calib_of(record)


def one_calibration(records: list[Record]) -> list[Record]:
    """The records (oldest first) of one calibration, so that a cell never averages two: of today's calibration
    data (``adagrow.quant.run.CALIB_DATA``) where there are any, and of one INT8 activation calibration: the
    default's (``adagrow.quant.model.DEFAULT_ACT_CALIB``) where there are any, else the newest record's."""
    from adagrow.quant.model import DEFAULT_ACT_CALIB
    from adagrow.quant.run import CALIB_DATA, calib_data

    if any(calib_data(r) == CALIB_DATA for r in records):
        records = [r for r in records if calib_data(r) in (CALIB_DATA, None)]
    if not records:
        return records
    chosen = DEFAULT_ACT_CALIB if any(act_calib(r) == DEFAULT_ACT_CALIB for r in records) else act_calib(records[-1])
    return [r for r in records if act_calib(r) in (chosen, None)]


def quant_accuracy(records: Iterable[Record], dataset: str, tag: str, select: dict[str, str]) -> Ours | None:
    """Mean accuracy of the quantization records for one Table 4-1/4-2 row.

    FP32 rows use the records' ``fp32_accuracy`` (measured once per ``quant_table`` call) when no
    record has precision ``fp32`` itself.  A row quantizing a smoke-trained model is smoke too.
    """
    records = list(records)
    mine = [r for r in records if is_quant(r) and r.get("dataset") == dataset and record_tag(r) == tag]
    hits = [r for r in mine if all(r.get(k) == v for k, v in select.items())]
    field = "accuracy"
    if not hits and select.get("precision") == "fp32":
        hits, field = [r for r in mine if r.get("fp32_accuracy") is not None], "fp32_accuracy"
    used = [r for r in hits if r.get(field) is not None]
    if not used:
        return None
    profiles = training_profiles(records)
    by_profile: dict[str, list[Record]] = {}
    for r in used:
        by_profile.setdefault(trained_profile(r, profiles), []).append(r)
    rank = {p: i for i, p in enumerate(PROFILE_PREFERENCE)}
    profile = min(by_profile, key=lambda p: (rank.get(p, len(rank)), p))  # one profile per cell
    # the latest record of each base seed of that profile (a smoke record never stands in for a reference seed)
    latest: dict[Any, Record] = {}
    for r in one_calibration(by_profile[profile]):
        latest[quant_seed(r)] = r
    used = list(latest.values())
    accs = {"acc": [r[field] for r in used]}
    return Ours(n=len(used), profiles=(profile,), acc=statistics.fmean(accs["acc"]), std=_spread_over_seeds(accs),
                ci=_ci_over_seeds(accs))
