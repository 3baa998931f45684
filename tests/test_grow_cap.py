"""The growing baselines' parameter cap (``max_params``, issue 19: each baseline run again at AdaGrow's size).

The oracle of every size is a model built directly at the architecture (or widths) the cap should stop
at, fused and counted the way the run record counts ``params`` (``count_params`` of the deploy model),
never the methods' own prediction.  The sizes the cases rely on (VGG, 3 blocks, 10 classes) are
written out, so a change of the models shows up here as well."""

import dataclasses
import io
import math
from pathlib import Path

import pytest
import torch

from adagrow.cli import main
from adagrow.engine import runner
from adagrow.engine.runner import Interrupted, run
from adagrow.errors import AdaGrowError
from adagrow.measure.profile import count_params
from adagrow.models.cnn import GrowableCNN
from adagrow.models.reparam import fuse_model
from baselines.grow.mogrow import MoGrowConfig, MoGrowMethod
from baselines.grow.randgrow import RandGrowConfig, RandGrowMethod
from baselines.grow.splitgrow import SplitGrowConfig, SplitGrowMethod
from tests.test_growing_baselines import ctx, drive
from tests.test_runner import _cfg


def deployed(arch: str, widths=None, chans: int = 3, family: str = "vgg") -> int:
    """Parameters of the deploy model of a GrowableCNN built directly at ``arch`` / ``widths``."""
    return count_params(fuse_model(GrowableCNN(family, arch, 10, chans, widths=widths)))


def test_the_oracle_sizes_are_the_ones_the_cases_are_built_on():
    # one VGG layer costs ~37k parameters in block 1 (64 ch), ~83k in block 2 (96), ~148k in block 3 (128)
    sizes = {a: deployed(a) for a in ("2-2-1", "3-2-1", "4-2-1", "5-2-1", "3-3-1", "4-3-1", "2-2-2", "4-2-2")}
    assert sizes == {"2-2-1": 557034, "3-2-1": 593962, "4-2-1": 630890, "5-2-1": 667818, "3-3-1": 677002,
                     "4-3-1": 713930, "2-2-2": 704618, "4-2-2": 778474}


def run_capped(method, epochs=40, family="vgg"):
    c = ctx(epochs=epochs, family=family)
    model, changes = drive(method, c, [10.0 + e for e in range(epochs - 1)])
    return model, changes


# ------------------------------------------------------------------------------------------ options
@pytest.mark.parametrize("cls", [RandGrowConfig, SplitGrowConfig, MoGrowConfig])
@pytest.mark.parametrize("bad", [0, -5, 1.5e6, True, "100"])
def test_a_cap_must_be_a_positive_whole_number(cls, bad):
    with pytest.raises(AdaGrowError, match="max_params must be a whole number of parameters, at least 1"):
        cls(family="vgg", max_params=bad)
    assert cls(family="vgg", max_params=1).max_params == 1 and cls().max_params is None


@pytest.mark.parametrize("method", ["randgrow", "splitgrow", "mogrow"])
def test_max_params_reaches_the_command_line(monkeypatch, capsys, method):
    configs = []
    monkeypatch.setattr(runner, "run", lambda cfg, **kw: configs.append(cfg))
    assert main(["train", "--dataset", "mnist", "--method", method, "--model", "vgg", "--max-params", "600000"]) == 0
    assert configs[0].method_config.max_params == 600000
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "mnist", "--method", method, "--help"])
    assert "--max-params N" in capsys.readouterr().out
    assert main(["train", "--dataset", "mnist", "--method", method, "--max-params", "0"]) == 2
    err = capsys.readouterr().err
    assert "max_params must be a whole number" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------ RandGrow
def test_randgrow_closes_the_stage_that_does_not_fit_and_goes_on_with_the_others():
    # uncapped round-robin from 1-1-1: 2-1-1, 2-2-1, 2-2-2, ...  With the cap at 4-2-1's size exactly:
    # block 3's layer (2-2-2) does not fit -> closed; block 1's does (3-2-1); block 2's (3-3-1) does
    # not -> closed; block 1 again (4-2-1, = the cap: allowed); block 1 again (5-2-1) does not -> the end
    cap = deployed("4-2-1")
    method = RandGrowMethod(RandGrowConfig(family="vgg", stop="none", grow_interval=1, max_params=cap))
    model, changes = run_capped(method)
    assert [c.event["arch"] for _, c in changes] == ["2-1-1", "2-2-1", "3-2-1", "4-2-1"]
    assert model.arch() == "4-2-1" and deployed(model.arch()) == cap
    assert deployed("5-2-1") > cap and deployed("4-3-1") > cap and deployed("4-2-2") > cap  # nothing more fits
    assert method.stopped_stages == {2: 3, 1: 4, 0: 5}
    assert method.stage_stop_reasons == {s: f"parameter cap ({cap})" for s in (0, 1, 2)}
    summary = method.summary()
    assert summary["stop_reason"] == f"parameter cap ({cap})" and summary["stopped_growing_at"] == 5
    assert summary["max_params"] == cap
    # the events' fused count is the record's count
    assert [c.event["fused_params_after"] for _, c in changes] == [deployed(c.event["arch"]) for _, c in changes]


