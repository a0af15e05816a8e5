r"""``angle_offset``: parallel-beam CT with each projection angle off by a small offset."""

from __future__ import annotations

import math

import torch

from ..projector import _disk_rows
from ..radon import Radon
from ..tensors import real_dtype_of
from .family import PerturbationFamily, PerturbedOperator, require_operator, spectral_norm_estimate

__all__ = ["AngleOffset", "OffsetRadon", "joseph_weights"]


def joseph_weights(angles: torch.Tensor, size: int, n_det: int,
                   circle: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Joseph's projector of :class:`~stablerecon.operators.Radon` as gather weights,
    differentiable in the ``angles`` (degrees, float64 tensor ``(A,)``).

    Returns ``(pixels, weights)`` of shape ``(A, n_det, 2 size)``: ray ``(a, d)`` is
    ``sum_j weights[a, d, j] x.flat[pixels[a, d, j]]``. The geometry (dominant axis, the two
    pixels of each step, support) is that of the sparse matrix of :mod:`~stablerecon.operators.radon`
    at these angles; the weights ``(1 - frac) / |cos|`` and ``frac / |cos|`` (or ``sin``) are
    computed with torch, so their derivative in the angle is the exact derivative of the
    projector between the angles where a crossing passes a pixel centre or the dominant axis
    changes (where it jumps).
    """
    dtype = angles.dtype
    dev = angles.device
    c0 = size // 2
    theta = angles * (math.pi / 180.0)
    # values from libm exactly as radon.py computes them (same branches, same round-off
    # weights dropped), derivatives from torch
    rad = theta.detach().cpu().tolist()
    cos_ref = torch.tensor([math.cos(r) for r in rad], dtype=dtype, device=dev)
    sin_ref = torch.tensor([math.sin(r) for r in rad], dtype=dtype, device=dev)
    cos, sin = torch.cos(theta), torch.sin(theta)
    cos = cos + (cos_ref - cos).detach()
    sin = sin + (sin_ref - sin).detach()
    rows = (cos.abs() >= sin.abs()).detach()[:, None, None]       # step over rows
    t = (torch.arange(n_det, device=dev, dtype=dtype) - n_det // 2)[None, :, None]
    centred = (torch.arange(size, device=dev, dtype=dtype) - c0)[None, None, :]
    c, s = cos[:, None, None], sin[:, None, None]
    numerator = torch.where(rows, t + centred * s, centred * c - t)
    denom = torch.where(rows, c, s)
    pos = numerator * (1.0 / denom) + c0                            # (A, D, S)
    length = 1.0 / denom.abs()
    first = torch.floor(pos.detach())
    frac = pos - first
    weights = torch.stack(((1.0 - frac) * length, frac * length), dim=-1)   # (A, D, S, 2)
    idx = first.long()[..., None] + torch.arange(2, device=dev)
    lo, hi = (torch.from_numpy(b).to(dev)[None, None, :, None] for b in _disk_rows(size, circle))
    keep = (idx >= lo) & (idx <= hi) & (weights.detach() > 1e-12 * length.detach()[..., None])
    steps = torch.arange(size, device=dev)[None, None, :, None]
    pixels = torch.where(rows[..., None], idx + steps * size, idx * size + steps)
    pixels = torch.where(keep, pixels, torch.zeros_like(pixels))
    weights = torch.where(keep, weights, torch.zeros_like(weights))
    a = angles.shape[0]
    return pixels.reshape(a, n_det, 2 * size), weights.reshape(a, n_det, 2 * size)


class OffsetRadon(PerturbedOperator):
    r"""The Radon transform at the angles ``nominal.angles + theta`` (built by
    :class:`AngleOffset`), Joseph's projector as a gather (``A``) and a scatter-add (``A^*``) of
    the same weights, differentiable in ``theta``. Memory: ``2 n_angles n_det size`` weights and
    indices, and as many products per image. ``A_dagger`` is filtered back-projection (the
    nominal's filter) through this operator's adjoint."""

    def __init__(self, nominal: Radon, theta: torch.Tensor, pixels: torch.Tensor,
                 weights: torch.Tensor) -> None:
        super().__init__(nominal, theta, AngleOffset.name)
        self.pixels, self.weights = pixels, weights

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        w = self.weights.to(device=x.device, dtype=real_dtype_of(x.dtype))
        flat = x.reshape(b * c, -1)[:, self.pixels.reshape(-1).to(x.device)]
        y = (flat.reshape(b * c, *w.shape) * w).sum(dim=-1)
        return y.reshape(b, c, *w.shape[:2])

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        b, c = y.shape[:2]
        w = self.weights.to(device=y.device, dtype=real_dtype_of(y.dtype))
        contrib = (y.reshape(b * c, *w.shape[:2], 1) * w).reshape(b * c, -1)
        out = y.new_zeros((b * c, self.nominal.size**2))
        out = out.index_add(1, self.pixels.reshape(-1).to(y.device), contrib)
        return out.reshape(b, c, self.nominal.size, self.nominal.size)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self._adjoint(self.nominal._filter(y)) * (math.pi / (2 * self.nominal.n_angles))


class AngleOffset(PerturbationFamily):
    r"""``angle_offset``: the projection angles of a :class:`~stablerecon.operators.Radon` off
    by ``theta`` (one offset per angle, in **degrees**, as ``Radon.angles``; shape
    ``(n_angles,)``).

    ``A_E`` is Joseph's projector at the offset angles, rebuilt with torch so that it is
    differentiable in ``theta`` (:func:`joseph_weights`); the projector is piecewise smooth in
    the angles, so ``A_E`` jumps (by the round-off weights only) where a ray crosses a pixel
    centre exactly or the dominant axis switches at 45 degrees. At ``theta = 0`` it equals the
    nominal sparse matrix to rounding (1e-15 relative).

    ``distance`` is an **estimate** (``distance_kind = "estimate"``): power iteration on
    ``D^* D`` with ``D = J(theta) - J(0)`` (both from :func:`joseph_weights`, so
    ``distance(0) = 0``), stopped when the Rayleigh quotient changes by at most ``1e-13``
    relatively (at most 5000 steps). It converges to ``||A_E - A||`` from below; it carries no
    gradient. :meth:`scale` bisects along the ray.
    """

    name = "angle_offset"
    continuous = True
    distance_kind = "estimate"

    def __init__(self, op: Radon) -> None:
        require_operator(op, (Radon,), self.name)
        super().__init__(op, (op.n_angles,))
        self._angles = torch.tensor(op.angles, dtype=torch.float64)
        self._nominal_weights: tuple[torch.Tensor, torch.Tensor] | None = None

    def _weights(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = self._angles.to(theta.device) + theta
        return joseph_weights(angles, self.op.size, self.op.n_detectors, self.op.circle)

    def _build(self, theta: torch.Tensor) -> OffsetRadon:
        return OffsetRadon(self.op, theta, *self._weights(theta))

    def _distance(self, theta: torch.Tensor) -> torch.Tensor:
        if self._nominal_weights is None:
            self._nominal_weights = self._weights(torch.zeros_like(theta))
        with torch.no_grad():
            perturbed = OffsetRadon(self.op, theta, *self._weights(theta))
            nominal = OffsetRadon(self.op, theta, *self._nominal_weights)

            def apply(x: torch.Tensor) -> torch.Tensor:
                return perturbed._forward(x) - nominal._forward(x)

            def adjoint(y: torch.Tensor) -> torch.Tensor:
                return perturbed._adjoint(y) - nominal._adjoint(y)

            example = torch.zeros(1, 1, self.op.size, self.op.size, dtype=torch.float64, device=theta.device)
            value = spectral_norm_estimate(apply, adjoint, example)
        return torch.tensor(value, dtype=torch.float64, device=theta.device)

    def _random_direction(self, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(self.theta_shape, generator=generator, dtype=self.theta_dtype) - 0.5
