"""The README fits a page and never goes stale: its two fresh-machine commands are the ones CI runs, and its
leaderboard is the generated one (issue 22, item 1)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_fits_a_page():
    assert len(README.encode("utf-8")) <= 12 * 1024


def test_the_two_commands_install_what_ci_installs_and_run_the_tests_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extras = re.search(r'-e "\.\[([a-z,]+)\]"', ci).group(1)
    assert f'.venv/bin/pip install -c constraints.txt -e ".[{extras}]" && .venv/bin/nox -s quickstart' in README
    assert "WANDB_MODE=disabled .venv/bin/python -m pytest -q" in README and "python -m pytest -q" in ci


def test_the_embedded_leaderboard_is_the_generated_one():
    # the embedded table is the one its "explained under the table in ..." sentence links
    linked = re.search(r"explained under the table in\s+\[`reports/tables/(leaderboard-[a-z0-9-]+\.md)`\]", README).group(1)
    generated = [line for line in (ROOT / "reports" / "tables" / linked).read_text(encoding="utf-8").splitlines()
                 if line.startswith("|")]
    embedded = [line for line in README.splitlines() if line.startswith("|")]
    start = embedded.index(generated[0])  # the README's other table (methods) comes after it
    assert embedded[start:start + len(generated)] == generated
    for other in re.findall(r"\(reports/tables/(leaderboard-[a-z0-9-]+\.md)\)", README):
        assert (ROOT / "reports" / "tables" / other).is_file()
    plot = re.search(r"\((reports/tables/plots/pareto-[a-z0-9-]+\.png)\)", README).group(1)
    assert (ROOT / plot).is_file()
