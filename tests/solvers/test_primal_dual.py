"""Chambolle-Pock for the weighted square-root LASSO, and FIRENET's restart scheme."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stablerecon as sr
from stablerecon.solvers import (
    SqrtLassoProblem,
    fista,
    lasso_objective,
    level_sparsities,
    level_weights,
    primal_dual,
    restarted_primal_dual,
    sqrt_lasso_objective,
)


def haar_sparse_image(n: int, block: int = 8, seed: int = 0) -> torch.Tensor:
    """Piecewise constant on a dyadic grid of ``block``-pixel squares: exactly Haar-sparse."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, n // block, n // block, generator=g, dtype=torch.float64)
    return coarse.repeat_interleave(block, -1).repeat_interleave(block, -2)


def subgradient_residuals(problem: SqrtLassoProblem, x: torch.Tensor,
                          y: torch.Tensor) -> tuple[float, float]:
    """Violation of 0 in lam w d|c| + B^*(r / ||r||), relative to lam (active and inactive sets)."""
    c = problem.coefficients(x)
    r = problem.B(c) - y
    g = problem.B_adjoint(r / torch.linalg.vector_norm(r))
    t = problem.thresholds(c)
    active = c.abs() > 1e-9
    on = (g + t * torch.sign(c))[active].abs().max()
    off = (g.abs() - t)[~active].clamp_min(0).max()
    return float(on) / problem.lam, float(off) / problem.lam


@pytest.fixture(scope="module")
def small_problem() -> tuple[SqrtLassoProblem, torch.Tensor]:
    n = 16
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(n, 0.4, seed=0))
    x = sr.data.shepp_logan(n).double()
    y = op.A(x)
    y = y + sr.operators.noise.gaussian_like(y, rel=0.05, seed=0)
    return SqrtLassoProblem(op, sr.sparsity.Wavelet("haar", size=n), lam=0.05), y


def test_primal_dual_satisfies_optimality_conditions(small_problem) -> None:
    problem, y = small_problem
    x = primal_dual(y, problem.op, problem.sparsifier, problem.lam, max_iter=2000, ergodic=False)
    on, off = subgradient_residuals(problem, x, y)
    assert on < 1e-4 and off < 1e-4


def test_fista_and_primal_dual_agree_through_the_lasso_equivalence(small_problem) -> None:
    """The sqrt-LASSO minimiser c* also minimises the LASSO with lam_L = lam ||B c* - y||, so
    FISTA on that LASSO and CP on the sqrt-LASSO must reach each other's optimal objective."""
    problem, y = small_problem
    wav = problem.sparsifier
    x_cp = primal_dual(y, problem.op, wav, problem.lam, max_iter=4000, ergodic=False)
    residual = float(torch.linalg.vector_norm(problem.op.A(x_cp) - y))
    lam_lasso = problem.lam * residual
    x_fista = fista(y, problem.op, wav, lam_lasso, max_iter=20000, tol=1e-12)
    sq_cp = float(sqrt_lasso_objective(x_cp, y, problem.op, wav, problem.lam))
    sq_fista = float(sqrt_lasso_objective(x_fista, y, problem.op, wav, problem.lam))
    lasso_cp = float(lasso_objective(x_cp, y, problem.op, wav, lam_lasso))
    lasso_fista = float(lasso_objective(x_fista, y, problem.op, wav, lam_lasso))
    assert abs(sq_fista - sq_cp) <= 1e-5 * sq_cp
    assert abs(lasso_cp - lasso_fista) <= 1e-5 * lasso_fista
    assert float(torch.linalg.vector_norm(x_cp - x_fista) / torch.linalg.vector_norm(x_fista)) < 1e-3


def test_primal_dual_matches_scipy_reference_on_tiny_problem() -> None:
    """A 4x4 real problem solved independently by SLSQP on the smooth epigraph form."""
    from scipy.optimize import minimize

    n, lam = 4, 0.1
    op = sr.operators.GaussianMatrix(10, (n, n), seed=1)
    wav = sr.sparsity.Wavelet("haar", size=n)
    x_true = torch.zeros(1, 1, n, n, dtype=torch.float64)
    x_true[..., :2, :2] = 1.0
    g = torch.Generator().manual_seed(2)
    y = op.A(x_true) + 0.05 * torch.randn(1, 1, 10, dtype=torch.float64, generator=g)
    B = (op.to_matrix() @ wav.adjoint().to_matrix()).numpy()
    if np.iscomplexobj(B):  # a real matrix stored as complex: drop the zero imaginary part
        assert np.abs(B.imag).max() < 1e-12
        B = B.real
    yv = y.reshape(-1).numpy()

    # Smooth epigraph form: min lam sum(u + w) + t  s.t.  t^2 >= ||B (u - w) - y||^2, u, w, t >= 0.
    def objective(v: np.ndarray) -> float:
        return lam * v[:32].sum() + v[32]

    def gap(v: np.ndarray) -> float:
        return v[32] ** 2 - float(np.sum((B @ (v[:16] - v[16:32]) - yv) ** 2))

    start = np.concatenate([np.full(32, 0.1), [10.0]])
    ref = minimize(objective, start, method="SLSQP", bounds=[(0, None)] * 33,
                   constraints=[{"type": "ineq", "fun": gap}],
                   options={"ftol": 1e-15, "maxiter": 5000})
    x = primal_dual(y, op, wav, lam, max_iter=20000, ergodic=False,
                    tau=0.5 / op.norm(), sigma=2.0 / op.norm())
    c = wav.A(x).reshape(-1).numpy()
    ours = lam * np.abs(c).sum() + float(np.linalg.norm(B @ c - yv))
    # Same optimum from both methods, within 1e-5 relative (which one ends lower depends on the
    # SciPy release: SLSQP of SciPy 1.17 lands 8e-7 below CP's 20000th iterate).
    assert abs(ours - ref.fun) <= 1e-5 * ref.fun


