"""Tests of the Chambolle-Pock total-variation solver.

Independent checks: scikit-image's ``denoise_tv_chambolle`` (Chambolle's 2004 dual projection
algorithm) for isotropic ROF denoising, with a tolerance derived from a duality-gap certificate;
L-BFGS-B on the box-constrained dual of anisotropic ROF with a dense difference matrix built
here; a long-run (20000 iterations, float64) reference on a subsampled Fourier problem; the
symmetries of the problem (global phase, periodic shifts).
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from skimage.restoration import denoise_tv_chambolle
from solver_images import DT, piecewise_constant

from stablerecon.operators import Identity, SubsampledFourier, masks
from stablerecon.solvers.tv import primal_dual_tv, total_variation, tv_objective
from stablerecon.sparsity import FiniteDifference


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)


def fourier_problem(size: int, rate: float, seed: int = 0,
                    noise: float = 0.01) -> tuple[SubsampledFourier, torch.Tensor, torch.Tensor]:
    op = SubsampledFourier(masks.variable_density(size, rate=rate, seed=seed))
    x = piecewise_constant(size, seed=seed)
    y = op.A(x)
    g = torch.Generator().manual_seed(seed + 100)
    y = y + noise * torch.complex(torch.randn(y.shape, generator=g, dtype=DT),
                                  torch.randn(y.shape, generator=g, dtype=DT))
    return op, x, y


# ------------------------------------------------------------------------ objective, TV value
def test_total_variation_closed_form() -> None:
    x = torch.zeros(1, 1, 6, 6, dtype=DT)
    x[..., 2:4, 2:4] = 1.0  # a 2x2 square: 8 unit jumps across its border
    # anisotropic: 8 unit differences; isotropic: 6 single jumps + 2 corner pixels with a
    # (1, 1) gradient of norm sqrt(2) (the top-left pixel before the square sees none)
    assert float(total_variation(x, isotropic=False)) == pytest.approx(8.0)
    assert float(total_variation(x)) == pytest.approx(6.0 + math.sqrt(2.0))
    op = Identity(6)
    assert float(tv_objective(x, x + 0.5, op, 0.3)) == pytest.approx(0.5 * 36 * 0.25 + 0.3 * (6 + 2**0.5))


# ------------------------------------------------------------------------ ROF denoising
def _dual_value(y: torch.Tensor, q: torch.Tensor) -> float:
    """ROF dual ``0.5 ||y||^2 - 0.5 ||y - D^* q||^2``, a lower bound of the optimal value for
    every ``q`` with ``|q_ij|_2 <= lam`` (weak duality)."""
    d = FiniteDifference(y.shape[-1])
    return float(0.5 * y.square().sum() - 0.5 * (y - d.A_adjoint(q)).square().sum())


def test_rof_denoising_matches_skimage_within_a_certified_tolerance() -> None:
    """skimage minimises ``weight * TV(u) + 0.5 ||u - f||^2``: our ``lam`` is its ``weight``.

    Tolerance: the ROF energy ``E`` is 1-strongly convex, so ``||u - u*||^2 <= 2 (E(u) - E*)``
    for any ``u``; the dual variable of our solver gives a certified lower bound ``E* >= d``,
    hence ``||u_ours - u_sk|| <= sqrt(2 (E_ours - d)) + sqrt(2 (E_sk - d))``.
    """
    x = piecewise_constant(32, seed=4)
    y = noisy(x, 0.1)
    lam = 0.1
    op = Identity(32)
    ours, info = primal_dual_tv(y, op, lam, max_iter=3000, tol=0.0, return_info=True)
    sk = denoise_tv_chambolle(y[0, 0].numpy(), weight=lam, eps=0.0, max_num_iter=5000)
    sk = torch.from_numpy(sk)[None, None]
    q = info.extras["dual_tv"]
    assert float(torch.linalg.vector_norm(q, dim=2).max()) <= lam * (1 + 1e-12)  # dual feasible
    d = _dual_value(y, q)
    e_ours, e_sk = float(tv_objective(ours, y, op, lam)), float(tv_objective(sk, y, op, lam))
    assert d <= e_ours and d <= e_sk
    gap = e_ours - d
    assert gap < 1e-5 * e_ours  # certified relative accuracy of our solution
    bound = math.sqrt(2 * (e_ours - d)) + math.sqrt(2 * (e_sk - d))
    dist = float(torch.linalg.vector_norm(ours - sk))
    assert dist <= bound, (dist, bound)
    assert bound < 0.02 * float(torch.linalg.vector_norm(y))  # the check is not vacuous
    # the denoised image is closer to the truth than the noisy one
    assert torch.linalg.vector_norm(ours - x) < 0.5 * torch.linalg.vector_norm(y - x)


def _dense_neumann_gradient(h: int, w: int) -> np.ndarray:
    """Forward differences with a zero last row/column, as a ``(2 h w, h w)`` matrix."""
    def d1(n: int) -> np.ndarray:
        m = np.diff(np.eye(n), axis=0)  # (n - 1, n): x_{i+1} - x_i
        return np.vstack([m, np.zeros((1, n))])
    return np.vstack([np.kron(d1(h), np.eye(w)), np.kron(np.eye(h), d1(w))])


def test_anisotropic_rof_matches_lbfgsb_dual_reference() -> None:
    """Anisotropic ROF ``min 0.5 ||x - y||^2 + lam ||D x||_1`` has the box-constrained dual
    ``min_{|q|_inf <= lam} 0.5 ||y - D^T q||^2`` with ``x = y - D^T q``: smooth, solved by L-BFGS-B."""
    size, lam = 8, 0.15
    y = noisy(piecewise_constant(size, seed=5), 0.1, seed=1)
    dm = _dense_neumann_gradient(size, size)
    yv = y.flatten().numpy()

    def fun(q: np.ndarray) -> tuple[float, np.ndarray]:
        r = yv - dm.T @ q
        return 0.5 * r @ r, -(dm @ r)

    res = minimize(fun, np.zeros(dm.shape[0]), jac=True, method="L-BFGS-B",
                   bounds=[(-lam, lam)] * dm.shape[0],
                   options={"maxiter": 20000, "ftol": 1e-16, "gtol": 1e-12})
    ref = torch.from_numpy(yv - dm.T @ res.x).reshape(1, 1, size, size)
    ours = primal_dual_tv(y, Identity(size), lam, isotropic=False, max_iter=20000, tol=1e-12)
    assert float((ours - ref).abs().max()) < 1e-7
    # the reference's dual value certifies our primal value: E(ours) - dual <= 1e-10 relative
    # (E(ref) itself is ~1e-8 higher: the l1 term is not smooth at the many zero differences,
    # so the ~1e-9 errors of the dual-derived x cost TV linearly)
    e_ours = float(tv_objective(ours, y, Identity(size), lam, isotropic=False))
    dual = 0.5 * float(yv @ yv) - res.fun
    assert dual <= e_ours * (1 + 1e-12)
    assert e_ours - dual <= 1e-10 * e_ours


# ------------------------------------------------------------------------ Fourier reference
@pytest.fixture(scope="module")
def fourier_reference() -> dict:
    op, x, y = fourier_problem(16, rate=0.4)
    lam = 0.01
    ref = primal_dual_tv(y, op, lam, max_iter=20000, tol=0.0)
    return {"op": op, "x": x, "y": y, "lam": lam, "e_ref": float(tv_objective(ref, y, op, lam))}


def test_2000_iterations_agree_with_a_20000_iteration_reference(fourier_reference) -> None:
    r = fourier_reference
    x, info = primal_dual_tv(r["y"], r["op"], r["lam"], max_iter=2000, tol=0.0, return_info=True)
    assert x.dtype == DT
    e = float(tv_objective(x, r["y"], r["op"], r["lam"]))
    assert abs(e - r["e_ref"]) <= 1e-5 * r["e_ref"], (e, r["e_ref"])
    assert float(info.objective[-1, 0]) == pytest.approx(e, rel=1e-12)


def test_ergodic_and_last_iterate_both_converge(fourier_reference) -> None:
    r = fourier_reference

    def gap(iterations: int, ergodic: bool) -> float:
        x = primal_dual_tv(r["y"], r["op"], r["lam"], max_iter=iterations, tol=0.0, ergodic=ergodic)
        return (float(tv_objective(x, r["y"], r["op"], r["lam"])) - r["e_ref"]) / r["e_ref"]

    last_500, last_2000 = gap(500, False), gap(2000, False)
    erg_500, erg_2000 = gap(500, True), gap(2000, True)
    # the reference is (numerically) optimal: nothing beats it by more than rounding
    assert min(last_500, last_2000, erg_500, erg_2000) > -1e-9
    assert last_2000 < 1e-5 and last_2000 < last_500
    # the average converges at the O(1/k) rate of the theory: 4x the iterations, > 2x smaller gap
    assert erg_2000 < 5e-3 and erg_2000 < 0.5 * erg_500


def test_tv_beats_zero_filling_on_subsampled_fourier() -> None:
    op, x, y = fourier_problem(32, rate=0.3, noise=0.005)
    lam = 0.005
    zero_filled = op.A_dagger(y).real
    x_tv, info = primal_dual_tv(y, op, lam, max_iter=1000, tol=1e-5, return_info=True)
    assert info.converged and info.iterations < 1000
    assert float(tv_objective(x_tv, y, op, lam)) < 0.5 * float(tv_objective(zero_filled, y, op, lam))
    err_tv = float(torch.linalg.vector_norm(x_tv - x) / torch.linalg.vector_norm(x))
    err_zf = float(torch.linalg.vector_norm(zero_filled - x) / torch.linalg.vector_norm(x))
    assert err_tv < 0.5 * err_zf, (err_tv, err_zf)


# ------------------------------------------------------------------------ symmetries, batches
def test_complex_images_are_phase_equivariant_and_real_data_gives_the_real_solution() -> None:
    y = noisy(piecewise_constant(16, seed=2), 0.1)
    op = Identity(16)
    x_real = primal_dual_tv(y, op, 0.1, max_iter=300, tol=0.0)
    rot = cmath.exp(1.1j)
    x_c = primal_dual_tv(y * rot, op, 0.1, max_iter=300, tol=0.0, real=False)
    assert x_c.dtype == torch.complex128
    torch.testing.assert_close(x_c, x_real * rot, rtol=0, atol=1e-12)


def test_periodic_boundary_is_shift_equivariant() -> None:
    y = noisy(piecewise_constant(16, seed=3), 0.1)
    op = Identity(16)
    x = primal_dual_tv(y, op, 0.1, boundary="periodic", max_iter=300, tol=0.0)
    xs = primal_dual_tv(torch.roll(y, (5, -3), (-2, -1)), op, 0.1, boundary="periodic", max_iter=300,
                        tol=0.0)
    torch.testing.assert_close(xs, torch.roll(x, (5, -3), (-2, -1)), rtol=0, atol=1e-12)
    xn = primal_dual_tv(torch.roll(y, (5, -3), (-2, -1)), op, 0.1, max_iter=300, tol=0.0)
    assert not torch.allclose(xn, xs, atol=1e-3)  # Neumann differs: the boundary is honoured


def test_batch_items_are_independent_with_per_item_lam() -> None:
    y = noisy(piecewise_constant(16, seed=6, batch=2), 0.1)
    op = Identity(16)
    lam = torch.tensor([0.05, 0.2], dtype=DT)
    x = primal_dual_tv(y, op, lam, max_iter=200, tol=0.0)
    for b in range(2):
        xb = primal_dual_tv(y[b:b + 1], op, float(lam[b]), max_iter=200, tol=0.0)
        torch.testing.assert_close(x[b:b + 1], xb, rtol=0, atol=1e-12)


def test_float32_and_step_sizes() -> None:
    op, _, y = fourier_problem(16, rate=0.4)
    x = primal_dual_tv(y.to(torch.complex64), op, 0.01, max_iter=20)
    assert x.dtype == torch.float32 and x.shape == (1, 1, 16, 16)
    k2 = 1.0 + FiniteDifference(16).norm() ** 2
    _, info = primal_dual_tv(y, op, 0.01, tau=0.5, max_iter=2, return_info=True)
    assert info.extras["sigma"] == pytest.approx(1.0 / (0.5 * k2))
    with pytest.raises(ValueError, match=r"tau \* sigma \* \|\|K\|\|\^2 <= 1"):
        primal_dual_tv(y, op, 0.01, tau=1.0, sigma=1.0)
    with pytest.raises(ValueError, match="'tau'"):
        primal_dual_tv(y, op, 0.01, tau=-1.0)


def test_differentiable_with_respect_to_y_and_lam() -> None:
    y = noisy(piecewise_constant(4, seed=1), 0.1).requires_grad_(True)
    lam = torch.tensor(0.1, dtype=DT, requires_grad=True)

    def run(y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return primal_dual_tv(y, Identity(4), lam, max_iter=10, tol=0.0)

    assert torch.autograd.gradcheck(run, (y, lam), atol=1e-7)


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lam": 0.0}, ValueError, "'lam'"),
        ({"lam": math.nan}, ValueError, "'lam'"),
        ({"max_iter": 0}, ValueError, "'max_iter'"),
        ({"tol": -1.0}, ValueError, "'tol'"),
        ({"sigma": math.inf}, ValueError, "'sigma'"),
        ({"boundary": "reflect"}, ValueError, "'boundary'"),
        ({"isotropic": "yes"}, TypeError, "'isotropic'"),
        ({"x0": torch.zeros(1, 1, 16, 16, dtype=torch.complex128)}, TypeError, "'x0'"),
        ({"x0": torch.zeros(1, 1, 8, 8)}, ValueError, "'x0'"),
    ],
)
def test_invalid_arguments_are_named(kwargs, error, match) -> None:
    y = torch.zeros(1, 1, 16, 16, dtype=DT)
    args = {"lam": 0.1, **kwargs}
    with pytest.raises(error, match=match):
        primal_dual_tv(y, Identity(16), max_iter=args.pop("max_iter", 5), **args)


def test_invalid_measurements_are_named() -> None:
    with pytest.raises(ValueError, match="'y'"):
        primal_dual_tv(torch.zeros(1, 1, 8, 8), Identity(16), 0.1)
    with pytest.raises(ValueError, match="'y'.*NaN"):
        primal_dual_tv(torch.full((1, 1, 16, 16), math.nan), Identity(16), 0.1)


def test_progress_bar_and_multichannel_non_square(capsys) -> None:
    op = SubsampledFourier(masks.variable_density((16, 32), rate=0.5, seed=0))
    x = piecewise_constant(32, seed=1, batch=2)[..., :16, :].expand(2, 3, 16, 32).contiguous()
    x_hat = primal_dual_tv(op.A(x), op, 1e-3, max_iter=20, progress=True)
    assert x_hat.shape == (2, 3, 16, 32)
    assert "primal_dual_tv" in capsys.readouterr().err
