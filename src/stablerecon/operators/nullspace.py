"""Null-space ("kernel") parts of images: the split of a detail ``d`` into the part that a
forward operator cannot see and the part it measures.

For a linear operator ``A``, ``z0 = d - A^+ A d`` is the orthogonal projection of ``d`` onto
``ker A``: ``A z0 = 0``, so no method can tell ``x`` from ``x + z0`` from noiseless
measurements. Mixing a little of the range part back in gives near-kernel perturbations ``z``
with a chosen ratio ``||A z|| / ||z||``, the objects of the troublesome-kernel theorem
(Gottschling, Antun, Hansen, Adcock, SIAM Review 2025), used by the audit and by the
near-kernel training pairs of :mod:`stablerecon.training`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["KernelSplit", "kernel_split", "kernel_projection"]


def _norms(t: Tensor) -> Tensor:
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Real inner product per batch item (complex numbers as pairs of reals), shape ``(B,)``."""
    prod = a.conj() * b if a.is_complex() else a * b
    return prod.reshape(a.shape[0], -1).sum(dim=1).real


def kernel_projection(d: Tensor, op: object, max_iter: int = 500, tol: float = 1e-9) -> Tensor:
    """Orthogonal projection ``d - A^+ A d`` of ``d`` ``(B, C, H, W)`` onto ``ker A``, within
    the real images when ``d`` is real (so that ``x + z0`` stays a real image) and within the
    complex images otherwise.

    Solves ``A A^* u = A d`` by conjugate gradients in measurement space (with the real inner
    product, and ``A^*`` followed by the real part for real ``d``), then returns
    ``d - A^* u``; stops when ``||A z0|| <= tol ||A d||`` or after ``max_iter`` iterations.
    Needs only ``op.A`` and ``op.A_adjoint``; one iteration is exact when ``A A^* = I`` and
    ``d`` is complex.
    """
    def back(u: Tensor) -> Tensor:
        v = op.A_adjoint(u)
        return v.real if not d.is_complex() and v.is_complex() else v

    def view(t: Tensor) -> Tensor:
        return t.reshape(-1, *[1] * (b.ndim - 1))

    b = op.A(d)
    b_norm = _norms(b)
    u = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = _dot(r, r)
    for _ in range(max_iter):
        if bool((rs.sqrt() <= tol * b_norm).all()):
            break
        ap = op.A(back(p))
        alpha = rs / _dot(p, ap).clamp_min(1e-300)
        alpha = torch.where(rs > 0, alpha, torch.zeros_like(alpha))
        u = u + view(alpha).to(u.dtype) * p
        r = r - view(alpha).to(r.dtype) * ap
        rs_new = _dot(r, r)
        beta = torch.where(rs > 0, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        p = r + view(beta).to(r.dtype) * p
        rs = rs_new
    return d - back(u)


@dataclass
class KernelSplit:
    """A detail ``d`` split into its kernel part ``z0`` (``A z0 ~ 0``) and range part
    ``d - z0``, and ``z = z0 + t (d - z0)`` with ``||A z|| / ||z|| = ratio`` (``z = z0`` for
    ratio 0). Ratios are per item, ``(B,)``."""

    z: Tensor
    z0: Tensor
    kernel_ratio: Tensor
    ratio: Tensor


def kernel_split(d: Tensor, op: object, ratio: float = 0.0, max_iter: int = 500,
                 tol: float = 1e-9) -> KernelSplit:
    """Split a detail ``d`` ``(B, C, H, W)`` against the kernel of ``op`` and build the
    near-kernel perturbation ``z`` with ``||A z|| / ||z|| = ratio``.

    ``z0 = d - A^+ A d`` (:func:`kernel_projection`, within the real images when ``d``
    is real, so that ``x + z0`` stays a real image); the range part ``d - z0`` is orthogonal
    to it, so ``z = z0 + t (d - z0)`` has ``||A z|| = t ||A d||`` and
    ``||z||^2 = ||z0||^2 + t^2 ||d - z0||^2``, which fixes ``t``.
    """
    if not isinstance(d, Tensor) or d.ndim != 4:
        raise ValueError("argument 'd' must be a (B, C, H, W) tensor")
    if not (math.isfinite(ratio) and ratio >= 0):
        raise ValueError(f"argument 'ratio' must be a finite number >= 0, got {ratio!r}")
    with torch.no_grad():
        z0 = kernel_projection(d, op, max_iter, tol)
        z0_norm = _norms(z0)
        if bool((z0_norm <= 1e-12 * _norms(d).clamp_min(1e-30)).any()):
            raise ValueError("argument 'd' has no component in the kernel of the operator")
        rest = d - z0
        a_d, rest_norm = _norms(op.A(d)), _norms(rest)
        if ratio > 0:
            top = a_d / rest_norm.clamp_min(1e-30)
            if bool((ratio >= top).any()):
                raise ValueError(f"argument 'ratio' = {ratio} is not reachable: the range part of 'd' "
                                 f"has ||A r|| / ||r|| = {float(top.min()):.3g}")
            t = ratio * z0_norm / torch.sqrt(a_d**2 - ratio**2 * rest_norm**2)
            z = z0 + t.reshape(-1, 1, 1, 1) * rest
        else:
            z = z0
        return KernelSplit(z, z0, _norms(op.A(z0)) / z0_norm, _norms(op.A(z)) / _norms(z))
