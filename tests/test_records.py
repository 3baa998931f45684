"""Result records are appended atomically and survive interrupted writes and bad lines."""

import json
import os

import pytest

from adagrow.records.store import append_record, read_records


def test_append_and_read_back(tmp_path):
    path = tmp_path / "suite.jsonl"
    append_record(path, {"a": 1, "acc": float("nan")})
    append_record(path, {"a": 2, "nested": {"t": (1, 2)}})
    records = read_records(path)
    assert [r["a"] for r in records] == [1, 2]
    assert records[0]["acc"] is None  # JSON has no NaN
    assert records[1]["nested"]["t"] == [1, 2]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_interrupted_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "suite.jsonl"
    append_record(path, {"run": "first"})
    before = path.read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process is stopped between writing the temp file and renaming

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        append_record(path, {"run": "second"})
    monkeypatch.undo()
    assert path.read_text() == before
    assert [r["run"] for r in read_records(path)] == ["first"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"


def test_reader_skips_a_damaged_line(tmp_path, capsys):
    path = tmp_path / "suite.jsonl"
    append_record(path, {"run": 1})
    with open(path, "a") as f:
        f.write('{"run": 2, "trunc')  # what a non-atomic writer killed mid-line would leave
    append_record(path, {"run": 3})
    assert [r["run"] for r in read_records(path)] == [1, 3]
    assert "not valid JSON" in capsys.readouterr().out
