"""The converged CPU profile `reference` (issue 19): every number it sets, as resolved for a fixed model, a
growing method and a text dataset, and that it never changes a method's own stopping rule."""

from __future__ import annotations

from adagrow.config import RunConfig, resolve_recipe
from adagrow.grow.method import AdaGrowConfig


def _resolved(**kw) -> RunConfig:
    return RunConfig(profile="reference", **kw).resolved()


def test_fixed_models_train_six_epochs_on_the_whole_split():
    cfg = _resolved(dataset="mnist", method="fixed", model="resnet18", recipe=resolve_recipe("fixed", "resnet18"))
    assert (cfg.total_epochs, cfg.train_subset, cfg.test_subset, cfg.val_size) == (6, None, None, 5000)
    assert cfg.recipe.warmup_epochs == 0.0 and cfg.recipe.batch_size == 128  # the recipe's batch is kept
    assert cfg.recipe.lr == 5e-3 and cfg.recipe.optimizer == "adam"  # the thesis recipe itself is untouched
    assert cfg.latency_repeats == 200


def test_growing_methods_compress_the_thesis_schedule():
    cfg = _resolved(dataset="mnist", method="adagrow", model="vgg", method_config=AdaGrowConfig(blocks=3),
                    recipe=resolve_recipe("adagrow", "vgg"))
    assert (cfg.total_epochs, cfg.train_subset, cfg.val_size) == (12, None, 5000)
    mc = cfg.method_config
    assert (mc.grow_interval, mc.grow_until) == (1, 0.5)
    assert mc.stop is None  # the method's own rule (MNIST: the one-layer cap), not overridden
    assert cfg.recipe.lr == 0.1 and cfg.recipe.warmup_epochs == 0.0


def test_a_users_own_option_wins_over_the_profile():
    cfg = _resolved(dataset="mnist", method="adagrow", model="vgg", method_config=AdaGrowConfig(grow_interval=2),
                    epochs=3)
    assert cfg.method_config.grow_interval == 2 and cfg.total_epochs == 3


def test_text_datasets_get_ten_epochs():
    cfg = _resolved(dataset="sst2", method="adagrow", model="bert", recipe=resolve_recipe("adagrow", "bert"))
    assert (cfg.total_epochs, cfg.train_subset, cfg.val_size) == (10, None, 2000)
    assert cfg.method_config.grow_interval == 1 and cfg.method_config.stop == "auto"


def test_reference_runs_are_named_apart_from_smoke_and_full():
    names = {p: RunConfig(dataset="mnist", method="fixed", model="resnet18", profile=p).run_name
             for p in ("smoke", "reference", "full")}
    assert len(set(names.values())) == 3 and "-reference-" in names["reference"]


def test_the_reference_selection_of_the_mnist_and_sst2_suites():
    import argparse

    from suites import _select

    def names(suite):
        args = argparse.Namespace(name=suite, only=None, profile="reference", all=False)
        return sorted(e.name for e in _select(args))

    # issue 19: Table 3-22's fixed ResNet-18 under both recipes, AdaGrow VGG and ResNet (3 blocks) from the seed
    # and the three growers on AdaGrow-VGG's family, under their own stopping rules and capped at AdaGrow's size
    growers = [f"{m}-vgg-3b{c}" for m in ("mogrow", "randgrow", "splitgrow") for c in ("", "-capped")]
    # and the pruning rows on the fixed ResNet-18's converged base (tests/test_prune_reference_suite.py)
    pruning = [f"prune-resnet18-{m}-ft" for m in ("bnslim-50", "bnslim-70", "dsp-50", "dsp-70", "magnitude-50",
                                                   "magnitude-70", "magnitude-2of4")]
    assert names("mnist") == sorted(["adagrow-resnet-3b", "adagrow-vgg-3b", "fixed-resnet18-standard",
                                     "fixed-resnet18-thesis", *growers, *pruning])
    # the growing BERT under Table 3-18's SGD recipe and under the AdamW recipe that learns, both named
    # and, issue 19's SST-2 rows, the fixed BERT of each grown size and the pruning rows on the converged grown BERT
    assert names("sst2") == ["adagrow-bert", "adagrow-bert-adamw", "fixed-bert-grown", "fixed-bert-grown-adamw",
                             "prune-bert-magnitude-50-ft", "prune-bert-magnitude-row50-ft", "prune-bert-wanda-50-ft",
                             "prune-bert-wanda-row50-ft"]
