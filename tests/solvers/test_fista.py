"""Tests of FISTA for the weighted l1-wavelet LASSO.

Independent checks: the subgradient optimality conditions of the LASSO, a reference solution by
a different method (L-BFGS-B on the smooth bound-constrained reformulation ``c = u - v``) with
dense numpy matrices, the closed-form solution for ``A = I`` (soft-thresholding of the wavelet
coefficients), and the O(1/k^2) acceleration over a plain ISTA written here.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from solver_images import DT, piecewise_constant

from stablerecon.operators import GaussianMatrix, Identity, SubsampledFourier, masks
from stablerecon.solvers.fista import SolverInfo, fista, lasso_objective
from stablerecon.sparsity import Wavelet, soft_threshold


def fourier_problem(size: int = 32, rate: float = 0.35, seed: int = 0, noise: float = 0.01,
                    batch: int = 1) -> tuple[SubsampledFourier, torch.Tensor, torch.Tensor]:
    op = SubsampledFourier(masks.variable_density(size, rate=rate, seed=seed))
    x = piecewise_constant(size, seed=seed, batch=batch)
    y = op.A(x)
    g = torch.Generator().manual_seed(seed + 100)
    y = y + noise * torch.complex(torch.randn(y.shape, generator=g, dtype=DT),
                                  torch.randn(y.shape, generator=g, dtype=DT))
    return op, x, y


def coefficient_gradient(x: torch.Tensor, y: torch.Tensor, op, wav: Wavelet, real: bool) -> torch.Tensor:
    """``W Re A^*(A x - y)`` (real) or ``W A^*(A x - y)`` (complex): the gradient in ``c``."""
    g = op.A_adjoint(op.A(x) - y)
    if real:
        g = g.real
    return wav.A(g)


def optimality_residual(c: torch.Tensor, grad: torch.Tensor, thresh: torch.Tensor) -> tuple[float, float]:
    """(max |grad_i + t_i c_i / |c_i|| over c_i != 0, max |grad_i| / t_i over c_i == 0).

    ``c`` is recomputed as ``W x`` from the returned image, so the exact zeros of the solver
    come back as rounding noise (~1e-17); entries below 1e-12 count as zero.
    """
    nz = c.abs() > 1e-12
    phase = torch.where(nz, c / c.abs().clamp_min(1e-300), torch.zeros_like(c))
    t = thresh.expand_as(c.real)
    active = (grad + t * phase)[nz].abs().max().item()
    ratio = (grad.abs()[~nz] / t[~nz]).max().item()
    return active, ratio


# ---------------------------------------------------------------------------------- optimality
@pytest.mark.parametrize("real", [True, False])
def test_subgradient_optimality_fourier_haar(real: bool) -> None:
    op, x_true, y = fourier_problem(32)
    if not real:  # a genuinely complex image: rotate the phase across the field of view
        phase = torch.exp(1j * torch.linspace(0, 2.0, 32, dtype=DT)).reshape(1, 1, 1, 32)
        x_true = x_true * phase
        y = op.A(x_true)
    wav = Wavelet("haar", levels=3, size=32)
    lam = 0.02
    x, info = fista(y, op, wav, lam, max_iter=20000, tol=1e-13, real=real, return_info=True)
    assert info.converged and info.iterations < 20000
    assert x.dtype == (DT if real else torch.complex128)
    c = wav.A(x)
    grad = coefficient_gradient(x, y, op, wav, real)
    active, ratio = optimality_residual(c, grad, torch.tensor(lam, dtype=DT))
    # 0 in grad + lam * d|c|: equality on the support, |grad_i| <= lam off it.
    assert active < 1e-4, active
    assert ratio <= 1.0 + 1e-4, ratio
    n_zero = int((c.abs() <= 1e-12).sum())
    assert 0 < n_zero < c.numel()  # a sparse, non-trivial solution: both conditions are tested


# ---------------------------------------------------------------------------------- references
def _dense_lasso_reference(a: np.ndarray, w_mat: np.ndarray, y: np.ndarray, lam: float,
                           weights: np.ndarray) -> np.ndarray:
    """Solve ``min_c 0.5 ||A W^T c - y||^2 + lam sum w |c|`` with real ``A`` by L-BFGS-B on
    ``c = u - v``, ``u, v >= 0`` (a smooth problem with bound constraints)."""
    b = a @ w_mat.T
    n = b.shape[1]
    bty = b.T @ y
    btb = b.T @ b

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        u, v = z[:n], z[n:]
        c = u - v
        r = b @ c - y
        g = btb @ c - bty
        f = 0.5 * r @ r + lam * weights @ (u + v)
        return f, np.concatenate([g + lam * weights, -g + lam * weights])

    res = minimize(fun, np.zeros(2 * n), jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * n),
                   options={"maxiter": 50000, "maxfun": 100000, "ftol": 1e-16, "gtol": 1e-13,
                            "maxcor": 30})
    c = res.x[:n] - res.x[n:]
    return w_mat.T @ c


@pytest.mark.parametrize("kind", ["fourier", "gaussian"])
def test_matches_lbfgsb_reference_on_tiny_problem(kind: str) -> None:
    size = 8
    wav = Wavelet("db2", levels=1, size=size)
    x_true = piecewise_constant(size, seed=3)
    if kind == "fourier":
        op = SubsampledFourier(masks.variable_density(size, rate=0.5, seed=1))
    else:
        op = GaussianMatrix(40, (size, size), seed=0)
    y = op.A(x_true)
    lam = 0.05
    weights = torch.linspace(0.5, 2.0, size * size, dtype=DT)
    x = fista(y, op, wav, lam, weights=weights, max_iter=20000, tol=1e-14)

    # dense (m, n) matrices of A on real images (complex for Fourier: a real image sees
    # [Re A; Im A] and [Re y; Im y]) and of W
    a = op.to_matrix(DT if kind == "gaussian" else torch.complex128).numpy()
    yn = y[0, 0].numpy()
    if np.iscomplexobj(a):
        a = np.concatenate([a.real, a.imag])
        yn = np.concatenate([yn.real, yn.imag])
    w_mat = wav.to_matrix(DT).numpy()
    ref = _dense_lasso_reference(a, w_mat, yn, lam, weights.numpy()).reshape(size, size)
    err = np.abs(x[0, 0].numpy() - ref).max() / np.abs(ref).max()
    assert err < 1e-6, err
    f_ours = lasso_objective(x, y, op, wav, lam, weights)
    f_ref = lasso_objective(torch.from_numpy(ref)[None, None], y, op, wav, lam, weights)
    assert float(f_ours) <= float(f_ref) * (1 + 1e-10)


def test_identity_closed_form_real_and_complex() -> None:
    """For ``A = I`` the minimiser is ``W^* soft(W y, lam w)`` (one prox step)."""
    wav = Wavelet("db4", levels=2, size=16)
    g = torch.Generator().manual_seed(0)
    y = piecewise_constant(16, seed=1) + 0.1 * torch.randn(1, 1, 16, 16, generator=g, dtype=DT)
    lam = 0.1
    levels = [0.0, 1.0, 2.0]
    expected = wav.A_adjoint(soft_threshold(wav.A(y), lam * wav.expand_level_weights(levels, dtype=DT)))
    x = fista(y, Identity(16), wav, lam, weights=levels, tol=1e-12)
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-12)
    # complex: the problem is invariant under a global phase, and a real y has a real minimiser
    rot = cmath.exp(0.7j)
    xc = fista(y * rot, Identity(16), wav, lam, weights=levels, real=False, tol=1e-12)
    assert xc.dtype == torch.complex128
    torch.testing.assert_close(xc, expected * rot, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------- weights
def test_huge_weight_forces_coefficient_to_zero() -> None:
    op, _, y = fourier_problem(16, rate=0.5)
    wav = Wavelet("haar", levels=2, size=16)
    lam = 0.01
    c_free = wav.A(fista(y, op, wav, lam, max_iter=3000, tol=1e-10))
    idx = int(c_free[0, 0].abs().argmax())  # the largest coefficient without weights
    assert c_free[0, 0, idx].abs() > 1.0
    weights = torch.ones(256, dtype=DT)
    weights[idx] = 1e6
    c = wav.A(fista(y, op, wav, lam, weights=weights, max_iter=3000, tol=1e-10))
    assert abs(float(c[0, 0, idx])) < 1e-12
    assert int((c.abs() > 1e-12).sum()) > 10


def test_level_weights_sequence_equals_expanded_tensor_and_zero_weight_is_unpenalised() -> None:
    op, _, y = fourier_problem(16, rate=0.5)
    wav = Wavelet("haar", levels=2, size=16)
    levels = [0.0, 1.0, 3.0]
    x_seq = fista(y, op, wav, 0.02, weights=levels, max_iter=5000, tol=1e-12)
    x_vec = fista(y, op, wav, 0.02, weights=wav.expand_level_weights(levels, dtype=DT),
                  max_iter=5000, tol=1e-12)
    torch.testing.assert_close(x_seq, x_vec, rtol=0, atol=1e-14)
    # weight 0 on the approximation band: its gradient vanishes at the optimum
    grad = coefficient_gradient(x_seq, y, op, wav, real=True)
    assert grad[0, 0, wav.level_slices[0]].abs().max() < 1e-6
    active, ratio = optimality_residual(
        wav.A(x_seq)[..., wav.level_slices[1].start:], grad[..., wav.level_slices[1].start:],
        0.02 * wav.expand_level_weights(levels, dtype=DT)[wav.level_slices[1].start:])
    assert active < 1e-6 and ratio <= 1 + 1e-6


# ---------------------------------------------------------------------------------- convergence
def _ista(y, op, wav, lam: float, iterations: int) -> torch.Tensor:
    """Plain ISTA (proximal gradient, step 1/||A||^2, no momentum) as the baseline."""
    lip = op.norm() ** 2
    c = torch.zeros(1, 1, wav.num_coefficients, dtype=DT)
    for _ in range(iterations):
        grad = wav.A(op.A_adjoint(op.A(wav.A_adjoint(c)) - y).real)
        c = soft_threshold(c - grad / lip, lam / lip)
    return wav.A_adjoint(c)


def test_objective_decreases_and_beats_ista() -> None:
    op, _, y = fourier_problem(32, rate=0.25)
    wav = Wavelet("db2", levels=3, size=32)
    lam = 0.005
    x, info = fista(y, op, wav, lam, max_iter=100, tol=0.0, return_info=True)
    assert isinstance(info, SolverInfo)
    assert info.iterations == 100 and not info.converged
    assert info.objective.shape == (100, 1)
    f0 = 0.5 * float(torch.linalg.vector_norm(y) ** 2)  # objective of x0 = 0
    f_fista = float(lasso_objective(x, y, op, wav, lam))
    assert f_fista < 0.05 * f0
    torch.testing.assert_close(info.objective[-1], lasso_objective(x, y, op, wav, lam))
    # FISTA is not monotone, but after as many iterations it is well ahead of ISTA
    f_ista = float(lasso_objective(_ista(y, op, wav, lam, 100), y, op, wav, lam))
    f_star = float(lasso_objective(fista(y, op, wav, lam, max_iter=5000, tol=1e-12), y, op, wav, lam))
    assert f_star <= f_fista < f_ista
    assert (f_fista - f_star) < 0.2 * (f_ista - f_star)


def test_warm_start_at_the_solution_stops_at_once() -> None:
    op, _, y = fourier_problem(16, rate=0.5)
    wav = Wavelet("haar", levels=2, size=16)
    x_star = fista(y, op, wav, 0.01, max_iter=5000, tol=1e-13)
    x, info = fista(y, op, wav, 0.01, x0=x_star, tol=1e-8, return_info=True)
    assert info.converged and info.iterations <= 2
    torch.testing.assert_close(x, x_star, rtol=0, atol=1e-8)


def test_batch_items_are_solved_independently_with_per_item_lam() -> None:
    op, _, y = fourier_problem(16, rate=0.4, batch=2)
    assert not torch.allclose(y[0], y[1])
    wav = Wavelet("haar", levels=2, size=16)
    lam = torch.tensor([0.01, 0.05], dtype=DT)
    x = fista(y, op, wav, lam, max_iter=200, tol=0.0)
    for b in range(2):
        xb = fista(y[b:b + 1], op, wav, float(lam[b]), max_iter=200, tol=0.0)
        torch.testing.assert_close(x[b:b + 1], xb, rtol=0, atol=1e-12)


def test_real_flag_gives_real_images_and_float32_precision() -> None:
    op, _, y = fourier_problem(16)
    wav = Wavelet("haar", levels=2, size=16)
    x = fista(y.to(torch.complex64), op, wav, 0.01, max_iter=50)
    assert x.dtype == torch.float32 and x.shape == (1, 1, 16, 16)
    xc = fista(y.to(torch.complex64), op, wav, 0.01, max_iter=50, real=False)
    assert xc.dtype == torch.complex64


def test_differentiable_with_respect_to_y_and_lam() -> None:
    op = GaussianMatrix(24, (4, 4), seed=0)
    wav = Wavelet("haar", levels=1, size=4)
    y = op.A(piecewise_constant(4, seed=2)).requires_grad_(True)
    lam = torch.tensor(0.05, dtype=DT, requires_grad=True)

    def run(y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return fista(y, op, wav, lam, max_iter=15, tol=0.0)

    assert torch.autograd.gradcheck(run, (y, lam), atol=1e-7)


# ---------------------------------------------------------------------------------- validation
@pytest.fixture
def small() -> tuple[SubsampledFourier, Wavelet, torch.Tensor]:
    op, _, y = fourier_problem(16)
    return op, Wavelet("haar", levels=2, size=16), y


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lam": 0.0}, ValueError, "'lam'"),
        ({"lam": -1.0}, ValueError, "'lam'"),
        ({"lam": math.inf}, ValueError, "'lam'"),
        ({"lam": math.nan}, ValueError, "'lam'"),
        ({"lam": torch.ones(3)}, ValueError, "'lam'"),
        ({"max_iter": 0}, ValueError, "'max_iter'"),
        ({"max_iter": 2.5}, TypeError, "'max_iter'"),
        ({"tol": -1e-3}, ValueError, "'tol'"),
        ({"weights": torch.ones(10)}, ValueError, "'weights'"),
        ({"weights": [1.0, 1.0]}, ValueError, "'weights'"),
        ({"weights": -torch.ones(256)}, ValueError, "'weights'"),
        ({"weights": [1.0, -1.0, 1.0]}, ValueError, "'weights'"),
        ({"x0": torch.zeros(1, 1, 8, 8)}, ValueError, "'x0'"),
        ({"x0": torch.zeros(1, 1, 16, 16, dtype=torch.complex128)}, TypeError, "'x0'"),
    ],
)
def test_invalid_arguments_are_named(small, kwargs, error, match) -> None:
    op, wav, y = small
    args = {"lam": 0.01, **kwargs}
    with pytest.raises(error, match=match):
        fista(y, op, wav, max_iter=args.pop("max_iter", 5), **args)


def test_mismatched_shapes_are_rejected(small) -> None:
    op, wav, y = small
    with pytest.raises(ValueError, match="'sparsifier'"):
        fista(y, op, Wavelet("haar", levels=2, size=32), 0.01)
    with pytest.raises(ValueError, match="'y'"):
        fista(y[..., :-1], op, wav, 0.01)
    with pytest.raises(ValueError, match="'y'.*NaN"):
        fista(torch.full_like(y, math.nan), op, wav, 0.01)
    with pytest.raises(TypeError, match="'op'"):
        fista(y, "fourier", wav, 0.01)


def test_progress_bar_and_multichannel_non_square(capsys) -> None:
    op = SubsampledFourier(masks.variable_density((16, 32), rate=0.5, seed=0))
    x = piecewise_constant(32, seed=1, batch=2)[..., :16, :].expand(2, 3, 16, 32).contiguous()
    wav = Wavelet("db2", levels=2, size=(16, 32))
    x_hat = fista(op.A(x), op, wav, 1e-4, max_iter=20, progress=True)
    assert x_hat.shape == (2, 3, 16, 32)
    assert "fista" in capsys.readouterr().err
