"""Posterior diagnostics against closed forms: exact Gaussian posteriors, direct MMD sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stablerecon.posterior import (
    calibration_error,
    map_estimate,
    posterior_error,
    resimulation_error,
    sbc_test,
)
from stablerecon.posterior.mmd import mmd


def exact_posterior(n: int = 400, s: int = 200, d: int = 2, noise: float = 0.5, scale: float = 1.0,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x ~ N(0, I), y = x + N(0, noise^2 I): the posterior is N(y / (1 + noise^2), noise^2 / (1 + noise^2)).
    Returns (samples (n, s, d) with their spread scaled by ``scale``, truth (n, d), y (n, d))."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x + noise * torch.randn(n, d, generator=g, dtype=torch.float64)
    mean = y / (1 + noise**2)
    std = math.sqrt(noise**2 / (1 + noise**2))
    samples = mean.unsqueeze(1) + scale * std * torch.randn(n, s, d, generator=g, dtype=torch.float64)
    return samples, x, y


def test_mmd_equals_the_direct_sums() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.3
    widths = (0.3, 1.1)

    def k(u: np.ndarray, v: np.ndarray) -> float:
        d2 = float(np.sum((u - v) ** 2))
        return sum(h * h / (h * h + d2) for h in widths)

    aa = sum(k(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / 42
    bb = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / 20
    ab = sum(k(a[i], b[j]) for i in range(7) for j in range(5)) / 35
    got = float(mmd(torch.from_numpy(a), torch.from_numpy(b), widths))
    assert got == pytest.approx(aa + bb - 2 * ab, rel=1e-12)
    biased = float(mmd(torch.from_numpy(a), torch.from_numpy(b), widths, unbiased=False))
    assert biased >= 0


def test_exact_posteriors_are_calibrated() -> None:
    """Exact samples: median |e_cal| within 2x the sampling floor 0.26 / sqrt(N) and SBC
    uniform; the 68% interval width is the posterior's 2 * 0.4472. (A KS test at level 0.05
    rejects exact samples 5% of the time by construction: these are fixed draws.)"""
    samples, truth, _ = exact_posterior(seed=1)
    result = calibration_error(samples, truth)
    assert result.median_abs <= 2 * 0.26 / math.sqrt(truth.shape[0])
    assert result.sharpness == pytest.approx(2 * 0.99446 * math.sqrt(0.25 / 1.25), rel=0.03)
    pmin, _ = sbc_test(samples, truth)
    assert pmin > 0.05


@pytest.mark.parametrize(("scale", "sign"), [(0.8, -1), (1.2, 1)])
def test_miscalibration_is_detected_with_its_sign(scale: float, sign: int) -> None:
    """Too narrow samples (0.8x) miss the truth too often: e_cal(68%) < -5%; too wide (1.2x)
    catch it too often: > +5%."""
    samples, truth, _ = exact_posterior(scale=scale)
    result = calibration_error(samples, truth)
    assert sign * result.at_68 > 0.05
    pmin, _ = sbc_test(samples, truth)
    assert pmin < 0.05


def test_posterior_and_resimulation_errors() -> None:
    samples, truth, y = exact_posterior(n=10, s=300)
    other, _, _ = exact_posterior(n=10, s=300, seed=1)
    # the truths differ between seeds, so compare each set with fresh draws of its own posterior
    g = torch.Generator().manual_seed(5)
    std = math.sqrt(0.25 / 1.25)
    fresh = (y / 1.25).unsqueeze(1) + std * torch.randn(samples.shape, generator=g, dtype=torch.float64)
    assert abs(posterior_error(samples, fresh)) < 0.01
    assert posterior_error(samples, fresh + 1.0) > 0.1
    # forward = identity; each sample's squared misfit averages to D * (var + bias^2)
    err = resimulation_error(samples, y, lambda x: x)
    expected = float((samples - y.unsqueeze(1)).pow(2).sum(-1).mean())
    assert err == pytest.approx(expected, rel=1e-12)
    assert resimulation_error(y.unsqueeze(1).repeat(1, 4, 1), y, lambda x: x) == 0.0
    assert other.shape == samples.shape and truth.shape == (10, 2)


def test_map_finds_the_heavier_mode() -> None:
    g = torch.Generator().manual_seed(0)
    heavy = torch.randn(300, 2, generator=g, dtype=torch.float64) * 0.3 + torch.tensor([2.0, -1.0])
    light = torch.randn(100, 2, generator=g, dtype=torch.float64) * 0.3 + torch.tensor([-2.0, 1.0])
    mode = map_estimate(torch.cat([heavy, light])[None])
    assert torch.allclose(mode[0], torch.tensor([2.0, -1.0], dtype=torch.float64), atol=0.1)


def test_bad_input() -> None:
    samples, truth, _ = exact_posterior(n=5, s=10)
    with pytest.raises(ValueError, match="'truth'"):
        calibration_error(samples, truth[:, :1])
    with pytest.raises(ValueError, match="'samples'"):
        calibration_error(samples * math.nan, truth)
    with pytest.raises(ValueError, match="'samples'"):
        calibration_error(samples[0], truth)
    with pytest.raises(ValueError, match="dimension"):
        mmd(torch.zeros(4, 2), torch.zeros(4, 3))
