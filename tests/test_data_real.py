"""The real MNIST and CIFAR-10 of shared/data (skipped when absent): counts, splits, known pixels."""

from __future__ import annotations

import pytest
import torch

from adagrow.data import load_dataset


@pytest.fixture(scope="session")
def cifar_cache(tmp_path_factory, shared_data):
    return tmp_path_factory.mktemp("cifar-cache")


@pytest.fixture(scope="session")
def cifar10(shared_data, cifar_cache):
    """Extracted once per session (a few seconds), md5-checked by torchvision."""
    return load_dataset("cifar10", shared_data, batch_size=500, device=torch.device("cpu"), seed=0,
                        cache_dir=cifar_cache)


def test_real_cifar10_counts_and_split(cifar10):
    assert (cifar10.meta["train_size"], cifar10.meta["val_size"], cifar10.meta["test_size"]) == (45_000, 5_000, 10_000)
    assert cifar10.meta["resident"] is True
    assert torch.equal(cifar10.test.labels.bincount(), torch.full((10,), 1000))
    # Training and validation together are the 50,000 training images, 5,000 per class.
    both = torch.cat([cifar10.train.labels, cifar10.val.labels])
    assert torch.equal(both.bincount(), torch.full((10,), 5000))


def test_real_cifar10_known_first_test_image(cifar10):
    # test_batch[0] is domestic_cat_s_000907.png (class 3), red plane starting 158, 159, 165.
    assert int(cifar10.test.labels[0]) == 3
    assert cifar10.test.images[0, 0, 0, :3].tolist() == [158, 159, 165]


def test_real_cifar10_epoch_batches(cifar10):
    cifar10.train.set_epoch(0)
    xs = next(iter(cifar10.train))[0]
    assert xs.shape == (500, 3, 32, 32) and len(cifar10.train) == 90
    # Unaugmented images normalised with the dataset's own statistics: about zero mean, unit
    # spread per channel.  (Training batches are darker: the crops bring in zero padding.)
    xv = torch.cat([x for x, _ in cifar10.val])
    assert xv.mean(dim=(0, 2, 3)).abs().max() < 0.05
    assert (xv.std(dim=(0, 2, 3)) - 1).abs().max() < 0.05


def test_real_cifar10_second_load_reuses_the_extraction(shared_data, cifar_cache, cifar10):
    extracted = cifar_cache / "cifar10" / "extracted" / "cifar-10-batches-py" / "data_batch_1"
    before = extracted.stat().st_ino
    again = load_dataset("cifar10", shared_data, batch_size=500, device=torch.device("cpu"), seed=0,
                         cache_dir=cifar_cache, test_subset=100)
    assert extracted.stat().st_ino == before and again.meta["test_size"] == 100


def test_real_mnist(shared_data, tmp_path):
    bundle = load_dataset("mnist", shared_data, batch_size=1000, device=torch.device("cpu"), seed=0,
                          cache_dir=tmp_path)
    assert (bundle.meta["train_size"], bundle.meta["val_size"], bundle.meta["test_size"]) == (54_000, 6_000, 10_000)
    assert bundle.input_size == (1, 32, 32) and bundle.test.images.shape == (10_000, 1, 32, 32)
    # The 2-px zero border added around every 28x28 digit.
    assert int(bundle.test.images[:, :, :2].max()) == 0 and int(bundle.test.images[:, :, :, -2:].max()) == 0
    bundle.train.set_epoch(0)
    assert sum(len(y) for _, y in bundle.train) == 54_000
