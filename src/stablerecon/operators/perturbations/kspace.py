r"""``kspace_jitter``: Cartesian MRI with each sampled phase-encode line off its grid position.

Also the line geometry of a :class:`~stablerecon.operators.SubsampledFourier` mask, shared
with ``kspace_drop`` (:mod:`.drop`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..fourier import SubsampledFourier
from ..tensors import complex_dtype_of
from .family import PerturbationFamily, PerturbedOperator, require_operator

__all__ = ["LineGeometry", "line_geometry", "KSpaceJitter", "JitteredFourier"]


@dataclass(frozen=True)
class LineGeometry:
    """The sampled lines of a Cartesian line mask ``(H, W)``.

    ``axis = 0``: every sampled row is full (lines are rows: the phase-encode index runs along
    ``H``, the readout along ``W``); measurements are ordered ``line * W + kx``.
    ``axis = 1``: every sampled column is full; measurements are ordered ``ky * L + line``.
    ``lines`` are the centred k-space indices of the ``L`` sampled lines, ascending; ``n`` the
    size along the phase-encode axis, ``readout`` the size along the other one.
    """

    axis: int
    lines: torch.Tensor
    n: int
    readout: int

    @property
    def count(self) -> int:
        return int(self.lines.numel())


def line_geometry(mask: torch.Tensor, axis: int | None = None) -> LineGeometry | None:
    """The :class:`LineGeometry` of ``mask`` if it samples whole lines along ``axis`` (``None``:
    rows if they are whole, else columns), else ``None``."""
    mask = mask.cpu()
    for ax in ((0, 1) if axis is None else (axis,)):
        full, hit = mask.all(dim=1 - ax), mask.any(dim=1 - ax)
        if bool((full == hit).all()):
            lines = torch.nonzero(full).flatten()
            return LineGeometry(ax, lines, mask.shape[ax], mask.shape[1 - ax])
    return None


def _centred_dft_1d(x: torch.Tensor, dim: int, inverse: bool = False) -> torch.Tensor:
    """Unitary centred DFT along ``dim`` (``fftshift(fft(ifftshift(x)))``) or its inverse."""
    f = torch.fft.ifft if inverse else torch.fft.fft
    return torch.fft.fftshift(f(torch.fft.ifftshift(x, dim=dim), dim=dim, norm="ortho"), dim=dim)


class JitteredFourier(PerturbedOperator):
    r"""``A_E = A + (M_E - M) \otimes F_r`` (built by :class:`KSpaceJitter`): ``M`` and ``M_E``
    are the ``L x n`` centred DFT rows of the nominal and the shifted lines along the phase-encode
    axis, ``F_r`` the unitary centred DFT along the readout. At ``theta = 0`` the correction is
    exactly zero, so ``A_E`` equals the nominal operator bit for bit. ``A_dagger`` is the adjoint
    of ``A_E`` (the exact pseudo-inverse for integer offsets onto distinct free lines). ``norm()``
    is exact and cheap: ``||A_E|| = ||M_E||_2`` (an ``L x n`` SVD), since ``F_r`` is unitary."""

    def __init__(self, nominal: SubsampledFourier, theta: torch.Tensor, delta: torch.Tensor,
                 geometry: LineGeometry) -> None:
        super().__init__(nominal, theta, KSpaceJitter.name)
        self.delta, self.geometry = delta, geometry

    def _exact_norm(self) -> float:
        g = self.geometry
        with torch.no_grad():
            eye = torch.eye(g.n, dtype=torch.complex128, device=self.delta.device)
            rows = _centred_dft_1d(eye, 0)[g.lines.to(self.delta.device)]  # M: the nominal lines
            return float(torch.linalg.matrix_norm(rows + self.delta.detach(), ord=2))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        d = self.delta.to(device=x.device, dtype=complex_dtype_of(x.dtype))
        if g.axis == 0:  # readout along W (dim -1), phase encodes along H (dim -2)
            z = d @ _centred_dft_1d(x, -1)                     # (B, C, L, W)
        else:
            z = _centred_dft_1d(x, -2) @ d.T                   # (B, C, H, L)
        return self.nominal._forward(x) + z.flatten(-2)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        cdt = complex_dtype_of(y.dtype)
        d = self.delta.to(device=y.device, dtype=cdt)
        z = y.to(cdt)
        if g.axis == 0:
            u = _centred_dft_1d(d.conj().T @ z.unflatten(-1, (g.count, g.readout)), -1, inverse=True)
        else:
            u = _centred_dft_1d(z.unflatten(-1, (g.readout, g.count)) @ d.conj(), -2, inverse=True)
        return self.nominal._adjoint(y) + u


class KSpaceJitter(PerturbationFamily):
    r"""``kspace_jitter``: each sampled line of a Cartesian line mask shifted off the grid.

    For :class:`~stablerecon.operators.SubsampledFourier` with a line mask (whole rows, e.g.
    ``masks.variable_density_lines(..., axis=0)``, or whole columns), ``theta`` holds one offset
    ``delta_l`` per sampled line, in grid cells (units of the k-space sample spacing ``1/FOV``),
    shape ``(L,)``. Line ``l`` at centred index ``k_l`` then measures the frequency
    ``k_l + delta_l``: with ``c = n // 2`` and the image coordinate ``p - c`` (image origin at the
    centre, as the operator's centred DFT), the row along the phase-encode axis becomes the
    non-uniform DFT row

    .. math:: M_E[l, p] = n^{-1/2} \exp(-2\pi i (k_l + \delta_l - c)(p - c) / n),

    computed exactly (a small ``L x n`` matrix), while the readout keeps the FFT. Integer
    offsets give exactly the grid lines ``k_l + delta_l`` (modulo ``n``).

    ``distance`` is exact: ``A_E - A = (M_E - M) \otimes F_r`` with ``F_r`` unitary, so
    ``||A_E - A||_2 = ||M_E - M||_2`` (an ``L x n`` SVD); it is differentiable in ``theta``
    (not at ``theta = 0``, where the singular values are all zero). ``distance`` is not
    homogeneous in ``theta``: :meth:`scale` bisects along the ray.

    Point masks (2-D random, radial) are refused with a ``TypeError``: their exact distance
    would need the full ``m x HW`` difference. ``axis`` forces the line direction.
    """

    name = "kspace_jitter"
    continuous = True
    distance_kind = "exact"

    def __init__(self, op: SubsampledFourier, axis: int | None = None) -> None:
        require_operator(op, (SubsampledFourier,), self.name)
        if axis not in (None, 0, 1):
            raise ValueError(f"argument 'axis' must be None, 0 or 1, got {axis!r}")
        geometry = line_geometry(op.mask, axis)
        if geometry is None:
            raise TypeError(f"perturbation family {self.name!r}: argument 'op' must sample whole "
                            "k-space lines (a Cartesian line mask, e.g. masks.variable_density_lines); "
                            "its mask samples scattered points")
        self.geometry = geometry
        super().__init__(op, (geometry.count,))
        n, c = geometry.n, geometry.n // 2
        p = torch.arange(n) - c
        # exact integer phase (k - c)(p - c) mod n, so M is accurate for any size
        turns = ((geometry.lines[:, None] - c) * p[None, :]) % n
        angle = -2 * math.pi * turns.double() / n
        self._base = torch.polar(torch.full_like(angle, 1 / math.sqrt(n)), angle)
        self._positions = p.double()

    def difference(self, theta: torch.Tensor) -> torch.Tensor:
        """``M_E - M`` (``L x n``, complex128) for a checked ``theta``, differentiable."""
        n = self.geometry.n
        base = self._base.to(theta.device)
        half = -math.pi * theta[:, None] * self._positions.to(theta.device)[None, :] / n  # phi / 2
        # exp(i phi) - 1 = exp(i phi / 2) * 2i sin(phi / 2): accurate for tiny offsets
        rot = torch.complex(torch.cos(half), torch.sin(half))
        return base * rot * torch.complex(torch.zeros_like(half), 2 * torch.sin(half))

    def _build(self, theta: torch.Tensor) -> JitteredFourier:
        return JitteredFourier(self.op, theta, self.difference(theta), self.geometry)

    def _distance(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.linalg.matrix_norm(self.difference(theta), ord=2)

    def _random_direction(self, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(self.theta_shape, generator=generator, dtype=self.theta_dtype) - 0.5