def _errors(op, x, **kwargs) -> list[float]:
    errs: list[float] = []

    def record(k: int, xk: torch.Tensor) -> None:
        errs.append(float(torch.linalg.norm(xk - x) / torch.linalg.norm(x)))

    wavelet = sr.sparsity.Wavelet("haar", size=x.shape[-1])
    restarted_primal_dual(op.A(x), op, wavelet, lam=1e-2, callback=record, **kwargs)
    return errs


@pytest.mark.parametrize("kind", ["fourier", "hadamard"])
def test_restarts_converge_exponentially_on_sparse_images(kind: str) -> None:
    """Noiseless, exactly Haar-sparse image: log error linear in the layers down to 1e-5."""
    n, p = 128, 5
    x = haar_sparse_image(n)
    if kind == "fourier":
        op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(n, 0.25, seed=0))
    else:  # multilevel sampling: the coarse sequency block (where the image lives) in full
        mask = sr.operators.masks.variable_density(n, 0.25, seed=0, origin="corner", center_radius=0.18)
        op = sr.operators.SubsampledWalshHadamard(mask)
    errs = _errors(op, x, restarts=20, inner=p)
    layers = p * np.arange(1, len(errs) + 1)
    reached = next(i for i, e in enumerate(errs) if e <= 1e-5)
    assert layers[reached] <= 100
    logs = np.log(errs[: reached + 1])
    r2 = np.corrcoef(layers[: reached + 1], logs)[0, 1] ** 2
    assert r2 > 0.95
    plain = primal_dual(op.A(x), op, sr.sparsity.Wavelet("haar", size=n), lam=1e-2, max_iter=800)
    plain_err = float(torch.linalg.norm(plain - x) / torch.linalg.norm(x))
    assert plain_err >= 100 * 1e-5


def test_missing_coarse_sequency_makes_restarts_stall() -> None:
    """The same image on a Walsh mask missing one coarse coefficient: the l1 solution is not the
    image, so the restarts stop at a floor (documented behaviour, not a solver failure)."""
    n = 128
    x = haar_sparse_image(n)
    mask = sr.operators.masks.variable_density(n, 0.25, seed=0, origin="corner")
    assert not bool(mask[:16, :16].all())
    errs = _errors(sr.operators.SubsampledWalshHadamard(mask), x, restarts=12, inner=5)
    assert min(errs) > 1e-4 and errs[-1] / errs[-4] > 0.5


def test_level_weights_and_sparsities() -> None:
    assert level_weights([1, 4, 0, 4]) == pytest.approx([3.0, 1.5, 3.0, 1.5])
    wav = sr.sparsity.Wavelet("haar", levels=3, size=16)
    c = wav.A(haar_sparse_image(16, block=4))  # lives on levels 0..2 only
    s = level_sparsities(c, wav.level_index, fraction=1.0)
    assert s[3] == 0 and sum(s) <= 16
    with pytest.raises(ValueError, match="'sparsities'"):
        level_weights([0, 0])


def test_invalid_parameters(small_problem) -> None:
    problem, y = small_problem
    op, wav = problem.op, problem.sparsifier
    with pytest.raises(ValueError, match="'lam'"):
        primal_dual(y, op, wav, lam=0.0)
    with pytest.raises(ValueError, match="'inner'"):
        restarted_primal_dual(y, op, wav, lam=0.1, inner=0)
    with pytest.raises(ValueError, match="'restarts'"):
        restarted_primal_dual(y, op, wav, lam=0.1, restarts=-1)
    with pytest.raises(ValueError, match="'delta'"):
        restarted_primal_dual(y, op, wav, lam=0.1, delta=-1.0)
    with pytest.raises(ValueError, match="'sparsifier'"):
        primal_dual(y, op, sr.sparsity.Wavelet("haar", size=32), lam=0.1)
    with pytest.raises(ValueError, match="tau \\* sigma"):
        primal_dual(y, op, wav, lam=0.1, tau=2.0, sigma=1.0)
    with pytest.raises(ValueError, match="'y'"):
        primal_dual(y[..., :-1], op, wav, lam=0.1)
    with pytest.raises(ValueError, match="'weights'"):
        primal_dual(y, op, wav, lam=0.1, weights=[1.0, 2.0])
