"""A report cell never mixes profiles, numerics versions or latency thread counts (issues 19 and 20)."""

from __future__ import annotations

from reports.generate import main
from tests.test_reports import fabricated_record, table_lines, write_records

ROW = "AdaGrow ResNet 1-2-2-1"  # Table 3-19's row for the cifar10 suite entry adagrow-resnet-4b


def _table(tmp_path, records) -> dict[str, list[str]]:
    results = write_records(tmp_path / "r.jsonl", records)
    main(["--results", str(results), "--out", str(tmp_path / "out"), "--tables", "3-19", "--format", "md",
          "--no-plots"])
    return table_lines(tmp_path / "out" / "table3-19.md")


def test_reference_rows_are_preferred_to_smoke_and_never_averaged_with_them(tmp_path):
    rows = _table(tmp_path, [fabricated_record("adagrow-resnet-4b", s, 50.0, profile="smoke") for s in (0, 1, 2)]
                  + [fabricated_record("adagrow-resnet-4b", s, 93.0, profile="reference") for s in (0, 1)])
    ours = rows[ROW]
    assert ours[10] == "93.00 ± 0.00 (reference)" and ours[12] == "2 (reference)"  # the smoke 50s are not in it
    assert ours[11] == "-0.14"  # a converged profile gets its gap to the thesis' 93.14


def test_full_beats_reference(tmp_path):
    rows = _table(tmp_path, [fabricated_record("adagrow-resnet-4b", 0, 93.0, profile="reference"),
                             fabricated_record("adagrow-resnet-4b", 0, 94.0, profile="full")])
    assert rows[ROW][10] == "94.00" and rows[ROW][12] == "1"


def test_only_the_newest_numerics_are_used(tmp_path):
    old = fabricated_record("adagrow-resnet-4b", 1, 10.0)  # no numerics field: version 1
    new = [fabricated_record("adagrow-resnet-4b", s, 93.0) for s in (0, 2)]
    for r in new:
        r["config"]["numerics"] = 2
    rows = _table(tmp_path, [old, *new])
    assert rows[ROW][10] == "93.00 ± 0.00" and rows[ROW][12] == "2"


def test_only_the_newest_method_numerics_are_used(tmp_path):
    # a method's own version (BAMC's, 2026-12-07) ranks after the global one: a record of the method's older
    # arithmetic (no method_numerics: version 1) is left out once one of the newer exists, whatever its seed
    old = [fabricated_record("adagrow-resnet-4b", s, 10.0) for s in (0, 1)]
    new = fabricated_record("adagrow-resnet-4b", 2, 93.0)
    for r in (*old, new):
        r["config"]["numerics"] = 2
    new["config"]["method_numerics"] = 2
    rows = _table(tmp_path, [*old, new])
    assert rows[ROW][10] == "93.00" and rows[ROW][12] == "1"
    older_global = fabricated_record("adagrow-resnet-4b", 0, 50.0)  # numerics 1 with a higher method version: the global version ranks first
    older_global["config"]["method_numerics"] = 5
    assert _table(tmp_path, [new, older_global])[ROW][10] == "93.00"


def test_latencies_of_different_thread_counts_are_not_averaged(tmp_path):
    rows = _table(tmp_path, [fabricated_record("adagrow-resnet-4b", 0, 93.0, latency={"threads": 1}),
                             fabricated_record("adagrow-resnet-4b", 1, 93.0, latency={"threads": 2})])
    assert rows[ROW][8] == "mixed threads"
    assert "different CPU thread counts" in (tmp_path / "out" / "table3-19.md").read_text(encoding="utf-8")
    same = _table(tmp_path, [fabricated_record("adagrow-resnet-4b", s, 93.0, latency={"threads": 1}) for s in (0, 1)])
    assert same[ROW][8] == "2.50"  # medians 2.0 and 3.0 averaged: same thread count
