"""The two batch loaders: determinism from (seed, epoch), augmentation, shapes and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adagrow.data import synthetic
from adagrow.data.registry import Augment
from adagrow.data.resident import ResidentLoader, random_crop
from adagrow.data.streaming import StreamingLoader, build_transform

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _data(n=64, channels=3, size=32):
    labels = np.arange(n) % 10
    return torch.from_numpy(synthetic.images(labels, channels, size)), torch.from_numpy(labels)


def _resident(train=True, seed=0, n=64, crop_pad=4, flip=True, batch_size=16):
    x, y = _data(n)
    return ResidentLoader(x, y, batch_size=batch_size, mean=MEAN, std=STD, seed=seed,
                          device=torch.device("cpu"), train=train, crop_pad=crop_pad, flip=flip)


def _batches(loader, epoch):
    loader.set_epoch(epoch)
    return [(x.clone(), y.clone()) for x, y in loader]


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def _pixels(x, mean=MEAN, std=STD):
    """Undo the normalisation: back to 0..255 values."""
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return ((x * s + m) * 255).round()


def test_resident_same_epoch_same_batches_also_in_a_new_loader():
    first = _batches(_resident(), 3)
    assert _same(first, _batches(_resident(), 3))  # a resumed run builds a fresh loader
    assert not _same(first, _batches(_resident(), 4))
    assert not _same(first, _batches(_resident(seed=1), 3))


def test_resident_train_drops_last_eval_keeps_all_in_order():
    train, test = _resident(n=70), _resident(train=False, n=70)
    assert len(train) == 4 and sum(len(y) for _, y in train) == 64
    assert len(test) == 5
    ys = torch.cat([y for _, y in test])
    assert torch.equal(ys, torch.arange(70) % 10)


def test_resident_eval_batches_are_normalised_and_unaugmented():
    x, _ = _data(16)
    (xb, _), = list(_resident(train=False, n=16))
    expected = (x.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert xb.dtype == torch.float32 and torch.allclose(xb, expected, atol=1e-5)


def test_resident_augmentation_keeps_labels_with_their_images():
    for xb, yb in _resident():
        px = _pixels(xb)
        bright = torch.tensor([synthetic.class_value(int(v)) for v in yb], dtype=torch.float32)
        assert xb.shape == (16, 3, 32, 32)
        assert torch.equal(px.amax(dim=(1, 2, 3)), bright)


def _left_minus_right(x):
    return x[..., :16].mean(dim=(1, 2, 3)) - x[..., 16:].mean(dim=(1, 2, 3))


def test_flip_only_when_asked():
    no_flip = torch.cat([_left_minus_right(x) for x, _ in _resident(flip=False)])
    assert (no_flip > 0).all()  # bright half stays left under any crop shift
    flipped = torch.cat([_left_minus_right(x) for x, _ in _resident(flip=True)])
    assert (flipped < 0).any() and (flipped > 0).any()


def test_crop_shifts_vary_and_fill_with_zero_pixels():
    shifted = 0
    for xb, _ in _resident(flip=False):
        px = _pixels(xb)
        shifted += int((px[:, :, :, -4:] != 0).any(dim=(1, 2, 3)).sum() == 0)
        assert set(px.unique().tolist()) <= {0.0, *map(float, (synthetic.class_value(k) for k in range(10)))}
    # Some images moved (their rightmost columns are padding zeros or were zeros all along), and
    # some moved right, bringing zero padding to the left edge.
    lefts = torch.cat([_pixels(x)[:, 0, :, 0].amin(dim=1) for x, _ in _resident(flip=False)])
    assert (lefts == 0).any() and (lefts > 0).any()


def test_random_crop_matches_a_per_image_reference():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    offsets = torch.tensor([[0, 0], [4, 4], [2, 2], [0, 4], [3, 1], [4, 0]])
    out = random_crop(x, offsets, 2)
    padded = F.pad(x, (2, 2, 2, 2))
    for i, (dy, dx) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])
    assert torch.equal(out[2], x[2])  # offset (pad, pad) is the identity


def test_resident_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        ResidentLoader(torch.zeros(4, 3, 8, 8), torch.zeros(4), batch_size=2, mean=MEAN, std=STD,
                       seed=0, device=torch.device("cpu"), train=False)


def _streaming(train=True, seed=0, num_workers=0, n=24):
    x, y = _data(n)
    dataset = list(zip(x, y.tolist()))
    transform = build_transform(Augment(crop_pad=4, flip=True, size=32), MEAN, STD, train)
    return StreamingLoader(dataset, list(range(n)), transform, batch_size=8, seed=seed,
                           device=torch.device("cpu"), train=train, num_workers=num_workers)


def test_streaming_determinism_and_independence_from_workers():
    first = _batches(_streaming(), 2)
    assert _same(first, _batches(_streaming(), 2))
    assert not _same(first, _batches(_streaming(), 3))
    assert _same(first, _batches(_streaming(num_workers=1), 2))


def test_streaming_does_not_disturb_the_global_generator():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _batches(_streaming(), 0)
    assert torch.equal(torch.rand(3), expected)


def test_streaming_eval_matches_plain_normalisation():
    x, _ = _data(24)
    ys, xs = [], []
    for xb, yb in _streaming(train=False):
        xs.append(xb)
        ys.append(yb)
    expected = (x.float() / 255 - 0.5) / 0.25
    assert torch.allclose(torch.cat(xs), expected, atol=1e-5)
    assert torch.equal(torch.cat(ys), torch.arange(24) % 10) and ys[0].dtype == torch.int64


def test_imagenet_transforms_give_224_from_any_size():
    from PIL import Image

    aug = Augment(flip=True, resized_crop=True, size=224, eval_resize=256)
    image = Image.new("RGB", (300, 180))
    for train in (True, False):
        out = build_transform(aug, MEAN, STD, train)(image)
        assert out.shape == (3, 224, 224) and out.dtype == torch.float32


@pytest.mark.gpu
def test_resident_batches_identical_on_cpu_and_cuda():
    x, y = _data(64)
    kw = dict(batch_size=16, mean=MEAN, std=STD, seed=5, train=True, crop_pad=4, flip=True)
    cpu = ResidentLoader(x, y, device=torch.device("cpu"), **kw)
    gpu = ResidentLoader(x, y, device=torch.device("cuda"), **kw)
    for (xc, yc), (xg, yg) in zip(_batches(cpu, 1), _batches(gpu, 1)):
        assert xg.is_cuda and torch.equal(yc, yg.cpu()) and torch.allclose(xc, xg.cpu())
