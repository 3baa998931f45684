"""The second thesis' methods (seeds/002, SPEC §12) on MNIST and CIFAR-10: suites ``bamc-<dataset>`` and
``aps-<dataset>``.

BAMC entries quantize a fixed reference (ResNet-18) and a grown AdaGrow architecture (VGG 1-2-2, fused),
each trained in the first half of the run; the same record holds the uniform W4 / W8 rows of the model
it started from, so one run fills a row of the BAMC-vs-uniform table.  APS entries search the widths of
AdaGrow's VGG 1-2-2 layout under a share of its widest candidate's MACs and retrain the choice; the
AdaGrow and fixed rows of the APS table come from the dataset's own suite (``adagrow-vgg-3b``,
``fixed-resnet18-*``).  The report: ``python -m reports.second_thesis``.
"""

from __future__ import annotations

from suites.registry import SUITES, Entry

DATASETS = ("mnist", "cifar10")


def bamc_entries(dataset: str) -> list[Entry]:
    return [
        Entry("bamc-vgg122", dataset, "bamc", "vgg:1-2-2", smoke=True),
        Entry("bamc-vgg122-3bit", dataset, "bamc", "vgg:1-2-2", options={"avg_bits": 3.0}),
        Entry("bamc-vgg122-posthoc", dataset, "bamc", "vgg:1-2-2", options={"variant": "posthoc"}, smoke=True),
        Entry("bamc-vgg122-obs", dataset, "bamc", "vgg:1-2-2", options={"quantizer": "obs"}),
        # the baselines at BAMC's 3-bit budget as runs of their own (each BAMC record also holds them, measured
        # on the very model it quantized, at its own average width)
        *(Entry(f"bamc-vgg122-3bit-{kind}", dataset, "bamc", "vgg:1-2-2",
                options={"variant": "posthoc", "allocation": kind, "avg_bits": 3.0})
          for kind in ("uniform", "random", "hessian")),
        Entry("bamc-resnet18", dataset, "bamc", "resnet18"),
        Entry("bamc-resnet18-3bit", dataset, "bamc", "resnet18", options={"avg_bits": 3.0}),
        Entry("bamc-resnet18-posthoc", dataset, "bamc", "resnet18", options={"variant": "posthoc"}),
    ]


# Issue 19: BAMC on the converged models of the ``mnist`` suite's reference profile (AdaGrow-VGG grown from the seed,
# the fixed ResNet-18), each seed on its own seed's model (``Entry.derive``), against uniform, random and
# Hessian-trace allocations at BAMC's own average width and storage format (every BAMC record measures them on the
# model it quantized).  Epochs with the prior: the MNIST pruning rows' fine-tuning budget (suites/pruning.py).
REFERENCE_BASES = {"adagrow-vgg": "adagrow-vgg-3b", "resnet18": "fixed-resnet18-thesis"}
BAMC_EPOCHS = 2


def bamc_reference_entries(dataset: str) -> list[Entry]:
    if dataset != "mnist":
        return []
    return [Entry(f"bamc-{label}-ref", dataset, "bamc", None, epochs=BAMC_EPOCHS, reference=True,
                  derive={"base_run": ("run", dataset, base)})
            for label, base in REFERENCE_BASES.items()]


def aps_entries(dataset: str) -> list[Entry]:
    return [
        Entry("aps-vgg122-50", dataset, "aps", options={"budget": 0.5}, smoke=True),
        Entry("aps-vgg122-30", dataset, "aps", options={"budget": 0.3}),
        Entry("aps-vgg122-50-ordinal", dataset, "aps", options={"budget": 0.5, "sharing": "ordinal"}),
        Entry("aps-vgg122-50-independent", dataset, "aps", options={"budget": 0.5, "sharing": "independent"}),
        Entry("aps-vgg122-50-cosine", dataset, "aps", options={"budget": 0.5, "sharing": "cosine"}),
        Entry("aps-vgg122-50-uniform", dataset, "aps", options={"budget": 0.5, "strategy": "uniform"}),
        Entry("aps-vgg122-50-random", dataset, "aps", options={"budget": 0.5, "strategy": "random"}),
    ]


# Issue 19: APS under --profile reference, against a uniform width multiplier and five random width sets at the same
# MACs budget and the same retraining epochs (each seed draws sets 0-4: fifteen sets over seeds 0-2).  Measured on the
# shared 2-core CPU (1 thread, load ~3): 0.82 s per search step (sample, SGD step, transform step, one controller
# update on a validation batch) and 0.80 s per retraining step of the 50%-MACs network: ~6 min per MNIST epoch (430
# steps of 128) in either phase.  6 epochs, 3 of search: 1,290 search steps (430 of warm-up, a whole epoch of the
# training split, then 860 controller updates, where the smoke search made one on a chance-level supernet) and 3
# retraining epochs on the cosine's second half (a 45-MMAC plain conv net converges on MNIST in that).  ~36 min a run
# on the loaded single thread, an estimated ~15 min with 2 threads on a quiet machine (within issue 19's 30).
APS_EPOCHS = 6
APS_SEARCH_EPOCHS = 3
APS_RANDOM_SETS = 5  # issue 19: "at least five random width sets"
APS_BUDGET = 0.5  # the share of the widest candidate's MACs, as the smoke row


def aps_reference_entries(dataset: str) -> list[Entry]:
    if dataset != "mnist":
        return []
    common = {"budget": APS_BUDGET, "search_epochs": APS_SEARCH_EPOCHS}
    return [
        Entry("aps-ref", dataset, "aps", options=common, epochs=APS_EPOCHS, reference=True),
        Entry("aps-ref-uniform", dataset, "aps", options={**common, "strategy": "uniform"}, epochs=APS_EPOCHS,
              reference=True),
        *(Entry(f"aps-ref-random-{k}", dataset, "aps", options={**common, "strategy": "random", "random_set": k},
                epochs=APS_EPOCHS, reference=True) for k in range(APS_RANDOM_SETS)),
    ]


for _dataset in DATASETS:
    SUITES.register(f"bamc-{_dataset}", bamc_entries(_dataset) + bamc_reference_entries(_dataset))
    SUITES.register(f"aps-{_dataset}", aps_entries(_dataset) + aps_reference_entries(_dataset))
