"""Pruning vs growing on CIFAR-10 (Tables 3-29, 3-30): suites ``table3-29`` (ResNet-50) and ``table3-30`` (ViT-Base).

Each entry is one pipeline run (pretrain → prune → fine-tune, ``baselines/prune``) named after the
thesis' fine-tuned row, ``prune-<model>-<method>-<sparsity>-ft``; the same record also holds the
accuracy right after the prune (``pruning.after_prune``), which the report shows as the row without
``-ft``.  The pretrain and fine-tune epochs split the run's epochs in half (``finetune_epochs`` unset);
to prune a model trained elsewhere instead, run the method with ``--pretrained PATH`` (README).
The thesis' sparsities are shares of the parameters (Table 3-29's 50% row keeps 12.78M of ResNet-50's
25.56M), so slimming runs with ``target: params``, not Liu et al.'s share of BN channels (which removes
~89% of ResNet-50's parameters at "50%").
The dense and AdaGrow rows of both tables come from the ``cifar10`` suite (``fixed-resnet50-thesis``,
``fixed-vit_base``, ``adagrow-*``), which the report finds by their names.

``MNIST_REFERENCE_PRUNING`` (issue 19, in the ``mnist`` suite's ``--profile reference`` selection): the same seven
rows on MNIST's ResNet-18 (Table 3-22's model), each pruning the converged dense base of its seed, the ``mnist``
suite's ``fixed-resnet18-thesis`` run (``Entry.derive``): one base per seed, trained once and shared, its cost
shown once in the report (``reports/pruning_reference.py``).  Every row then fine-tunes for the same
``FINETUNE_EPOCHS`` under the base's own (thesis) recipe.
"""

from __future__ import annotations

from typing import Any

from suites.registry import SUITES, Entry


def _prune(model: str, method: str, label: str, options: dict[str, Any], smoke: bool = False) -> Entry:
    return Entry(f"prune-{model}-{method if method != 'slim' else 'bnslim'}-{label}-ft", "cifar10", method, model,
                 options=options, smoke=smoke)


VIT_LINEAR = {"layers": "linear"}  # as Wanda for image classifiers: Linear layers (the patch embedding stays dense)
PARAMS = {"target": "params"}  # slimming: --ratio is the share of parameters removed, as the tables mean it

PRUNING: dict[str, list[Entry]] = {
    "table3-29": [
        _prune("resnet50", "slim", "50", {"ratio": 0.5, **PARAMS}, smoke=True),
        _prune("resnet50", "slim", "70", {"ratio": 0.7, **PARAMS}),
        _prune("resnet50", "dsp", "50", {"ratio": 0.5}),
        _prune("resnet50", "dsp", "70", {"ratio": 0.7}),
        _prune("resnet50", "magnitude", "50", {"ratio": 0.5, "scope": "global"}),
        _prune("resnet50", "magnitude", "70", {"ratio": 0.7, "scope": "global"}),
        _prune("resnet50", "magnitude", "2of4", {"scope": "2:4"}, smoke=True),
    ],
    "table3-30": [
        _prune("vit_base", "magnitude", "50", {"ratio": 0.5, "scope": "global", **VIT_LINEAR}, smoke=True),
        _prune("vit_base", "magnitude", "70", {"ratio": 0.7, "scope": "global", **VIT_LINEAR}),
        _prune("vit_base", "magnitude", "row50", {"ratio": 0.5, "scope": "row", **VIT_LINEAR}),
        _prune("vit_base", "wanda", "50", {"ratio": 0.5, "scope": "layer", **VIT_LINEAR}, smoke=True),
        _prune("vit_base", "wanda", "70", {"ratio": 0.7, "scope": "layer", **VIT_LINEAR}),
        _prune("vit_base", "wanda", "row50", {"ratio": 0.5, "scope": "row", **VIT_LINEAR}),
    ],
}

# The shared-base rows (issue 19).  Fine-tuning: a third of the base's 6 reference epochs, what a 2-core CPU affords
# for seven rows × three seeds.
FINETUNE_EPOCHS = 2
# DSP learns its filter groups by training before it prunes (the method's own step, not part of the shared budget):
# one epoch of it, on top of the same fine-tuning epochs (dsp.py: the group epochs are the pre-prune epochs).
DSP_GROUP_EPOCHS = 1
SHARED_BASE = {"base_run": ("run", "mnist", "fixed-resnet18-thesis")}


def _prune_ref(method: str, label: str, options: dict[str, Any]) -> Entry:
    extra = DSP_GROUP_EPOCHS if method == "dsp" else 0
    opts = {**options, "finetune_epochs": FINETUNE_EPOCHS, **({"group_epochs": extra} if extra else {})}
    return Entry(f"prune-resnet18-{method if method != 'slim' else 'bnslim'}-{label}-ft", "mnist", method, "resnet18",
                 recipe="thesis", options=opts, epochs=FINETUNE_EPOCHS + extra, reference=True, derive=SHARED_BASE)


# Part of the ``mnist`` suite (suites/datasets.py), so that ``nox -s mnist -- --profile reference`` trains each
# seed's base and then the rows that prune it, in one resumable invocation.
MNIST_REFERENCE_PRUNING = [
    _prune_ref("slim", "50", {"ratio": 0.5, **PARAMS}),
    _prune_ref("slim", "70", {"ratio": 0.7, **PARAMS}),
    _prune_ref("dsp", "50", {"ratio": 0.5}),
    _prune_ref("dsp", "70", {"ratio": 0.7}),
    _prune_ref("magnitude", "50", {"ratio": 0.5, "scope": "global"}),
    _prune_ref("magnitude", "70", {"ratio": 0.7, "scope": "global"}),
    _prune_ref("magnitude", "2of4", {"scope": "2:4"}),
]

for _name, _entries in PRUNING.items():
    SUITES.register(_name, _entries)
