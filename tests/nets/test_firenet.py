"""FIRENET: accuracy in few layers, stability under worst-case perturbations, warm starts."""

from __future__ import annotations

import pytest
import torch

import stablerecon as sr
from stablerecon.nets import FIRENet


@pytest.fixture(scope="module")
def mri64() -> tuple[sr.operators.SubsampledFourier, torch.Tensor]:
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(64, 0.3, seed=0))
    return op, sr.data.shepp_logan(64).double()


@pytest.mark.parametrize(("size", "params", "bound"), [
    (64, {}, 3.0),
    (128, {"lam": 1e-2, "inner": 5}, 3.0),
    # the defaults (db4, pivotal lam, p = 6) are more accurate (0.218 against 0.24 relative
    # error here) and pay for it with a larger worst-case amplification (measured 2.54; the old
    # Haar defaults with lam 2e-3, p 8 measured 3.24 at 0.185): the accuracy-stability trade-off
    (128, {}, 3.0),
])
def test_worst_case_amplification_is_bounded(size: int, params: dict, bound: float) -> None:
    """Projected gradient ascent (12 steps) on ||Phi(y + e) - Phi(y)|| with ||e|| <= 5% ||y||,
    FIRENET on 2%-noisy Shepp-Logan measurements, 25% Fourier sampling."""
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(size, 0.25, seed=0))
    x = sr.data.shepp_logan(size).double()
    net = FIRENet(op, **params)
    y = sr.operators.noise.add_gaussian(op.A(x), rel=0.02, seed=1)
    with torch.no_grad():
        base = net(y)
    radius = 0.05 * torch.linalg.vector_norm(y)
    g = torch.Generator().manual_seed(0)
    e = torch.complex(torch.randn(y.shape, generator=g, dtype=torch.float64),
                      torch.randn(y.shape, generator=g, dtype=torch.float64))
    e = (e * radius / torch.linalg.vector_norm(e)).requires_grad_(True)
    amplification = 0.0
    for _ in range(12):
        diff = torch.linalg.vector_norm(net(y + e) - base)
        amplification = max(amplification, float(diff.detach() / torch.linalg.vector_norm(e.detach())))
        (grad,) = torch.autograd.grad(diff, e)
        with torch.no_grad():
            e = e + 0.5 * radius * grad / torch.linalg.vector_norm(grad)
            e = e * torch.clamp(radius / torch.linalg.vector_norm(e), max=1.0)
        e.requires_grad_(True)
    assert 1.0 < amplification <= bound  # > 1: the ascent found more than the adjoint's gain


def test_warm_start_and_batches(mri64) -> None:
    op, x = mri64
    net = FIRENet(op, restarts=3, inner=5)
    y = op.A(x)
    # warm start at the truth: closer to it than the cold start after the same layers
    warm = float(torch.linalg.norm(net(y, x0=x) - x) / torch.linalg.norm(x))
    cold = float(torch.linalg.norm(net(y) - x) / torch.linalg.norm(x))
    assert warm < cold
    # a batch gives the per-item results
    xb = torch.cat([x, x.flip(-1)])
    out = net(op.A(xb))
    torch.testing.assert_close(out[:1], net(y))
    assert not out.is_complex()


def test_complex_images_and_validation(mri64) -> None:
    op, x = mri64
    g = torch.Generator().manual_seed(0)
    sparse = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64)
    sparse = sparse.repeat_interleave(8, -1).repeat_interleave(8, -2)  # exactly Haar-sparse
    xc = sparse * torch.exp(1j * torch.rand(1, 1, 1, 1, generator=g, dtype=torch.float64))
    # Haar: the image is Haar-sparse (the default db4 is for photographs)
    out = FIRENet(op, sr.sparsity.Wavelet("haar", size=64), restarts=10, inner=5, real=False)(op.A(xc))
    assert out.is_complex()
    assert float(torch.linalg.norm(out - xc) / torch.linalg.norm(xc)) < 1e-3
    with pytest.raises(ValueError, match="'lam'"):
        FIRENet(op, lam=0.0)
    with pytest.raises(ValueError, match="'inner'"):
        FIRENet(op, inner=0)
    with pytest.raises(ValueError, match="needs an operator"):
        FIRENet()(op.A(x))
    with pytest.raises(ValueError, match="'lam'"):
        FIRENet(op, lam=-1e-3)
    with pytest.raises(ValueError, match="'restarts'"):
        FIRENet(op, restarts=0)
    with pytest.raises(ValueError, match="'inner'"):
        FIRENet(op, inner=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'delta'"):
        FIRENet(op, delta=-0.1)
    small = sr.sparsity.Wavelet("haar", size=32)
    with pytest.raises(ValueError, match="'sparsifier'"):
        FIRENet(op, sparsifier=small)
    with pytest.raises(ValueError, match="'sparsifier'"):  # mismatch found at call time too
        FIRENet(sparsifier=small)(op.A(x), op)
    with pytest.raises(ValueError, match="'y'"):
        FIRENet(op)(op.A(x)[..., :10])
    with pytest.raises(ValueError, match="NaN|finite"):
        FIRENet(op)(op.A(x) * float("nan"))


def _relative(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(x_hat - x) / torch.linalg.vector_norm(x))


@pytest.fixture(scope="module")
def fourier128() -> sr.operators.SubsampledFourier:
    return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(128, 0.25, seed=0))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shepp_logan", "ellipses", "camera"])
