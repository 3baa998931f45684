"""Issue 19's SST-2 rows: the fixed BERT of the grown size, and Wanda / magnitude pruning on a converged BERT.

Oracles: the growable BERT built directly at an architecture (``create_transformer``), the grown run's own
record, Wanda's rule from its paper (Sun et al., 2024: S_ij = |W_ij|·‖X_j‖₂, the lowest half of each output
row pruned, Wanda's ``prune_wanda``), recomputed here from a functional forward pass written out in the test.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import adagrow.engine.runner as runner_module
from adagrow.cli import main
from adagrow.config import RECIPES, RunConfig
from adagrow.engine.fixed_grown import FixedGrownConfig, FixedGrownMethod
from adagrow.engine.method import RunContext
from adagrow.engine.runner import run
from adagrow.errors import AdaGrowError
from adagrow.grow.transformer import TransformerGrowConfig
from adagrow.models.transformer import GrowableBERT, create_transformer
from baselines.prune.magnitude import MagnitudeConfig, MagnitudePruning
from baselines.prune.wanda import WandaConfig, WandaPruning, activation_norms
from tests.test_text_data import write_sst2

VOCAB, MAX_LEN = 40, 12


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------- fixed BERT at an arch
def ctx_for(seed: int = 0) -> RunContext:
    cfg = RunConfig(dataset="sst2", method="fixed", model="bert", seed=seed)
    return RunContext(config=cfg, dataset=None, input_size=(MAX_LEN,), num_classes=2, device=torch.device("cpu"),
                      epochs=1, steps_per_epoch=1, data_meta={"vocab_size": VOCAB, "max_len": MAX_LEN})


@pytest.mark.parametrize("arch", ["D1W128", "D2W192", "D3W384"])
def test_a_fixed_bert_of_arch_a_is_the_growable_bert_built_at_a(arch):
    model = FixedGrownMethod(FixedGrownConfig(arch=arch)).build_model(ctx_for())
    direct = create_transformer("bert", arch, 2, vocab_size=VOCAB, max_len=MAX_LEN)
    assert isinstance(model, GrowableBERT) and model.arch == arch
    assert n_params(model) == n_params(direct)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in direct.state_dict().items()}


def test_a_pruning_run_builds_a_grown_bert_from_its_name_with_the_datasets_vocabulary():
    """``--method magnitude --model bert:D2W192`` (no --pretrained): the dense model is the growable BERT at that
    arch, its embedding sized by the text dataset's vocabulary and length, as the grower's."""
    from baselines.prune.pipeline import build_dense

    model = build_dense("bert:D2W192", ctx_for())
    direct = create_transformer("bert", "D2W192", 2, vocab_size=VOCAB, max_len=MAX_LEN)
    assert isinstance(model, GrowableBERT) and model.arch == "D2W192"
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in direct.state_dict().items()}
    assert model.tok_embed.num_embeddings == VOCAB


def test_the_fixed_bert_is_drawn_from_the_run_seed_alone():
    method = FixedGrownMethod(FixedGrownConfig(arch="D1W128"))
    a, b, c = method.build_model(ctx_for(0)), method.build_model(ctx_for(0)), method.build_model(ctx_for(1))
    torch.manual_seed(123)  # the global RNG plays no part
    d = method.build_model(ctx_for(0))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), d.parameters()))
    assert not torch.equal(a.tok_embed.weight, c.tok_embed.weight)


@pytest.mark.parametrize("bad", [dict(arch="D2W100"), dict(arch="W2"), dict(family="gpt"), dict(dropout=1.0)])
def test_fixed_grown_options_are_checked(bad):
    with pytest.raises(AdaGrowError):
        FixedGrownConfig(**bad)


@pytest.mark.parametrize("argv, needle", [
    (["--model", "bert"], "--method fixed --model bert needs --arch D<layers>W<width>"),
    (["--model", "bert", "--arch", "D2W100"], "not a multiple of the head size 64"),
    (["--model", "vit", "--arch", "D2W128"], "vit is a vision model and sst2 is a text dataset"),
])
def test_a_fixed_bert_without_a_usable_arch_is_refused_before_any_work(tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    rc = main(["train", "--dataset", "sst2", "--method", "fixed", *argv, "--data-dir", str(tmp_path / "no-data"),
               "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


# ------------------------------------------------------------------ runs on a tiny SST-2 (synthetic files)
@pytest.fixture
def tiny_sst2(tmp_path, monkeypatch):
    """A 200-sentence SST-2 in its on-disk format; the runner's loader skips the real row-count check."""
    data = tmp_path / "data"
    write_sst2(data / "sst2", n=200)
    monkeypatch.setattr(runner_module, "load_dataset",
                        functools.partial(runner_module.load_dataset, check_rows=False, vocab_size=60, max_len=MAX_LEN))
    return data


