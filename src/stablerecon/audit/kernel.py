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

from dataclasses import dataclass

import torch
from torch import Tensor

from ..contracts import Operator, Reconstructor
from ..operators.nullspace import KernelSplit, kernel_split
from .perturbation import batch_norm, worst_case

__all__ = ["KernelSplit", "KernelResult", "kernel_split", "kernel_test", "PairBoundResult", "pair_bound"]


def _inner(a: Tensor, b: Tensor) -> Tensor:
    prod = a.conj() * b if a.is_complex() or b.is_complex() else a * b
    return prod.reshape(a.shape[0], -1).sum(dim=1).real


@dataclass
class KernelResult:
    """How a method treats a near-kernel detail ``z`` on an image ``x`` (all ``(B,)``).

    - ``error_x``, ``error_xz``: ``||f(A x) - x||`` and ``||f(A (x + z)) - (x + z)||``;
    - ``bound``: ``(||z|| - 2 max(error_x, error_xz)) / ||A z||``, the local Lipschitz lower
      bound of the troublesome-kernel theorem (``<= 0``: the method is not accurate on both);
    - ``hallucination``: cosine between the error ``f(A x) - x`` and ``z`` (the part of the
      error put along the detail on an image without it);
    - ``detection``: cosine between ``f(A (x + z)) - f(A x)`` and ``z``; ``change`` its norm
      ``||f(A (x + z)) - f(A x)||``;
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
    change: Tensor
    identity_gap: Tensor
    transfer: Tensor | None


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    return _inner(a, b) / (batch_norm(a) * batch_norm(b)).clamp_min(1e-30)


def kernel_test(method: Reconstructor, x: Tensor, op: Operator, z: Tensor,
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
            change=batch_norm(fxz - fx), identity_gap=ex + exz - z_norm, transfer=transfer,
        )


@dataclass
class PairBoundResult:
    """The troublesome-kernel theorem made runnable on one pair ``x``, ``x + z`` (all ``(B,)``).

    - ``error_x``, ``error_xz``, ``delta = max`` of the two: the method's accuracy on the pair
      from noiseless measurements;
    - ``bound``: ``(||z|| - 2 delta) / ||A z||``, a lower bound on the local Lipschitz constant
      at ``A x`` when positive (``<= 0``: the method is not accurate on both);
    - ``direct``: ``||f(A x + A z) - f(A x)|| / ||A z||``, the amplification of the perturbation
      ``e = A z`` itself, which is ``>= bound`` by the triangle inequality;
    - ``budget``: ``||A z|| / ||A x||``, the relative budget of the search;
    - ``search``: the amplification :func:`~stablerecon.audit.worst_case` finds at ``A x`` with
      that budget (``None`` if not run).
    """

    z_norm: Tensor
    measurement_norm: Tensor
    error_x: Tensor
    error_xz: Tensor
    delta: Tensor
    bound: Tensor
    direct: Tensor
    budget: Tensor
    search: Tensor | None


def pair_bound(method: Reconstructor, x: Tensor, op: Operator, z: Tensor, search_steps: int = 0,
               restarts: int = 2, seed: int = 0) -> PairBoundResult:
    """Accuracy of ``method`` on ``x`` and ``x + z``, the resulting Lipschitz lower bound, the
    amplification of ``e = A z`` and, with ``search_steps > 0``, of the worst case found by the
    audit's search within ``||e|| <= ||A z||`` (one search per image)."""
    kt = kernel_test(method, x, op, z)
    with torch.no_grad():
        y = op.A(x)
        az_norm = batch_norm(op.A(z)).clamp_min(1e-30)
        budget = az_norm / batch_norm(y)
    search = None
    if search_steps > 0:
        found = []
        for b in range(x.shape[0]):
            res = worst_case(method, y[b:b + 1], op, budgets=[float(budget[b])], steps=search_steps,
                             restarts=restarts, seed=seed)
            found.append(res.amplification[0, 0])
        search = torch.stack(found)
    delta = torch.maximum(kt.error_x, kt.error_xz)
    return PairBoundResult(kt.z_norm, az_norm, kt.error_x, kt.error_xz, delta, kt.bound, kt.change / az_norm,
                           budget, search)
