"""Worst-case and random perturbations, checked against linear methods whose answers are known
from a singular value decomposition, and against a plain projected-gradient attack."""

from __future__ import annotations

import math

import pytest
import torch

import stablerecon as sr
from stablerecon.audit import (
    accuracy,
    batch_norm,
    is_differentiable,
    not_rare,
    penalised_perturbation,
    random_noise,
    worst_case,
)
from stablerecon.operators import GaussianMatrix

torch.manual_seed(0)


class Linear(torch.nn.Module):
    """The linear method ``f(y) = W A^T y`` with a fixed random ``W``: worst cases are known."""

    def __init__(self, op: GaussianMatrix, seed: int = 0) -> None:
        super().__init__()
        n = op.to_matrix().shape[1]
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)
        self.M = self.W @ op.to_matrix(torch.float64).T  # (n, m): y -> x_hat
        self.side = int(math.isqrt(n))

    def forward(self, y: torch.Tensor, op: object = None) -> torch.Tensor:
        flat = y.reshape(y.shape[0], -1).to(torch.float64) @ self.M.T
        return flat.reshape(y.shape[0], 1, self.side, self.side)


@pytest.fixture(scope="module")
def problem() -> tuple[GaussianMatrix, Linear, torch.Tensor]:
    op = GaussianMatrix(24, 64, seed=1)
    x = sr.data.ellipses(3, 8, seed=0).double()
    return op, Linear(op), op.A(x)


def test_worst_case_of_a_linear_method_is_its_largest_singular_value(problem) -> None:  # type: ignore[no-untyped-def]
    op, method, y = problem
    sigma = float(torch.linalg.svdvals(method.M)[0])
    result = worst_case(method, y, op, budgets=[0.01, 0.1], steps=60, restarts=2)
    assert not result.gradient_free
    # ||M e|| <= sigma ||e||: the search may not exceed it, and must get close
    assert float(result.amplification.max()) <= sigma * (1 + 1e-9)
    assert float(result.amplification.min()) >= 0.99 * sigma
    radius = torch.tensor([0.01, 0.1])[:, None] * batch_norm(y)[None]
    assert torch.allclose(batch_norm(result.perturbation.flatten(0, 1)).reshape(2, -1), radius, rtol=1e-9)
    assert torch.allclose(result.error, sigma * radius, rtol=0.01)


def test_gradient_free_search_on_a_plain_function(problem) -> None:  # type: ignore[no-untyped-def]
    op, method, y = problem
    sigma = float(torch.linalg.svdvals(method.M)[0])

    def plain(y: torch.Tensor, op: object) -> torch.Tensor:  # a user's function: no attributes
        return method(y)

    assert not is_differentiable(plain)
    result = worst_case(plain, y, op, budgets=[0.05], steps=60, restarts=1, directions=16)
    assert result.gradient_free
    assert float(result.amplification.max()) <= sigma * (1 + 1e-9)
    assert float(result.amplification.min()) >= 0.9 * sigma


def test_random_noise_matches_the_frobenius_norm(problem) -> None:  # type: ignore[no-untyped-def]
    """For e uniform on a sphere of radius rho in R^m, E ||M e||^2 = rho^2 ||M||_F^2 / m."""
    op, method, y = problem
    m = y[0].numel()
    draws = 400
    result = random_noise(method, y, op, budgets=[0.02], draws=draws, seed=3)
    rho = 0.02 * batch_norm(y)
    expected_rms = rho * torch.linalg.matrix_norm(method.M) / math.sqrt(m)
    # Jensen: E||.|| <= sqrt(E||.||^2); the sample mean of 400 draws may exceed it by a little
    assert torch.all(result.mean_error <= expected_rms * 1.03)
    assert torch.all(result.mean_error >= 0.85 * expected_rms)
    sigma = float(torch.linalg.svdvals(method.M)[0])
    assert torch.all(result.max_error <= sigma * rho * (1 + 1e-9))
    wc = worst_case(method, y, op, budgets=[0.02], steps=40, restarts=1)
    assert torch.all(wc.error[0] > 1.5 * result.mean_error[0])  # adversarial beats random


def test_penalised_attack_finds_the_top_singular_direction() -> None:
    """For f(A(x + r)) = M A r + const, maximising ||M A r||^2 - lam ||r||^2 with lam below
    sigma_max(MA)^2 grows r along the top right singular vector of M A."""
    op = GaussianMatrix(24, 64, seed=2)
    method = Linear(op, seed=5)
    x = sr.data.ellipses(2, 8, seed=1).double()
    sigma = float(torch.linalg.svdvals(method.M @ op.to_matrix(torch.float64))[0])
    result = penalised_perturbation(method, x, op, lam=0.25 * sigma**2, steps=150, step_size=0.02)
    gain = result.output_change / batch_norm(result.perturbation)
    assert torch.all(gain >= 0.97 * sigma) and torch.all(gain <= sigma * (1 + 1e-9))
    assert result.objective[-1] > result.objective[0]
    assert torch.allclose(result.measurement_ratio,
                          batch_norm(op.A(result.perturbation)) / batch_norm(op.A(x)))