def text_run(data: Path, out: Path, method: str, mcfg, *, epochs: int, model: str = "bert", **kw) -> dict:
    recipe = dataclasses.replace(RECIPES.get("transformer-adamw"), batch_size=16, warmup_epochs=0.0)
    cfg = RunConfig(dataset="sst2", method=method, model=model, method_config=mcfg, recipe=recipe, epochs=epochs,
                    data_dir=str(data), output_dir=str(out), deterministic=True, threads=1, latency_repeats=2,
                    val_size=40, **kw)
    record = run(cfg, log=lambda line: None)
    assert record["status"] == "ok", record.get("error")
    return record


def test_the_fixed_bert_of_a_grown_runs_arch_has_the_grown_models_parameter_count(tiny_sst2, tmp_path):
    grown = text_run(tiny_sst2, tmp_path / "out", "adagrow", TransformerGrowConfig(
        family="bert", grow_interval=1, stop="none", vocab_size=None), epochs=3)
    arch = grown["arch"]
    assert arch != "D1W128"  # it grew (W, W: D1W256)
    fixed = text_run(tiny_sst2, tmp_path / "out", "fixed", FixedGrownConfig(arch=arch), epochs=1)
    meta_vocab = torch.load(Path(fixed["deploy_model"]), weights_only=False)["model"].spec.vocab_size
    direct = create_transformer("bert", arch, 2, vocab_size=meta_vocab, max_len=MAX_LEN)
    assert fixed["arch"] == arch
    assert fixed["params"] == grown["params"] == n_params(direct)
    assert fixed["macs"] == grown["macs"]


