"""Simulators and reference posteriors against closed forms and Gaussian conditioning."""

from __future__ import annotations

import math

import pytest
import torch

from stablerecon.posterior.problems import GaussianMixture, InverseKinematics, LinearGaussian, rejection_abc


def test_mixture_labels_and_exact_posterior() -> None:
    problem = GaussianMixture("some")
    x, y = problem.sample_joint(4000, seed=0)
    assert problem.dim_y == 5
    # the modes are 9 standard deviations apart: the nearest mode is the drawn one
    assert torch.equal(problem.forward(x), y)
    shared = torch.nn.functional.one_hot(torch.tensor([4]), 5).double()
    post = problem.sample_posterior(shared, 4000, seed=1)[0]
    modes = problem.mode_of(post)
    counts = torch.bincount(modes, minlength=8).double() / 4000
    assert counts[:4].sum() == 0
    assert torch.allclose(counts[4:], torch.full((4,), 0.25, dtype=torch.float64), atol=0.03)
    assert (post - problem.means[modes]).std().item() == pytest.approx(0.2, rel=0.05)
    assert GaussianMixture("none").dim_y == 1 and GaussianMixture("all").dim_y == 8


def test_arm_end_point_in_closed_form() -> None:
    arm = InverseKinematics()
    quarter = math.pi / 2
    x = torch.tensor([[0.3, 0.0, 0.0, 0.0], [-0.2, quarter, 0.0, 0.0], [0.1, 0.0, quarter, -quarter]],
                     dtype=torch.float64)
    expected = torch.tensor([[2.0, 0.3], [0.0, 1.8], [1.5, 0.6]], dtype=torch.float64)
    assert torch.allclose(arm.forward(x), expected, atol=1e-12)
    prior = arm.sample_prior(200_000, seed=0)
    assert torch.allclose(prior.std(0), torch.tensor([0.25, 0.5, 0.5, 0.5], dtype=torch.float64), rtol=0.01)


def test_linear_gaussian_posterior_is_gaussian_conditioning() -> None:
    """Posterior mean and covariance equal the conditional of the joint Gaussian of (x, y)."""
    problem = LinearGaussian(dim_x=3, dim_y=2, noise_std=0.3, prior_std=0.8, seed=2)
    m, p2, s2 = problem.matrix, 0.8**2, 0.3**2
    cxx, cxy = p2 * torch.eye(3, dtype=torch.float64), p2 * m.T
    cyy = p2 * m @ m.T + s2 * torch.eye(2, dtype=torch.float64)
    gain = cxy @ torch.linalg.inv(cyy)
    y = torch.tensor([[0.4, -1.0], [2.0, 0.5]], dtype=torch.float64)
    assert torch.allclose(problem.posterior_mean(y), y @ gain.T, atol=1e-12)
    assert torch.allclose(problem.posterior_cov, cxx - gain @ cxy.T, atol=1e-12)
    draws = problem.sample_posterior(y, 100_000, seed=0)
    assert torch.allclose(draws.mean(1), y @ gain.T, atol=0.01)
    assert torch.allclose(torch.cov(draws[0].T), problem.posterior_cov, atol=0.005)


def test_rejection_abc_approaches_the_analytic_posterior() -> None:
    problem = LinearGaussian(dim_x=2, dim_y=1, noise_std=0.2, seed=0)
    y = torch.tensor([[0.5], [-0.8]], dtype=torch.float64)
    samples, distances = rejection_abc(problem, y, n=2000, proposals=400_000, chunk=50_000)
    assert samples.shape == (2, 2000, 2) and distances.max() < 0.02
    exact = problem.sample_posterior(y, 20_000, seed=1)
    assert torch.allclose(samples.mean(1), exact.mean(1), atol=0.06)
    assert torch.allclose(samples.std(1), exact.std(1), rtol=0.08)
    with pytest.raises(ValueError, match="epsilon"):
        rejection_abc(problem, y, n=100, proposals=1000, epsilon=1e-6)


def test_problems_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="labels"):
        GaussianMixture("many")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'x'"):
        InverseKinematics().forward(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="'y'"):
        LinearGaussian().posterior_mean(torch.full((1, 2), math.nan))
    with pytest.raises(ValueError, match="'n'"):
        LinearGaussian().sample_prior(0)
