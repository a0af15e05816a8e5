"""SparseReconstructor: the solvers behind the ``method(y, op)`` contract."""

from __future__ import annotations

import math

import pytest
import torch

import stablerecon as sr
from stablerecon.solvers import SparseReconstructor, fista, primal_dual, primal_dual_tv

N = 32


@pytest.fixture(scope="module")
def problem() -> tuple[sr.operators.SubsampledFourier, torch.Tensor, torch.Tensor]:
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(N, 0.4, seed=0))
    x = torch.cat([sr.data.shepp_logan(N).double(), sr.data.ellipses(1, N, seed=3).double()])
    y = sr.operators.noise.add_gaussian(op.A(x), rel=0.02, seed=0)
    return op, x, y


def _rms(y: torch.Tensor) -> torch.Tensor:
    flat = y.reshape(y.shape[0], -1)
    return torch.sqrt((flat.abs() ** 2).mean(1))


@pytest.mark.parametrize("method", SparseReconstructor.METHODS)
def test_calls_the_solver_with_the_documented_weight(problem, method: str) -> None:
    """The relative lam of the least-squares methods is lam * RMS(y) per batch item."""
    op, x, y = problem
    rec = SparseReconstructor(method, op, lam=0.05, max_iter=60)
    wav = sr.sparsity.Wavelet("haar", size=N)
    for b in range(2):  # solved item by item with a scalar absolute weight
        yb = y[b:b + 1]
        if method == "fista":
            ref = fista(yb, op, wav, 0.05 * float(_rms(yb)), max_iter=60, tol=0.0)
        elif method == "tv":
            ref = primal_dual_tv(yb, op, 0.05 * float(_rms(yb)), max_iter=60, tol=0.0)
        else:  # on unit-RMS data, scaled back
            ref = float(_rms(yb)) * primal_dual(yb / _rms(yb), op, wav, 0.05, max_iter=60, ergodic=False)
        torch.testing.assert_close(rec(y)[b:b + 1], ref)
    absolute = SparseReconstructor(method, op, lam=0.05, max_iter=60, absolute=True)
    if method != "primal_dual":
        assert not torch.allclose(absolute(y), rec(y))


@pytest.mark.parametrize("method", SparseReconstructor.METHODS)
def test_reconstruction_is_scale_equivariant(problem, method: str) -> None:
    """Scale-free weights: rec(s y) = s rec(y), exactly as the objectives' homogeneity predicts."""
    op, _, y = problem
    rec = SparseReconstructor(method, op, max_iter=40)
    torch.testing.assert_close(rec(255.0 * y), 255.0 * rec(y), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", SparseReconstructor.METHODS)
def test_defaults_beat_zero_filling_on_noisy_mri(method: str) -> None:
    n = 64
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(n, 0.25, seed=0))
    x = sr.data.shepp_logan(n).double()
    y = sr.operators.noise.add_gaussian(op.A(x), rel=0.02, seed=1)
    zero_filled = sr.metrics.relative_error(op.A_dagger(y).real, x)
    ours = sr.metrics.relative_error(SparseReconstructor(method, op)(y), x)
    assert float(ours) < 0.8 * float(zero_filled)


def test_differentiable_warm_start_and_operator_per_call(problem) -> None:
    op, x, y = problem
    rec = SparseReconstructor("fista", max_iter=20)
    assert rec.differentiable
    yy = y.clone().requires_grad_(True)
    rec(yy, op).pow(2).sum().backward()
    assert yy.grad is not None and bool(torch.isfinite(yy.grad).all()) and float(yy.grad.abs().max()) > 0
    # warm start at the truth: the first iterations stay nearer to it than a cold start does
    warm = sr.metrics.relative_error(SparseReconstructor("tv", op, max_iter=5)(y, x0=x), x)
    cold = sr.metrics.relative_error(SparseReconstructor("tv", op, max_iter=5)(y), x)
    assert bool((warm < cold).all())


def test_invalid_arguments(problem) -> None:
    op, _, y = problem
    with pytest.raises(ValueError, match="'method'"):
        SparseReconstructor("admm")
    with pytest.raises(ValueError, match="'lam'"):
        SparseReconstructor("fista", lam=-1.0)
    with pytest.raises(ValueError, match="'lam'"):
        SparseReconstructor("tv", lam=math.nan)
    with pytest.raises(ValueError, match="'max_iter'"):
        SparseReconstructor("tv", max_iter=0)
    with pytest.raises(TypeError, match="'op'"):
        SparseReconstructor("tv", op="fourier")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an operator"):
        SparseReconstructor("tv")(y)
    with pytest.raises(ValueError, match="all-zero"):
        SparseReconstructor("fista", op)(torch.zeros_like(y))
    with pytest.raises(ValueError, match="'sparsifier'"):
        SparseReconstructor("fista", op, sparsifier=sr.sparsity.Wavelet("haar", size=16))(y)
    with pytest.raises(ValueError, match="NaN|finite"):
        SparseReconstructor("primal_dual", op)(y * math.nan)
