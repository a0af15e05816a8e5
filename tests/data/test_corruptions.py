"""Corruptions: the documented ImageNet-C distributions, seeds, severities, clipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from stablerecon.data import (
    CORRUPTIONS,
    SEVERITY_PARAMETERS,
    corrupt,
    gaussian,
    image,
    impulse,
    shot,
    speckle,
)

# Hendrycks & Dietterich (2019), imagenet_c/corruptions.py
IMAGENET_C = {
    "gaussian": [0.08, 0.12, 0.18, 0.26, 0.38],
    "shot": [60, 25, 12, 5, 3],
    "speckle": [0.15, 0.2, 0.35, 0.45, 0.6],
    "impulse": [0.03, 0.06, 0.09, 0.17, 0.27],
}


@pytest.fixture(scope="module")
def camera() -> torch.Tensor:
    return image("camera", size=128)


def test_parameter_table_is_imagenet_c():
    assert set(CORRUPTIONS) == set(IMAGENET_C)
    for kind, values in IMAGENET_C.items():
        np.testing.assert_allclose(SEVERITY_PARAMETERS[kind], values)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_range_shape_dtype_and_seed(camera, kind):
    for severity in range(1, 6):
        y = corrupt(camera, kind, severity, seed=0)
        assert y.shape == camera.shape and y.dtype == camera.dtype
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert torch.equal(y, corrupt(camera, kind, severity, seed=0))
        assert not torch.equal(y, corrupt(camera, kind, severity, seed=1))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(corrupt(camera, kind, 3, seed=g1), corrupt(camera, kind, 3, seed=g2))
    torch.manual_seed(3)
    a = corrupt(camera, kind, 3)
    torch.manual_seed(3)
    assert torch.equal(a, corrupt(camera, kind, 3))


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_severity_is_monotone(camera, kind):
    change = [float((corrupt(camera, kind, s, seed=0) - camera).abs().mean()) for s in range(1, 6)]
    assert all(b > a for a, b in zip(change, change[1:], strict=False)), change


def test_dispatcher_matches_functions(camera):
    for kind, f in (("gaussian", gaussian), ("shot", shot), ("speckle", speckle),
                    ("impulse", impulse)):
        assert torch.equal(corrupt(camera, kind, 2, seed=4), f(camera, 2, seed=4))


def _clipped_normal_moments(mean: float, sd: float) -> tuple[float, float]:
    """Mean and std of clip(mean + sd * Z, 0, 1), by quadrature."""
    lo, hi = (0.0 - mean) / sd, (1.0 - mean) / sd
    phi = stats.norm.pdf
    m1 = (
        integrate.quad(lambda z: (mean + sd * z) * phi(z), lo, hi)[0]
        + stats.norm.sf(hi)
    )
    m2 = (
        integrate.quad(lambda z: (mean + sd * z) ** 2 * phi(z), lo, hi)[0]
        + stats.norm.sf(hi)
    )
    return m1, float(np.sqrt(m2 - m1**2))


N_PIX = 256 * 256


@pytest.mark.parametrize("severity", range(1, 6))
def test_gaussian_statistics(severity):
    sigma = IMAGENET_C["gaussian"][severity - 1]
    x = torch.full((1, 1, 256, 256), 0.5, dtype=torch.float64)
    y = gaussian(x, severity, seed=severity)
    m, s = _clipped_normal_moments(0.5, sigma)
    assert float(y.std()) == pytest.approx(s, rel=0.02)
    assert float(y.mean()) == pytest.approx(m, abs=5 * s / np.sqrt(N_PIX))
    if severity == 1:  # essentially no clipping: the residual std is sigma itself
        assert float((y - x).std()) == pytest.approx(sigma, rel=0.02)
    # the clipped fraction is the normal tail probability
    p = 2 * stats.norm.sf(0.5 / sigma)
    frac = float(((y == 0) | (y == 1)).double().mean())
    assert frac == pytest.approx(p, abs=5 * np.sqrt(p * (1 - p) / N_PIX) + 1e-9)


@pytest.mark.parametrize("severity", range(1, 6))
def test_speckle_statistics(severity):
    sigma = IMAGENET_C["speckle"][severity - 1]
    x = torch.full((1, 1, 256, 256), 0.5, dtype=torch.float64)
    y = speckle(x, severity, seed=severity)
    m, s = _clipped_normal_moments(0.5, 0.5 * sigma)
    assert float(y.std()) == pytest.approx(s, rel=0.02)
    assert float(y.mean()) == pytest.approx(m, abs=5 * s / np.sqrt(N_PIX))
    # multiplicative: black stays black
    z = torch.zeros(1, 1, 8, 8)
    assert torch.equal(speckle(z, severity, seed=0), z)


@pytest.mark.parametrize("severity", range(1, 6))
def test_shot_statistics(severity):
    lam = IMAGENET_C["shot"][severity - 1]
    level = 0.3
    x = torch.full((1, 1, 256, 256), level, dtype=torch.float64)
    y = shot(x, severity, seed=severity)
    # exact law of min(K / lam, 1), K ~ Poisson(lam * level)
    k = np.arange(0, 200)
    pmf = stats.poisson.pmf(k, lam * level)
    v = np.minimum(k / lam, 1.0)
    m = float((pmf * v).sum())
    s = float(np.sqrt((pmf * v**2).sum() - m**2))
    assert float(y.std()) == pytest.approx(s, rel=0.02)
    assert float(y.mean()) == pytest.approx(m, abs=5 * s / np.sqrt(N_PIX))
    # outputs are counts divided by lam
    counts = y * lam
    torch.testing.assert_close(counts, counts.round(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("severity", range(1, 6))
def test_impulse_statistics(severity):
    amount = IMAGENET_C["impulse"][severity - 1]
    x = torch.full((1, 1, 256, 256), 0.5)
    y = impulse(x, severity, seed=severity)
    changed = y != 0.5
    assert set(torch.unique(y).tolist()) <= {0.0, 0.5, 1.0}
    frac = float(changed.float().mean())
    assert frac == pytest.approx(amount, abs=5 * np.sqrt(amount * (1 - amount) / N_PIX))
    n_changed = int(changed.sum())
    salt = float((y == 1).sum()) / n_changed
    assert salt == pytest.approx(0.5, abs=5 * 0.5 / np.sqrt(n_changed))


@pytest.mark.parametrize("severity", [0, 6, 2.0, True, "3"])
def test_invalid_severity(camera, severity):
    with pytest.raises(ValueError, match="severity must be an integer in 1..5"):
        corrupt(camera, "gaussian", severity, seed=0)


def test_invalid_kind(camera):
    with pytest.raises(ValueError, match=r"kind must be one of \['gaussian', 'shot'"):
        corrupt(camera, "blur", 1, seed=0)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_invalid_images(kind):
    with pytest.raises(ValueError, match="x must have values in \\[0, 1\\], got min -0.5"):
        corrupt(torch.full((1, 1, 4, 4), -0.5), kind, 1, seed=0)
    nan = torch.full((1, 1, 4, 4), float("nan"))
    with pytest.raises(ValueError, match="x must have values in"):
        corrupt(nan, kind, 1, seed=0)
    with pytest.raises(TypeError, match="x must have a real floating dtype"):
        corrupt(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), kind, 1, seed=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        corrupt(torch.zeros(1, 1, 4, 4), kind, 1, seed=1.5)