def test_randgrow_one_below_a_size_stops_below_it():
    cap = deployed("4-2-1") - 1
    method = RandGrowMethod(RandGrowConfig(family="vgg", stop="none", grow_interval=1, max_params=cap))
    model, _ = run_capped(method)
    assert model.arch() == "3-2-1" and deployed("3-2-1") <= cap


def test_randgrow_mixes_the_cap_with_its_own_stop_rule():
    # growths due after epochs 3, 6, 9: block 1 grows (2-1-1); the curve is flat over epochs 4-6, so τ
    # stops block 1 and block 2 grows (2-2-1, = the cap); the curve rises again, so block 2 is not
    # stopped by τ, but block 3's layer (2-2-2) and block 2's next (2-3-1) do not fit: the cap ends growth
    cap = deployed("2-2-1")
    method = RandGrowMethod(RandGrowConfig(family="vgg", grow_interval=3, window=2, tau=0.5, max_params=cap))
    accs = [10.0, 20.0, 30.0, 30.0, 30.0, 30.0] + [40.0 + 10 * e for e in range(20)]
    model, changes = drive(method, ctx(epochs=30, family="vgg"), accs)
    assert [c.event["arch"] for _, c in changes] == ["2-1-1", "2-2-1"] and model.arch() == "2-2-1"
    assert method.stopped_stages == {0: 6, 2: 9, 1: 9}
    assert method.stage_stop_reasons == {0: "gained less than 0.5 points over 2 epochs",
                                         2: f"parameter cap ({cap})", 1: f"parameter cap ({cap})"}
    assert method.stop_reason == f"parameter cap ({cap})" and method.stopped_at == 9


# ------------------------------------------------------------------------------------------ SplitGrow
# SplitGrow's VGG schedule (64, 96, 128 final; ×1.2 in even steps): ..., step 2 (24, 34, 46),
# step 3 (28, 40, 56), step 4 (34, 48, 68), ...
STEP2, STEP3, STEP4 = (24, 34, 46), (28, 40, 56), (34, 48, 68)


def test_splitgrow_stops_at_a_whole_step_the_cap_equals():
    cap = deployed("1-1-1", STEP3)
    method = SplitGrowMethod(SplitGrowConfig(family="vgg", arch="1-1-1", grow_interval=1, max_params=cap))
    model, changes = run_capped(method)
    assert method.widths[2:5] == [STEP2, STEP3, STEP4]
    assert model.widths == STEP3 and deployed("1-1-1", model.widths) == cap  # no partial step fits above it
    assert [e for e, _ in changes] == [1, 2, 3] and "partial" not in changes[-1][1].event
    assert method.summary()["stop_reason"] == f"parameter cap ({cap})" and method.stopped_at == 4


def test_splitgrow_takes_the_widest_partial_step_that_fits():
    # step 3 -> 4 adds (6, 8, 12) channels: 6 pairs in the largest block, so the partial steps are
    # j/6 of each block's step, rounded to even counts: j = 4 gives (28+4, 40+6, 56+8) = (32, 46, 64),
    # j = 5 gives (28+6, 40+6, 56+10) = (34, 46, 66).  A cap at j = 4's size stops there.
    cap = deployed("1-1-1", (32, 46, 64))
    assert deployed("1-1-1", (34, 46, 66)) > cap
    method = SplitGrowMethod(SplitGrowConfig(family="vgg", arch="1-1-1", grow_interval=1, max_params=cap))
    model, changes = run_capped(method)
    assert model.widths == (32, 46, 64)
    last = changes[-1][1].event
    assert last["partial"] is True and last["epoch"] == 4 and last["widths"] == [32, 46, 64]
    assert method.stopped_at == 4 and method.stop_reason == f"parameter cap ({cap})"
    # the partial step is the same function-preserving widening: the logits do not move
    torch.manual_seed(0)
    fresh = SplitGrowMethod(SplitGrowConfig(family="vgg", arch="1-1-1", grow_interval=1, max_params=cap))
    c = ctx(epochs=40, family="vgg")
    m = fresh.build_model(c)
    x = torch.randn(4, 3, 16, 16)
    for epoch in range(3):
        m = fresh.on_epoch_end(c, epoch, m, {"val_acc": 10.0}).model
    with torch.no_grad():
        m.train()(x)
    before = m.eval()(x)
    m = fresh.on_epoch_end(c, 3, m, {"val_acc": 10.0}).model
    assert m.widths == (32, 46, 64)
    assert float((m.eval()(x) - before).detach().norm() / before.detach().norm()) <= 1e-5


