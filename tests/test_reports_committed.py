"""What is committed under reports/tables/ is exactly what ``adagrow report`` writes from the committed
records in results/: regenerated into a scratch folder, every file is the same, byte for byte, and
there is no file more or less (so running ``adagrow report`` on a fresh clone leaves no untracked file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reports import RESULTS_DIR, TABLES_DIR
from reports.generate import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_regenerating_the_reports_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["--results", RESULTS_DIR, "--out", str(tmp_path)]) == 0
    fresh = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    tracked = subprocess.run(["git", "ls-files", TABLES_DIR], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    committed = {Path(t).relative_to(TABLES_DIR).as_posix(): (ROOT / t).read_bytes() for t in tracked}
    assert sorted(fresh) == sorted(committed), "regenerate with `adagrow report` and commit reports/tables/"
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert changed == [], "regenerate with `adagrow report` and commit reports/tables/"


def test_reports_holds_code_and_the_generated_folder_only():
    stray = [p.name for p in (ROOT / "reports").iterdir() if p.is_file() and p.suffix != ".py"]
    assert stray == []
