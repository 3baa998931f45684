"""Growable families, architecture strings and the public API."""

import pytest
import torch

from adagrow.api import create_model, fuse, profile
from adagrow.errors import ArchitectureError
from adagrow.models.arch import format_arch, parse_arch
from adagrow.models.cnn import GrowableCNN


@pytest.mark.parametrize("arch,depths", [("1-2-2", (1, 2, 2)), ("ResNet-1-2-2-1", (1, 2, 2, 1)),
                                         ("0-0-0", (0, 0, 0)), ((3, 3, 3), (3, 3, 3))])
def test_parse_arch(arch, depths):
    assert parse_arch(arch) == depths
    assert format_arch(depths) == "-".join(map(str, depths))


@pytest.mark.parametrize("bad", ["", "1-2", "1-2-3-4-5", "1--2-2", "a-b-c", "1-2-2-", "Foo-1-2-2", "1.5-2-2", (1, "2", 3)])
def test_malformed_arch_raises_clear_error(bad):
    with pytest.raises(ArchitectureError, match="architecture|family"):
        create_model("vgg", bad, num_classes=10)


def test_unknown_family():
    with pytest.raises(ArchitectureError, match="unknown CNN family"):
        create_model("densenet", "1-1-1", num_classes=10)


@pytest.mark.parametrize("family", ["vgg", "resnet", "bottleneck", "mobilenetv3"])
@pytest.mark.parametrize("arch,chans,res,classes", [("0-0-0", 3, 32, 10), ("1-1-1-1", 1, 28, 7), ("1-0-2", 3, 64, 200)])
def test_families_any_input_and_classes(family, arch, chans, res, classes):
    model = create_model(family, arch, num_classes=classes, in_chans=chans)
    x = torch.randn(2, chans, res, res)
    assert model(x).shape == (2, classes)
    assert model.arch() == arch
    model.eval()
    fused = fuse(model)
    assert torch.allclose(fused(x), model(x), rtol=1e-4, atol=1e-5)


def test_structure_round_trip_with_branches():
    torch.manual_seed(0)
    model = create_model("resnet", "1-1-1", num_classes=10)
    model.grow_width()
    model.grow_width()
    model.grow_depth()
    rebuilt = GrowableCNN.from_structure(model.structure())
    rebuilt.load_state_dict(model.state_dict())  # strict
    x = torch.randn(2, 3, 16, 16)
    model.eval(), rebuilt.eval()
    assert torch.equal(model(x), rebuilt(x))


def test_profile_reports_deploy_and_thesis_numbers():
    model = create_model("vgg", "1-2-2", num_classes=10)
    p = profile(model, (3, 32, 32))
    assert p["thesis_params"] == 669_290
    fused = profile(fuse(model), (3, 32, 32))
    assert set(fused) == {"params", "macs"} and fused["params"] < p["params"]


def test_mobilenet_layout():
    model = create_model("mobilenetv3", "1-1-1-1", num_classes=10)
    assert model.widths == (16, 32, 64, 96) and model.kernels == (3, 5, 5, 5)
    assert model.stem.unit.stride == 2
    dw = model.blocks[1][0].unit
    assert dw.groups == dw.in_ch == 128 and dw.kernel == 5
    assert model.blocks[1][0].se.reduce.out_ch == 32  # 128 / 4
    assert create_model("mobilenetv3", "1-1-1", num_classes=10).widths == (32, 64, 96)
