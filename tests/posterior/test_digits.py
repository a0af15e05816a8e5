"""The digits imaging problem and the posterior mean as a reconstruction method: the simulator
against dense matrices and the raw data, the null-space fraction against a numpy SVD, the
posterior mean of an exact Gaussian posterior against its closed form, the audit on it, and
(slow) a conditional INN trained on the digits."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stablerecon.audit import run
from stablerecon.operators import GaussianMatrix, Inpainting
from stablerecon.posterior.digits import DigitsProblem, image_figure
from stablerecon.posterior.problems import LinearGaussian
from stablerecon.posterior.reconstruct import PosteriorMean


@pytest.fixture(scope="module")
def inpaint() -> DigitsProblem:
    return DigitsProblem("inpainting", observed=0.5, noise_std=0.01, split="test")


@pytest.fixture(scope="module")
def gauss() -> DigitsProblem:
    return DigitsProblem("gaussian", m=32, noise_std=0.01, split="test")


class ExactSampler:
    """The exact posterior of ``y = M x + e`` under a Gaussian prior, behind the ``sample`` API
    of the posterior networks (float64)."""

    def __init__(self, problem: LinearGaussian) -> None:
        self.problem, self.dim_x, self.dim_y = problem, problem.dim_x, problem.dim_y

    def sample(self, y: torch.Tensor, n: int, seed: int | None = 0) -> torch.Tensor:
        return self.problem.sample_posterior(y, n, seed)


class TruthSampler:
    """Returns ``n`` copies of a fixed ``x`` whatever the observation."""

    def __init__(self, x: torch.Tensor, dim_y: int) -> None:
        self.x, self.dim_x, self.dim_y = x, x.shape[-1], dim_y

    def sample(self, y: torch.Tensor, n: int, seed: int | None = 0) -> torch.Tensor:
        return self.x.expand(y.shape[0], n, -1).clone()


def exact_for(problem: DigitsProblem, prior_std: float = 0.3) -> ExactSampler:
    return ExactSampler(LinearGaussian(64, problem.dim_y, noise_std=problem.noise_std, prior_std=prior_std,
                                       matrix=problem.matrix))


# ---------------------------------------------------------------------------- the simulator
def test_forward_is_the_operator_and_a_dense_matrix(inpaint: DigitsProblem, gauss: DigitsProblem) -> None:
    x = inpaint.sample_prior(5, seed=0)
    mask = inpaint.op.mask.flatten()
    assert torch.equal(inpaint.forward(x), x[:, mask])
    assert torch.equal(inpaint.forward(x), inpaint.op.A(inpaint.image(x)).reshape(5, -1))
    matrix = GaussianMatrix(32, (8, 8), seed=0).matrix  # the same seed, built independently
    assert torch.allclose(gauss.forward(x), x @ matrix.T, atol=1e-12)
    assert torch.allclose(gauss.forward(x), gauss.op.A(gauss.image(x)).reshape(5, -1), atol=1e-12)
    assert gauss.dim_y == 32 and inpaint.dim_y == 32
    # the observation noise has the stated size
    xs = gauss.sample_prior(4000, seed=1)
    residual = gauss.simulate(xs, seed=2) - gauss.forward(xs)
    assert residual.std().item() == pytest.approx(0.01, rel=0.02)
    # pixels are row-major: image(x)[.., i, j] = x[.., 8 i + j]
    assert torch.equal(gauss.image(x)[:, 0, 2, 5], x[:, 21])


def test_prior_is_the_dequantised_split() -> None:
    raw = load_digits().data.astype(np.int64)
    train, test = DigitsProblem(split="train", seed=3), DigitsProblem(split="test", seed=3)
    assert len(train.levels) + len(test.levels) == 1797 and len(test.levels) == 359
    # the splits partition the digits (as a multiset of rows) and share the operator
    both = np.concatenate([train.levels.numpy(), test.levels.numpy()])
    assert sorted(map(bytes, both)) == sorted(map(bytes, raw))
    assert torch.equal(train.op.mask, test.op.mask)
    x = test.sample_prior(3000, seed=0)
    assert x.dtype == torch.float64 and x.min() >= 0 and x.max() < 1
    # the integer part of 17 x is a digit of the test split, the rest is uniform
    levels = torch.floor(17 * x).long()
    rows = {bytes(r) for r in test.levels.numpy()}
    assert all(bytes(r) in rows for r in levels.numpy())
    frac = (17 * x - levels).flatten()
    assert frac.mean().item() == pytest.approx(0.5, abs=0.01)
    assert frac.var().item() == pytest.approx(1 / 12, rel=0.02)
    assert torch.equal(test.sample_prior(4, seed=7), test.sample_prior(4, seed=7))


def test_masks_and_information_lost(inpaint: DigitsProblem, gauss: DigitsProblem) -> None:
    assert torch.equal(inpaint.unobserved, ~inpaint.op.mask) and int(inpaint.op.mask.sum()) == 32
    assert torch.equal(inpaint.information_lost(), inpaint.unobserved.double())
    assert not gauss.unobserved.any()
    assert gauss.information_lost().sum().item() == pytest.approx(64 - 32, abs=1e-9)
    block = DigitsProblem(mask="block", observed=0.25)
    assert block.op.mask[:2].all() and not block.op.mask[2:].any()
    fixed = torch.zeros(8, 8, dtype=torch.bool)
    fixed[::2] = True
    assert torch.equal(DigitsProblem(mask=fixed).op.mask, fixed)
    custom = DigitsProblem(GaussianMatrix(10, (8, 8), seed=5))
    assert custom.dim_y == 10 and custom.information_lost().sum().item() == pytest.approx(54, abs=1e-9)


def test_dagger_zero_fills_and_inverts_the_row_space(inpaint: DigitsProblem, gauss: DigitsProblem) -> None:
    x = inpaint.sample_prior(3, seed=0)
    filled = inpaint.dagger(inpaint.forward(x))
    mask = inpaint.op.mask.flatten()
    assert torch.equal(filled[:, mask], x[:, mask]) and (filled[:, ~mask] == 0).all()
    pinv = np.linalg.pinv(gauss.matrix.numpy())
    y = gauss.forward(x)
    assert np.allclose(gauss.dagger(y).numpy(), y.numpy() @ pinv.T, atol=1e-10)


def test_null_space_fraction_against_numpy_svd(gauss: DigitsProblem, inpaint: DigitsProblem) -> None:
    rng = np.random.default_rng(0)
    _, _, vt = np.linalg.svd(gauss.matrix.numpy())
    row, null = vt[:32], vt[32:]  # orthonormal bases of the row space and of ker A
    offset = rng.normal(size=(1, 1, 64))  # the sample mean is removed first
    in_null = torch.from_numpy(rng.normal(size=(3, 50, 32)) @ null + offset)
    in_row = torch.from_numpy(rng.normal(size=(3, 50, 32)) @ row + offset)
    assert torch.allclose(gauss.null_space_fraction(in_null), torch.ones(3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(gauss.null_space_fraction(in_row), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    # a mixture: the fraction is the share of the centred energy in the null-space coordinates
    a, b = rng.normal(size=(2, 40, 32)) * 2.0, rng.normal(size=(2, 40, 32))
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    mixed = torch.from_numpy(a @ null + b @ row)
    expected = (a**2).sum((1, 2)) / ((a**2).sum((1, 2)) + (b**2).sum((1, 2)))
    assert np.allclose(gauss.null_space_fraction(mixed).numpy(), expected, atol=1e-10)
    assert gauss.null_space_fraction(mixed[0]).shape == ()
    # inpainting: the null space is the unobserved pixels
    d = torch.from_numpy(rng.normal(size=(1, 30, 64)))
    hidden = inpaint.unobserved.flatten()
    d = d - d.mean(1, keepdim=True)
    share = d[..., hidden].pow(2).sum() / d.pow(2).sum()
    assert inpaint.null_space_fraction(d).item() == pytest.approx(share.item(), abs=1e-12)


def test_bad_inputs_name_the_argument(inpaint: DigitsProblem) -> None:
    with pytest.raises(ValueError, match="'operator'"):
        DigitsProblem("fourier")
    with pytest.raises(ValueError, match="'noise_std'"):
        DigitsProblem(noise_std=0.0)
    with pytest.raises(ValueError, match="'split'"):
        DigitsProblem(split="validation")
    with pytest.raises(ValueError, match="'m'"):
        DigitsProblem("inpainting", m=20)
    with pytest.raises(ValueError, match="'m'"):
        DigitsProblem("gaussian", m=0)
    with pytest.raises(ValueError, match="'observed'"):
        DigitsProblem(observed=1.5)
    with pytest.raises(ValueError, match="'observed'"):
        DigitsProblem("gaussian", observed=0.5)
    with pytest.raises(ValueError, match="'mask'"):
        DigitsProblem(mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="'mask'"):
        DigitsProblem(mask="spiral")
    with pytest.raises(ValueError, match="'operator'"):
        DigitsProblem(Inpainting(torch.ones(16, 16, dtype=torch.bool)))
    with pytest.raises(ValueError, match="'x'"):
        inpaint.forward(torch.zeros(2, 63))
    with pytest.raises(ValueError, match="'x'"):
        inpaint.forward(torch.full((2, 64), float("nan")))
    with pytest.raises(ValueError, match="'n'"):
        inpaint.sample_prior(0)
    with pytest.raises(ValueError, match="'samples'"):
        inpaint.null_space_fraction(torch.zeros(2, 1, 64))
    with pytest.raises(ValueError, match="'samples'"):
        inpaint.null_space_fraction(torch.zeros(2, 5, 64))  # no spread
    with pytest.raises(ValueError, match="'y'"):
        inpaint.dagger(torch.zeros(2, 5))


def test_image_figure_draws_every_panel(inpaint: DigitsProblem) -> None:
    x, y = inpaint.sample_joint(1, seed=0)
    samples = exact_for(inpaint).sample(y, 20, seed=1)
    fig = image_figure(inpaint, samples, y=y, truth=x, n_show=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "truth" and "zero-filled" in titles[1]
    assert titles[2:] == ["posterior mean", "posterior std", "sample 1", "sample 2", "sample 3"]
    fig.savefig(io.BytesIO(), format="png")
    assert len(image_figure(inpaint, samples[0]).axes) == 2 + 1 + 4  # mean, std, its colour bar, 4 samples
    with pytest.raises(ValueError, match="'samples'"):
        image_figure(inpaint, samples[0, :1])
    with pytest.raises(ValueError, match="'y'"):
        image_figure(inpaint, samples, y=torch.zeros(3))


# ---------------------------------------------------------------------------- PosteriorMean
def test_posterior_mean_of_an_exact_posterior(gauss: DigitsProblem) -> None:
    """Against the closed-form Gaussian posterior: the mean, the std, the shapes (two channels),
    and the same answer for an observation alone or in a batch (common random numbers)."""
    sampler = exact_for(gauss)
    method = PosteriorMean(sampler, n_samples=4000, seed=0, op=gauss.op)
    x = gauss.sample_prior(6, seed=0)
    y = gauss.simulate(x, seed=1)
    images = y.reshape(3, 2, 32)  # (B, C, m)
    mean = method(images, gauss.op)
    assert mean.shape == (3, 2, 8, 8) and mean.dtype == torch.float64
    exact = sampler.problem.posterior_mean(y).reshape(3, 2, 8, 8)
    post_std = sampler.problem.posterior_cov.diagonal().sqrt().reshape(8, 8)
    assert ((mean - exact).abs() / post_std).max() < 5 / 4000**0.5 * 1.2
    std = method.std(images)  # the constructor's operator by default
    assert torch.allclose(std, post_std.expand_as(std), rtol=0.06)
    assert torch.equal(method(images[1:2]), mean[1:2])
    assert method.samples(images).shape == (3, 4000, 2, 8, 8)
    assert torch.equal(method.samples(images).mean(1), mean)
    assert method(images.float()).dtype == torch.float32
    assert method.differentiable is False


def test_posterior_mean_of_a_fixed_sampler_is_that_image(inpaint: DigitsProblem) -> None:
    x = inpaint.sample_prior(1, seed=0)
    method = PosteriorMean(TruthSampler(x, inpaint.dim_y), n_samples=5, op=inpaint.op)
    y = inpaint.op.A(inpaint.image(x.expand(4, -1)))
    assert torch.allclose(method(y, inpaint.op), inpaint.image(x).expand(4, 1, 8, 8), rtol=1e-15, atol=0)
    assert (method.std(y) == 0).all()
    # a new operator object with the same mask is accepted
    assert torch.equal(method(y, Inpainting(inpaint.op.mask.clone())), method(y))


def test_posterior_mean_rejects_bad_input(gauss: DigitsProblem) -> None:
    sampler = exact_for(gauss)
    method = PosteriorMean(sampler, n_samples=8, op=gauss.op)
    y = gauss.op.A(torch.rand(2, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="'model'"):
        PosteriorMean(object())
    with pytest.raises(ValueError, match="'n_samples'"):
        PosteriorMean(sampler, n_samples=1)
    with pytest.raises(ValueError, match="'y'"):
        method(y[..., :31], gauss.op)
    with pytest.raises(ValueError, match="'y'"):
        method(y * float("nan"), gauss.op)
    with pytest.raises(TypeError, match="'y'"):
        method(y.to(torch.complex128), gauss.op)
    with pytest.raises(ValueError, match="'op'"):
        method(y, GaussianMatrix(32, (8, 8), seed=1))  # same shapes, another matrix
    with pytest.raises(ValueError, match="'op'"):
        PosteriorMean(sampler)(y)
    with pytest.raises(ValueError, match="'op'"):
        PosteriorMean(sampler)(y, GaussianMatrix(32, (4, 4)))  # 16 pixels, the model samples 64
    assert PosteriorMean(sampler)(y, gauss.op).shape == (2, 1, 8, 8)  # without a known operator


def test_audit_runs_the_posterior_mean_gradient_free(gauss: DigitsProblem, one_thread: None) -> None:
    """With a fixed seed the exact posterior mean is linear in y, x_hat = K y + c with
    K = C M^T / s^2: its worst-case amplification cannot exceed ||K||_2."""
    sampler = exact_for(gauss)
    method = PosteriorMean(sampler, n_samples=16, op=gauss.op)
    images = gauss.image(gauss.sample_prior(2, seed=0))
    options = {"steps": 10, "restarts": 1, "draws": 2, "not_rare_draws": 1, "directions": 4,
               "budgets": [0.01, 0.02]}
    # (8x8 images are too small for the accuracy test's 11x11 SSIM window)
    result = run({"posterior mean": method}, gauss.op, images, tests=["worst_case"],
                 options=options, progress=False)
    wc = result.get("posterior mean", "worst_case")
    assert wc["gradient_free"] is True
    lg = sampler.problem
    bound = torch.linalg.matrix_norm(lg.posterior_cov @ lg.matrix.T / lg.noise_std**2, ord=2).item()
    amplification = max(max(a) for a in wc["amplification"])
    assert 0.5 * bound < amplification <= bound * (1 + 1e-6)
    assert result.summary()[0]["gradient_free"] is True


# The trained-model acceptance (posterior std on unobserved pixels, share of the variance in ker A,
# posterior mean against zero filling) runs in the example test (examples/posterior_digits.py,
# inpainting) and in benchmarks/posterior.py (task digits: inpainting and 32 Gaussian projections).
