"""Simulated receive-coil sensitivity maps for multi-coil MRI (:class:`SubsampledMultiCoilFourier`).

:func:`birdcage_maps` models ``Ncoils`` coil elements (long straight conductors parallel to the
main field, as the legs of a birdcage) evenly spaced on a circle around the field of view. By
the Biot-Savart law the field of such a conductor falls off as ``1 / r`` with the distance ``r``
and is directed along the angle around it; each element is driven with a phase equal to minus
its angular position (quadrature drive), so the simulated sensitivity of element ``c`` at a pixel
``p`` is

    S_c(p) = exp(i (angle(p - q_c) - theta_c)) / |p - q_c|,   q_c = R (cos theta_c, sin theta_c),

``theta_c = 2 pi c / Ncoils``, in coordinates where the image spans ``[-1, 1)`` along each axis
(``x`` along the columns ``W``, ``y`` along the rows ``H``, the origin at pixel
``(H // 2, W // 2)``). With ``normalize=True`` the maps are divided by their root-sum-of-squares
so that ``sum_c |S_c|^2 = 1`` at every pixel.

References
----------
Pruessmann, Weiger, Scheidegger, Boesiger, "SENSE: sensitivity encoding for fast MRI", Magn.
Reson. Med. 42 (1999); the same idealised model is ``birdcage_maps`` in SigPy
(``sigpy.mri.sim``) and ``mri_birdcage`` in Fessler's Michigan Image Reconstruction Toolbox.
"""

from __future__ import annotations

import math

import torch

from ..validation import positive_float, positive_int
from .tensors import COMPLEX_DTYPES, as_hw

__all__ = ["birdcage_maps"]


def birdcage_maps(
    n_coils: int,
    size: int | tuple[int, int],
    radius: float = 1.5,
    normalize: bool = True,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Simulated birdcage coil sensitivity maps (see the module docstring for the model).

    Parameters
    ----------
    n_coils:
        Number of coil elements, ``>= 1``, evenly spaced on the circle (element 0 on the ``+x``
        axis, i.e. to the right of the image, then counter-clockwise towards ``+y``, the
        increasing row index).
    size:
        Image size ``H`` (square) or ``(H, W)``.
    radius:
        Radius of the coil circle relative to the half field of view; must exceed ``sqrt(2)``
        so that every element lies outside the (square, ``[-1, 1)^2``) field of view. Smaller
        values give more localised, more distinct maps (default 1.5).
    normalize:
        Divide by the root-sum-of-squares so that ``sum_c |S_c|^2 = 1`` everywhere (default).
        Without it the magnitude is ``1 / distance`` in half-field-of-view units.
    dtype:
        ``torch.complex64`` (default) or ``torch.complex128``.

    Returns
    -------
    torch.Tensor
        Complex maps of shape ``(n_coils, H, W)``, smooth, nowhere zero.

    Examples
    --------
    >>> maps = birdcage_maps(8, 64)
    >>> maps.shape, maps.dtype
    (torch.Size([8, 64, 64]), torch.complex64)
    >>> bool(torch.allclose(maps.abs().square().sum(0), torch.ones(64, 64)))
    True
    """
    where = "birdcage_maps"
    n_coils = positive_int(n_coils, "n_coils", where=where)
    h, w = as_hw(size, "size")
    radius = positive_float(radius, "radius", where=where)
    if radius <= math.sqrt(2.0):
        raise ValueError(f"{where}: argument 'radius' must exceed sqrt(2) ~ 1.4142 so that the coils lie "
                         f"outside the field of view, got {radius}")
    if not isinstance(normalize, bool):
        raise TypeError(f"{where}: argument 'normalize' must be a bool, got {normalize!r}")
    if dtype not in COMPLEX_DTYPES:
        raise TypeError(f"{where}: argument 'dtype' must be torch.complex64 or torch.complex128, "
                        f"got {dtype!r}")
    f64 = torch.float64
    ys = ((torch.arange(h, dtype=f64) - h // 2) / (h / 2)).reshape(1, h, 1)
    xs = ((torch.arange(w, dtype=f64) - w // 2) / (w / 2)).reshape(1, 1, w)
    theta = (2.0 * math.pi / n_coils) * torch.arange(n_coils, dtype=f64).reshape(n_coils, 1, 1)
    dx = xs - radius * torch.cos(theta)  # (Nc, 1, W) - broadcast below to (Nc, H, W)
    dy = ys - radius * torch.sin(theta)
    dist = torch.hypot(dx, dy)
    maps = torch.polar(1.0 / dist, torch.atan2(dy, dx) - theta)
    if normalize:
        maps = maps / maps.abs().square().sum(dim=0, keepdim=True).sqrt()
    return maps.to(dtype)
