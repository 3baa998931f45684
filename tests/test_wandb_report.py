"""``adagrow report --wandb offline``: one W&B run holding every generated table and plot and the
leaderboard grouped by suite and dataset, read back from its offline files (no login, no network).
The records are FABRICATED (tests/test_reports.py), the expected numbers worked out by hand from them."""

from __future__ import annotations

import pytest

from reports.generate import main
from tests.test_reports import fabricated_record, write_records
from tests.test_wandb import _offline_env
from tests.wandb_reader import offline_runs


def _suite(record: dict, suite: str) -> dict:
    return {**record, "suite": suite}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb-report")
    results = root / "results"
    write_records(results / "cifar10.jsonl", [
        _suite(fabricated_record("adagrow-resnet-4b", 0, 92.0), "cifar10"),
        _suite(fabricated_record("adagrow-resnet-4b", 1, 93.0), "cifar10"),
        _suite(fabricated_record("fixed-resnet18-thesis", 0, 88.0, method="fixed"), "cifar10"),
    ])
    mnist = fabricated_record("adagrow-vgg-3b", 0, 99.0, dataset="mnist", model="vgg")
    write_records(results / "mnist.jsonl", [_suite({**mnist, "run_dir": "results/runs/mnist-adagrow-vgg-3b-s0"}, "mnist")])
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        _offline_env(mp, root)
        main(["--results", str(results), "--out", str(out), "--format", "md", "--wandb", "offline"])
    (run,) = offline_runs(root / "wandb-dir" / "wandb")  # $WANDB_DIR: never inside reports/ (--out)
    assert not (out / "wandb").exists()
    return out, run


def _md_rows(path) -> list[list[str]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip()[2:-2].split(" | ")] for line in lines if not line.startswith("| ---")]


def test_one_report_run_holds_every_generated_table_as_written(report):
    out, run = report
    assert (run.run.display_name, run.run.job_type) == ("report-results", "report")
    assert run.config["suites"] == ["cifar10", "mnist"] and run.config["records"] == 4
    written = sorted(p.stem for p in out.glob("*.md"))
    assert len(written) > 30  # every thesis table, the second thesis' and M-NAS
    assert sorted(k.removeprefix("tables/").removesuffix("/_type") for k in run.summary
                  if k.startswith("tables/") and k.endswith("/_type")) == written
    for stem in ("table3-19", "table3-22", "second-thesis-bamc", "mnas"):
        table = run.table(f"tables/{stem}")
        header, *rows = _md_rows(out / f"{stem}.md")
        assert table["columns"] == header and [[c.replace("\\|", "|") for c in r] for r in rows] == table["data"]
    ours = {row[0]: row for row in run.table("tables/table3-19")["data"]}
    # mean of 92 and 93 ± the 95% t half-width: t(0.975, 1) = 12.706 (tables) × s 0.7071 / √2 = 6.35
    assert "92.50 ± 6.35" in ours["AdaGrow ResNet"]


def test_every_plot_is_an_image_grouped_by_suite_and_dataset(report):
    out, run = report
    pngs = sorted(out.rglob("*.png"))
    images = sorted(k.removesuffix("/_type") for k, v in run.summary.items() if k.endswith("/_type") and v == "image-file")
    # two accuracy-latency scatters, two leaderboard Pareto plots, three growth trajectories
    assert len(images) == len(pngs) == 7
    assert images == ["cifar10/cifar10/growth/cifar10-adagrow-resnet-4b-full-s0",
                      "cifar10/cifar10/growth/cifar10-adagrow-resnet-4b-full-s1",
                      "mnist/mnist/growth/mnist-adagrow-vgg-3b-s0",
                      "plots/acc-latency-cifar10", "plots/acc-latency-mnist",
                      "plots/pareto-cifar10-full", "plots/pareto-mnist-full"]


def test_the_leaderboard_has_numbers_per_suite_dataset_and_entry(report):
    _, run = report
    board = run.table("leaderboard")
    rows = {r[2]: dict(zip(board["columns"], r)) for r in board["data"]}
    assert set(rows) == {"adagrow-resnet-4b", "fixed-resnet18-thesis", "adagrow-vgg-3b"}
    grown = rows["adagrow-resnet-4b"]
    assert (grown["suite"], grown["dataset"], grown["method"], grown["n"]) == ("cifar10", "cifar10", "adagrow", 2)
    assert grown["test_acc"] == pytest.approx(92.5) and grown["test_acc_std"] == pytest.approx(0.5 ** 0.5)
    assert (grown["params"], grown["macs"], grown["latency_ms"]) == (2_600_000, 240_000_000, pytest.approx(2.5))
    assert rows["fixed-resnet18-thesis"]["test_acc"] == 88.0 and rows["adagrow-vgg-3b"]["suite"] == "mnist"
    assert [r[2] for r in run.table("cifar10/cifar10/leaderboard")["data"]] == ["adagrow-resnet-4b", "fixed-resnet18-thesis"]
    assert [r[2] for r in run.table("mnist/mnist/leaderboard")["data"]] == ["adagrow-vgg-3b"]


def test_the_dashboard_shows_the_leaderboard_a_report_logs(report):
    pytest.importorskip("wandb_workspaces")
    from tests.test_wandb_dashboard import dashboard_keys

    _, run = report
    assert "leaderboard" in dashboard_keys()["tables"] and run.summary["leaderboard/_type"] == "table-file"


def test_without_wandb_the_report_logs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    results = write_records(tmp_path / "r.jsonl", [fabricated_record("adagrow-resnet-4b", 0, 92.0)])
    main(["--results", str(results), "--out", str(tmp_path / "out"), "--tables", "3-19", "--no-plots"])
    assert not (tmp_path / "wb").exists()
