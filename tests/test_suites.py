"""The thesis ablation suites (suites/ablations.py): every entry builds a valid run configuration,
names are unique per dataset (the report matches records by dataset + entry name), and every row
of the thesis' ablation tables has an entry that reproduces it."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from adagrow.grow.method import AdaGrowConfig
from adagrow.grow.transformer import TransformerGrowConfig
from reports.thesis_reference import TABLES
from suites import _load, run_config_for
from suites.ablations import ABLATIONS

TABLE_IDS = [f"3-{i}" for i in range(2, 17)]
NOT_IMPLEMENTED = {("3-12", "vit-width-head-dim")}  # growing the head dimension has no knob


def fake_args(**overrides) -> argparse.Namespace:
    """The namespace ``adagrow suite`` would pass, with its defaults."""
    values = dict(recipe=None, batch_size=None, lr=None, min_lr=None, seed=0, profile="full", epochs=None, train_subset=None,
                  data_dir=None, download=False, no_download=False, output="results", device="cpu", no_amp=False,
                  compile=False, deterministic=False, threads=None, wandb="off", wandb_artifacts=False)
    return argparse.Namespace(**{**values, **overrides})


def _entries():
    return [(suite, e) for suite, entries in ABLATIONS.items() for e in entries]


def test_every_ablation_table_is_a_registered_suite():
    suites = _load()
    assert sorted(ABLATIONS) == sorted(f"table{t}" for t in TABLE_IDS)
    for name in ABLATIONS:
        assert suites.get(name) is ABLATIONS[name]


def _ids(value) -> str:
    return getattr(value, "name", str(value))


@pytest.mark.parametrize("suite,entry", [p for p in _entries() if p[1].model == "vgg"], ids=_ids)
def test_cnn_entry_builds_a_valid_run_config(suite, entry):
    cfg = run_config_for(entry, fake_args(), suite)
    assert isinstance(cfg.method_config, AdaGrowConfig)
    assert cfg.tag == entry.name and cfg.dataset == "cifar10" and cfg.recipe.name == "adagrow"
    cfg.method_config.policy()  # validates depth/branch policy and init names
    for key, value in entry.options.items():
        assert getattr(cfg.method_config, key) == value


@pytest.mark.parametrize("suite,entry", [p for p in _entries() if p[1].model == "vit"], ids=_ids)
def test_vit_entry_options_are_transformer_grow_config_fields(suite, entry):
    config = TransformerGrowConfig(family="vit", **entry.options)  # raises on a typo or an invalid value
    for key, value in entry.options.items():
        assert getattr(config, key) == value


def test_vit_entries_resolve_to_the_transformer_config():
    from adagrow.methods import load_builtin_methods

    config_cls, _ = load_builtin_methods().get("adagrow").resolve("vit")
    if config_cls is not TransformerGrowConfig:
        pytest.skip("the adagrow method does not yet register TransformerGrowConfig under by_family['vit']")
    entry = ABLATIONS["table3-15"][0]
    cfg = run_config_for(entry, fake_args(), "table3-15")
    assert isinstance(cfg.method_config, TransformerGrowConfig)
    assert cfg.recipe.name == "adagrow-transformer"


def test_transformer_recipes_follow_table_3_18():
    """Growing Transformers: SGD, lr 0.1, cosine, 200 epochs (Table 3-18); the fixed ViTs / BERTs: the
    thesis' fixed-model recipe; AdamW only as a named alternative."""
    from adagrow.config import RECIPES, resolve_recipe
    from suites.datasets import text_suite, vision_suite

    grow = resolve_recipe("adagrow", "vit")
    assert (grow.name, grow.optimizer, grow.lr, grow.epochs) == ("adagrow-transformer", "sgd", 0.1, 200)
    assert grow.warmup_epochs == 0 and grow.grad_clip is None and grow.min_lr == 0
    assert resolve_recipe("adagrow", "bert") == grow
    assert RECIPES.get("transformer-adamw").optimizer == "adamw"
    entries = {e.name: e for e in vision_suite("cifar10") + text_suite("sst2")}
    for name in ("adagrow-vit", "adagrow-bert"):
        assert run_config_for(entries[name], fake_args(), "x").recipe.optimizer == "sgd"
    for name in ("fixed-vit_small", "fixed-vit_base", "fixed-bert_small", "fixed-bert_base"):
        recipe = run_config_for(entries[name], fake_args(), "x").recipe
        assert (recipe.name, recipe.optimizer, recipe.lr) == ("thesis", "adam", 5e-3)
    for entry in (e for entries in ABLATIONS.values() for e in entries if e.model == "vit"):
        assert run_config_for(entry, fake_args(), "x").recipe.name == "adagrow-transformer"