def plain_pgd(method, y, op, budget: float, steps: int = 40, seed: int = 1) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """A textbook l2 PGD attack (one random start, fixed step 2.5 r / steps), independent of
    the audit's implementation; returns ||f(y + e) - f(y)|| at its last iterate."""
    g = torch.Generator().manual_seed(seed)
    radius = (budget * batch_norm(y)).reshape(-1, *[1] * (y.ndim - 1))
    with torch.no_grad():
        clean = method(y, op)
    real = torch.view_as_real(y) if y.is_complex() else y
    e = torch.randn(real.shape, generator=g, dtype=real.dtype)
    e = torch.view_as_complex(e) if y.is_complex() else e
    e = e / batch_norm(e).reshape(radius.shape) * radius
    for _ in range(steps):
        e.requires_grad_(True)
        loss = batch_norm(method(y + e, op) - clean).sum()
        (grad,) = torch.autograd.grad(loss, e)
        with torch.no_grad():
            e = e + 2.5 * radius / steps * grad / batch_norm(grad).reshape(radius.shape)
            e = e * torch.clamp(radius / batch_norm(e).reshape(radius.shape), max=1.0)
    with torch.no_grad():
        return batch_norm(method(y + e, op) - clean)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet_fourier128", "itnet_fourier128", "firenet", "tv"])
def test_search_is_at_least_as_strong_as_plain_pgd(name: str) -> None:
    if name in ("firenet", "tv"):
        op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(64, 0.25, seed=0))
        method = sr.nets.FIRENet(op, restarts=4) if name == "firenet" else \
            sr.solvers.SparseReconstructor("tv", op, max_iter=50)
        x = sr.data.ellipses(1, 64, seed=11)
    else:
        method = sr.training.pretrained(name)
        op = method.op
        x = sr.data.ellipses(1, 128, seed=11)
    y = op.A(x)
    budgets = [0.005, 0.01, 0.02, 0.05]  # every budget of the demo and the default
    ours = worst_case(method, y, op, budgets=budgets, steps=40, restarts=2, seed=0)
    for i, b in enumerate(budgets):
        assert float(ours.error[i, 0]) >= float(plain_pgd(method, y, op, b)[0]) * 0.999, (name, b)


def test_bad_arguments_are_named(problem) -> None:  # type: ignore[no-untyped-def]
    op, method, y = problem
    with pytest.raises(ValueError, match="budgets"):
        worst_case(method, y, op, budgets=[])
    with pytest.raises(ValueError, match="budgets"):
        worst_case(method, y, op, budgets=[-0.01])
    with pytest.raises(ValueError, match="reference"):
        worst_case(method, y, op, reference="ground")
    with pytest.raises(ValueError, match="'x'"):
        worst_case(method, y, op, reference="truth")
    with pytest.raises(ValueError, match="steps"):
        worst_case(method, y, op, steps=0)
    with pytest.raises(ValueError, match="'y'"):
        worst_case(method, y * float("nan"), op)
    with pytest.raises(ValueError, match="'y'"):
        worst_case(method, torch.zeros_like(y), op)
    with pytest.raises(TypeError, match="'y'"):
        worst_case(method, y.numpy(), op)
    with pytest.raises(ValueError, match="draws"):
        random_noise(method, y, op, draws=0)
    with pytest.raises(ValueError, match="differentiable"):
        penalised_perturbation(lambda y, op: y, torch.rand(1, 1, 8, 8), op)


def test_accuracy_scores_against_scikit_image() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(32, 0.3, seed=0))
    x = sr.data.ellipses(2, 32, seed=4)
    zero = lambda y, op: op.A_dagger(y).real  # noqa: E731
    result = accuracy(zero, x, op, noise=0.02, seed=1)
    for i in range(2):
        a, b = x[i, 0].double().numpy(), result.output[i, 0].double().numpy()
        assert float(result.psnr[i]) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-3)
        assert float(result.ssim[i]) == pytest.approx(
            structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False), abs=1e-3)
    clean = accuracy(zero, x, op)
    assert torch.all(clean.psnr > result.psnr)


def test_not_rare_for_a_linear_method(problem) -> None:  # type: ignore[no-untyped-def]
    """For linear f, ||M(e + n)|| / ||M e|| with n independent of e: E||M(e+n)||^2 =
    ||Me||^2 + E||Mn||^2, so the kept fraction is >= ~1 on average and scale 0 keeps exactly 1."""
    op, method, y = problem
    e = worst_case(method, y, op, budgets=[0.02], steps=30, restarts=1).perturbation[0]
    assert torch.allclose(not_rare(method, y, op, e, scale=0.0), torch.ones(y.shape[0], dtype=torch.float64))
    kept = not_rare(method, y, op, e, scale=0.5, draws=50)
    sigma = float(torch.linalg.svdvals(method.M)[0])
    # ||M(e + n)|| <= ||Me|| + sigma ||n|| = ||Me|| (1 + 0.5 sigma ||e|| / ||Me||) ~ 1.5 at the worst case
    upper = 1.0 + 0.5 * sigma * batch_norm(e) / batch_norm(method(e))
    assert torch.all(kept >= 0.9) and torch.all(kept <= upper)
    with pytest.raises(ValueError, match="perturbation"):
        not_rare(method, y, op, e[:1])
