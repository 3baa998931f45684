"""One suite per dataset: the rows of Tables 3-19 ... 3-28.

Vision datasets: the eight fixed references under the thesis recipe and under the standard strong
recipe (SPEC §5: the thesis' fixed models are weakly trained, so both are reported and labelled),
then AdaGrow for the four CNN families with 3 and 4 blocks (automatic stopping; on MNIST the
one-layer-per-block cap alone, Table 3-18), and for the datasets of Table 3-27 the growable ViT with its
fixed ViT-Small/Base counterparts.  Text datasets: the growable BERT and BERT-Small/Base (Table 3-28).

Recipes of Tables 3-27 / 3-28 (Table 3-18): the growing ViT / BERT run ``adagrow-transformer`` (SGD,
lr 0.1, cosine, 200 epochs), the fixed ViTs / BERTs the thesis' fixed-model recipe ``thesis`` (Adam,
lr 5e-3, cosine, L2 5e-4).  ``--recipe transformer-adamw`` (AdamW, not the thesis') is the alternative.
"""

from __future__ import annotations

from suites.growing import capped_entries, growing_entries
from suites.pruning import MNIST_REFERENCE_PRUNING
from suites.registry import SUITES, Entry

CNN_FIXED = ("resnet18", "resnet34", "resnet50", "resnet101", "vgg11", "vgg16", "mobilenetv3_small",
             "mobilenetv3_large")
CNN_FAMILIES = ("resnet", "bottleneck", "vgg", "mobilenetv3")
VISION = ("cifar10", "cifar100", "svhn", "mnist", "imagewoof", "imagenette", "tinyimagenet", "miniimagenet")
VIT_DATASETS = ("cifar10", "imagenette", "tinyimagenet", "miniimagenet")  # Table 3-27
TEXT = ("imdb", "sst2")  # Table 3-28


def vision_suite(dataset: str) -> list[Entry]:
    # reference profile (MNIST, issue 19): Table 3-22's fixed ResNet-18 under both recipes, AdaGrow VGG and ResNet
    entries = [Entry(f"fixed-{m}-{recipe}", dataset, "fixed", m, recipe=recipe,
                     smoke=(m, recipe) == ("resnet18", "thesis"), reference=dataset == "mnist" and m == "resnet18")
               for recipe in ("thesis", "standard") for m in CNN_FIXED]
    # MNIST: "each block grows to at most one layer" and nothing else stops growth (Table 3-18; Table
    # 3-22: "even when each block may grow only once"), i.e. 1-1-1 / 1-1-1-1 without the automatic rule.
    cap = {"layers_per_block_cap": 1, "stop": "none"} if dataset == "mnist" else {}
    entries += [Entry(f"adagrow-{fam}-{blocks}b", dataset, "adagrow", fam, options={"blocks": blocks, **cap},
                      smoke=(fam, blocks) == ("vgg", 3),
                      reference=dataset == "mnist" and fam in ("vgg", "resnet") and blocks == 3)
                for fam in CNN_FAMILIES for blocks in (3, 4)]
    # RandGrow, SplitGrow, MoGrow (Table 3-31's peers); on MNIST's reference profile VGG 3 blocks twice: under
    # each method's own stopping rule and capped at the same seed's AdaGrow size
    entries += growing_entries(dataset, reference=dataset == "mnist")
    if dataset == "mnist":
        entries += capped_entries(dataset)
        entries += MNIST_REFERENCE_PRUNING  # the pruning rows on the fixed ResNet-18 above (issue 19)
    if dataset in VIT_DATASETS:
        entries += [Entry("adagrow-vit", dataset, "adagrow", "vit", recipe="adagrow-transformer"),
                    Entry("fixed-vit_small", dataset, "fixed", "vit_small", recipe="thesis"),
                    Entry("fixed-vit_base", dataset, "fixed", "vit_base", recipe="thesis")]
    return entries


# The growing BERT under both recipes (issue 19: both recorded and named): the thesis' SGD one (Table 3-18) and
# the AdamW one the smoke runs found to learn where that SGD barely does.
GROWN_BERT = {"adagrow-bert": "adagrow-transformer", "adagrow-bert-adamw": "transformer-adamw"}
# The fixed BERT of the grown size -> the grown entry whose final architecture it takes (and whose recipe).
FIXED_GROWN_BERT = {"fixed-bert-grown": "adagrow-bert", "fixed-bert-grown-adamw": "adagrow-bert-adamw"}
# The base the SST-2 pruning rows prune: a grown BERT, so that the rows compare pruning with growing on the very
# model AdaGrow grew, as Tables 3-29/3-30 do for the CNNs / ViT.  The AdamW one, chosen when the thesis' SGD barely
# learned SST-2 in smoke runs; under `reference` SGD learns as well (docs/benchmarking.md), but a new base would
# re-run every pruning row, and each row is compared with its own base, so the choice decides no comparison.
PRUNE_BASE = "adagrow-bert-adamw"
# Fine-tuning after the prune, in epochs: the MNIST pruning rows' budget (two epochs); SST-2's training phrases
# differ from its dev sentences, so longer training overfits (the text profile's reason for its 10 epochs).
SST2_FINETUNE_EPOCHS = 2


def text_suite(dataset: str) -> list[Entry]:
    ref = dataset == "sst2"  # the converged CPU selection covers SST-2 (issue 19; IMDB only if the budget allows)
    entries = [Entry(name, dataset, "adagrow", "bert", recipe=recipe, smoke=name == "adagrow-bert", reference=ref)
               for name, recipe in GROWN_BERT.items()]
    # The "trained from scratch at the final size" control: the growable BERT built directly at the architecture
    # the same seed's grown run ended with (Entry.derive), same tokenizer, embeddings and recipe, no growth.
    entries += [Entry(fixed, dataset, "fixed", "bert", recipe=GROWN_BERT[grown], reference=ref,
                      derive={"arch": ("arch", dataset, grown)})
                for fixed, grown in FIXED_GROWN_BERT.items()]
    entries += [Entry("fixed-bert_small", dataset, "fixed", "bert_small", recipe="thesis"),
                Entry("fixed-bert_base", dataset, "fixed", "bert_base", recipe="thesis")]
    return entries + text_pruning(dataset, ref)


def text_pruning(dataset: str, reference: bool) -> list[Entry]:
    """Wanda and row-wise magnitude on the converged grown BERT (issue 19), its Linear layers (the embeddings and
    the classifier stay dense, as Wanda leaves them), before and after ``SST2_FINETUNE_EPOCHS`` of fine-tuning
    under the base's own recipe.  Kept in the dataset's suite rather than a ``prune-sst2-ref`` suite: every row
    depends on a run of this suite, so one ``nox -s sst2 -- --profile reference`` trains the base, the fixed
    control and the pruning rows in order, and the dataset's leaderboard shows them side by side."""
    base = {"base_run": ("run", dataset, PRUNE_BASE)}
    rows = [("wanda", "row50", "row"), ("wanda", "50", "layer"), ("magnitude", "row50", "row"),
            ("magnitude", "50", "global")]
    return [Entry(f"prune-bert-{method}-{label}-ft", dataset, method, "bert", recipe=GROWN_BERT[PRUNE_BASE],
                  options={"ratio": 0.5, "scope": scope, "layers": "linear"}, epochs=SST2_FINETUNE_EPOCHS,
                  reference=reference, derive=base)
            for method, label, scope in rows]


for _name in VISION:
    SUITES.register(_name, vision_suite(_name))
for _name in TEXT:
    SUITES.register(_name, text_suite(_name))
