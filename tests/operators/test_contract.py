"""The LinearOperator contract, checked over every operator against independent references."""

from __future__ import annotations

import math

import pytest
import torch

from stablerecon.operators import (
    Blur,
    ComposedOperator,
    Identity,
    Inpainting,
    LinearOperator,
    ScaledOperator,
    SubsampledFourier,
    masks,
)

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_dot_product_real(op: LinearOperator, seed: int) -> None:
    assert op.adjointness_error(dtype=torch.float32, seed=seed) < 1e-5
    assert op.adjointness_error(dtype=torch.float64, seed=seed) < 1e-12


@pytest.mark.parametrize("seed", SEEDS)
def test_dot_product_complex(op: LinearOperator, seed: int) -> None:
    if op.in_kind == "real":
        pytest.skip(f"{op.name} accepts only real images")
    assert op.adjointness_error(dtype=torch.complex64, seed=seed) < 1e-5
    assert op.adjointness_error(dtype=torch.complex128, seed=seed) < 1e-12


def test_adjoint_is_conjugate_transpose_of_dense_matrix(op: LinearOperator) -> None:
    """A^* y equals M^H y for the dense matrix M of A built column by column."""
    m = op.to_matrix()
    y = op.random_output(1, dtype=torch.float64, seed=5)
    ref = (m.conj().T @ y.reshape(-1).to(m.dtype)).reshape(op.probe_shape())
    out = op.A_adjoint(y)
    if not out.is_complex():
        ref = ref.real if ref.is_complex() else ref
    torch.testing.assert_close(out.to(ref.dtype), ref, rtol=1e-10, atol=1e-10)


def test_norm_matches_largest_singular_value(op: LinearOperator) -> None:
    sigma_max = float(torch.linalg.svdvals(op.to_matrix())[0])
    assert op.norm() == pytest.approx(sigma_max, rel=1e-2)
    # Power iteration alone (closed forms bypassed) agrees as well.
    op._norm_cache = None
    op._exact_norm = lambda: None  # type: ignore[method-assign]
    assert op.norm() == pytest.approx(sigma_max, rel=1e-2)


def test_norm_is_cached(op: LinearOperator) -> None:
    first = op.norm()
    op._exact_norm = lambda: math.nan  # type: ignore[method-assign]
    assert op.norm() == first


def test_linearity(op: LinearOperator) -> None:
    dt = torch.float64
    x1, x2 = op.random_input(2, dt, seed=1), op.random_input(2, dt, seed=2)
    torch.testing.assert_close(op.A(2.0 * x1 - 3.0 * x2), 2.0 * op.A(x1) - 3.0 * op.A(x2))


def test_batch_and_channels_are_independent(op: LinearOperator) -> None:
    if op.in_shape[0] is not None:
        pytest.skip("fixed channel count")
    x = op.random_input(3, torch.float64, seed=7)
    x = x.expand(-1, 2, *[-1] * (x.ndim - 2)).clone()
    x[:, 1] *= -0.5
    y = op.A(x)
    for b in range(3):
        for c in range(2):
            torch.testing.assert_close(y[b, c], op.A(x[b : b + 1, c : c + 1])[0, 0])


def test_differentiable(op: LinearOperator) -> None:
    x = op.random_input(1, torch.float64, seed=3).requires_grad_(True)
    y = op.A(x)
    w = op.random_output(1, torch.float64, seed=4).to(y.dtype)
    loss = torch.real((torch.conj(w) * y).sum()) if y.is_complex() else (w * y).sum()
    (grad,) = torch.autograd.grad(loss, x)
    # d/dx Re<w, A x> = Re(A^* w) for real x.
    ref = op.A_adjoint(w)
    torch.testing.assert_close(grad, ref.real if ref.is_complex() else ref)


def test_rejects_wrong_shape(op: LinearOperator) -> None:
    shape = list(op.probe_shape(1))
    shape[-1] += 1
    with pytest.raises(ValueError, match="'x'"):
        op.A(torch.zeros(shape))
    with pytest.raises(ValueError, match="'x'"):
        op.A(torch.zeros(shape[1:]))  # missing batch dimension
    out = list(op.random_output(1).shape)
    out[-1] += 1
    with pytest.raises(ValueError, match="'y'"):
        op.A_adjoint(torch.zeros(out))
    with pytest.raises(ValueError, match="'y'"):
        op.A_dagger(torch.zeros(out))


def test_rejects_wrong_dtype(op: LinearOperator) -> None:
    shape = op.probe_shape(1)
    with pytest.raises(TypeError, match="'x'.*dtype"):
        op.A(torch.zeros(shape, dtype=torch.int64))
    with pytest.raises(TypeError, match="'x'.*dtype"):
        op.A(torch.zeros(shape, dtype=torch.float16))
    with pytest.raises(TypeError, match="'x'"):
        op.A(op.random_input(1).numpy())  # type: ignore[arg-type]
    if op.in_kind == "real":
        with pytest.raises(TypeError, match="'x'.*real"):
            op.A(torch.zeros(shape, dtype=torch.complex64))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rejects_non_finite(op: LinearOperator, bad: float) -> None:
    x = op.random_input(1)
    x.view(-1)[0] = bad
    with pytest.raises(ValueError, match="'x'.*NaN or Inf"):
        op.A(x)
    y = op.random_output(1)
    y.view(-1)[0] = bad
    with pytest.raises(ValueError, match="'y'.*NaN or Inf"):
        op.A_adjoint(y)


