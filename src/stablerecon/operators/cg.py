"""Batched conjugate gradient on normal equations, as a plain (differentiable) torch loop.

Used by the MRI operators' pseudo-inverses (CG-SENSE of
:class:`~stablerecon.operators.SubsampledMultiCoilFourier`, the density-weighted CG of
:class:`~stablerecon.operators.NonCartesianFourier`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["conjugate_gradient"]


def _sqnorm(t: torch.Tensor) -> torch.Tensor:
    """``||t_b||^2`` per batch item, real, smooth everywhere (no ``abs``/``sqrt``)."""
    return torch.view_as_real(t).square().reshape(t.shape[0], -1).sum(dim=1)


def _redot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Re <a_b, b_b>`` per batch item for complex ``a``, ``b``."""
    return (torch.view_as_real(a) * torch.view_as_real(b)).reshape(a.shape[0], -1).sum(dim=1)


def _per_item(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1)))


def conjugate_gradient(normal: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, max_iter: int,
                       tol: float, eps: float = 0.0) -> torch.Tensor:
    """``x`` approximately solving ``(N + eps I) x = b`` for a Hermitian positive semi-definite
    ``N`` (``normal``), item by item of the batch.

    ``max_iter`` conjugate-gradient steps from ``x = 0``, fewer once every item's residual is at
    most ``tol`` times its ``||b||``; a converged item freezes (its step sizes become 0) while
    the others go on. A plain torch loop, so differentiable with respect to ``b`` (and to
    whatever ``normal`` depends on).

    Parameters
    ----------
    normal:
        ``p -> N p`` on complex tensors shaped like ``b``.
    b:
        Right-hand sides ``(B, ...)``, complex.
    max_iter, tol, eps:
        Steps, relative residual and Tikhonov weight.

    Examples
    --------
    >>> import torch
    >>> d = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.complex128)
    >>> x = conjugate_gradient(lambda p: d * p, torch.ones_like(d), max_iter=3, tol=0.0)
    >>> torch.allclose(x, 1 / d)
    True
    """
    x = torch.zeros_like(b)
    r, p = b, b
    rs = _sqnorm(r)
    stop = (tol * tol) * rs
    for _ in range(max_iter):
        if bool((rs <= stop).all()):
            break
        q = normal(p)
        if eps:
            q = q + eps * p
        curv = _redot(p, q)
        active = (rs > stop) & (curv > 0)
        # Converged items freeze (alpha = beta = 0). The inner where keeps the untaken division
        # finite, so that its gradient (multiplied by 0) cannot turn into NaN.
        one = torch.ones_like(rs)
        alpha = torch.where(active, rs / torch.where(active, curv, one), torch.zeros_like(rs))
        x = x + _per_item(alpha, x) * p
        r = r - _per_item(alpha, r) * q
        rs_new = _sqnorm(r)
        beta = torch.where(active, rs_new / torch.where(active, rs, one), torch.zeros_like(rs))
        p = r + _per_item(beta, p) * p
        rs = rs_new
    return x
