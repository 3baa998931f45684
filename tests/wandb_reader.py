"""Read an offline W&B run back, without a login or network: its history rows, summary, tables and artifacts.

The ``.wandb`` file is wandb's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0),
then LevelDB-log framing (32 KiB blocks; each chunk: CRC32C, length, type FULL / FIRST / MIDDLE / LAST)
around serialized ``wandb_internal_pb2.Record`` messages.  wandb 0.31 no longer ships the Python reader
(``wandb.sdk.internal.datastore``) its older versions had, so the framing is read here and every record
is decoded by wandb's own protobuf classes.  A logged table's rows are in the run's ``files/`` folder,
at the path its history or summary entry names.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_CHUNK_HEADER = 7  # uint32 CRC, uint16 length, uint8 type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path):
    """The ``Record`` messages of a ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), f"{path} is not a W&B transaction log"
    pos, parts = 7, []
    while pos + _CHUNK_HEADER <= len(data):
        if _BLOCK - pos % _BLOCK < _CHUNK_HEADER:  # a block's tail too short for a header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _CHUNK_HEADER])
        if kind == 0 and length == 0:  # zero padding: the log ends here
            break
        chunk = data[pos + _CHUNK_HEADER:pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        parts = [chunk] if kind in (_FULL, _FIRST) else parts + [chunk]
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(b"".join(parts))
            yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class OfflineRun:
    directory: Path
    config: dict[str, Any] = field(default_factory=dict)
    run: Any = None  # the RunRecord: name, group, job type, tags
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Any] = field(default_factory=list)  # ArtifactRecord messages

    def table(self, key: str) -> dict[str, Any]:
        """A logged table (``{"columns": [...], "data": [[...], ...]}``), as its latest summary entry names it."""
        return json.loads((self.directory / "files" / self.summary[f"{key}/path"]).read_text())

    def column(self, key: str) -> list[tuple[int, Any]]:
        """``(step, value)`` of every history row that has ``key``."""
        return [(row["_step"], row[key]) for row in self.history if key in row]


def read_offline_run(directory: Path) -> OfflineRun:
    """The run in an ``offline-run-*`` folder."""
    (log,) = Path(directory).glob("run-*.wandb")
    out = OfflineRun(Path(directory))
    for rec in records(log):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.run = rec.run
            out.config.update({_key(i): json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            out.config.update({_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "history":
            out.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out.summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "artifact":
            out.artifacts.append(rec.artifact)
    return out


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    """Every offline run under a ``wandb/`` folder, oldest first."""
    return [read_offline_run(d) for d in sorted(Path(wandb_dir).glob("offline-run-*"))]
