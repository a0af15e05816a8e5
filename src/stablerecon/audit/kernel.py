"""Null-space ("kernel") hallucinations and the local Lipschitz lower bound.

Gottschling, Antun, Hansen, Adcock, "The troublesome kernel" (SIAM Review 2025): if a method
``f`` reconstructs two images ``x`` and ``x'`` to accuracy ``delta`` from their noiseless
measurements, its local Lipschitz constant at ``A x`` is at least
``(||x - x'|| - 2 delta) / ||A (x - x')||``. When ``x' - x = z`` lies (almost) in the kernel
of ``A``, the denominator is tiny: accuracy on both forces instability. When ``z`` lies exactly
in the kernel, ``f(A x) = f(A (x + z))`` and the triangle inequality gives
``||f(A x) - x|| + ||f(A(x + z)) - (x + z)|| >= ||z||`` for every method: a method either
misses the detail on ``x + z`` or hallucinates it on ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .perturbation import batch_norm

__all__ = ["KernelSplit", "KernelResult", "kernel_split", "kernel_test"]


def _inner(a: Tensor, b: Tensor) -> Tensor:
    prod = a.conj() * b if a.is_complex() or b.is_complex() else a * b
    return prod.reshape(a.shape[0], -1).sum(dim=1).real


def _kernel_projection(d: Tensor, op: object, max_iter: int, tol: float) -> Tensor:
    """Projection of ``d`` onto ``ker A`` (within the real or complex images, as ``d``) by
    Landweber iterations ``z <- z - A^*(A z) / ||A||^2`` started at ``d``, which converge to
    ``d - A^+ A d``; one step is exact when ``A A^* = I`` and ``d`` is complex."""
    norm_sq = float(op.norm()) ** 2 if hasattr(op, "norm") else 1.0
    z = d
    d_norm = batch_norm(d).clamp_min(1e-30)
    for _ in range(max_iter):
        back = op.A_adjoint(op.A(z))
        if not d.is_complex():
            back = back.real
        z = z - back / norm_sq
        if bool((batch_norm(op.A(z)) <= tol * d_norm).all()):
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
        z0 = _kernel_projection(d, op, max_iter, tol)
        z0_norm = batch_norm(z0)
        if bool((z0_norm <= 1e-12 * batch_norm(d).clamp_min(1e-30)).any()):
            raise ValueError("argument 'd' has no component in the kernel of the operator")
        rest = d - z0
        a_d, rest_norm = batch_norm(op.A(d)), batch_norm(rest)
        if ratio > 0:
            top = a_d / rest_norm.clamp_min(1e-30)
            if bool((ratio >= top).any()):
                raise ValueError(f"argument 'ratio' = {ratio} is not reachable: the range part of 'd' "
                                 f"has ||A r|| / ||r|| = {float(top.min()):.3g}")
            t = ratio * z0_norm / torch.sqrt(a_d**2 - ratio**2 * rest_norm**2)
            z = z0 + t.reshape(-1, 1, 1, 1) * rest
        else:
            z = z0
        return KernelSplit(z, z0, batch_norm(op.A(z0)) / z0_norm, batch_norm(op.A(z)) / batch_norm(z))


@dataclass
class KernelResult:
    """How a method treats a near-kernel detail ``z`` on an image ``x`` (all ``(B,)``).

    - ``error_x``, ``error_xz``: ``||f(A x) - x||`` and ``||f(A (x + z)) - (x + z)||``;
    - ``bound``: ``(||z|| - 2 max(error_x, error_xz)) / ||A z||``, the local Lipschitz lower
      bound of the troublesome-kernel theorem (``<= 0``: the method is not accurate on both);
    - ``hallucination``: cosine between the error ``f(A x) - x`` and ``z`` (the part of the
      error put along the detail on an image without it);
    - ``detection``: cosine between ``f(A (x + z)) - f(A x)`` and ``z``;
    - ``identity_gap``: ``error_x + error_xz - ||z||``, which the triangle inequality makes
      ``>= 0`` for every method when ``z`` is exactly in the kernel;
    - ``transfer``: for another image ``x'``, cosine between ``f(A x' + A z) - f(A x')`` and
      ``z`` (``None`` unless ``x_other`` was given).
    """

    z_norm: Tensor
    measurement_ratio: Tensor
    error_x: Tensor
    error_xz: Tensor
    bound: Tensor
    hallucination: Tensor
    detection: Tensor
    identity_gap: Tensor
    transfer: Tensor | None


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    return _inner(a, b) / (batch_norm(a) * batch_norm(b)).clamp_min(1e-30)


def kernel_test(method: Callable[..., Tensor], x: Tensor, op: object, z: Tensor,
                x_other: Tensor | None = None) -> KernelResult:
    """Reconstruct ``x`` and ``x + z`` from noiseless measurements and report the kernel
    quantities of :class:`KernelResult`."""
    if not isinstance(x, Tensor) or not isinstance(z, Tensor) or x.shape != z.shape:
        raise ValueError("arguments 'x' and 'z' must be tensors of the same (B, C, H, W) shape")
    with torch.no_grad():
        fx = method(op.A(x), op)
        fxz = method(op.A(x + z), op)
        fx, fxz = (t.real if t.is_complex() and not x.is_complex() else t for t in (fx, fxz))
        z_norm, az_norm = batch_norm(z), batch_norm(op.A(z))
        ex, exz = batch_norm(fx - x), batch_norm(fxz - x - z)
        transfer = None
        if x_other is not None:
            base = method(op.A(x_other), op)
            moved = method(op.A(x_other) + op.A(z), op)
            transfer = _cosine(moved - base, z)
        return KernelResult(
            z_norm=z_norm, measurement_ratio=az_norm / z_norm, error_x=ex, error_xz=exz,
            bound=(z_norm - 2 * torch.maximum(ex, exz)) / az_norm.clamp_min(1e-30),
            hallucination=_cosine(fx - x, z), detection=_cosine(fxz - fx, z),
            identity_gap=ex + exz - z_norm, transfer=transfer,
        )