def test_splitgrow_several_steps_on_one_epoch_stop_at_the_last_whole_one_that_fits():
    # a 3-epoch budget puts steps 2..8 after epoch 2; the cap at step 4's size lets it reach step 4
    cap = deployed("1-1-1", STEP4)
    method = SplitGrowMethod(SplitGrowConfig(family="vgg", arch="1-1-1", grow_interval=1, max_params=cap))
    model, changes = drive(method, ctx(epochs=3, family="vgg"), [10.0, 11.0, 12.0])
    assert [(e, c.event["widths"]) for e, c in changes] == [(1, [20, 28, 38]), (2, list(STEP4))]
    assert model.widths == STEP4 and method.stopped_at == 2


# ------------------------------------------------------------------------------------------ MoGrow
@pytest.mark.parametrize("less,arch,stopped", [(0, "3-3-3", 3), (1, "2-2-2", 1)])
def test_mogrow_ends_growth_at_the_stage_that_does_not_fit(less, arch, stopped):
    # stages 2-2-2, 3-3-3, 3-3-3, 4-4-4 (boundaries after epochs 1, 2, 3)
    cap = deployed("3-3-3") - less
    method = MoGrowMethod(MoGrowConfig(family="vgg", grow_interval=1, max_params=cap))
    model, changes = run_capped(method, epochs=12)
    assert model.arch() == arch and deployed(arch) <= cap < deployed("4-4-4")
    assert method.stopped_at == stopped and method.summary()["stop_reason"] == f"parameter cap ({cap})"
    assert method.ema.keys() == model.state_dict().keys()  # the EMA stayed the model's shape


# ------------------------------------------------------------------------------------------ the seed
@pytest.mark.parametrize("make,seed,widths", [
    (lambda cap: RandGrowMethod(RandGrowConfig(family="vgg", max_params=cap)), "1-1-1", None),  # AutoGrow's seed
    (lambda cap: SplitGrowMethod(SplitGrowConfig(family="vgg", arch="1-1-1", max_params=cap)), "1-1-1", (16, 24, 32)),
    (lambda cap: MoGrowMethod(MoGrowConfig(family="vgg", max_params=cap)), "2-2-2", None),  # half of 4-4-4
])
def test_a_seed_above_the_cap_is_refused_before_training(make, seed, widths):
    size = deployed(seed, widths)
    model = make(size).build_model(ctx(family="vgg"))  # a seed at the cap itself is allowed
    assert model.arch() == seed
    with pytest.raises(AdaGrowError, match=f"has {size:,} parameters, above max_params {size - 1:,}"):
        make(size - 1).build_model(ctx(family="vgg"))


# ------------------------------------------------------------------------------------------ the trial
def _uncapped_and_capped(make, cap, epochs, family="resnet"):
    """Run the same decisions with and without a cap from the same torch seed; return both runs'
    (changes, final state, torch RNG state, decision RNG state)."""
    out = []
    for max_params in (None, cap):
        torch.manual_seed(0)
        method = make(max_params)
        c = ctx(epochs=epochs, family=family)
        model, changes = drive(method, c, [10.0 + e for e in range(epochs - 1)])
        out.append((changes, model.state_dict(), torch.random.get_rng_state(), model.rng.getstate()))
    return out


