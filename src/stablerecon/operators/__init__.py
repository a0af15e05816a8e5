"""Forward models ``y = A x`` of imaging inverse problems, and noise models.

All operators follow :class:`LinearOperator`: ``A``, ``A_adjoint``, ``A_dagger``, ``norm()``,
``adjointness_error()``, composition ``op2 @ op1`` and scaling ``c * op``.

=============================  =====================================================
operator                       problem
=============================  =====================================================
:class:`SubsampledFourier`     MRI (Cartesian / radial / random k-space sampling)
:class:`SubsampledWalshHadamard` binary-pattern (single-pixel) imaging
:class:`Radon`                 parallel-beam CT, FBP as ``A_dagger``
:class:`GaussianMatrix`        compressed sensing with a random matrix
:class:`Blur`                  deblurring (circular convolution)
:class:`Inpainting`            inpainting (observed pixels)
:class:`Downsample`            super-resolution
:class:`Identity`              denoising
=============================  =====================================================
"""

from . import masks, noise, nullspace
from .base import (
    AdjointOperator,
    ComposedOperator,
    Identity,
    LinearOperator,
    ScaledOperator,
    skip_finite_checks,
)
from .blur import Blur, box_kernel, gaussian_kernel
from .dense import GaussianMatrix
from .downsample import Downsample
from .fourier import SubsampledFourier, centered_fft2, centered_ifft2
from .hadamard import SubsampledWalshHadamard, fwht
from .inpainting import Inpainting
from .radon import FBP_FILTERS, Radon, clear_radon_cache

OPERATORS: dict[str, type[LinearOperator]] = {
    "fourier": SubsampledFourier,
    "hadamard": SubsampledWalshHadamard,
    "radon": Radon,
    "gaussian": GaussianMatrix,
    "blur": Blur,
    "inpainting": Inpainting,
    "downsample": Downsample,
    "identity": Identity,
}
"""Operator classes by short name (used by configs and ``stablerecon list``)."""

__all__ = [
    "LinearOperator",
    "ComposedOperator",
    "ScaledOperator",
    "AdjointOperator",
    "Identity",
    "SubsampledFourier",
    "SubsampledWalshHadamard",
    "Radon",
    "FBP_FILTERS",
    "clear_radon_cache",
    "skip_finite_checks",
    "GaussianMatrix",
    "Blur",
    "Inpainting",
    "Downsample",
    "masks",
    "noise",
    "nullspace",
    "gaussian_kernel",
    "box_kernel",
    "centered_fft2",
    "centered_ifft2",
    "fwht",
    "OPERATORS",
]
