r"""``kspace_drop`` and ``walsh_drop``: measurements of a subsampled unitary transform lost.

Both families multiply the measurements by a 0/1 keep vector, ``A_E = diag(w) A`` (a dropped
measurement reads zero; the shapes stay those of ``A``). Since ``A`` has orthonormal rows
(``A A^* = I``), ``||A_E - A||_2 = max_i |1 - w_i|``: exactly ``1 = ||A||`` as soon as one
measurement is dropped, ``0`` otherwise. Losing data is a large perturbation in operator norm,
whatever the amount lost: budgets ``r < 1`` admit no drop, ``r >= 1`` admit any.
"""

from __future__ import annotations

import math

import torch

from ..base import LinearOperator
from ..fourier import SubsampledFourier
from ..hadamard import SubsampledWalshHadamard
from ..tensors import real_dtype_of
from .family import PerturbationFamily, PerturbedOperator, check_budget, require_operator
from .kspace import line_geometry

__all__ = ["DroppedMeasurements", "KSpaceDrop", "WalshDrop"]


class DroppedMeasurements(PerturbedOperator):
    """``A_E = diag(w) A`` for a per-measurement weight ``w`` (0/1); ``A_dagger`` is the
    adjoint, the exact pseudo-inverse (``A`` has orthonormal rows, ``w`` is 0/1)."""

    def __init__(self, nominal: LinearOperator, theta: torch.Tensor, weights: torch.Tensor,
                 family: str) -> None:
        super().__init__(nominal, theta, family)
        self.weights = weights

    def _weights(self, like: torch.Tensor) -> torch.Tensor:
        return self.weights.to(device=like.device, dtype=real_dtype_of(like.dtype))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.nominal._forward(x)
        return y * self._weights(y)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.nominal._adjoint(y * self._weights(y))


class _DropFamily(PerturbationFamily):
    """A 0/1 keep vector over groups of measurements (discrete, exact distance)."""

    continuous = False
    distance_kind = "exact"

    def __init__(self, op: LinearOperator, groups: int, drop_fraction: float) -> None:
        if not (isinstance(drop_fraction, (int, float)) and 0.0 < drop_fraction <= 1.0):
            raise ValueError(f"argument 'drop_fraction' must lie in (0, 1], got {drop_fraction!r}")
        self.drop_fraction = float(drop_fraction)
        super().__init__(op, (groups,))

    def _expand(self, theta: torch.Tensor) -> torch.Tensor:
        """The per-measurement weights of the per-group keep vector ``theta``."""
        return theta

    def _check_values(self, theta: torch.Tensor) -> None:
        if not bool(((theta == 0) | (theta == 1)).all()):
            raise ValueError(f"perturbation family {self.name!r}: argument 'theta' must hold only "
                             "0 (drop) and 1 (keep)")

    def nominal_theta(self) -> torch.Tensor:
        """All ones: nothing dropped."""
        return torch.ones(self.theta_shape, dtype=self.theta_dtype, device=self.op._probe_device())

    def _build(self, theta: torch.Tensor) -> DroppedMeasurements:
        return DroppedMeasurements(self.op, theta, self._expand(theta), self.name)

    def _distance(self, theta: torch.Tensor) -> torch.Tensor:
        return (1.0 - theta).abs().max() * self.op.norm()

    def scale(self, theta: torch.Tensor, r: float) -> torch.Tensor:
        """For a discrete family, the same as :meth:`project`."""
        return self.project(theta, r)

    def project(self, theta: torch.Tensor, r: float) -> torch.Tensor:
        """Exact projection: ``theta`` if ``r >= 1`` (any drop fits), else all ones (none does)."""
        theta = self.check_theta(theta)
        return theta if self.budget(r) >= self.op.norm() else self.nominal_theta()

    def random(self, r: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """For ``r >= 1``, ``ceil(drop_fraction * groups)`` groups dropped uniformly at random
        (distance exactly ``||A||``); for ``r < 1`` all ones (distance 0: no drop fits)."""
        if check_budget(r) < 1.0:
            return self.nominal_theta()
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        count = self.theta_shape[0]
        drop = torch.randperm(count, generator=g)[: max(1, math.ceil(self.drop_fraction * count))]
        theta = torch.ones(count, dtype=self.theta_dtype)
        theta[drop] = 0.0
        return theta.to(self.op._probe_device())


class KSpaceDrop(_DropFamily):
    r"""``kspace_drop``: sampled k-space lines (or points) of a
    :class:`~stablerecon.operators.SubsampledFourier` lost.

    ``theta`` is a 0/1 keep vector with one entry per sampled line for a Cartesian line mask
    (``groups == "lines"``, lines in ascending centred index, as
    :class:`~.kspace.KSpaceJitter`) and one per sampled point otherwise (``groups ==
    "points"``, in measurement order). Discrete (``continuous = False``): ``A_E`` is linear in
    ``theta``, but only 0/1 values are accepted. ``distance`` is exact (see the module).
    ``random`` drops ``drop_fraction`` of the groups.
    """

    name = "kspace_drop"

    def __init__(self, op: SubsampledFourier, drop_fraction: float = 0.25) -> None:
        require_operator(op, (SubsampledFourier,), self.name)
        self.geometry = line_geometry(op.mask)
        self.groups = "points" if self.geometry is None else "lines"
        count = op.out_shape[-1] if self.geometry is None else self.geometry.count
        super().__init__(op, count, drop_fraction)

    def _expand(self, theta: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        if g is None:
            return theta
        if g.axis == 0:  # measurements line * W + kx
            return theta.repeat_interleave(g.readout)
        return theta.repeat(g.readout)  # measurements ky * L + line


class WalshDrop(_DropFamily):
    r"""``walsh_drop``: sampled coefficients of a
    :class:`~stablerecon.operators.SubsampledWalshHadamard` lost.

    ``theta`` is a 0/1 keep vector with one entry per measurement. There is no continuous
    (jitter) analogue: Walsh functions are indexed by integer sequencies only. ``distance``
    is exact (see the module).
    """

    name = "walsh_drop"

    def __init__(self, op: SubsampledWalshHadamard, drop_fraction: float = 0.25) -> None:
        require_operator(op, (SubsampledWalshHadamard,), self.name)
        super().__init__(op, op.out_shape[-1], drop_fraction)
