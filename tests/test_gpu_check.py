"""The prepared GPU check (adagrow/engine/gpu_check.py): its tiny CPU rehearsal runs every part and
records it, CIFAR-10 pieces reassemble exactly as `split -b` cut them (or are refused), and a part
is stopped at its deadline."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from adagrow.engine import gpu_check
from adagrow.errors import AdaGrowError
from adagrow.records.store import read_records

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_the_tiny_check_runs_every_part_and_records_it_with_the_device(tmp_path, capsys):
    assert gpu_check.main(["--tiny", "--output", str(tmp_path)]) == 0
    records = read_records(tmp_path / "gpu-check.jsonl")
    runs = {r["method"]: r for r in records if r.get("status") == "ok" and "method" in r}
    headline, fixed = runs["adagrow"], runs["fixed"]
    assert headline["model"] == "resnet" and headline["config"]["method_config"]["blocks"] == 4
    assert headline["epochs"] == 2 and headline["growth_events"]  # the same path as the GPU's 100 epochs
    assert fixed["epochs"] == 1 and fixed["tag"] == "fixed-mobilenetv3_small-1ep-in-budget"
    latency = [r for r in records if r.get("kind") == "latency"]
    assert [r["model"] for r in latency] == ["adagrow-vgg:1-1-1", "mobilenetv3_small"]
    assert latency[0]["fused"] and latency[0]["latency_ms"]["batch"] == 1 and latency[0]["macs"] > 0
    (summary,) = [r for r in records if r.get("kind") == "gpu-check"]
    assert [(p["part"], p["status"]) for p in summary["parts"]] == [("headline", "ok"), ("fixed", "ok"),
                                                                      ("latency", "ok")]
    assert summary["tiny"] and summary["seconds"] <= summary["budget_s"]
    assert all(r["device"].startswith("cpu") for r in [*runs.values(), *latency, summary])
    assert "| headline | ok |" in capsys.readouterr().out


def test_pieces_reassemble_as_split_cut_them_and_a_damaged_one_is_refused(tmp_path):
    archive = tmp_path / "src" / gpu_check.CIFAR10_ARCHIVE
    archive.parent.mkdir()
    archive.write_bytes(bytes(range(256)) * 10)
    md5 = gpu_check.md5_of(archive)
    pieces = gpu_check.split_file(archive, tmp_path / "pieces", piece_bytes=1000)
    assert [p.name[-8:] for p in pieces] == [".part-aa", ".part-ab", ".part-ac"]
    if shutil.which("split"):  # the README's procedure cuts the same pieces
        made = tmp_path / "by-split"
        made.mkdir()
        subprocess.run(["split", "-b", "1000", str(archive), str(made / (archive.name + ".part-"))], check=True)
        assert sorted(p.name for p in made.iterdir()) == [p.name for p in pieces]
        assert all((made / p.name).read_bytes() == p.read_bytes() for p in pieces)
    dest = tmp_path / "data" / gpu_check.CIFAR10_ARCHIVE
    assert gpu_check.assemble_pieces(tmp_path / "pieces", dest, md5) == dest
    assert dest.read_bytes() == archive.read_bytes()
    dest.unlink()
    pieces[1].write_bytes(pieces[1].read_bytes()[:-1])  # one byte lost in transit
    with pytest.raises(AdaGrowError, match="missing, extra or damaged"):
        gpu_check.assemble_pieces(tmp_path / "pieces", dest, md5)
    assert not dest.exists() and not list(dest.parent.iterdir())
    with pytest.raises(AdaGrowError, match="split -b 60m"):
        gpu_check.assemble_pieces(tmp_path / "src", dest, md5)
    assert gpu_check.CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"  # torchvision's, for the real archive


def test_a_part_is_stopped_at_its_deadline():
    t0 = time.perf_counter()
    assert gpu_check.within(t0 + 0.3, lambda: time.sleep(5)) == ("stopped at budget", None)
    assert time.perf_counter() - t0 < 2
    assert gpu_check.within(time.perf_counter() + 5, lambda: 7) == ("ok", 7)


def test_the_deadline_holds_when_the_process_was_started_with_sigint_ignored():
    # `nox -s gpu &` in a script starts Python with SIGINT ignored; the budget must still stop a part
    import signal

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        t0 = time.perf_counter()
        assert gpu_check.within(t0 + 0.3, lambda: time.sleep(5)) == ("stopped at budget", None)
        assert time.perf_counter() - t0 < 2
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # restored
    finally:
        signal.signal(signal.SIGINT, old)


def test_the_full_check_wants_a_gpu_and_a_positive_budget(tmp_path):
    if gpu_check.torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert gpu_check.main(["--output", str(tmp_path)]) == 2  # one message, nothing run
    assert not (tmp_path / "gpu-check.jsonl").exists()
    assert gpu_check.main(["--tiny", "--budget-min", "0", "--output", str(tmp_path)]) == 2
