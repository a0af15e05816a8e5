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


def kernel_projection(d: Tensor, op: object, max_iter: int = 500, tol: float = 1e-9) -> Tensor:
    """Projection of ``d`` onto ``ker A`` (within the real or complex images, as ``d``) by
    Landweber iterations ``z <- z - A^*(A z) / ||A||^2`` started at ``d``, which converge to
    ``d - A^+ A d``; one step is exact when ``A A^* = I`` and ``d`` is complex."""
    norm_sq = float(op.norm()) ** 2 if hasattr(op, "norm") else 1.0
    z = d
    d_norm = _norms(d).clamp_min(1e-30)
    for _ in range(max_iter):
        back = op.A_adjoint(op.A(z))
        if not d.is_complex():
            back = back.real
        z = z - back / norm_sq
        if bool((_norms(op.A(z)) <= tol * d_norm).all()):
            break
    return z


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

    ``z0 = d - A^+ A d`` (computed by Landweber iterations within the real images when ``d``
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
