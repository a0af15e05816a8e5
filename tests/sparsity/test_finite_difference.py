"""Tests of the TV gradient operator against numpy differences and dense linear algebra."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stablerecon.sparsity import FiniteDifference


def np_gradient(x: np.ndarray, boundary: str) -> np.ndarray:
    """Reference forward differences with ``np.diff``: the appended row/column is the last one
    (Neumann: zero difference) or the first one (periodic: wrap-around)."""
    if boundary == "neumann":
        dv = np.diff(x, axis=-2, append=x[..., -1:, :])
        dh = np.diff(x, axis=-1, append=x[..., :, -1:])
    else:
        dv = np.diff(x, axis=-2, append=x[..., :1, :])
        dh = np.diff(x, axis=-1, append=x[..., :, :1])
    return np.stack([dv, dh], axis=-3)


def np_neg_divergence(p: np.ndarray, boundary: str) -> np.ndarray:
    """Reference ``-div p`` (A. Chambolle 2004, eq. (2.2) for Neumann), written with loops."""
    *lead, _, h, w = p.shape
    out = np.zeros((*lead, h, w), dtype=p.dtype)
    pv, ph = p[..., 0, :, :], p[..., 1, :, :]
    for i in range(h):
        for j in range(w):
            if boundary == "neumann":
                div_v = (pv[..., i, j] if i < h - 1 else 0) - (pv[..., i - 1, j] if i > 0 else 0)
                div_h = (ph[..., i, j] if j < w - 1 else 0) - (ph[..., i, j - 1] if j > 0 else 0)
            else:
                div_v = pv[..., i, j] - pv[..., (i - 1) % h, j]
                div_h = ph[..., i, j] - ph[..., i, (j - 1) % w]
            out[..., i, j] = -(div_v + div_h)
    return out


BOUNDARIES = ["neumann", "periodic"]


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("size", [(8, 8), (5, 7), (1, 6)])
def test_forward_matches_numpy(boundary: str, size: tuple[int, int]) -> None:
    D = FiniteDifference(size, boundary=boundary)
    x = torch.randn(3, 2, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = D.A(x)
    assert out.shape == (3, 2, 2, *size)
    np.testing.assert_allclose(out.numpy(), np_gradient(x.numpy(), boundary), rtol=0, atol=1e-14)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_adjoint_is_negative_divergence(boundary: str) -> None:
    D = FiniteDifference((6, 5), boundary=boundary)
    p = torch.randn(2, 1, 2, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(
        D.A_adjoint(p).numpy(), np_neg_divergence(p.numpy(), boundary), rtol=0, atol=1e-14
    )


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_complex_images(boundary: str) -> None:
    D = FiniteDifference(8, boundary=boundary)
    g = torch.Generator().manual_seed(2)
    z = torch.complex(torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64),
                      torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64))
    out = D.A(z)
    assert out.dtype == torch.complex128
    np.testing.assert_allclose(out.numpy(), np_gradient(z.numpy(), boundary), atol=1e-14)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12),
                                       (torch.complex64, 1e-5), (torch.complex128, 1e-12)])
def test_dot_test(boundary: str, dtype: torch.dtype, tol: float) -> None:
    D = FiniteDifference((32, 24), boundary=boundary)
    assert D.adjointness_error(dtype=dtype, batch=3) < tol


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("size", [16, (16, 9), (7, 5), (1, 8)])
def test_norm_against_dense_svd(boundary: str, size) -> None:
    D = FiniteDifference(size, boundary=boundary)
    M = D.to_matrix(dtype=torch.float64)
    h, w = (size, size) if isinstance(size, int) else size
    assert M.shape == (2 * h * w, h * w)
    sigma_max = float(torch.linalg.matrix_norm(M, ord=2))
    assert D.norm() <= math.sqrt(8) + 1e-12
    assert abs(D.norm() - sigma_max) <= 1e-10 * max(1.0, sigma_max)
    # the adjoint's dense matrix is the transpose
    n = h * w
    with torch.no_grad():
        cols = D._adjoint(torch.eye(2 * n, dtype=torch.float64).reshape(2 * n, 1, 2, h, w))
    assert float((cols.reshape(2 * n, n).T - M.T).abs().max()) < 1e-14


def test_power_iteration_agrees_with_closed_form() -> None:
    D = FiniteDifference(16)
    # LinearOperator.norm without the closed form: the base class's power iteration
    D._exact_norm = lambda: None  # type: ignore[method-assign]
    power = D.norm(max_iter=5000, tol=1e-12)
    exact = math.sqrt(8 * math.sin(math.pi * 15 / 32) ** 2)
    assert power <= exact * (1 + 1e-9)
    assert abs(power - exact) <= 0.01 * exact


def test_periodic_even_norm_is_exactly_sqrt8() -> None:
    assert FiniteDifference(16, boundary="periodic").norm() == pytest.approx(math.sqrt(8), 1e-15)


def test_constant_images_are_the_kernel() -> None:
    for boundary in BOUNDARIES:
        D = FiniteDifference((5, 6), boundary=boundary)
        assert float(D.A(torch.full((1, 1, 5, 6), 3.0)).abs().max()) == 0.0


def test_gradients_flow() -> None:
    D = FiniteDifference(4)
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(D.A, (x,))
    # d/dx 0.5||Dx||^2 = D^T D x
    (0.5 * D.A(x).square().sum()).backward()
    torch.testing.assert_close(x.grad, D.A_adjoint(D.A(x.detach())), rtol=0, atol=1e-13)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'boundary'"):
        FiniteDifference(8, boundary="reflect")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'size'"):
        FiniteDifference(0)
    with pytest.raises(ValueError, match="'channels'"):
        FiniteDifference(8, channels=0)
    D = FiniteDifference(8, channels=1)
    with pytest.raises(ValueError, match="'x'.*NaN"):
        D.A(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="'x'.*shape"):
        D.A(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="'y'.*shape"):
        D.A_adjoint(torch.zeros(1, 1, 8, 8))