def test_rejects_empty_batch(op: LinearOperator) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        op.A(torch.zeros((0, *op.probe_shape(1)[1:])))


@pytest.mark.parametrize(
    "factory",
    [SubsampledFourier, Inpainting],
    ids=["fourier", "inpainting"],
)
def test_mask_operators_reject_bad_masks(factory: type[LinearOperator]) -> None:
    with pytest.raises(ValueError, match="'mask'.*samples nothing"):
        factory(torch.zeros(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="'mask'.*dimensions"):
        factory(torch.ones(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="'mask'.*empty"):
        factory(torch.ones(0, 0, dtype=torch.bool))
    with pytest.raises(ValueError, match="'mask'.*0 and 1"):
        factory(torch.full((8, 8), 0.5))
    with pytest.raises(TypeError, match="'mask'"):
        factory([[True]])  # type: ignore[arg-type]


def test_composition_and_scaling_against_dense_matrices() -> None:
    f = SubsampledFourier(masks.uniform_random(8, 0.5, seed=0))
    b = Blur(torch.rand(3, 3, generator=torch.Generator().manual_seed(0)), 8)
    comp = f @ b
    assert isinstance(comp, ComposedOperator)
    m_f, m_b = f.to_matrix(), b.to_matrix()
    torch.testing.assert_close(comp.to_matrix(), m_f @ m_b)
    torch.testing.assert_close((comp @ Identity(8)).to_matrix(), m_f @ m_b)
    scaled = -2.0 * f
    assert isinstance(scaled, ScaledOperator)
    torch.testing.assert_close(scaled.to_matrix(), -2.0 * m_f)
    assert (f * 0.5).norm() == pytest.approx(0.5)
    x = f.random_input(1, torch.complex128)
    torch.testing.assert_close((0.5 * f).A_dagger((0.5 * f).A(x)), f.A_adjoint(f.A(x)))


def test_composition_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="cannot compose"):
        SubsampledFourier(masks.uniform_random(8, 0.5)) @ Identity(16)
    with pytest.raises(ValueError, match="finite"):
        ScaledOperator(Identity(8), math.nan)


def test_module_to_moves_buffers_and_float64_precision() -> None:
    op = SubsampledFourier(masks.uniform_random(8, 0.5, seed=0))
    moved = op.to("cpu")
    assert moved is op
    x = op.random_input(1, torch.float64)
    assert op.A(x).dtype == torch.complex128
    assert op.A(x.float()).dtype == torch.complex64


def test_real_only_operator_composes_with_real_capable_one() -> None:
    from stablerecon.operators import Radon, gaussian_kernel

    blur = Blur(gaussian_kernel(1.0), 16)
    comp = Radon(16, angles=8) @ blur
    assert comp.in_kind == "real"
    x = comp.random_input(1, torch.float64)
    torch.testing.assert_close(comp.A(x), comp.outer.A(blur.A(x)))
    assert comp.adjointness_error(torch.float64) < 1e-12
    with pytest.raises(ValueError, match="cannot compose"):
        Radon(16, angles=8) @ SubsampledFourier(masks.uniform_random(16, 0.5))


def test_skip_finite_checks_keeps_shape_checks() -> None:
    from stablerecon.operators import skip_finite_checks

    op = Identity(4)
    bad = torch.full((1, 1, 4, 4), math.nan)
    with skip_finite_checks():
        assert torch.isnan(op.A(bad)).all()
        with pytest.raises(ValueError, match="'x'"):
            op.A(torch.zeros(1, 1, 5, 4))
    with pytest.raises(ValueError, match="NaN"):
        op.A(bad)


def test_adjointness_error_is_finite_for_null_space_inputs() -> None:
    op = Inpainting(torch.eye(4, dtype=torch.bool))
    op.random_input = lambda *a, **k: torch.zeros(2, 1, 4, 4)  # type: ignore[method-assign]
    assert op.adjointness_error() == 0.0


def test_all_finite_handles_overflowing_sums() -> None:
    from stablerecon.operators.base import all_finite

    big = torch.full((4,), 3e38)  # finite entries whose float32 sum overflows
    assert not bool(torch.isfinite(big.sum())) and all_finite(big)
    assert not all_finite(torch.tensor([1.0, math.nan]))
    assert not all_finite(torch.tensor([math.inf, -math.inf]))
    assert not all_finite(torch.tensor([1 + 0j, complex(0, math.inf)]))
    assert all_finite(torch.tensor([1 + 2j, -3j]))


def test_adjoint_is_differentiable(op: LinearOperator) -> None:
    """d/dy Re<v, A^* y> = A v: gradients flow through the adjoint too."""
    y = op.random_output(1, torch.float64, seed=3).requires_grad_(True)
    v = op.random_input(1, torch.float64, seed=4)
    out = op.A_adjoint(y)
    loss = torch.real((torch.conj(v.to(out.dtype)) * out).sum())
    (grad,) = torch.autograd.grad(loss, y)
    ref = op.A(v)
    if not grad.is_complex() and ref.is_complex():
        ref = ref.real
    torch.testing.assert_close(grad, ref.to(grad.dtype))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(op: LinearOperator) -> None:
    """Buffers follow .to(device); results match the CPU ones."""
    x = op.random_input(2, torch.float64, seed=0)
    y_cpu = op.A(x)
    op = op.to("cuda")
    y = op.A(x.cuda())
    assert y.device.type == "cuda"
    torch.testing.assert_close(y.cpu(), y_cpu)
    assert op.A_adjoint(y).device.type == "cuda"
    assert op.adjointness_error(dtype=torch.float64) < 1e-12
