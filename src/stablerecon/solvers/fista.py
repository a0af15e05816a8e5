r"""FISTA for the (weighted) l1-synthesis LASSO with an orthonormal sparsifying transform.

.. math::

    \min_c \; F(c) = \tfrac12 \|A W^* c - y\|_2^2 + \lambda \sum_i w_i |c_i|,
    \qquad x = W^* c,

where ``A`` is a forward operator on images ``(B, C, H, W)``, ``W`` an **orthonormal**
sparsifying transform (e.g. :class:`~stablerecon.sparsity.Wavelet`, ``W^* W = W W^* = I``)
mapping images to flat coefficients ``(B, C, N)``, and ``w_i >= 0`` per-coefficient weights.
Because ``W`` is orthonormal, the synthesis problem above and the analysis problem
``min_x 0.5 ||A x - y||^2 + lam ||W x||_{1,w}`` are the same problem under ``c = W x``; the
solver iterates on ``c`` and returns the image ``x = W^* c``.

FISTA (Beck & Teboulle 2009) with the constant step ``1 / L``, ``L = ||A||_2^2`` (the Lipschitz
constant of the gradient of the smooth part, since ``||A W^*|| = ||A||``):

.. math::

    c_{k+1} &= \operatorname{soft}\bigl(z_k - \tfrac1L \nabla f(z_k),\; \tfrac{\lambda}{L} w\bigr),
    \qquad \nabla f(z) = W \, A^*(A W^* z - y), \\
    t_{k+1} &= \tfrac12\bigl(1 + \sqrt{1 + 4 t_k^2}\bigr), \qquad
    z_{k+1} = c_{k+1} + \tfrac{t_k - 1}{t_{k+1}} (c_{k+1} - c_k),

with ``z_0 = c_0``, ``t_0 = 1``. The objective gap satisfies
``F(c_k) - F^* <= 2 L ||c_0 - c^*||^2 / (k + 1)^2`` (Beck & Teboulle 2009, Thm. 4.4); the
iterates are not monotone in ``F``.

Real images measured by complex operators (MRI). With ``real=True`` the image is constrained to
be real: the problem lives in the real Hilbert space of real images with the inner product
``Re <u, v>``, whose gradient of the data term is ``Re(A^*(A x - y))``. Since ``W`` has real
filters, ``W`` of a real image is real and the coefficients stay real. With ``real=False`` the
image and the coefficients are complex and soft-thresholding shrinks the complex modulus.

References
----------
A. Beck, M. Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
problems", SIAM J. Imaging Sci. 2(1):183-202, 2009.
I. Daubechies, M. Defrise, C. De Mol, "An iterative thresholding algorithm for linear inverse
problems with a sparsity constraint", Comm. Pure Appl. Math. 57(11), 2004 (ISTA).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..operators.base import LinearOperator, check_tensor, real_dtype_of, skip_finite_checks
from ..sparsity import soft_threshold
from ._common import (
    SolverInfo,
    check_iterations,
    check_lam,
    check_linear_operator,
    check_x0,
    data_term,
    lipschitz,
    progress_range,
    relative_change,
    working_dtypes,
)

__all__ = ["fista", "lasso_objective", "SolverInfo"]

Weights = Sequence[float] | torch.Tensor | None


def _check_shapes(op: LinearOperator, sparsifier: LinearOperator, where: str) -> None:
    for axis, label in ((0, "C"), (1, "H"), (2, "W")):
        a, s = op.in_shape[axis], sparsifier.in_shape[axis]
        if a is not None and s is not None and a != s:
            raise ValueError(
                f"{where}: argument 'sparsifier' acts on images with in_shape {sparsifier.in_shape} "
                f"but 'op' on images with in_shape {op.in_shape} (mismatch in {label}: {s} vs {a})"
            )
    if len(sparsifier.out_shape) != 2 or sparsifier.out_shape[-1] is None:
        raise ValueError(
            f"{where}: argument 'sparsifier' must map images to flat coefficients (B, C, N), "
            f"got out_shape={sparsifier.out_shape}"
        )


def _coefficient_weights(weights: Weights, sparsifier: LinearOperator, dtype: torch.dtype,
                         device: torch.device, where: str) -> torch.Tensor | None:
    """Per-coefficient weights ``(N,)`` (real ``dtype``) or ``None`` for all ones."""
    if weights is None:
        return None
    n = int(sparsifier.out_shape[-1])
    if isinstance(weights, torch.Tensor) and weights.ndim == 1 and weights.shape[0] == n:
        if weights.is_complex() or not weights.is_floating_point():
            raise TypeError(
                f"{where}: argument 'weights' must be a real floating tensor, got {weights.dtype}"
            )
        w = weights.to(dtype=dtype, device=device)
    else:
        expand = getattr(sparsifier, "expand_level_weights", None)
        levels = getattr(sparsifier, "levels", None)
        got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else (
            len(weights) if isinstance(weights, Sequence) else type(weights).__name__)
        if expand is None or levels is None:
            raise ValueError(
                f"{where}: argument 'weights' must be a tensor of shape ({n},) for {sparsifier.name}, "
                f"got {got}"
            )
        is_levels = (isinstance(weights, torch.Tensor) and weights.shape == (levels + 1,)) or (
            isinstance(weights, Sequence) and not isinstance(weights, str) and len(weights) == levels + 1)
        if not is_levels:
            raise ValueError(
                f"{where}: argument 'weights' must be per-coefficient weights of shape ({n},) or "
                f"per-level weights of length levels + 1 = {levels + 1}, got {got}"
            )
        try:
            w = expand(weights, dtype=dtype).to(device)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{where}: argument 'weights' is invalid: {err}") from None
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{where}: argument 'weights' contains NaN or Inf values")
    if bool((w < 0).any()):
        raise ValueError(f"{where}: argument 'weights' must be non-negative, got min {float(w.min())}")
    return w


def _l1_term(c: torch.Tensor, lam: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """``lam * sum_i w_i |c_i|`` per batch item, shape ``(B,)``."""
    mod = c.abs()
    if w is not None:
        mod = mod * w
    return lam * mod.reshape(c.shape[0], -1).sum(dim=1)


def lasso_objective(
    x: torch.Tensor,
    y: torch.Tensor,
    op: LinearOperator,
    sparsifier: LinearOperator,
    lam: float | torch.Tensor,
    weights: Weights = None,
) -> torch.Tensor:
    r"""The weighted LASSO objective ``0.5 ||A x - y||_2^2 + lam sum_i w_i |(W x)_i|`` per item.

    Parameters
    ----------
    x:
        Image ``(B, C, H, W)``, real or complex.
    y:
        Measurements ``(B, *op.out_shape)``.
    op, sparsifier, lam, weights:
        As in :func:`fista`.

    Returns
    -------
    Tensor of shape ``(B,)`` in the real dtype of ``x`` (differentiable).
    """
    where = "lasso_objective"
    op = check_linear_operator(op, "op", where, y)
    sparsifier = check_linear_operator(sparsifier, "sparsifier", where)
    _check_shapes(op, sparsifier, where)
    x = check_tensor(x, "x", op.in_shape, "any", where=where)
    y = check_tensor(y, "y", op.out_shape, "any", where=where)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: arguments 'x' and 'y' have batch sizes {x.shape[0]} and {y.shape[0]}")
    rdtype = real_dtype_of(x.dtype)
    lam_t = check_lam(lam, x.shape[0], rdtype, x.device, where)
    w = _coefficient_weights(weights, sparsifier, rdtype, x.device, where)
    return data_term(op.A(x), y) + _l1_term(sparsifier.A(x), lam_t, w)


def fista(
    y: torch.Tensor,
    op: LinearOperator,
    sparsifier: LinearOperator,
    lam: float | torch.Tensor,
    weights: Weights = None,
    x0: torch.Tensor | None = None,
    max_iter: int = 500,
    tol: float = 1e-6,
    real: bool = True,
    return_info: bool = False,
    progress: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, SolverInfo]:
    r"""Solve the weighted l1 LASSO ``min_c 0.5 ||A W^* c - y||^2 + lam ||c||_{1,w}`` by FISTA.

    See the module docstring for the iteration. ``W`` must be orthonormal (analysis and
    synthesis formulations then coincide, ``||x_{k+1} - x_k|| = ||c_{k+1} - c_k||`` and the
    step ``1 / ||A||^2`` is admissible).

    Parameters
    ----------
    y:
        Measurements ``(B, *op.out_shape)``, real or complex.
    op:
        Forward operator ``A`` on images ``(B, C, H, W)``: a
        :class:`~stablerecon.operators.LinearOperator` or any object with ``A`` and
        ``A_adjoint`` (adapted by :func:`~stablerecon.operators.as_linear_operator`, shapes
        inferred from ``y``).
    sparsifier:
        Orthonormal transform ``W`` (e.g. :class:`~stablerecon.sparsity.Wavelet`) on images of
        the same ``(C, H, W)``, mapping to coefficients ``(B, C, N)``.
    lam:
        Regularisation weight ``lambda > 0``: a number, or a real tensor of shape ``()`` or
        ``(B,)`` (one weight per batch item; gradients flow to it).
    weights:
        ``None`` (all ``w_i = 1``), per-coefficient weights (tensor of shape ``(N,)``), or
        per-level weights (sequence or tensor of length ``levels + 1``, level ``0`` the
        approximation band, expanded by ``sparsifier.expand_level_weights``). Non-negative.
    x0:
        Initial image ``(B, C, H, W)`` (default zero); real when ``real=True``.
    max_iter:
        Maximal number of iterations (``>= 1``).
    tol:
        Stop when ``||x_{k+1} - x_k|| / max(||x_k||, tiny) < tol`` for every batch item
        (``tol=0`` runs exactly ``max_iter`` iterations).
    real:
        Constrain the image to be real (gradient ``Re A^*(A x - y)``); use it for real images
        measured by complex operators. ``False`` solves for a complex image.
    return_info:
        Also return a :class:`SolverInfo`. Recording the objective history costs one extra
        application of ``A`` per iteration.
    progress:
        Show a tqdm progress bar.

    Returns
    -------
    The image ``x = W^* c`` of shape ``(B, C, H, W)``: real (the real dtype of ``y``) when
    ``real=True``, else complex; and the :class:`SolverInfo` when ``return_info=True``.
    The iterations are plain torch operations, so ``x`` is differentiable with respect to
    ``y``, ``lam`` and tensor ``weights`` when they require grad (autograd then stores every
    iteration).

    Raises
    ------
    TypeError, ValueError
        For invalid arguments (named in the message): ``lam <= 0`` or not finite,
        ``max_iter < 1``, ``tol < 0``, shapes of ``y``/``x0``/``weights``, mismatching image
        shapes of ``op`` and ``sparsifier``, negative weights.

    Examples
    --------
    >>> import torch
    >>> from stablerecon.operators import SubsampledFourier, masks
    >>> from stablerecon.sparsity import Wavelet
    >>> op = SubsampledFourier(masks.variable_density(32, rate=0.4, seed=0))
    >>> x = torch.zeros(1, 1, 32, 32); x[..., 8:24, 8:24] = 1.0
    >>> x_hat = fista(op.A(x), op, Wavelet("haar", size=32), lam=1e-3, max_iter=300)
    >>> x_hat.shape, x_hat.dtype
    (torch.Size([1, 1, 32, 32]), torch.float32)
    >>> bool(torch.linalg.vector_norm(x_hat - x) < 0.1 * torch.linalg.vector_norm(x))
    True
    """
    where = "fista"
    op = check_linear_operator(op, "op", where, y)
    sparsifier = check_linear_operator(sparsifier, "sparsifier", where)
    _check_shapes(op, sparsifier, where)
    y = check_tensor(y, "y", op.out_shape, "any", where=where)
    max_iter, tol = check_iterations(max_iter, tol, where)
    dtype, rdtype = working_dtypes(y, op, real, where)
    batch, device = y.shape[0], y.device
    lam_t = check_lam(lam, batch, rdtype, device, where)
    w = _coefficient_weights(weights, sparsifier, rdtype, device, where)
    lip = lipschitz(op, where)
    bar = progress_range(max_iter, progress, where)

    with skip_finite_checks():
        aty = op.A_adjoint(y)
        shape = aty.shape
        if x0 is None:
            c = sparsifier.A(torch.zeros(shape, dtype=dtype, device=device))
        else:
            c = sparsifier.A(check_x0(x0, shape, dtype, real, where))
        lam_c = lam_t.reshape(-1, *([1] * (c.ndim - 1))) if lam_t.ndim == 1 else lam_t
        thresh = lam_c / lip if w is None else lam_c * w / lip

        def gradient(z: torch.Tensor) -> torch.Tensor:
            g = op.A_adjoint(op.A(sparsifier.A_adjoint(z)) - y)
            if real and g.is_complex():
                g = g.real
            return sparsifier.A(g.to(dtype))

        z, t = c, 1.0
        history: list[torch.Tensor] = []
        rel = torch.full((batch,), math.inf, dtype=rdtype, device=device)
        converged, iterations = False, 0
        for k in bar:
            c_new = soft_threshold(z - gradient(z) / lip, thresh)
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            z = c_new + ((t - 1.0) / t_new) * (c_new - c)
            rel = relative_change(c_new, c)
            c, t, iterations = c_new, t_new, k + 1
            if return_info:
                with torch.no_grad():
                    x_k = sparsifier.A_adjoint(c)
                    obj = data_term(op.A(x_k), y) + _l1_term(c, lam_c.reshape(-1), w)
                    history.append(obj.detach().to(torch.float64))
            if progress and k % 10 == 0:
                bar.set_postfix(rel_change=f"{float(rel.max()):.2e}")
            if bool((rel < tol).all()):
                converged = True
                break
        x = sparsifier.A_adjoint(c)

    if not return_info:
        return x
    info = SolverInfo.from_history(history, batch, iterations, rel, converged)
    return x, info
