"""The numerics version is part of every run's identity (issue 20, item 18): a record made by code whose
arithmetic differed (an older numerics version, or none at all: version 1) is never counted as this
configuration's result, and every record says which numerics produced it."""

from __future__ import annotations

from adagrow.config import NUMERICS_VERSION, RunConfig, identity_of
from suites import _done


def _cfg() -> RunConfig:
    return RunConfig(dataset="mnist", method="fixed", model="resnet18", profile="smoke")


def test_a_config_carries_the_current_numerics_version():
    d = _cfg().resolved().to_dict()
    assert d["numerics"] == NUMERICS_VERSION >= 2
    assert _cfg().identity()["numerics"] == NUMERICS_VERSION


def test_a_config_saved_before_the_field_existed_is_version_1_and_another_run():
    saved = _cfg().resolved().to_dict()
    del saved["numerics"]  # as every record written before the field existed
    assert identity_of(saved)["numerics"] == 1
    assert identity_of(saved) != _cfg().identity()


def test_suites_do_not_count_a_record_of_older_numerics_as_done():
    cfg = _cfg()
    current = cfg.resolved().to_dict()
    old = dict(current)
    old.pop("numerics")
    run_dir = f"runs/runs/{cfg.run_name}"
    older = {"status": "ok", "run_dir": run_dir, "config": old, "test_acc": 96.63}
    assert _done([older], cfg) is None
    same = {"status": "ok", "run_dir": run_dir, "config": current, "test_acc": 96.81}
    assert _done([older, same], cfg) is same
    bumped = {**same, "config": {**current, "numerics": NUMERICS_VERSION + 1}}
    assert _done([bumped], cfg) is None


def test_the_version_changes_the_run_name():
    # the hash in the run directory's name covers the numerics: an older run's checkpoint is never resumed
    cfg = _cfg()
    old = cfg.resolved().to_dict()
    old.pop("numerics")
    from adagrow.config import identity_hash

    assert identity_hash(identity_of(old)) not in cfg.run_name


def test_a_late_field_at_its_neutral_value_does_not_rename_runs():
    from adagrow.config import LATE_FIELDS

    cfg = _cfg()
    saved = cfg.resolved().to_dict()
    for name in LATE_FIELDS:
        saved.pop(name)  # as a record written before the field existed
    assert identity_of(saved) == cfg.identity()
    import dataclasses

    assert dataclasses.replace(cfg, tokenizer="bert-base-uncased").run_name != cfg.run_name


def test_a_method_of_its_own_numerics_version_redoes_only_its_runs():
    """BAMC's arithmetic changed on its own (the components' std, then the BN-fed layers' rescale, 2026-12-07): its
    config says version 3, so a BAMC record written before is not counted as done, while every other method's runs
    keep their names."""
    import dataclasses

    from adagrow.methods import load_builtin_methods
    from baselines.quant.bamc import BAMCConfig

    load_builtin_methods()
    cfg = RunConfig(dataset="mnist", method="bamc", model="resnet18", profile="smoke", method_config=BAMCConfig())
    current = cfg.resolved().to_dict()
    assert current["method_numerics"] == 3 and cfg.identity()["method_numerics"] == 3
    before = {k: v for k, v in current.items() if k != "method_numerics"}  # a BAMC record of version 1
    assert _done([{"status": "ok", "run_dir": f"runs/runs/{cfg.run_name}", "config": before}], cfg) is None
    assert "method_numerics" not in _cfg().identity()  # methods without a version of their own: unchanged
    assert dataclasses.fields(BAMCConfig)  # the version is no option: not a field, so no --numerics flag
    assert "NUMERICS" not in {f.name for f in dataclasses.fields(BAMCConfig)}