def test_mnist_growth_is_stopped_by_the_cap_alone():
    """Table 3-18: on MNIST each block grows to at most one layer, and no automatic rule stops it."""
    from suites.datasets import vision_suite

    grown = [e for e in vision_suite("mnist") if e.method == "adagrow"]
    assert len(grown) == 8
    for e in grown:
        cfg = run_config_for(e, fake_args(), "mnist").method_config
        assert (cfg.layers_per_block_cap, cfg.stop) == (1, "none"), e.name
    others = [e for e in vision_suite("cifar10") if e.method == "adagrow" and e.model != "vit"]
    assert all(run_config_for(e, fake_args(), "cifar10").method_config.stop_rule("cifar10") == "auto" for e in others)


@pytest.mark.parametrize("table_id", TABLE_IDS)
def test_thesis_rows_have_an_entry_and_entries_have_a_row(table_id):
    names = {e.name for e in ABLATIONS[f"table{table_id}"]}
    keys = {row.key[1] for row in TABLES[table_id].rows}
    assert keys - names == {k for t, k in NOT_IMPLEMENTED if t == table_id}
    assert names <= keys


@pytest.mark.parametrize("table_id", TABLE_IDS)
def test_all_but_the_stopping_table_fix_the_final_architecture(table_id):
    entries = ABLATIONS[f"table{table_id}"]
    if table_id == "3-5":
        assert {e.options["stop"] for e in entries} == {"target", "budget", "auto"}
        return
    thesis_arch = TABLES[table_id].rows[0].cells["arch"].text  # e.g. "VGG-2-2-2", "ViT-D4W384"
    for e in entries:
        assert e.options["stop"] == "target"
        assert thesis_arch.endswith(e.options["target_arch"])


def test_each_suite_has_one_smoke_entry():
    for name, entries in ABLATIONS.items():
        assert sum(e.smoke for e in entries) == 1, name


def test_entry_names_are_unique_per_dataset_across_all_suites():
    """One name, one run: a name may recur in another suite only as the same entry (Table 3-31 repeats
    CIFAR-10's growing entries)."""
    seen: dict[tuple[str, str], tuple[str, object]] = {}
    suites = _load()
    for suite in suites:
        for e in suites.get(suite):
            key = (e.dataset, e.name)
            assert key not in seen or seen[key][1] == e, f"{key} differs between {seen[key][0]} and {suite}"
            seen.setdefault(key, (suite, e))


def test_knob_values_follow_the_thesis():
    options = {e.name: e.options for entries in ABLATIONS.values() for e in entries}
    assert [options[f"depth-step-{n}"]["layers_per_growth"] for n in range(1, 7)] == [1, 2, 3, 4, 5, 6]
    assert options["depth-step-3"]["width_ratio"] == 0.5  # §3.3.2 fixes the width ratio for Table 3-2
    assert options["width-ratio-0"]["width_ratio"] == 0.0
    assert options["stop-budget"]["param_budget"] == 1_000_000
    assert options["stop-auto-threshold6"]["threshold"] == 6.0 and options["stop-auto-tolerance3"]["tolerance"] == 3
    assert options["init-uniform-0.3"] == {"blocks": 3, "stop": "target", "target_arch": "2-2-2",
                                           "init": "uniform", "init_scale": 0.3}
    assert options["vit-pattern-W1D3"]["target_arch"] == "D10W512"
    assert options["vit-depth-greedy"]["optimizer_transfer"] == "fresh"  # §3.4.1: fresh optimizer there
    defaults = {f.name: f.default for f in dataclasses.fields(TransformerGrowConfig)}
    assert options["vit-optimizer-inherit"]["optimizer_transfer"] == defaults["optimizer_transfer"]
