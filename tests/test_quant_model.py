"""Model-level quantization, result records and ONNX export on tiny CPU models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from adagrow.errors import AdaGrowError
from adagrow.quant import quantize_model, quantize_weight
from adagrow.quant import run as quant_run
from adagrow.quant.deploy import export_onnx
from adagrow.quant.hessian import HessianAccumulator, output_error
from adagrow.quant.layers import QuantLayer
from tests.conftest import train_steps


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    fused = nn.Conv2d(8, 8, 5, padding=2)
    fused.branch_kernels = [(5, 5), (3, 3), (1, 1), (1, 3), (3, 1)]  # as an AdaGrow fused unit records
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        fused, nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),  # depth-wise: one Hessian per channel
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    ).eval()


def small_mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 5)).eval()


def batches(shape: tuple[int, ...], n: int = 4, size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, *shape, generator=g), torch.randint(0, 5, (size,), generator=g)) for _ in range(n)]


def learnable_batches(n: int, seed: int, size: int = 64):
    """Batches of a task small_mlp can learn: the label is the argmax of a fixed linear map of x."""
    teacher = torch.randn(32, 5, generator=torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(size, 32, generator=g) for _ in range(n)]
    return [(x, (x @ teacher).argmax(1)) for x in xs]


def trained_mlp() -> nn.Module:
    """small_mlp trained to ~90% test accuracy on the learnable task (a second of CPU)."""
    model = small_mlp().train()
    x, y = (torch.cat(t) for t in zip(*learnable_batches(16, seed=0)))
    train_steps(model, torch.optim.Adam(model.parameters(), lr=3e-3), x, y, 300)
    return model.eval()


def relative_gap(model: nn.Module, qmodel: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        ref = model(x)
        out = qmodel(x.to(next(qmodel.parameters()).dtype)).float()
    return ((out - ref).norm() / ref.norm()).item()


# limit: relative output gap of the model; layer_limit: relative squared error of any one layer
# (measured: ~2e-5 at 8 bits, ~4e-3 at 4 bits; each extra bit divides it by ~4)
@pytest.mark.parametrize("precision,limit,layer_limit", [("int8", 0.05, 1e-4), ("w4a16", 0.35, 2e-2)])
@pytest.mark.parametrize("method", ["rtn", "obs", "adagrow", "adagrow-rerank"])
def test_cnn_quantizes_and_stays_close(precision, limit, layer_limit, method):
    model = small_cnn()
    calib = batches((3, 12, 12))
    qmodel, report = quantize_model(model, calib, precision=precision, method=method, calib_size=48, seed=3)
    assert report["calib_samples"] == 48 and report["config"]["seed"] == 3
    assert [r["name"] for r in report["layers"]] == ["0", "2", "4", "8"]
    # every layer really changed (a no-op quantizer would report 0) and stays within its precision's error
    assert all(0 < r["rel_error"] < layer_limit for r in report["layers"])
    assert isinstance(qmodel[2], QuantLayer) and not isinstance(model[2], QuantLayer)  # the input is untouched
    test_x = batches((3, 12, 12), n=1, size=32, seed=9)[0][0]
    assert relative_gap(model, qmodel, test_x) < limit


def test_obs_layer_errors_beat_rtn_on_the_cnn():
    model, calib = small_cnn(), batches((3, 12, 12))
    rtn = quantize_model(model, calib, precision="w4a16", method="rtn")[1]
    obs = quantize_model(model, calib, precision="w4a16", method="obs")[1]
    assert obs["mean_rel_error"] < rtn["mean_rel_error"]


@pytest.mark.parametrize("precision", ["fp16", "int8", "w4a16"])
def test_linear_model(precision):
    model = small_mlp()
    qmodel, report = quantize_model(model, batches((32,)), precision=precision, method="adagrow", calib_size=64)
    assert relative_gap(model, qmodel, torch.randn(20, 32)) < (0.02 if precision != "w4a16" else 0.25)
    if precision == "fp16":
        assert report["quant_method"] == "cast" and next(qmodel.parameters()).dtype == torch.float16
    else:
        assert len(report["layers"]) == 3 and report["simulated"]


@pytest.mark.parametrize("method,group_size", [("rtn", -1), ("obs", -1), ("rtn", 8), ("obs", 8), ("adagrow", 8),
                                               ("adagrow-rerank", 8)])
def test_int8_layer_runs_exactly_the_solver_weights(method, group_size):
    model = small_mlp()
    with torch.no_grad():
        model[0].weight[:, 3] *= 20  # an input that is always 0 below holds each row's largest weight
    calib = [(x.index_fill(1, torch.tensor([3]), 0.0), y) for x, y in batches((32,))]
    qmodel, report = quantize_model(model, calib, precision="int8", method=method, group_size=group_size,
                                    calib_size=64)
    acc = HessianAccumulator(model[0])
    for x, _ in calib:
        acc.add(x)
    solved = quantize_weight(model[0].weight, acc.hessian[0], 8, method, group_size, sym=True).weight
    layer, x = qmodel[0], calib[0][0]
    x_q = torch.fake_quantize_per_tensor_affine(x, layer.act_scale, 0, -128, 127)
    with torch.no_grad():  # the layer multiplies by the solver's weights, bit for bit ...
        assert torch.equal(layer(x), nn.functional.linear(x_q, solved, layer.inner.bias))
    # ... and reports their error
    assert report["layers"][0]["rel_error"] == output_error(model[0].weight, solved, acc.hessian)[1]


def test_grouped_int8_cannot_be_exported_as_int8(tmp_path):
    pytest.importorskip("onnx")
    qmodel, _ = quantize_model(small_mlp(), batches((32,)), precision="int8", method="obs", group_size=8)
    with pytest.raises(AdaGrowError, match="group_size"):
        export_onnx(qmodel, torch.randn(1, 32), tmp_path / "grouped.onnx")


def test_int8_weights_are_on_the_signed_int8_grid():
    qmodel, _ = quantize_model(small_mlp(), batches((32,)), precision="int8", method="obs")
    layer = qmodel[2]
    codes = layer.inner.weight / layer.weight_scale[:, None]
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert codes.abs().max() <= 128


def test_excluded_layers_stay_full_precision():
    model = small_mlp()
    qmodel, report = quantize_model(model, batches((32,)), precision="w4a16", method="rtn", exclude=("0",))
    assert torch.equal(qmodel[0].weight, model[0].weight)
    assert [r["name"] for r in report["layers"]] == ["2", "4"]


def test_unknown_precision_is_a_user_error():
    with pytest.raises(AdaGrowError):
        quantize_model(small_mlp(), batches((32,)), precision="int3", method="rtn")


def test_run_quantize_and_table_records(tmp_path, monkeypatch):
    model = small_mlp()
    path = tmp_path / "deploy.pt"
    torch.save({"model": model, "dataset": "toy", "input_size": (32,), "num_classes": 5,
                "record": {"method": "adagrow"}}, path)
    data = batches((32,), n=3)
    bundle = SimpleNamespace(train=_Loader(data), test=_Loader(data), calibration=None)  # no augmentation to leave out
    monkeypatch.setattr(quant_run, "_bundle", lambda *a, **k: bundle)
    rec = quant_run.run_quantize(path, "int8", "adagrow", tmp_path, calib_size=32, seed=5)
    assert rec["method"] == "adagrow" and rec["precision"] == "int8" and rec["quant_method"] == "adagrow"
    assert rec["calib_size"] == 32 and rec["seed"] == 5 and len(rec["layer_errors"]) == 3
    assert rec["mean_rel_error"] > 0
    table = quant_run.quant_table(path, tmp_path, precisions=("fp16", "w4a16"), methods=("rtn", "obs"))
    assert [(r["precision"], r["quant_method"]) for r in table] == [("fp16", "cast"), ("w4a16", "rtn"),
                                                                    ("w4a16", "obs")]
    assert table[0]["fp32_accuracy"] == pytest.approx(quant_run.accuracy(model, data))


def test_int8_accuracy_of_a_trained_model_stays_within_a_point_of_fp32(tmp_path, monkeypatch):
    model = trained_mlp()
    path = tmp_path / "deploy.pt"
    torch.save({"model": model, "dataset": "toy", "input_size": (32,), "num_classes": 5, "record": {}}, path)
    bundle = SimpleNamespace(train=_Loader(learnable_batches(4, seed=1)), test=_Loader(learnable_batches(16, seed=2)),
                             calibration=None)
    monkeypatch.setattr(quant_run, "_bundle", lambda *a, **k: bundle)
    rec = quant_run.quant_table(path, tmp_path, precisions=("int8",), methods=("obs",), calib_size=256)[0]
    assert rec["fp32_accuracy"] > 80  # trained: far above the 20% of chance, so a point is a real margin
    assert abs(rec["accuracy"] - rec["fp32_accuracy"]) <= 1.0
    qmodel, _ = quantize_model(model, bundle.train, precision="int8", method="obs", calib_size=256)
    assert rec["accuracy"] == quant_run.accuracy(qmodel, bundle.test)  # the record is the quantized model's


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(AdaGrowError):
        quant_run.run_quantize(tmp_path / "nope.pt", "int8", "obs", tmp_path)


class _Loader:
    def __init__(self, data):
        self.data = data

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)

    def set_epoch(self, epoch):
        pass


def _calibrated_scale(calibration: torch.Tensor, act_calib: str) -> float:
    layer = nn.Linear(calibration.shape[1], 4)
    qmodel, report = quantize_model(nn.Sequential(layer).eval(), [calibration], precision="int8", method="rtn",
                                    calib_size=len(calibration), act_calib=act_calib)
    assert report["config"]["act_calib"] == act_calib and report["layers"][0]["act_scale"] == qmodel[0].act_scale
    return qmodel[0].act_scale


def _mse(x: torch.Tensor, scale: float) -> float:
    return (torch.fake_quantize_per_tensor_affine(x, scale, 0, -128, 127) - x).pow(2).mean().item()


def test_int8_max_calibration_spans_the_largest_input_and_histogram_finds_the_least_error_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 16, generator=g) * 2 - 1  # uniform on [-1, 1)
    # max: the symmetric grid of 255 steps over [-|x|max, |x|max]
    assert _calibrated_scale(x, "max") == pytest.approx(2 * x.abs().max().item() / 255, rel=1e-6)
    # a uniform input has no tail to clip: the least-error range is (nearly) the whole range
    assert _calibrated_scale(x, "histogram") == pytest.approx(2 / 255, rel=0.05)
    # heavy tails (Student t, 3 degrees of freedom): the oracle is the definition, the least mean squared rounding +
    # clipping error over a fine grid of scales, searched by brute force here.  torch's observer searches a
    # 2,048-bin histogram greedily: near that least error (measured 1.33×), and well below the maximum's (1.70×)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        heavy = torch.distributions.StudentT(3.0).sample((2048, 100))
    grid = torch.logspace(-4, 0, 400).mul(2 * heavy.abs().max() / 255).tolist()
    best = min(_mse(heavy, s) for s in grid)
    histogram, largest = _mse(heavy, _calibrated_scale(heavy, "histogram")), _mse(heavy, _calibrated_scale(heavy, "max"))
    assert histogram < 1.5 * best < largest


def test_an_unknown_activation_calibration_is_one_message():
    with pytest.raises(AdaGrowError, match="activation calibration 'kl'"):
        quantize_model(small_mlp(), batches((32,)), precision="int8", act_calib="kl")