def test_noisy_natural_images_reach_the_floor_in_few_layers(fourier128, name: str) -> None:
    """2% noise: the floor is the error of the square-root LASSO minimiser (independent long
    plain Chambolle-Pock run, last iterate). FIRENET (defaults) gets within 10% of it in at
    most 20 layers; plain ergodic CP needs at least 10x as many iterations or never gets there
    within 1000. The problem is the defaults' own: db4 wavelets and the pivotal lam."""
    op = fourier128
    x = {"shepp_logan": sr.data.shepp_logan(128).double(),
         "ellipses": sr.data.ellipses(1, 128, seed=0).double(),
         "camera": sr.data.image("camera", 128).double()}[name]
    y = sr.operators.noise.add_gaussian(op.A(x), rel=0.02, seed=1)
    net = FIRENet(op)
    wavelet = sr.sparsity.Wavelet("db4", size=128)
    minimiser, info = sr.solvers.primal_dual(y, op, wavelet, net.lam, max_iter=3000, ergodic=False,
                                             return_info=True)
    assert float(info.relative_change.max()) < 1e-4  # converged
    floor = _relative(minimiser, x)

    errors: list[float] = []
    sr.solvers.restarted_primal_dual(y, op, wavelet, net.lam, restarts=net.restarts, inner=net.inner,
                                     callback=lambda k, xk: errors.append(_relative(xk, x)))
    layers = next(net.inner * (k + 1) for k, e in enumerate(errors) if e <= 1.1 * floor)
    assert layers <= 20
    torch.testing.assert_close(net(y), sr.solvers.restarted_primal_dual(
        y, op, wavelet, net.lam, restarts=net.restarts, inner=net.inner))

    plain: list[float] = []
    sr.solvers.primal_dual(y, op, wavelet, net.lam, max_iter=1000, ergodic=True,
                           callback=lambda k, xk: plain.append(_relative(xk, x)))
    reached = next((k + 1 for k, e in enumerate(plain) if e <= 1.1 * floor), None)
    assert reached is None or reached >= 10 * layers


def _sparse_problem(kind: str, size: int) -> tuple[sr.operators.LinearOperator, torch.Tensor]:
    """Exactly Haar-sparse image (256 non-zero coefficients) and 25% sampling; the Walsh mask
    holds the coarse 16 x 16 sequency block where that image lives."""
    x = sr.data.haar_sparse(size, block=size // 16, dtype=torch.float64)
    if kind == "fourier":
        return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(size, 0.25, seed=0)), x
    mask = sr.operators.masks.variable_density(size, 0.25, seed=0, origin="corner",
                                               center_radius=1.45 * 16 / size)
    assert bool(mask[:16, :16].all())
    return sr.operators.SubsampledWalshHadamard(mask), x


def _block_errors(op, x, lam: float, inner: int, layers: int) -> list[float]:
    errors: list[float] = []
    sr.solvers.restarted_primal_dual(op.A(x), op, sr.sparsity.Wavelet("haar", size=x.shape[-1]), lam,
                                     restarts=layers // inner, inner=inner,
                                     callback=lambda k, xk: errors.append(_relative(xk, x)))
    return errors


@pytest.mark.parametrize("kind", ["fourier", "hadamard"])
@pytest.mark.parametrize("size", [64, 256])
def test_defaults_are_in_the_working_range(kind: str, size: int) -> None:
    """Default lam (the pivotal rule at this size) and p, with the Haar wavelets in which the
    image is sparse: exponential convergence to 1e-5 within 11 restarts (66 layers; the default
    7 restarts stop near 1e-4, enough for noisy data, see the FIRENet docstring)."""
    op, x = _sparse_problem(kind, size)
    haar = sr.sparsity.Wavelet("haar", size=size)
    net = FIRENet(op, haar, restarts=11)
    errors = _block_errors(op, x, net.lam, net.inner, net.layers)
    assert min(errors) <= 1e-5
    assert all(b < 0.7 * a for a, b in zip(errors[1:], errors[2:], strict=False))  # geometric
    torch.testing.assert_close(net(op.A(x)), sr.solvers.restarted_primal_dual(
        op.A(x), op, haar, net.lam, restarts=net.restarts, inner=net.inner))


@pytest.mark.parametrize(("lam", "inner", "why"), [(2e-3, 3, "p too small"),
                                                   (1e-4, 5, "lam too small for p"),
                                                   (1e-1, 8, "lam too large")])
def test_outside_the_window_the_restarts_stall(lam: float, inner: int, why: str) -> None:
    """Too small p (or lam too small for p) and the steps shrink faster than the error: the
    output freezes far above the truth; too large lam biases the minimiser itself."""
    op, x = _sparse_problem("fourier", 64)
    errors = _block_errors(op, x, lam, inner, 120)
    assert min(errors) > 1e-3, why
    assert errors[-1] > 0.5 * errors[len(errors) // 2], why  # no progress in the second half
