"""The ``mnist`` suite's reference pruning rows (issue 19): seven pruning rows on MNIST's ResNet-18 that share the converged dense base
of their seed, under one fine-tuning budget.  The oracle is the issue and the task's statement of the rows (BN-slimming
and DSP at 50 / 70% structured, magnitude at 50 / 70% unstructured and 2:4; the same fine-tuning epochs; DSP's group
learning one epoch on top; the base's recipe), not the suite's own constants."""

from __future__ import annotations

import dataclasses

import pytest

from suites import _load, _select, run_config_for
from tests.test_suites import fake_args

BASE = ("run", "mnist", "fixed-resnet18-thesis")
ROWS = {  # name -> (method, options the row must have)
    "prune-resnet18-bnslim-50-ft": ("slim", {"ratio": 0.5, "target": "params"}),
    "prune-resnet18-bnslim-70-ft": ("slim", {"ratio": 0.7, "target": "params"}),
    "prune-resnet18-dsp-50-ft": ("dsp", {"ratio": 0.5}),
    "prune-resnet18-dsp-70-ft": ("dsp", {"ratio": 0.7}),
    "prune-resnet18-magnitude-50-ft": ("magnitude", {"ratio": 0.5, "scope": "global"}),
    "prune-resnet18-magnitude-70-ft": ("magnitude", {"ratio": 0.7, "scope": "global"}),
    "prune-resnet18-magnitude-2of4-ft": ("magnitude", {"scope": "2:4"}),
}


def _entries():
    return {e.name: e for e in _load().get("mnist") if e.name.startswith("prune-")}


def _cfg(entry, base_run="mnist-fixed-resnet18-thesis-thesis-reference-s0-0000abcd"):
    """The entry's resolved config under --profile reference, its base filled in as the suite's derive would."""
    entry = dataclasses.replace(entry, options={**entry.options, "base_run": base_run})
    return run_config_for(entry, fake_args(profile="reference"), "mnist").resolved()


def test_the_seven_rows_share_the_mnist_suites_converged_base():
    entries = _entries()
    assert set(entries) == set(ROWS)
    base = {e.name: e for e in _load().get("mnist")}[BASE[2]]
    assert base.reference and base.method == "fixed" and base.model == "resnet18"
    for name, (method, options) in ROWS.items():
        e = entries[name]
        assert (e.dataset, e.method, e.model, e.reference) == ("mnist", method, "resnet18", True)
        assert e.derive == {"base_run": BASE}
        assert options.items() <= e.options.items(), name
    # --profile reference selects every row
    import argparse

    args = argparse.Namespace(name="mnist", only=None, profile="reference", all=False)
    assert set(ROWS) <= {e.name for e in _select(args)}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_row_fine_tunes_the_same_epochs_under_the_bases_recipe(name):
    cfg = _cfg(_entries()[name])
    base = run_config_for({e.name: e for e in _load().get("mnist")}[BASE[2]], fake_args(profile="reference"),
                          "mnist").resolved()
    assert base.total_epochs == 6  # the profile's epochs reach the base ...
    assert cfg.method_config.finetune_epochs == 2  # ... not the pruning rows: a third of them, fine-tuning
    assert cfg.total_epochs == (3 if cfg.method == "dsp" else 2)  # DSP: one group-learning epoch on top
    assert dataclasses.replace(cfg.recipe, epochs=0) == dataclasses.replace(base.recipe, epochs=0)
    assert cfg.recipe.name == "thesis"
    assert (cfg.val_size, cfg.train_subset, cfg.seed) == (base.val_size, base.train_subset, base.seed)  # same split
    cfg.validate()  # the base's deploy.pt is gone here: the config is still built and valid (checked at start)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_prune_comes_first_and_dsp_learns_groups_for_one_epoch(name):
    from adagrow.methods import load_builtin_methods

    cfg = _cfg(_entries()[name])
    _, factory = load_builtin_methods().get(cfg.method).resolve(cfg.model)
    method = factory(cfg.method_config)
    method.prune_after = method.schedule(cfg.total_epochs)
    if cfg.method == "dsp":
        assert method.prune_after == 1 and method.group_start() == 0
        assert [method.phase(e) for e in range(3)] == ["prune", "finetune", "finetune"]
    else:  # pruned while the model is built, then every epoch fine-tunes
        assert method.prune_after == 0
        assert [method.phase(e) for e in range(2)] == ["finetune", "finetune"]


def test_the_profile_never_replaces_an_entrys_own_epochs():
    """`--profile reference` sets 6 epochs for fixed-size runs; an entry that names its epochs keeps them, and only
    the command line's --epochs replaces them."""
    entry = _entries()["prune-resnet18-magnitude-50-ft"]
    assert run_config_for(entry, fake_args(profile="reference"), "x").resolved().total_epochs == 2
    assert run_config_for(entry, fake_args(profile="reference", epochs=5), "x").resolved().total_epochs == 5
