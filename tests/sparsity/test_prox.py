"""Tests of the proximal maps: optimality conditions, brute-force minimisation, closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize, minimize_scalar

from stablerecon.sparsity import group_soft_threshold, project_l2_ball, soft_threshold


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def crandn(*shape: int, seed: int = 0) -> torch.Tensor:
    g = gen(seed)
    return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                         torch.randn(shape, generator=g, dtype=torch.float64))


# ---------------------------------------------------------------- soft_threshold
def test_soft_threshold_real_subgradient_optimality() -> None:
    x = 2 * torch.randn(4, 3, 50, generator=gen(), dtype=torch.float64)
    t = torch.rand(1, 3, 50, generator=gen(1), dtype=torch.float64)  # per-coefficient weights
    z = soft_threshold(x, t)
    t = t.expand_as(x)
    nz = z != 0
    # 0 in z - x + t * d|z|: x - z = t sign(z) where z != 0, |x| <= t where z == 0
    torch.testing.assert_close((x - z)[nz], (t * torch.sign(z))[nz], rtol=0, atol=1e-14)
    assert bool((x.abs()[~nz] <= t[~nz]).all())
    assert bool(nz.any()) and bool((~nz).any())
    assert bool((torch.sign(z[nz]) == torch.sign(x[nz])).all())


def test_soft_threshold_complex_subgradient_optimality() -> None:
    x = crandn(3, 200)
    t = 1.0
    z = soft_threshold(x, t)
    nz = z != 0
    # x - z = t z / |z| where z != 0 (same phase, modulus shrunk by t); |x| <= t where z == 0
    torch.testing.assert_close((x - z)[nz], (t * z / z.abs())[nz], rtol=0, atol=1e-14)
    assert bool((x.abs()[~nz] <= t).all())
    assert bool(nz.any()) and bool((~nz).any())
    torch.testing.assert_close(z.abs()[nz], x.abs()[nz] - t, rtol=0, atol=1e-14)


@pytest.mark.parametrize("x0,t", [(2.3, 0.7), (-1.1, 0.4), (0.3, 0.5), (-0.2, 0.2), (5.0, 0.0)])
def test_soft_threshold_brute_force_real(x0: float, t: float) -> None:
    res = minimize_scalar(lambda z: 0.5 * (z - x0) ** 2 + t * abs(z),
                          bounds=(-10, 10), method="bounded", options={"xatol": 1e-10})
    z = soft_threshold(torch.tensor([x0], dtype=torch.float64), t)
    assert float(z) == pytest.approx(res.x, abs=1e-6)


@pytest.mark.parametrize("x0,t", [(1.5 - 2.0j, 0.8), (-0.3 + 0.2j, 0.5), (0.1j - 2.0, 1.9)])
def test_soft_threshold_brute_force_complex(x0: complex, t: float) -> None:
    def objective(v: np.ndarray) -> float:
        z = complex(v[0], v[1])
        return 0.5 * abs(z - x0) ** 2 + t * abs(z)

    res = minimize(objective, x0=np.array([x0.real, x0.imag]), method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    z = complex(soft_threshold(torch.tensor([x0], dtype=torch.complex128), t)[0])
    assert abs(z - complex(res.x[0], res.x[1])) < 1e-6
    assert objective(np.array([z.real, z.imag])) <= res.fun + 1e-12


def test_soft_threshold_special_thresholds_and_dtypes() -> None:
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0])
    torch.testing.assert_close(soft_threshold(x, 1.0), torch.tensor([-2.0, 0.0, 0.0, 0.0, 2.0]))
    assert torch.equal(soft_threshold(x, 0.0), x)
    assert torch.equal(soft_threshold(x, float("inf")), torch.zeros(5))
    xc = torch.tensor([3 + 4j, 0j, 0.3j], dtype=torch.complex64)
    out = soft_threshold(xc, 1.0)
    assert out.dtype == torch.complex64
    torch.testing.assert_close(out, torch.tensor([2.4 + 3.2j, 0j, 0j], dtype=torch.complex64))
    torch.testing.assert_close(soft_threshold(xc, 0.0), xc)


def test_soft_threshold_gradients_are_finite_at_zero() -> None:
    for x in (torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.complex128),
              torch.tensor([0.0, 1.0, -2.0, 0.1], dtype=torch.float64)):
        x = x.clone().requires_grad_()
        t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        out = soft_threshold(x, t)
        (out.abs() ** 2).sum().backward()
        assert bool(torch.isfinite(x.grad).all()) and bool(torch.isfinite(t.grad).all())
    # zero threshold at zero: the identity, with derivative 1
    for dtype in (torch.float64, torch.complex128):
        z = torch.zeros(3, dtype=dtype, requires_grad=True)
        soft_threshold(z, 0.0).real.sum().backward()
        assert torch.equal(z.grad, torch.ones(3, dtype=dtype))
    # infinite threshold: zero output, zero gradient
    x = torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    soft_threshold(x, float("inf")).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2, dtype=torch.float64))


def test_soft_threshold_gradcheck_away_from_kinks() -> None:
    x = torch.tensor([2.0, -1.5, 0.2, -0.1], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.5, 0.5, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(soft_threshold, (x, t))
    z = torch.tensor([2.0 - 1.0j, 0.1 + 0.1j], dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: soft_threshold(v, 0.5), (z,))


def test_soft_threshold_rejects_bad_input() -> None:
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match="'threshold'.*non-negative"):
        soft_threshold(x, -0.1)
    with pytest.raises(ValueError, match="'threshold'.*non-negative"):
        soft_threshold(x, torch.tensor([0.1, -0.1, 0.2]))
    with pytest.raises(ValueError, match="'threshold'.*NaN"):
        soft_threshold(x, float("nan"))
    with pytest.raises(ValueError, match="'threshold'.*broadcast"):
        soft_threshold(x, torch.ones(2))
    with pytest.raises(ValueError, match="'x'.*NaN"):
        soft_threshold(torch.tensor([1.0, float("nan")]), 0.1)
    with pytest.raises(TypeError, match="'x'"):
        soft_threshold(np.ones(3), 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'threshold'"):
        soft_threshold(x, torch.tensor(1j))


# ---------------------------------------------------------------- group_soft_threshold
def test_group_soft_threshold_optimality_on_gradient_field() -> None:
    v = torch.randn(2, 3, 2, 8, 8, generator=gen(3), dtype=torch.float64)
    t = 0.9
    z = group_soft_threshold(v, t)  # groups: the pointwise 2-vectors along dim -3
    nv = torch.linalg.vector_norm(v, dim=2, keepdim=True)
    nz = torch.linalg.vector_norm(z, dim=2, keepdim=True)
    kept = (nz > 0).expand_as(v)
    # v - z = t z / ||z|| for kept groups, ||v|| <= t for zeroed ones
    torch.testing.assert_close((v - z)[kept], (t * z / nz.clamp_min(1e-300))[kept],
                               rtol=0, atol=1e-13)
    assert bool((nv[nz == 0] <= t).all())
    assert bool((nz > 0).any()) and bool((nz == 0).any())
    # loop reference
    ref = v.numpy().copy()
    for idx in np.ndindex(2, 3, 8, 8):
        b, c, i, j = idx
        g = ref[b, c, :, i, j]
        n = np.linalg.norm(g)
        ref[b, c, :, i, j] = g * max(0.0, 1 - t / n) if n > 0 else 0
    np.testing.assert_allclose(z.numpy(), ref, rtol=0, atol=1e-14)


def test_group_soft_threshold_brute_force_and_singleton_groups() -> None:
    v0 = np.array([1.2, -0.7])
    t = 0.6
    res = minimize(lambda z: 0.5 * np.sum((z - v0) ** 2) + t * np.linalg.norm(z), x0=v0,
                   method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14})
    z = group_soft_threshold(torch.from_numpy(v0[None]), t, dim=-1)[0].numpy()
    np.testing.assert_allclose(z, res.x, atol=1e-6)
    # groups of size one: soft-thresholding, real and complex
    for x in (torch.randn(3, 1, 5, generator=gen(4), dtype=torch.float64), crandn(3, 1, 5)):
        torch.testing.assert_close(group_soft_threshold(x, 0.5, dim=1), soft_threshold(x, 0.5),
                                   rtol=0, atol=1e-14)


def test_group_soft_threshold_tensor_threshold_channels_and_gradients() -> None:
    v = torch.randn(2, 3, 2, 4, 4, generator=gen(5), dtype=torch.float64)
    # colour TV: one group per pixel over channels and directions, per-pixel threshold map
    t = torch.rand(2, 1, 1, 4, 4, generator=gen(6), dtype=torch.float64)
    z = group_soft_threshold(v, t, dim=(1, 2))
    nv = torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True)
    torch.testing.assert_close(z, v * torch.relu(1 - t / nv), rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="'threshold'.*broadcast"):
        group_soft_threshold(v, torch.ones(2, 3, 1, 4, 4), dim=(1, 2))
    with pytest.raises(ValueError, match="'dim'"):
        group_soft_threshold(v, 0.1, dim=7)
    with pytest.raises(ValueError, match="'threshold'"):
        group_soft_threshold(v, -1.0)
    zero = torch.zeros(1, 1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    group_soft_threshold(zero, 0.3).sum().backward()
    assert bool(torch.isfinite(zero.grad).all())
    zc = torch.zeros(1, 1, 2, 3, 3, dtype=torch.complex128, requires_grad=True)
    group_soft_threshold(zc, 0.0).abs().sum().backward()
    assert bool(torch.isfinite(zc.grad).all())


# ---------------------------------------------------------------- project_l2_ball
def test_projection_closed_form_and_inside_unchanged() -> None:
    x = torch.randn(5, 1, 4, 4, generator=gen(7), dtype=torch.float64)
    x[1] *= 0.01  # well inside
    radius = torch.tensor([0.5, 1.0, 2.0, 0.0, float("inf")], dtype=torch.float64)
    p = project_l2_ball(x, radius)
    for b in range(5):
        n = float(x[b].norm())
        r = float(radius[b])
        expected = x[b] if n <= r else x[b] * (r / n)
        torch.testing.assert_close(p[b], expected, rtol=0, atol=1e-14)
    assert torch.equal(p[1], x[1])  # bit-for-bit unchanged inside
    assert torch.equal(p[4], x[4])
    assert float(p[3].abs().max()) == 0.0  # radius 0: the centre
    assert float(p[0].norm()) == pytest.approx(0.5, rel=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_projection_variational_inequality(dtype: torch.dtype) -> None:
    g = gen(8)
    shape = (3, 2, 6)
    if dtype.is_complex:
        x, c = 3 * crandn(*shape, seed=9), crandn(1, *shape[1:], seed=10)
    else:
        x = 3 * torch.randn(shape, generator=g, dtype=dtype)
        c = torch.randn((1, *shape[1:]), generator=g, dtype=dtype)
    r = 1.5
    p = project_l2_ball(x, r, center=c)
    assert bool((torch.linalg.vector_norm((p - c).flatten(1), dim=1) <= r * (1 + 1e-12)).all())
    for k in range(200):
        # random points z of the ball, including its boundary
        d = torch.randn(shape, generator=gen(100 + k), dtype=torch.float64).to(dtype)
        d = d / torch.linalg.vector_norm(d.flatten(1), dim=1).reshape(-1, 1, 1)
        z = c + d * r * torch.rand(3, 1, 1, generator=gen(k), dtype=torch.float64) ** 0.5
        inner = (torch.conj(x - p) * (z - p)).real.flatten(1).sum(1)
        assert bool((inner <= 1e-10).all())


def test_projection_gradients_and_errors() -> None:
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    project_l2_ball(x, 0.0).sum().backward()
    assert bool(torch.isfinite(x.grad).all())
    y = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: project_l2_ball(v, 1.0), (y,))
    with pytest.raises(ValueError, match="'radius'.*non-negative"):
        project_l2_ball(x, -1.0)
    with pytest.raises(ValueError, match="'radius'.*NaN"):
        project_l2_ball(x, float("nan"))
    with pytest.raises(ValueError, match="'radius'.*shape"):
        project_l2_ball(x, torch.ones(3))
    with pytest.raises(ValueError, match="'center'"):
        project_l2_ball(x, 1.0, center=torch.ones(4))
    with pytest.raises(ValueError, match="'x'.*NaN"):
        project_l2_ball(torch.tensor([[float("nan")]]), 1.0)
