"""MkDocs hooks: the parts of the site that are generated from the code and the records, so the pages
never restate (and drift from) a number or an option kept elsewhere.

* ``<!-- options: module:Class -->`` becomes the option table of a config dataclass (option, default,
  description), from the same field docs ``--help`` shows (:func:`adagrow.cli_options.options_table`);
* ``<!-- thesis-tables -->`` becomes the list of the thesis' tables with the command that reproduces each,
  its profile, its size (runs × epochs, from the suite) and the time its committed records took;
* ``<!-- run-options -->`` becomes the table of the options every run takes (the argparse help);
* ``<!-- record-fields -->`` becomes the list of every field of a committed training record;
* the generated tables and plots under ``reports/tables/`` join the site under ``tables/``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
_OPTIONS = re.compile(r"<!-- options: ([\w.]+):(\w+) -->")


def on_files(files, config):
    for path in sorted((ROOT / "reports" / "tables").rglob("*")):
        if path.is_file() and path.suffix in (".md", ".png"):
            rel = "tables/" + path.relative_to(ROOT / "reports" / "tables").as_posix()
            files.append(File.generated(config, rel, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    from adagrow.cli_options import options_table

    def options(match):
        cls = getattr(importlib.import_module(match.group(1)), match.group(2))
        return options_table(cls, skip={"family"})

    markdown = _OPTIONS.sub(options, markdown)
    if "<!-- thesis-tables -->" in markdown:
        markdown = markdown.replace("<!-- thesis-tables -->", thesis_tables())
    if "<!-- run-options -->" in markdown:
        markdown = markdown.replace("<!-- run-options -->", run_options())
    if "<!-- record-fields -->" in markdown:
        markdown = markdown.replace("<!-- record-fields -->", record_fields())
    return markdown


def _run_args() -> argparse.Namespace:
    from adagrow.cli_options import add_run_options

    p = argparse.ArgumentParser()
    add_run_options(p)
    return p.parse_args([])


def run_options() -> str:
    """The options of adagrow train / suite as a table: flag, default, description (argparse's own help)."""
    from adagrow.cli_options import add_run_options

    p = argparse.ArgumentParser()
    add_run_options(p)
    rows = ["| option | description |", "|---|---|"]
    for action in p._actions:
        if action.option_strings and action.dest != "help":
            flag = ", ".join(f"`{o}`" for o in action.option_strings)
            rows.append(f"| {flag} | {(action.help or '').replace('%%', '%').replace('|', '&#124;')} |")
    return "\n".join(rows) + "\n"


def _suite_size(name: str) -> tuple[int, int]:
    """(runs, training epochs in all) of a suite under the full profile, one seed."""
    from suites import _load, run_config_for

    args = _run_args()
    configs = [run_config_for(e, args, name).resolved() for e in _load().get(name)]
    return len(configs), sum(c.total_epochs for c in configs)


def _measured(suite: str) -> str:
    path = ROOT / "results" / f"{suite}.jsonl"
    if not path.exists():
        return "not run yet"
    from adagrow.records.store import read_records

    records = [r for r in read_records(path) if r.get("status") == "ok" and r.get("wall_seconds")]
    if not records:
        return "not run yet"
    profiles = sorted({r.get("profile", "?") for r in records})
    minutes = sum(r["wall_seconds"] for r in records) / 60
    return f"{len(records)} {'/'.join(profiles)} runs, {minutes:.0f} min wall (`results/{suite}.jsonl`)"


def thesis_tables() -> str:
    from reports.thesis_reference import CNN_DATASETS, TABLES
    from suites import _load

    suites = _load()
    rows = ["| table | what | command (full profile; add `--profile smoke` for a pipeline check) | "
            "runs × epochs | committed records | our table |", "|---|---|---|---|---|---|"]
    for table in TABLES.values():
        if f"table{table.id}" in suites:
            names = [f"table{table.id}"]
        elif table.id in CNN_DATASETS:
            names = [CNN_DATASETS[table.id][0]]
        elif table.kind == "models":
            names = sorted(table.datasets)
        else:
            names = []
        if names:
            command = "<br>".join(f"`adagrow suite {n}`" for n in names)
            sizes = [_suite_size(n) for n in names]
            size = f"{sum(s[0] for s in sizes)} runs, {sum(s[1] for s in sizes):,} epochs"
            measured = "<br>".join(_measured(n) for n in names)
        else:  # the quantization tables: every method on one trained model
            command = "`adagrow quantize --checkpoint runs/runs/<run>/deploy.pt --table`"
            size, measured = "one trained model", _measured("quant-mnist")
        link = f"[table{table.id}](tables/table{table.id}.md)"
        rows.append(f"| {table.id} | {table.title} | {command} | {size} | {measured} | {link} |")
    return "\n".join(rows) + "\n"


def record_fields() -> str:
    """Every top-level field of the first ok training record in results/mnist.jsonl, with its type and an example."""
    record = next(r for r in map(json.loads, (ROOT / "results" / "mnist.jsonl").read_text().splitlines())
                  if r.get("status") == "ok")
    rows = ["| field | type | example (results/mnist.jsonl, first record) |", "|---|---|---|"]
    for key, value in record.items():
        if isinstance(value, dict):
            example = "{" + ", ".join(list(value)[:6]) + (", …" if len(value) > 6 else "") + "}"
        elif isinstance(value, list):
            example = f"{len(value)} entries"
        else:
            example = json.dumps(value)
            example = example if len(example) <= 60 else example[:57] + "…"
        rows.append(f"| `{key}` | {type(value).__name__ if value is not None else 'null'} | "
                    f"{example.replace('|', '&#124;')} |")
    return "\n".join(rows) + "\n"
