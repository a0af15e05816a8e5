"""Phantoms: Shepp-Logan against scikit-image, random ellipses against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data, transform

from stablerecon.data import ellipses, shepp_logan


def test_shepp_logan_reproduces_skimage_phantom_at_400():
    ref = data.shepp_logan_phantom()  # 400 x 400, the modified (Toft) phantom, 8-bit file
    p = shepp_logan(400, dtype=torch.float64)[0, 0].numpy()
    assert np.corrcoef(p.ravel(), ref.ravel())[0, 1] > 0.999
    assert np.abs(p - ref).max() <= 0.5 / 255 + 1e-9  # only the file's 8-bit rounding


def test_shepp_logan_agrees_with_resized_skimage_phantom():
    # sharp analytic edges vs the anti-aliased downsampled file: high but not perfect agreement
    ref = transform.resize(data.shepp_logan_phantom(), (256, 256), anti_aliasing=True)
    p = shepp_logan(256)[0, 0].numpy()
    assert np.corrcoef(p.ravel(), ref.ravel())[0, 1] > 0.95


def test_shepp_logan_range_levels_and_closed_form_values():
    p = shepp_logan(201, dtype=torch.float64)
    assert p.shape == (1, 1, 201, 201) and p.dtype == torch.float64
    assert float(p.min()) == 0.0 and float(p.max()) == 1.0
    # centre of the grid is (0, 0): skull + brain = 1 - 0.8 (modified), (2 - 0.98) / 2 (original)
    assert p[0, 0, 100, 100].item() == pytest.approx(0.2)
    q = shepp_logan(201, modified=False, dtype=torch.float64)
    assert q[0, 0, 100, 100].item() == pytest.approx(0.51)
    assert float(q.min()) == 0.0 and float(q.max()) == 1.0
    # modified levels are multiples of 0.1
    levels = np.unique(np.round(p.numpy(), 6))
    np.testing.assert_allclose(levels * 10, np.round(levels * 10), atol=1e-6)


def test_shepp_logan_support_area_is_the_outer_ellipse():
    n = 512
    # original intensities: everything inside the skull is > 0, so the support is the outer
    # ellipse, of area pi * 0.69 * 0.92 on [-1, 1]^2 (grid spacing 2 / (n - 1))
    q = shepp_logan(n, modified=False)[0, 0].numpy()
    area = (q > 0).sum() * (2.0 / (n - 1)) ** 2
    assert area == pytest.approx(math.pi * 0.69 * 0.92, rel=0.01)
    # in the modified phantom the ventricles are 0 inside the skull
    p = shepp_logan(n)[0, 0].numpy()
    assert (p > 0).sum() < (q > 0).sum()


def test_ellipses_shape_range_and_normalisation():
    e = ellipses(20, 64, seed=0)
    assert e.shape == (20, 1, 64, 64) and e.dtype == torch.float32
    assert float(e.min()) == 0.0
    torch.testing.assert_close(e.flatten(1).amax(1), torch.ones(20))


def test_ellipses_seeds():
    a = ellipses(8, 48, seed=1)
    assert torch.equal(a, ellipses(8, 48, seed=1))
    assert not torch.equal(a, ellipses(8, 48, seed=2))
    # images within one batch differ from each other
    assert len({tuple(im.flatten().tolist()) for im in a}) == 8
    # prefix stable: the first m phantoms do not depend on n
    assert torch.equal(ellipses(3, 48, seed=1), a[:3])
    gen = np.random.default_rng(1)
    assert torch.equal(ellipses(8, 48, seed=gen), a)


def test_ellipses_large_batches_hold_every_phantom():
    # Generation is vectorised over phantoms in chunks of 2**22 pixels (16 images at 512 x 512):
    # a batch spanning three chunks must still give every phantom, each normalised to peak 1,
    # distinct from the others, and the same ones as a smaller batch (prefix stability).
    e = ellipses(40, 512, seed=0)
    assert e.shape == (40, 1, 512, 512)
    torch.testing.assert_close(e.flatten(1).amax(1), torch.ones(40))
    assert float(e.min()) == 0.0
    assert len({round(float(im.sum()), 3) for im in e}) == 40
    assert torch.equal(ellipses(3, 512, seed=0), e[:3])


def test_single_ellipse_area_matches_closed_form():
    a = 0.3
    n = 257
    e = ellipses(
        10, n, seed=3, min_ellipses=1, max_ellipses=1, min_axis=a, max_axis=a,
        min_aspect=1.0,
        max_centre_radius=0.6,
    )
    # a disc of radius a, fully inside the field of view: a single level 1
    assert set(np.unique(e.numpy()).tolist()) == {0.0, 1.0}
    areas = e.flatten(1).sum(1).numpy() * (2.0 / (n - 1)) ** 2
    np.testing.assert_allclose(areas, math.pi * a * a, rtol=0.02)


def test_ellipses_are_rich_training_data():
    e = ellipses(50, 128, seed=0).numpy()
    n_levels = [len(np.unique(im)) for im in e]
    assert min(n_levels) >= 4  # several overlapping ellipses of different intensities
    cover = (e > 0).mean(axis=(1, 2, 3))
    assert 0.05 < cover.mean() < 0.9  # neither empty nor saturated


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n": 0}, ValueError, "n must be >= 1"),
        ({"n": 2.0}, TypeError, "n must be an int"),
        ({"size": 0}, ValueError, "size must be >= 1"),
        ({"min_ellipses": 5, "max_ellipses": 3}, ValueError, "max_ellipses must be >="),
        ({"min_axis": 0.0}, ValueError, "min_axis must be a positive"),
        ({"min_axis": 0.5, "max_axis": 0.1}, ValueError, "max_axis must be >= min_axis"),
        ({"seed": "a"}, TypeError, "seed must be an int"),
        ({"max_centre_radius": -1.0}, ValueError, "max_centre_radius must be"),
        ({"min_aspect": 0.0}, ValueError, "min_aspect must be in"),
    ],
)
def test_ellipses_validation(kwargs, exc, match):
    args = {"n": 2, "size": 16, "seed": 0} | kwargs
    with pytest.raises(exc, match=match):
        ellipses(**args)


def test_shepp_logan_validation():
    with pytest.raises(ValueError, match="size must be >= 1"):
        shepp_logan(0)
    with pytest.raises(TypeError, match="size must be an int"):
        shepp_logan(12.5)
