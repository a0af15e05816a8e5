r"""Operator perturbations as first-class objects: the inexact-input setting.

A reconstruction method is usually handed the exact forward operator ``A``; in practice it gets
an approximation ``A_E`` (k-space lines off their nominal positions, a mis-estimated blur
kernel, CT angles off by a little, a matrix stored to finitely many digits). Colbrook, Antun
and Hansen, "The difficulty of computing stable and accurate neural networks", PNAS 119 (2022),
show that such inexact input alone can rule out accurate and stable computation; the audit
measures how much a method's output moves when ``A`` is replaced by ``A_E`` with
``||A_E - A|| <= r ||A||``.

A family (:class:`PerturbationFamily`) is built from the nominal operator and maps a parameter
tensor ``theta`` (``family.theta_shape``, float64) to ``A_E = family(theta)``, a
:class:`~stablerecon.operators.LinearOperator` with an exact adjoint, the nominal's shapes and
dtype conventions, differentiable in ``theta`` for continuous families. ``family.distance``,
``scale``, ``project`` and ``random`` size it against relative budgets ``r``.

=================  ===========================  ==========  ============  =====================
name               operators                    continuous  distance      theta
=================  ===========================  ==========  ============  =====================
``additive``       any LinearOperator           yes         exact         factors of ``U V^H``
``kspace_jitter``  SubsampledFourier (lines)    yes         exact         offset per line
``kspace_drop``    SubsampledFourier            no          exact         0/1 per line / point
``walsh_drop``     SubsampledWalshHadamard      no          exact         0/1 per coefficient
``kernel``         Blur                         yes         exact         kernel error ``dk``
``angle_offset``   Radon                        yes         estimate      offset per angle (deg)
``rounding``       matrix or small operator     no          exact         digits ``K``
=================  ===========================  ==========  ============  =====================

:data:`PERTURBATIONS` names them for the audit and configs (entry metadata: ``operators``, the
operator classes that apply; ``continuous``; ``distance``, the ``distance_kind``);
:func:`build_perturbation` builds one from its name and validated options.

>>> import torch
>>> from stablerecon.operators import Blur, gaussian_kernel
>>> family = build_perturbation("kernel", Blur(gaussian_kernel(1.0), 16))
>>> theta = family.random(0.05, torch.Generator().manual_seed(0))
>>> round(family.relative_distance(theta), 6)
0.05
>>> family(theta).A(torch.rand(1, 1, 16, 16)).shape
torch.Size([1, 1, 16, 16])
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ...config_base import PositiveInt, StrictModel
from ...registry import Registry
from ..base import LinearOperator
from .additive import AdditiveLowRank, LowRankPerturbed
from .angles import AngleOffset, OffsetRadon, joseph_weights
from .drop import DroppedMeasurements, KSpaceDrop, WalshDrop
from .family import DistanceKind, PerturbationFamily, PerturbedOperator
from .kernel import KernelMismatch, MismatchedBlur
from .kspace import JitteredFourier, KSpaceJitter, LineGeometry, line_geometry
from .rounding import RoundedMatrix, Rounding, round_digits

__all__ = [
    "PERTURBATIONS",
    "build_perturbation",
    "PerturbationFamily",
    "PerturbedOperator",
    "DistanceKind",
    "AdditiveLowRank",
    "KSpaceJitter",
    "KSpaceDrop",
    "WalshDrop",
    "KernelMismatch",
    "AngleOffset",
    "Rounding",
    "LowRankPerturbed",
    "JitteredFourier",
    "DroppedMeasurements",
    "MismatchedBlur",
    "OffsetRadon",
    "RoundedMatrix",
    "LineGeometry",
    "line_geometry",
    "joseph_weights",
    "round_digits",
]

#: The perturbation families by name: ``name -> family class`` (called as ``cls(op, **params)``).
PERTURBATIONS: Registry[type[PerturbationFamily]] = Registry("operator perturbation")

DropFraction = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]


class AdditiveParams(StrictModel):
    """Options of ``additive``: the ``rank`` ``k`` of ``E = U V^H``."""

    rank: PositiveInt = 1


class JitterParams(StrictModel):
    """Options of ``kspace_jitter``: the line direction ``axis`` (``None``: detected)."""

    axis: Literal[0, 1] | None = None


class DropParams(StrictModel):
    """Options of ``kspace_drop``/``walsh_drop``: the fraction ``random`` drops."""

    drop_fraction: DropFraction = 0.25


class RoundingParams(StrictModel):
    """Options of ``rounding``: digits in ``base`` 10 or 2 (bits)."""

    base: Literal[2, 10] = 10


def _register(cls: type[PerturbationFamily], summary: str, operators: tuple[str, ...],
              params: type[StrictModel] | None = None) -> None:
    extra = {"params": params} if params is not None else {}
    PERTURBATIONS.register(cls.name, cls, summary=summary, operators=operators,
                           continuous=cls.continuous, distance=cls.distance_kind, **extra)


_register(AdditiveLowRank, "A + U V^H of rank k (any operator, real or complex measurements)",
          ("LinearOperator",), AdditiveParams)
_register(KSpaceJitter, "each sampled k-space line shifted by a continuous offset (grid cells)",
          ("SubsampledFourier",), JitterParams)
_register(KSpaceDrop, "sampled k-space lines (or points) dropped: a 0/1 keep vector",
          ("SubsampledFourier",), DropParams)
_register(WalshDrop, "sampled Walsh-Hadamard coefficients dropped: a 0/1 keep vector",
          ("SubsampledWalshHadamard",), DropParams)
_register(KernelMismatch, "blur kernel k + dk (periodic convolution)", ("Blur",))
_register(AngleOffset, "each CT projection angle offset (degrees)", ("Radon",))
_register(Rounding, "matrix entries rounded to K digits (base 10 or 2)",
          ("GaussianMatrix", "LinearOperator"), RoundingParams)


def build_perturbation(name: str, op: LinearOperator, **params: Any) -> PerturbationFamily:
    """The family ``name`` of :data:`PERTURBATIONS` for ``op``, its options validated (an error
    naming each bad option; a ``KeyError`` listing the names for an unknown ``name``)."""
    entry = PERTURBATIONS.entry(name)
    options = PERTURBATIONS.params_of(name, params)
    return entry.value(op, **options.model_dump())
