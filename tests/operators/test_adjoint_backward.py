"""Operators differentiated by their exact adjoint (``adjoint_backward``): the gradients, the
second derivatives and ``torch.func.grad`` equal those of autograd traced through the
operator's own tensor ops (``_forward`` / ``_adjoint`` called directly; the dense matrix for
the NUFFT, whose libraries' backwards are not twice differentiable), for real and complex
inputs of every operator of the shared set."""

from __future__ import annotations

import pytest
import torch

from stablerecon.operators import (
    Blur,
    LinearOperator,
    NonCartesianFourier,
    SubsampledFourier,
    SubsampledMultiCoilFourier,
    birdcage_maps,
    gaussian_kernel,
    masks,
)
from stablerecon.sparsity import FiniteDifference, Wavelet

FLAGGED = {
    "fourier-vd": lambda: SubsampledFourier(masks.variable_density(16, 0.3, seed=0)),
    "wavelet-db4": lambda: Wavelet("db4", levels=2, size=16),
    "finite-difference": lambda: FiniteDifference(16),
    "blur": lambda: Blur(gaussian_kernel(1.2), 16),
    "multicoil": lambda: SubsampledMultiCoilFourier(masks.cartesian_lines(16, 0.4, seed=0),
                                                    birdcage_maps(3, 16)),
}


def _inputs(op: LinearOperator, complex_: bool, adjoint: bool, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if adjoint:
        with torch.no_grad():
            shape = op.A(op.random_input(2, torch.float64)).shape
        complex_ = complex_ or op.out_complex
    else:
        shape = op.probe_shape(2)
    t = torch.randn(shape, generator=g, dtype=torch.float64)
    if complex_:
        t = torch.complex(t, torch.randn(shape, generator=g, dtype=torch.float64))
    return t


def _dense(op: LinearOperator, adjoint: bool):  # noqa: ANN202
    """``x -> M x`` (or ``y -> M^H y``) with the dense matrix ``M`` of ``op``."""
    m = op.to_matrix(torch.complex128)
    in_shape, out_shape = op.probe_shape(1)[1:], op.A(op.random_input(1, torch.float64)).shape[1:]
    if adjoint:
        return lambda y: (y.reshape(y.shape[0], -1).to(m.dtype) @ m.conj()).reshape(-1, *in_shape)
    return lambda x: (x.reshape(x.shape[0], -1).to(m.dtype) @ m.T).reshape(-1, *out_shape)


def _loss(out: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A real loss that is neither linear nor a plain norm: Re<w, out> + ||out||^2 / 2 + sum |out|^3."""
    return (torch.real((w.conj() * out).sum()) + 0.5 * out.abs().square().sum()
            + out.abs().pow(3).sum())


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("complex_", [False, True])
def test_gradient_and_second_derivative_match_traced_autograd(op: LinearOperator, adjoint: bool,
                                                              complex_: bool) -> None:
    if complex_ and op.in_kind == "real":
        pytest.skip("real-only operator")
    x0 = _inputs(op, complex_, adjoint)
    public = op.A_adjoint if adjoint else op.A
    traced = op._adjoint if adjoint else op._forward
    if isinstance(op, NonCartesianFourier):
        # The NUFFT libraries' own backwards are no reference for second derivatives: FINUFFT's is
        # not differentiable again, and torchkbnufft's double backward accumulates forked batch
        # items in place (``index_add_`` under ``create_graph``) and returns wrong, run-dependent
        # values for some items. The reference is the dense matrix.
        traced = _dense(op, adjoint)
    with torch.no_grad():
        w = public(x0)
    w = torch.randn_like(w.real if not w.is_complex() else w) + 0.5
    v = torch.randn_like(x0)

    def grads(fn):  # noqa: ANN001, ANN202
        x = x0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_loss(fn(x), w), x, create_graph=True)
        (hv,) = torch.autograd.grad(torch.real((g.conj() * v).sum()), x)
        return g.detach(), hv

    g_fast, hv_fast = grads(public)
    g_ref, hv_ref = grads(traced)
    assert g_fast.dtype == g_ref.dtype == x0.dtype
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(hv_fast, hv_ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(FLAGGED))
def test_torch_func_grad(name: str) -> None:
    op = FLAGGED[name]()
    x = op.random_input(2, torch.float64)
    assert op.adjoint_backward
    got = torch.func.grad(lambda z: 0.5 * op.A(z).abs().square().sum())(x)
    want = op.A_adjoint(op.A(x))  # the gradient of ||A x||^2 / 2 is A^* A x
    torch.testing.assert_close(got, want.real if not x.is_complex() else want, rtol=1e-10, atol=1e-12)


def test_trainable_parameters_keep_traced_autograd() -> None:
    """A subclass with a trainable parameter is traced as before, so that parameter gets its gradient."""

    class Scaled(SubsampledFourier):
        def __init__(self, mask: torch.Tensor) -> None:
            super().__init__(mask)
            self.scale = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

        def _forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scale * super()._forward(x)

    op = Scaled(masks.variable_density(16, 0.3, seed=0))
    x = op.random_input(1, torch.float64).requires_grad_(True)
    loss = op.A(x).abs().square().sum()
    loss.backward()
    # ||scale P F x||^2 = scale^2 ||P F x||^2: d/dscale = 2 scale ||P F x||^2 = loss
    assert op.scale.grad is not None
    torch.testing.assert_close(op.scale.grad, loss.detach(), rtol=1e-10, atol=0.0)
