"""Noise models: levels, statistics, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from stablerecon.operators import noise


def test_relative_level_sets_the_norm() -> None:
    y = torch.randn(4, 1, 20000, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    n = noise.gaussian_like(y, rel=0.05, seed=1)
    ratio = torch.linalg.vector_norm(n.flatten(1), dim=1) / torch.linalg.vector_norm(y.flatten(1), dim=1)
    torch.testing.assert_close(ratio, torch.full((4,), 0.05, dtype=torch.float64), rtol=0.02, atol=0)


def test_complex_gaussian_is_circular_with_unit_variance_split() -> None:
    y = torch.zeros(1, 200000, dtype=torch.complex64)
    n = noise.gaussian_like(y, sigma=2.0, seed=0)
    assert n.dtype == torch.complex64
    assert float(n.real.var()) == pytest.approx(2.0, rel=0.02)
    assert float(n.imag.var()) == pytest.approx(2.0, rel=0.02)
    assert float((n.real * n.imag).mean()) == pytest.approx(0.0, abs=0.02)
    assert float((n.abs() ** 2).mean()) == pytest.approx(4.0, rel=0.02)


def test_real_gaussian_and_seeds() -> None:
    y = torch.zeros(2, 1, 100, 100)
    a, b = noise.gaussian_like(y, sigma=0.1, seed=3), noise.gaussian_like(y, sigma=0.1, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, noise.gaussian_like(y, sigma=0.1, seed=4))
    assert float(a.std()) == pytest.approx(0.1, rel=0.03)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(noise.gaussian_like(y, sigma=0.1, generator=g), a)
    torch.testing.assert_close(noise.add_gaussian(y + 1, sigma=0.1, seed=3), 1 + a)


def test_poisson_mean_and_variance() -> None:
    y = torch.full((1, 100000), 0.3, dtype=torch.float64)
    out = noise.poisson(y, photons=50.0, seed=0)
    assert float(out.mean()) == pytest.approx(0.3, rel=0.01)
    assert float(out.var()) == pytest.approx(0.3 / 50.0, rel=0.03)
    assert torch.allclose(out * 50, torch.round(out * 50))  # integer counts


def test_errors() -> None:
    y = torch.ones(1, 4)
    with pytest.raises(ValueError, match="exactly one"):
        noise.gaussian_like(y, seed=0)
    with pytest.raises(ValueError, match="exactly one"):
        noise.gaussian_like(y, sigma=1.0, rel=0.1, seed=0)
    with pytest.raises(ValueError, match="'seed'"):
        noise.gaussian_like(y, sigma=1.0)
    with pytest.raises(ValueError, match="'sigma'"):
        noise.gaussian_like(y, sigma=-1.0, seed=0)
    with pytest.raises(ValueError, match="'rel'"):
        noise.gaussian_like(y, rel=math.nan, seed=0)
    with pytest.raises(ValueError, match="'y'.*NaN"):
        noise.gaussian_like(torch.tensor([[math.nan]]), sigma=1.0, seed=0)
    with pytest.raises(ValueError, match="'y'.*nonnegative"):
        noise.poisson(-y, photons=10.0, seed=0)
    with pytest.raises(ValueError, match="'photons'"):
        noise.poisson(y, photons=0.0, seed=0)
