"""Simulated birdcage coil maps: normalisation, the Biot-Savart-like closed form, geometry, smoothness."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from stablerecon.operators import birdcage_maps


def total_variation(maps: np.ndarray) -> float:
    """Anisotropic total variation of a stack of complex maps, relative to its l1 norm."""
    tv = np.abs(np.diff(maps, axis=-1)).sum() + np.abs(np.diff(maps, axis=-2)).sum()
    return float(tv / np.abs(maps).sum())


@pytest.mark.parametrize("n_coils", [1, 4, 8, 12])
@pytest.mark.parametrize("size", [32, (24, 40), (17, 15)])
def test_normalised_maps_have_unit_sum_of_squares(n_coils: int, size: int | tuple[int, int]) -> None:
    maps = birdcage_maps(n_coils, size)
    h, w = (size, size) if isinstance(size, int) else size
    assert maps.shape == (n_coils, h, w) and maps.dtype == torch.complex64
    sos = maps.abs().square().sum(dim=0).double()
    np.testing.assert_allclose(sos.numpy(), 1.0, atol=1e-6)
    assert birdcage_maps(n_coils, size, dtype=torch.complex128).dtype == torch.complex128


def test_unnormalised_maps_follow_the_closed_form() -> None:
    """|S_c| = 1 / |p - q_c| and angle(S_c) = angle(p - q_c) - theta_c, p in [-1, 1)^2 units."""
    n_coils, h, w, radius = 5, 12, 10, 1.7
    maps = birdcage_maps(n_coils, (h, w), radius=radius, normalize=False, dtype=torch.complex128).numpy()
    for c, (i, j) in itertools.product(range(n_coils), [(0, 0), (6, 5), (11, 9), (3, 8)]):
        theta = 2 * math.pi * c / n_coils
        dx = (j - w // 2) / (w / 2) - radius * math.cos(theta)
        dy = (i - h // 2) / (h / 2) - radius * math.sin(theta)
        expected = np.exp(1j * (math.atan2(dy, dx) - theta)) / math.hypot(dx, dy)
        assert maps[c, i, j] == pytest.approx(expected, rel=1e-12)


def test_each_coil_is_brightest_at_the_nearest_edge() -> None:
    n = 32
    mag = birdcage_maps(4, n, normalize=False).abs().numpy()
    # element 0 at +x (right), 1 at +y (last rows), 2 at -x (left), 3 at -y (first rows)
    expected = [(n // 2, n - 1), (n - 1, n // 2), (n // 2, 0), (0, n // 2)]
    for c, where in enumerate(expected):
        assert np.unravel_index(mag[c].argmax(), mag[c].shape) == where


def test_magnitudes_are_rotations_of_each_other() -> None:
    """On a grid symmetric about the centre (odd size), coil c+1 is coil c turned by 90 degrees."""
    mag = birdcage_maps(4, 33).abs().numpy()
    for c in range(3):
        np.testing.assert_allclose(mag[c + 1], mag[c][::-1, :].T, atol=1e-6)


def test_maps_are_smooth_distinct_and_phase_varies() -> None:
    maps = birdcage_maps(8, 64).numpy()
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(maps.shape) + 1j * rng.standard_normal(maps.shape)
    assert total_variation(maps) < 0.05 * total_variation(noise)
    flat = maps.reshape(8, -1)
    flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    corr = np.abs(flat.conj() @ flat.T)
    assert np.all(corr[~np.eye(8, dtype=bool)] < 0.95)
    for c in range(8):
        assert np.std(np.angle(maps[c] * np.conj(maps[c, 32, 32]))) > 0.3
    assert np.abs(maps).min() > 0


def test_smaller_radius_gives_more_localised_maps() -> None:
    def contrast(radius: float) -> float:
        mag = birdcage_maps(8, 32, radius=radius).abs().numpy()
        return float((mag.max(axis=(1, 2)) / mag.min(axis=(1, 2))).mean())

    assert contrast(1.45) > contrast(2.0) > contrast(4.0) > 1.0


def test_rejects_bad_arguments() -> None:
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="'n_coils'"):
            birdcage_maps(bad, 16)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'size'"):
        birdcage_maps(4, 0)
    with pytest.raises(TypeError, match="'size'"):
        birdcage_maps(4, (16, 16, 16))  # type: ignore[arg-type]
    for bad in (1.0, math.sqrt(2.0), -3.0, math.inf):
        with pytest.raises(ValueError, match="'radius'"):
            birdcage_maps(4, 16, radius=bad)
    with pytest.raises(TypeError, match="'dtype'"):
        birdcage_maps(4, 16, dtype=torch.float32)
    with pytest.raises(TypeError, match="'normalize'"):
        birdcage_maps(4, 16, normalize=1)  # type: ignore[arg-type]
