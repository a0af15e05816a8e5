"""Forward models ``y = A x`` of imaging inverse problems, and noise models.

All operators follow :class:`LinearOperator`: ``A``, ``A_adjoint``, ``A_dagger``, ``norm()``,
``adjointness_error()``, composition ``op2 @ op1`` and scaling ``c * op``.

=============================  =====================================================
operator                       problem
=============================  =====================================================
:class:`SubsampledFourier`     MRI (Cartesian / radial / random k-space sampling)
:class:`SubsampledMultiCoilFourier` multi-coil Cartesian MRI (SENSE), CG-SENSE as ``A_dagger``
:class:`NonCartesianFourier`   radial / spiral MRI through a NUFFT, single- or multi-coil
:class:`SubsampledWalshHadamard` binary-pattern (single-pixel) imaging
:class:`Radon`                 parallel-beam CT, FBP as ``A_dagger`` (sparse matrix when small)
:class:`FanBeam`               fan-beam CT (flat detector), fan-beam FBP as ``A_dagger``
:class:`GaussianMatrix`        compressed sensing with a random matrix
:class:`Blur`                  deblurring (circular convolution)
:class:`Inpainting`            inpainting (observed pixels)
:class:`Downsample`            super-resolution
:class:`Identity`              denoising
=============================  =====================================================

Modules: :mod:`~stablerecon.operators.base` (the :class:`LinearOperator` contract and its
algebra: composition, scaling, adjoint, identity), :mod:`~stablerecon.operators.tensors`
(tensor checks, dtype helpers, :class:`skip_finite_checks`), one module per forward model,
:mod:`~stablerecon.operators.masks` (sampling patterns), :mod:`~stablerecon.operators.noise`
(noise models), :mod:`~stablerecon.operators.nullspace` (range/null-space split),
:mod:`~stablerecon.operators.perturbations` (operator perturbations, the inexact-input setting:
families of perturbed operators ``A_E`` by name in :data:`PERTURBATIONS`) and
:mod:`~stablerecon.operators.kinds` (the operator kinds of configs, :data:`OPERATOR_KINDS`, and
:class:`OperatorSpec`).

Imports: this package sits at the bottom of stablerecon; it may import nothing of stablerecon
but :mod:`stablerecon.contracts`, :mod:`stablerecon.validation`, :mod:`stablerecon.files` and,
for the operator kinds and the perturbation families, :mod:`stablerecon.config_base` and
:mod:`stablerecon.registry`.
"""

from . import masks, noise, nullspace, perturbations, trajectories
from .adapter import AdaptedOperator, as_linear_operator
from .base import (
    AdjointOperator,
    ComposedOperator,
    Identity,
    LinearOperator,
    ScaledOperator,
)
from .blur import Blur, box_kernel, gaussian_kernel
from .coil_estimation import espirit_maps
from .coils import birdcage_maps
from .dense import GaussianMatrix
from .downsample import Downsample
from .fanbeam import FanBeam
from .fourier import SubsampledFourier, centered_fft2, centered_ifft2
from .hadamard import SubsampledWalshHadamard, fwht
from .inpainting import Inpainting
from .kinds import OPERATOR_KINDS, OperatorSpec, build_operator
from .multicoil import SubsampledMultiCoilFourier, rss
from .nufft import NonCartesianFourier, density_compensation
from .perturbations import (
    PERTURBATIONS,
    AdditiveLowRank,
    AngleOffset,
    KernelMismatch,
    KSpaceDrop,
    KSpaceJitter,
    PerturbationFamily,
    PerturbedOperator,
    Rounding,
    WalshDrop,
    build_perturbation,
)
from .radon import FBP_FILTERS, Radon, clear_radon_cache
from .tensors import skip_finite_checks

OPERATORS = OPERATOR_KINDS
"""The operator kinds of configs by short name (:data:`stablerecon.operators.kinds.OPERATOR_KINDS`)."""

__all__ = [
    "LinearOperator",
    "ComposedOperator",
    "ScaledOperator",
    "AdjointOperator",
    "Identity",
    "SubsampledFourier",
    "SubsampledMultiCoilFourier",
    "birdcage_maps",
    "rss",
    "SubsampledWalshHadamard",
    "Radon",
    "FanBeam",
    "FBP_FILTERS",
    "clear_radon_cache",
    "skip_finite_checks",
    "GaussianMatrix",
    "Blur",
    "Inpainting",
    "Downsample",
    "masks",
    "noise",
    "trajectories",
    "NonCartesianFourier",
    "density_compensation",
    "nullspace",
    "gaussian_kernel",
    "box_kernel",
    "centered_fft2",
    "espirit_maps",
    "centered_ifft2",
    "fwht",
    "OPERATORS",
    "OPERATOR_KINDS",
    "OperatorSpec",
    "build_operator",
    "as_linear_operator",
    "AdaptedOperator",
    "perturbations",
    "PERTURBATIONS",
    "build_perturbation",
    "PerturbationFamily",
    "PerturbedOperator",
    "AdditiveLowRank",
    "KSpaceJitter",
    "KSpaceDrop",
    "WalshDrop",
    "KernelMismatch",
    "AngleOffset",
    "Rounding",
]
