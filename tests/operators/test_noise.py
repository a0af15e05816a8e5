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


# --------------------------------------------------------------------------- CT photon counts
def test_poisson_transmission_mean_and_variance_match_the_delta_method() -> None:
    """p_hat = -log(N / I0) / mu, N ~ Poisson(lambda = I0 exp(-mu p)): for large lambda
    E[p_hat] ~ p + 1 / (2 mu lambda) and Var[p_hat] ~ 1 / (mu^2 lambda)."""
    mu, i0 = 0.5, 1e4
    p = torch.tensor([[0.0], [2.0], [6.0]], dtype=torch.float64).expand(3, 200000)
    out = noise.poisson_transmission(p, i0, mu=mu, seed=0)
    assert out.shape == p.shape and out.dtype == torch.float64
    lam = i0 * torch.exp(-mu * p[:, 0])
    mean, var = out.mean(dim=1), out.var(dim=1)
    standard_error = 1 / (mu * lam.sqrt()) / math.sqrt(out.shape[1])
    assert bool(((mean - (p[:, 0] + 1 / (2 * mu * lam))).abs() < 4 * standard_error).all())
    assert bool(((mean - p[:, 0]).abs() > 4 * standard_error)[-1])  # the bias shows at low counts
    torch.testing.assert_close(var, 1 / (mu**2 * lam), rtol=0.02, atol=0)
    # the counts behind it are integers: I0 exp(-mu p_hat) = N
    counts = i0 * torch.exp(-mu * out)
    torch.testing.assert_close(counts, counts.round(), rtol=0, atol=1e-6)


def test_poisson_transmission_zero_counts_and_blank_scan() -> None:
    """No photon: the count is floored at eps, p_hat = log(I0 / eps) / mu; counts can be a
    per-detector tensor (blank scan) broadcast over the batch."""
    p = torch.full((2, 1, 3, 4), 40.0)
    out = noise.poisson_transmission(p, 100.0, mu=1.0, seed=1)   # lambda = 4e-16: no photon
    torch.testing.assert_close(out, torch.full_like(p, math.log(100.0 / 0.5)))
    out = noise.poisson_transmission(p, 100.0, mu=2.0, seed=1, eps=1.0)
    torch.testing.assert_close(out, torch.full_like(p, math.log(100.0) / 2.0))
    blank = torch.tensor([1e3, 1e4, 1e5, 1e6])
    flat = torch.zeros(2, 1, 3, 4, dtype=torch.float64)
    out = noise.poisson_transmission(flat, blank, seed=2)
    spread = out.std(dim=(0, 1, 2))
    assert bool((spread[:-1] > spread[1:]).all())  # more photons, less noise
    assert out.dtype == torch.float64


def test_poisson_transmission_is_seeded() -> None:
    p = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a = noise.poisson_transmission(p, 50.0, mu=0.3, seed=4)
    assert torch.equal(a, noise.poisson_transmission(p, 50.0, mu=0.3, seed=4))
    assert not torch.equal(a, noise.poisson_transmission(p, 50.0, mu=0.3, seed=5))
    g = torch.Generator().manual_seed(4)
    assert torch.equal(noise.poisson_transmission(p, 50.0, mu=0.3, generator=g), a)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"counts": 0.0}, ValueError, "counts"),
        ({"counts": -5.0}, ValueError, "counts"),
        ({"counts": math.inf}, ValueError, "counts"),
        ({"counts": math.nan}, ValueError, "counts"),
        ({"counts": torch.tensor([1.0, 0.0, 1.0, 1.0])}, ValueError, "counts"),
        ({"counts": torch.tensor([1.0, math.nan, 1.0, 1.0])}, ValueError, "counts"),
        ({"counts": torch.ones(3)}, ValueError, "counts"),
        ({"counts": "many"}, TypeError, "counts"),
        ({"counts": 10.0, "mu": 0.0}, ValueError, "mu"),
        ({"counts": 10.0, "mu": math.nan}, ValueError, "mu"),
        ({"counts": 10.0, "eps": 0.0}, ValueError, "eps"),
    ],
)
def test_poisson_transmission_rejects_bad_arguments(kwargs: dict, error: type, name: str) -> None:
    p = torch.ones(1, 4)
    with pytest.raises(error, match=f"'{name}'"):
        noise.poisson_transmission(p, seed=0, **kwargs)


def test_poisson_transmission_rejects_bad_line_integrals() -> None:
    with pytest.raises(ValueError, match="'line_integrals'.*NaN"):
        noise.poisson_transmission(torch.tensor([[math.nan]]), 10.0, seed=0)
    with pytest.raises(TypeError, match="'line_integrals'"):
        noise.poisson_transmission(torch.ones(1, 2, dtype=torch.complex64), 10.0, seed=0)
    with pytest.raises(ValueError, match="'line_integrals'.*overflow"):
        noise.poisson_transmission(torch.tensor([[-1e4]]), 10.0, seed=0)
    with pytest.raises(ValueError, match="'seed'"):
        noise.poisson_transmission(torch.ones(1, 2), 10.0)
