"""Shipped images: offline, grayscale, cropped/resized exactly as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color, data, transform

from stablerecon.data import available_images, image
from stablerecon.data import images as images_module


def test_available_images_lists_the_offline_set():
    names = available_images()
    assert names == sorted(names)
    for expected in ("camera", "astronaut", "brick", "moon", "coins", "text", "checkerboard",
                     "shepp_logan_phantom"):
        assert expected in names
    # images that need a download (pooch) must not be offered
    for needs_download in ("brain", "cells3d", "eagle", "kidney", "lily", "skin", "vortex"):
        assert needs_download not in names


@pytest.mark.parametrize("name", available_images())
def test_every_image_loads_offline_in_unit_range(name):
    x = image(name, size=32)
    assert x.shape == (1, 1, 32, 32)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(x.std()) > 0.01  # not blank


def test_camera_at_native_size_is_the_file_scaled_to_unit_range():
    x = image("camera", size=512, dtype=torch.float64)
    np.testing.assert_allclose(x[0, 0].numpy(), data.camera() / 255.0, rtol=0, atol=1e-15)


def test_rgb_converted_with_rgb2gray():
    x = image("astronaut", size=512, dtype=torch.float64)
    np.testing.assert_allclose(x[0, 0].numpy(), color.rgb2gray(data.astronaut()), atol=1e-12)


def test_centre_crop_then_antialiased_resize():
    # coins is 303 x 384: the square crop keeps columns 40..342
    ref = data.coins()[:, 40:343] / 255.0
    expected = transform.resize(ref, (64, 64), order=1, mode="reflect", anti_aliasing=True)
    got = image("coins", size=64, dtype=torch.float64)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_rectangular_size_crops_to_aspect():
    # camera 512 x 512 to aspect H/W = 1/2: rows 128..383 kept
    expected = transform.resize(data.camera()[128:384] / 255.0, (64, 128), anti_aliasing=True)
    got = image("camera", size=(64, 128), dtype=torch.float64)
    assert got.shape == (1, 1, 64, 128)
    np.testing.assert_allclose(got[0, 0].numpy(), expected, atol=1e-12)


def test_no_crop_resizes_the_whole_image():
    expected = transform.resize(data.coins() / 255.0, (40, 50), anti_aliasing=True)
    got = image("coins", size=(40, 50), crop=False, dtype=torch.float64)
    np.testing.assert_allclose(got[0, 0].numpy(), expected, atol=1e-12)


def test_loaded_arrays_are_cached_and_protected():
    images_module._load_gray.cache_clear()
    x = image("moon", size=512)
    x.fill_(0.0)  # the caller owns its tensor; the cache must not change
    y = image("moon", size=512)
    assert images_module._load_gray.cache_info().hits == 1
    assert float(y.max()) > 0.5
    assert not images_module._load_gray("moon").flags.writeable


def test_unknown_name_lists_available_images():
    with pytest.raises(ValueError, match=r"name must be one of .*'camera'.*got 'lena'"):
        image("lena")


@pytest.mark.parametrize("size", [0, -3, (0, 4)])
def test_non_positive_size(size):
    with pytest.raises(ValueError, match="size must be positive"):
        image("camera", size=size)


@pytest.mark.parametrize("size", [1.5, "64", (1, 2, 3), True])
def test_bad_size_type(size):
    with pytest.raises(TypeError, match="size must be an int or a pair of ints"):
        image("camera", size=size)


def test_bad_dtype():
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        image("camera", size=8, dtype=torch.int64)
