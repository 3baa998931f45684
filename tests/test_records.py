"""Result records: many concurrent writers lose nothing, a killed write leaves nothing behind, and
readers skip damaged lines (bad JSON, bad UTF-8) instead of failing."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from adagrow.records.store import append_record, read_records

REPO = Path(__file__).resolve().parents[1]

# One writer process: waits for the start signal so that all writers really run at once.
WRITER = """
import sys, time
from pathlib import Path
from adagrow.records.store import append_record
writer, path, go, n = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
Path(f"{go}.ready{writer}").touch()
while not go.exists():
    time.sleep(0.005)
for i in range(n):
    append_record(path, {"writer": writer, "i": i, "pad": "x" * 2000})
"""


def test_append_and_read_back(tmp_path):
    path = tmp_path / "suite.jsonl"
    append_record(path, {"a": 1, "acc": float("nan")})
    append_record(path, {"a": 2, "nested": {"t": (1, 2)}})
    records = read_records(path)
    assert [r["a"] for r in records] == [1, 2]
    assert records[0]["acc"] is None  # JSON has no NaN
    assert records[1]["nested"]["t"] == [1, 2]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_concurrent_writers_lose_no_record(tmp_path):
    path, go, writers, n = tmp_path / "suite.jsonl", tmp_path / "go", 4, 50
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w), str(path), str(go), str(n)], cwd=REPO)
             for w in range(writers)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"go.ready{w}").exists() for w in range(writers)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    assert all(p.wait(timeout=300) == 0 for p in procs)
    lines = path.read_text().splitlines()
    assert len(lines) == writers * n
    records = [json.loads(line) for line in lines]  # every line is valid JSON
    assert sorted((r["writer"], r["i"]) for r in records) == [(w, i) for w in range(writers) for i in range(n)]


def test_a_kill_during_an_append_leaves_no_temporary_copy(tmp_path, monkeypatch):
    path = tmp_path / "suite.jsonl"
    append_record(path, {"run": "first"})
    seen = []
    real_fsync = os.fsync

    def fsync_and_look(fd):  # a SIGKILL could strike here: what would it leave on disk?
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    append_record(path, {"run": "second"})
    assert seen and all(names == ["suite.jsonl"] for names in seen), f"temporary file during the append: {seen}"
    assert [r["run"] for r in read_records(path)] == ["first", "second"]


def test_reader_skips_a_damaged_line(tmp_path, capsys):
    path = tmp_path / "suite.jsonl"
    append_record(path, {"run": 1})
    with open(path, "a") as f:
        f.write('{"run": 2, "trunc')  # what a writer killed mid-line would leave
    append_record(path, {"run": 3})
    assert [r["run"] for r in read_records(path)] == [1, 3]
    assert "not valid JSON" in capsys.readouterr().out


def test_undecodable_bytes_cost_one_line_not_the_file(tmp_path, capsys):
    path = tmp_path / "suite.jsonl"
    append_record(path, {"run": 1})
    with open(path, "ab") as f:
        f.write(b'{"run": "\xff\xfe"}\n')  # not UTF-8
    append_record(path, {"run": 3})  # appending never decodes the file
    assert [r["run"] for r in read_records(path)] == [1, 3]
    assert "not valid UTF-8" in capsys.readouterr().out