# ------------------------------------------------------------------------ Wanda on the growable BERT
def functional_linear_inputs(model: GrowableBERT, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input of every Linear of a growable BERT, by a forward pass written out here (pre-LN blocks, SDPA
    attention with padded keys masked), as rows [B·L, in_features]."""
    d, hd = model.spec.dim, model.spec.head_dim
    b, n = ids.shape
    x = F.layer_norm(model.tok_embed.weight[ids] + model.pos_embed[:, :n], (d,), model.embed_norm.weight,
                     model.embed_norm.bias)
    mask = (ids != 0)[:, None, None, :]
    out = {}
    for i, blk in enumerate(model.blocks):
        a = F.layer_norm(x, (d,), blk.norm1.weight, blk.norm1.bias)

        def heads(t):
            return t.view(b, n, d // hd, hd).transpose(1, 2)

        q, k, v = (F.linear(a, lin.weight, lin.bias) for lin in (blk.attn.q, blk.attn.k, blk.attn.v))
        o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=mask).transpose(1, 2).reshape(b, n, d)
        x = x + F.linear(o, blk.attn.proj.weight, blk.attn.proj.bias)
        c = F.layer_norm(x, (d,), blk.norm2.weight, blk.norm2.bias)
        h = F.gelu(F.linear(c, blk.fc1.weight, blk.fc1.bias))
        x = x + F.linear(h, blk.fc2.weight, blk.fc2.bias)
        for name, inp in (("attn.q", a), ("attn.k", a), ("attn.v", a), ("attn.proj", o), ("fc1", c), ("fc2", h)):
            out[f"blocks.{i}.{name}"] = inp.reshape(b * n, -1)
    return out


def padded_batches(seed: int = 0, pad_to: int = MAX_LEN) -> list[torch.Tensor]:
    """Two batches of sentences of 3..9 tokens ([CLS] first), padded with 0 to ``pad_to``."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(2):
        ids = torch.zeros(6, pad_to, dtype=torch.long)
        for row in ids:
            length = int(torch.randint(3, 10, (1,), generator=g))
            row[:length] = torch.randint(5, VOCAB, (length,), generator=g)
            row[0] = 2
        batches.append(ids)
    return batches


def trained_bert(arch: str = "D2W128") -> GrowableBERT:
    model = create_transformer("bert", arch, 2, vocab_size=VOCAB, max_len=MAX_LEN, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # weights and LayerNorm gains of unequal scales, so that ‖X‖ reorders |W|
        for p in model.parameters():
            p.mul_(1 + 3 * torch.rand(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model.eval()


def prune_ctx(batches) -> RunContext:
    ctx = ctx_for()
    ctx.train_batches = lambda: iter([(x, torch.zeros(len(x), dtype=torch.long)) for x in batches])
    return ctx


def wanda_paper_masks(model: GrowableBERT, batches, ratio: float) -> dict[str, torch.Tensor]:
    """Wanda's rule: ‖X_j‖₂ over the calibration set's tokens (real ones: padded positions are no tokens),
    S = |W|·‖X‖ per output row, the int(in·ratio) lowest of each row pruned."""
    sq: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for ids in batches:
            real = (ids != 0).reshape(-1)
            for name, rows in functional_linear_inputs(model, ids).items():
                sq[name] = sq.get(name, 0) + rows[real].pow(2).sum(0)
    modules = dict(model.named_modules())
    masks = {}
    for name, total in sq.items():
        w = modules[name].weight.detach()
        score = w.abs() * total.sqrt()[None, :]
        k = int(w.shape[1] * ratio)
        keep = torch.ones_like(w, dtype=torch.bool)
        keep.scatter_(1, score.argsort(dim=1)[:, :k], False)
        masks[name] = keep
    return masks


def test_wanda_prunes_a_growable_bert_by_the_papers_row_rule_over_real_tokens():
    model, batches = trained_bert(), padded_batches()
    expected = wanda_paper_masks(model, batches, 0.5)
    pruned, info = WandaPruning(WandaConfig(ratio=0.5, scope="row", layers="linear", calibration_batches=2)).prune(
        prune_ctx(batches), model)
    got = {name: m.weight_mask.bool() for name, m in pruned.named_modules() if hasattr(m, "weight_mask")}
    assert set(got) == set(expected)  # every Linear of every block, and not the classifier (head)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    assert not hasattr(pruned.head, "weight_mask") and info["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)


def test_wanda_norms_do_not_depend_on_how_much_padding_a_batch_carries():
    model = trained_bert()
    layers = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not model.head}
    short = activation_norms(model, layers, padded_batches(pad_to=9))
    long = activation_norms(model, layers, padded_batches(pad_to=MAX_LEN))  # the same sentences, 3 more pads each
    for name in layers:
        torch.testing.assert_close(short[name], long[name])


def test_row_wise_magnitude_on_a_growable_bert_prunes_the_lowest_half_of_each_row():
    model = trained_bert()
    dense = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    pruned, _ = MagnitudePruning(MagnitudeConfig(ratio=0.5, scope="row", layers="linear")).prune(ctx_for(), model)
    for name, m in pruned.named_modules():
        if name == "head" or name not in dense:
            continue
        w = dense[name]
        keep = torch.ones_like(w, dtype=torch.bool)
        keep.scatter_(1, w.abs().argsort(dim=1)[:, : w.shape[1] // 2], False)
        assert torch.equal(m.weight_mask.bool(), keep), name


# --------------------------------------------------------- the pipeline on text, from a run's deploy.pt
@pytest.mark.parametrize("method, mcfg", [
    ("wanda", dict(scope="row", calibration_batches=2)),
    ("magnitude", dict(scope="global")),
])
def test_pruning_a_trained_bert_records_its_base_accuracy_and_prunes_its_linear_layers(
        tiny_sst2, tmp_path, method, mcfg):
    base = text_run(tiny_sst2, tmp_path / "out", "fixed", FixedGrownConfig(arch="D1W128"), epochs=2)
    config = {"wanda": WandaConfig, "magnitude": MagnitudeConfig}[method](
        ratio=0.5, layers="linear", pretrained=base["deploy_model"], **mcfg)
    record = text_run(tiny_sst2, tmp_path / "out", method, config, epochs=1, tag=f"prune-bert-{method}")
    pruning = record["pruning"]
    # the base the pipeline loaded is the base run's model, evaluated on the same seed's splits
    assert pruning["dense"]["test_acc"] == pytest.approx(base["test_acc"])
    assert pruning["dense"]["val_acc"] == pytest.approx(base["val_acc"])
    assert pruning["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert pruning["pretrained_from"] == base["deploy_model"]
    assert {"val_acc", "test_acc"} <= set(pruning["after_prune"])
    deployed = torch.load(Path(record["deploy_model"]), weights_only=False)["model"]
    zeros = {n: float((m.weight == 0).float().mean()) for n, m in deployed.named_modules()
             if isinstance(m, torch.nn.Linear)}
    assert zeros.pop("head") == 0.0  # the classifier stays dense
    assert sum(zeros.values()) / len(zeros) == pytest.approx(0.5, abs=0.05)


# ------------------------------------------------------------------------------- the sst2 suite's entries
def test_the_sst2_suite_has_a_fixed_bert_of_each_grown_size_under_the_grown_runs_recipe():
    from suites import _load, run_config_for
    from tests.test_suites import fake_args

    entries = {e.name: e for e in _load().get("sst2")}
    for fixed, grown in (("fixed-bert-grown", "adagrow-bert"), ("fixed-bert-grown-adamw", "adagrow-bert-adamw")):
        e = entries[fixed]
        assert (e.method, e.model, e.reference) == ("fixed", "bert", True)
        assert e.derive == {"arch": ("arch", "sst2", grown)}  # the same seed's grown run's final arch
        assert e.recipe == entries[grown].recipe and entries[grown].reference
        # as the suite runs it, once the derived option has arrived as a plain value
        cfg = run_config_for(dataclasses.replace(e, options={**e.options, "arch": "D3W384"}), fake_args(), "sst2")
        resolved = cfg.resolved()
        resolved.validate()
        assert resolved.method_config == FixedGrownConfig(family="bert", arch="D3W384")
        assert resolved.recipe.name == entries[grown].recipe


def test_the_sst2_suite_prunes_the_converged_grown_bert_with_wanda_and_magnitude(tmp_path):
    from suites import _load, run_config_for
    from suites.datasets import PRUNE_BASE, SST2_FINETUNE_EPOCHS
    from tests.test_suites import fake_args

    entries = {e.name: e for e in _load().get("sst2")}
    rows = {n: e for n, e in entries.items() if n.startswith("prune-")}
    # the rows: Wanda 50% per row and per layer, magnitude 50% per row and global
    assert {(e.method, e.options["scope"], e.options["ratio"]) for e in rows.values()} == {
        ("wanda", "row", 0.5), ("wanda", "layer", 0.5), ("magnitude", "row", 0.5), ("magnitude", "global", 0.5)}
    base = entries[PRUNE_BASE]
    assert base.method == "adagrow" and base.reference
    deploy = tmp_path / "deploy.pt"
    deploy.write_bytes(b"")
    for e in rows.values():
        assert e.derive == {"base_run": ("run", "sst2", PRUNE_BASE)} and e.reference
        assert e.options["layers"] == "linear" and e.recipe == base.recipe and e.epochs == SST2_FINETUNE_EPOCHS
        cfg = run_config_for(dataclasses.replace(e, options={**e.options, "pretrained": str(deploy)}),
                             fake_args(profile="reference"), "sst2")
        resolved = cfg.resolved()
        resolved.validate()
        # every epoch of the run fine-tunes: the base is trained elsewhere, once (its own entry)
        assert resolved.total_epochs == SST2_FINETUNE_EPOCHS and resolved.method_config.finetune_epochs is None


# ------------------------------------------------------------------- reports: a base that has not learned
def pruning_record(tag: str, seed: int, base_acc: float | None, dataset: str = "sst2") -> dict:
    """A made-up pruning record (values are NOT measurements)."""
    dense = {} if base_acc is None else {"test_acc": base_acc, "val_acc": base_acc}
    return {"status": "ok", "method": "wanda", "dataset": dataset, "model": "bert", "seed": seed,
            "profile": "reference", "config": {"tag": tag, "dataset": dataset}, "arch": None, "test_acc": 60.0,
            "params": 1_000_000, "macs": 10_000_000, "gpu_seconds": {"finetune": 10.0},
            "pruning": {"dense": dense, "after_prune": {"test_acc": 55.0}}}


def test_a_pruning_row_on_a_base_below_the_bar_is_flagged():
    from reports.leaderboard import grid
    from reports.match import base_below_bar

    assert base_below_bar(pruning_record("x", 0, 69.9)) == "base 69.9% < 70%"  # SST-2's stated bar: 70%
    assert base_below_bar(pruning_record("x", 0, 70.0)) is None
    assert base_below_bar(pruning_record("x", 0, None)) == "base accuracy not recorded (bar 70%)"
    assert base_below_bar(pruning_record("x", 0, 30.0, dataset="mnist")) is None  # no bar stated for MNIST here
    assert base_below_bar({"dataset": "sst2", "test_acc": 40.0}) is None  # not a pruning record
    records = [pruning_record("prune-bert-wanda-row50-ft", 0, 55.0), pruning_record("prune-bert-wanda-row50-ft", 1, 82.0),
               pruning_record("prune-bert-magnitude-row50-ft", 0, 82.0)]
    table = grid(records, "sst2", "reference")
    labels = [line[0] for line in table.rows]
    assert "prune-bert-wanda-row50-ft ⚠ pruned an unlearned base: base 55.0% < 70%" in labels
    assert "prune-bert-magnitude-row50-ft" in labels
    assert any("has not learned" in note for note in table.footnotes)
    clean = grid(records[2:], "sst2", "reference")
    assert not any("has not learned" in note for note in clean.footnotes)  # other pages stay as they were