MAKERS = {
    # gauinit on ResNet draws the new BN from the decision RNG, the layers from torch's
    "randgrow": lambda cap: RandGrowMethod(RandGrowConfig(family="resnet", stop="none", grow_interval=1, max_params=cap)),
    "splitgrow": lambda cap: SplitGrowMethod(SplitGrowConfig(family="resnet", arch="1-1-1", grow_interval=1,
                                                             max_params=cap)),
    "mogrow": lambda cap: MoGrowMethod(MoGrowConfig(family="resnet", grow_interval=1, max_params=cap)),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_a_cap_that_never_binds_changes_nothing_of_the_run(name):
    (free, state_a, rng_a, drng_a), (capped, state_b, rng_b, drng_b) = _uncapped_and_capped(MAKERS[name], 10**9, 7)
    assert len(free) >= 2
    assert [c.event for _, c in free] == [c.event for _, c in capped]
    assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert torch.equal(rng_a, rng_b) and drng_a == drng_b


@pytest.mark.parametrize("name,arch,widths", [("randgrow", "2-2-1", None), ("splitgrow", "1-1-1", (28, 40, 56)),
                                              ("mogrow", "3-3-3", None)])
def test_a_binding_cap_changes_nothing_before_it_binds(name, arch, widths):
    cap = deployed(arch, widths, family="resnet")
    (free, *_), (capped, *_) = _uncapped_and_capped(MAKERS[name], cap, 7)
    assert len(capped) < len(free)
    assert [c.event for _, c in capped] == [c.event for _, c in free[:len(capped)]]
    last = capped[-1][1].model
    assert last.arch() == arch and (widths is None or last.widths == widths)


# ------------------------------------------------------------------------------------------ resume
def test_randgrow_resumed_after_a_stage_was_capped_keeps_it_closed():
    cap = deployed("4-2-1")
    make = lambda: RandGrowMethod(RandGrowConfig(family="vgg", stop="none", grow_interval=1, max_params=cap))  # noqa: E731
    c, accs = ctx(epochs=40, family="vgg"), [10.0 + e for e in range(39)]
    full = make()
    drive(full, c, accs)
    first = make()
    model, _ = drive(first, c, accs[:3])  # the cap closed block 3 after epoch 3
    assert first.stopped_stages == {2: 3}
    buf = io.BytesIO()
    torch.save({"method": first.state_dict(), "model": model.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=False)
    second = make()
    second.load_state_dict(ckpt["method"])
    resumed = second.build_model(c)
    resumed.load_state_dict(ckpt["model"])
    model, _ = drive(second, c, accs, resumed, start=3)
    assert model.arch() == "4-2-1" and second.summary() == full.summary()


@pytest.mark.filterwarnings("ignore:MNIST. md5")
def test_splitgrow_resumed_through_the_runner_keeps_the_cap_and_its_stop(tiny_mnist, tmp_path):
    # MNIST (1 channel): growths after epochs 1, 2, 3, 4 (4 and 5 on epoch 4); the cap is step 2's
    # size, so epoch 3's step does not fit.  Interrupted before the cap binds and right after it.
    cap = deployed("1-1-1", STEP2, chans=1)
    config = SplitGrowConfig(family="vgg", arch="1-1-1", grow_interval=1, max_params=cap)
    kw = dict(method="splitgrow", model="vgg", method_config=config, epochs=5)
    full = run(_cfg(tiny_mnist, tmp_path / "a", **kw), log=lambda *_: None)
    assert full["params"] == cap and full["params"] == deployed("1-1-1", STEP2, chans=1)
    assert full["stop_reason"] == f"parameter cap ({cap})" and full["stopped_growing_at"] == 3
    assert full["max_params"] == cap and [e["epoch"] for e in full["growth_events"]] == [1, 2]
    for interrupt in (2, 3):
        cfg = _cfg(tiny_mnist, tmp_path / f"b{interrupt}", **kw)
        with pytest.raises(Interrupted):
            run(cfg, interrupt_after=interrupt, log=lambda *_: None)
        resumed = run(dataclasses.replace(cfg, resume=True), log=lambda *_: None)
        for key in ("params", "stop_reason", "stopped_growing_at", "growth_events", "test_acc"):
            assert resumed[key] == full[key], key
        assert math.isfinite(resumed["test_acc"])
        a, b = (torch.load(Path(r["run_dir"]) / "deploy.pt", weights_only=False)["model"].state_dict()
                for r in (full, resumed))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_capped_reference_entry_starts_below_adagrows_smallest_mnist_size():
    """The capped rows of MNIST's reference selection must have room: each starts below AdaGrow's smallest MNIST
    final size on record (VGG 0-1-1 on one-channel 28×28 input: 398,986 deployed params, results/mnist.jsonl)."""
    from suites import _load

    smallest_adagrow = 398_986
    assert deployed("0-1-1", chans=1) == smallest_adagrow
    capped = {e.method: e for e in _load().get("mnist") if e.name.endswith("-capped")}
    assert set(capped) == {"randgrow", "splitgrow", "mogrow"}
    seeds = {"randgrow": deployed(capped["randgrow"].options["seed_arch"], chans=1),
             # MoGrow's first stage is half its target depth per block; 2-2-2 starts at 1-1-1
             "mogrow": deployed("1-1-1", chans=1)}
    assert capped["mogrow"].options["target_arch"] == "2-2-2"
    for method, size in seeds.items():
        assert size <= smallest_adagrow * 1.1, method
    for e in capped.values():
        assert e.derive == {"max_params": ("params_cap", "mnist", "adagrow-vgg-3b")}
