"""Analytic phantoms: the Shepp-Logan head phantom and random-ellipse training phantoms.

Both are rasterised on the pixel grid of MATLAB's ``phantom``: pixel ``(i, j)`` of an
``N x N`` image sits at ``x = -1 + 2 j / (N - 1)`` (left to right) and
``y = 1 - 2 i / (N - 1)`` (top to bottom, so ``y`` points up), i.e. ``numpy.linspace(-1, 1, N)``
with the outermost pixels on the border of the field of view (a 1-pixel image sits at 0). A
pixel belongs to an ellipse when its grid point does (no anti-aliasing), so any size works and
edges stay sharp. With this grid ``shepp_logan(400)`` reproduces
``skimage.data.shepp_logan_phantom()`` pixel for pixel (up to that file's 8-bit rounding).

References
----------
L. A. Shepp and B. F. Logan, "The Fourier reconstruction of a head section", IEEE Trans.
Nucl. Sci. 21(3):21-43, 1974.

P. Toft, "The Radon Transform: Theory and Implementation", PhD thesis, Technical University
of Denmark, 1996 (the "modified" Shepp-Logan phantom with higher contrast).

K. H. Jin, M. T. McCann, E. Froustey and M. Unser, "Deep convolutional neural network for
inverse problems in imaging" (FBPConvNet), IEEE Trans. Image Process. 26(9):4509-4522, 2017
(networks trained on random-ellipse phantoms).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["ellipses", "shepp_logan"]

# Columns: intensity A, semi-axes a (along x) and b (along y), centre (x0, y0), angle phi in
# degrees (counter-clockwise from the x axis). Intensities add where ellipses overlap.
_SHEPP_LOGAN_GEOMETRY = np.array(
    [
        [0.6900, 0.9200, 0.00, 0.0000, 0.0],
        [0.6624, 0.8740, 0.00, -0.0184, 0.0],
        [0.1100, 0.3100, 0.22, 0.0000, -18.0],
        [0.1600, 0.4100, -0.22, 0.0000, 18.0],
        [0.2100, 0.2500, 0.00, 0.3500, 0.0],
        [0.0460, 0.0460, 0.00, 0.1000, 0.0],
        [0.0460, 0.0460, 0.00, -0.1000, 0.0],
        [0.0460, 0.0230, -0.08, -0.6050, 0.0],
        [0.0230, 0.0230, 0.00, -0.6060, 0.0],
        [0.0230, 0.0460, 0.06, -0.6050, 0.0],
    ]
)
# Shepp & Logan (1974): skull 2, brain 1, ventricles/tumours differ by 1-2 % (max value 2).
_ORIGINAL_INTENSITY = np.array([2.0, -0.98, -0.02, -0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
# Toft (1996) modified version with visible contrast (max value 1).
_MODIFIED_INTENSITY = np.array([1.0, -0.8, -0.2, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])


def _check_size(size: object, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(size).__name__} ({size!r})")
    if size < 1:
        raise ValueError(f"{name} must be >= 1, got {size}")
    return int(size)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates: ``x`` of shape ``(1, N)`` and ``y`` of shape ``(N, 1)``."""
    t = np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
    return t[None, :], -t[:, None]


def _to_tensor(arr: np.ndarray, dtype: torch.dtype, device: torch.device | str | None) -> Tensor:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    return torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype, device=device)


def shepp_logan(
    size: int = 256,
    modified: bool = True,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The Shepp-Logan head phantom, rasterised analytically at any size.

    Ten ellipses with the geometry of Shepp & Logan (1974). ``modified=True`` (default) uses
    the intensities of Toft (1996) — skull 1, brain 0.2, ventricles 0, small structures
    0.3 — the version of MATLAB's ``phantom`` and of ``skimage.data.shepp_logan_phantom()``.
    ``modified=False`` uses the original intensities (skull 2, brain ~1.0-1.03), divided by 2
    so that the result also lies in ``[0, 1]``; its soft-tissue contrast is then about 1 %.

    Args:
        size: side ``N`` of the square image in pixels.
        modified: Toft's higher-contrast intensities (True) or the original ones (False).
        dtype: floating dtype of the result.
        device: device of the result.

    Returns:
        Tensor of shape ``(1, 1, N, N)``, values in ``[0, 1]`` (background 0, skull 1).
    """
    size = _check_size(size)
    intensity, scale = (
        (_MODIFIED_INTENSITY, 1.0) if modified else (_ORIGINAL_INTENSITY, 2.0)
    )
    x, y = _grid(size)
    img = np.zeros((size, size))
    for amp, (a, b, x0, y0, phi) in zip(intensity, _SHEPP_LOGAN_GEOMETRY, strict=True):
        c, s = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
        dx, dy = x - x0, y - y0
        u = (dx * c + dy * s) / a
        v = (-dx * s + dy * c) / b
        img += amp * (u * u + v * v <= 1.0)
    # round-off (e.g. 1 - 0.8 - 0.2) must not leave tiny negatives
    img = np.clip(img / scale, 0.0, 1.0)
    return _to_tensor(img, dtype, device)[None, None]


def ellipses(
    n: int,
    size: int = 128,
    seed: int | np.random.Generator | None = None,
    *,
    min_ellipses: int = 5,
    max_ellipses: int = 15,
    min_axis: float = 0.02,
    max_axis: float = 0.5,
    min_aspect: float = 0.3,
    max_centre_radius: float = 0.75,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Random-ellipse phantoms, the synthetic training set of FBPConvNet (Jin et al. 2017).

    Each phantom is a sum of ``K ~ Uniform{min_ellipses, ..., max_ellipses}`` filled ellipses
    (overlaps add up), divided by its maximum so that it spans ``[0, 1]`` exactly
    (nonnegative, max 1, background 0). Per ellipse, independently:

    - centre uniform in the disc of radius ``max_centre_radius`` (image half-width = 1);
    - first semi-axis log-uniform in ``[min_axis, max_axis]`` (default 1 % to 25 % of the
      image width, i.e. ellipses from about 2.5 to 64 pixels across at 128: many small ones,
      some large ones), the second one that times an aspect ratio uniform in
      ``[min_aspect, 1]``;
    - angle uniform in ``[0, pi)``;
    - intensity uniform in ``[0.1, 1]``.

    Generation is vectorised over phantoms (100 phantoms of 128x128 take well under a second).
    All random numbers are drawn at once, phantom by phantom, from
    ``numpy.random.default_rng(seed)``, so the same seed gives the same images, and the first
    ``m`` phantoms of ``ellipses(n, seed=s)`` equal ``ellipses(m, seed=s)`` for ``m <= n``.

    Args:
        n: number of phantoms.
        size: side ``N`` of each image in pixels.
        seed: integer seed or ``numpy.random.Generator``; ``None`` draws fresh OS entropy
            (not reproducible).
        min_ellipses: least number of ellipses per phantom (``>= 1``).
        max_ellipses: largest number of ellipses per phantom (``>= min_ellipses``).
        min_axis: smallest first semi-axis, in units of the image half-width (``> 0``).
        max_axis: largest first semi-axis, same units (``>= min_axis``).
        min_aspect: smallest ratio of second to first semi-axis, in ``(0, 1]``.
        max_centre_radius: centres lie within this distance of the image centre (``>= 0``).
        dtype: floating dtype of the result.
        device: device of the result.

    Returns:
        Tensor of shape ``(n, 1, N, N)``, values in ``[0, 1]``, each image with maximum 1.
    """
    n = _check_size(n, "n")
    size = _check_size(size)
    min_ellipses = _check_size(min_ellipses, "min_ellipses")
    max_ellipses = _check_size(max_ellipses, "max_ellipses")
    if max_ellipses < min_ellipses:
        raise ValueError(
            f"max_ellipses must be >= min_ellipses = {min_ellipses}, got {max_ellipses}"
        )
    for name, val in (("min_axis", min_axis), ("max_axis", max_axis)):
        if not (isinstance(val, (int, float)) and np.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be a positive finite number, got {val!r}")
    if not (isinstance(min_aspect, (int, float)) and 0 < min_aspect <= 1):
        raise ValueError(f"min_aspect must be in (0, 1], got {min_aspect!r}")
    if max_axis < min_axis:
        raise ValueError(f"max_axis must be >= min_axis = {min_axis}, got {max_axis}")
    if not (
        isinstance(max_centre_radius, (int, float))
        and np.isfinite(max_centre_radius)
        and max_centre_radius >= 0
    ):
        raise ValueError(
            f"max_centre_radius must be a finite number >= 0, got {max_centre_radius!r}"
        )
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)):
        raise TypeError(
            f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}"
        )

    rng = np.random.default_rng(seed)
    k_max = max_ellipses
    # One row of uniforms per phantom: 1 for the count, 6 per ellipse slot.
    u = rng.random((n, 1 + 6 * k_max))
    count = min_ellipses + np.floor(u[:, 0] * (max_ellipses - min_ellipses + 1)).astype(int)
    p = u[:, 1:].reshape(n, k_max, 6)
    radius = max_centre_radius * np.sqrt(p[..., 0])
    theta = 2.0 * np.pi * p[..., 1]
    cx, cy = radius * np.cos(theta), radius * np.sin(theta)
    log_lo, log_hi = np.log(min_axis), np.log(max_axis)
    ax = np.exp(log_lo + (log_hi - log_lo) * p[..., 2])
    ay = ax * (min_aspect + (1.0 - min_aspect) * p[..., 3])
    phi = np.pi * p[..., 4]
    amp = 0.1 + 0.9 * p[..., 5]
    amp = np.where(np.arange(k_max)[None, :] < count[:, None], amp, 0.0)

    x, y = _grid(size)
    x = x[None].astype(np.float32)  # (1, 1, N)
    y = y[None].astype(np.float32)  # (1, N, 1)
    img = np.zeros((n, size, size), dtype=np.float32)
    cos, sin = np.cos(phi).astype(np.float32), np.sin(phi).astype(np.float32)
    cx, cy = cx.astype(np.float32), cy.astype(np.float32)
    inv_a, inv_b = (1.0 / ax).astype(np.float32), (1.0 / ay).astype(np.float32)
    amp = amp.astype(np.float32)
    # Vectorised over phantoms, looping over ellipse slots; chunks bound the temporaries
    # (a few arrays of chunk x N x N) for large batches.
    chunk = max(1, 2**22 // (size * size))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        for k in range(k_max):
            idx = np.flatnonzero(amp[sl, k] > 0) + start
            if idx.size == 0:
                continue
            c, s = cos[idx, k, None, None], sin[idx, k, None, None]
            dx = x - cx[idx, k, None, None]  # (m, 1, N)
            dy = y - cy[idx, k, None, None]  # (m, N, 1)
            uu = (dx * c + dy * s) * inv_a[idx, k, None, None]
            vv = (dy * c - dx * s) * inv_b[idx, k, None, None]
            img[idx] += amp[idx, k, None, None] * (uu * uu + vv * vv <= 1.0)

    peak = img.reshape(n, -1).max(axis=1)
    # An ellipse can fall between pixel centres at tiny sizes; such an image stays all zero.
    img /= np.where(peak > 0, peak, 1.0)[:, None, None]
    np.clip(img, 0.0, 1.0, out=img)
    return _to_tensor(img, dtype, device)[:, None]


def haar_sparse(
    size: int = 128,
    block: int = 8,
    n: int = 1,
    seed: int | np.random.Generator | None = 0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Images that are exactly sparse in the Haar basis: constant on a dyadic grid of squares.

    Each image has ``(size / block)^2`` squares of ``block x block`` pixels with values uniform
    in ``[0, 1)``. A Haar wavelet of any depth represents it with at most
    ``(size / block)^2`` non-zero coefficients (all at scales coarser than ``block``), which
    makes it the test case of compressed-sensing theory without a sparsity floor: noiseless,
    l1 recovery can be exact (e.g. FIRENET's exponential convergence, Colbrook-Antun-Hansen,
    PNAS 2022).

    Args:
        size: side ``N`` of each image, a multiple of ``block``.
        block: side of the constant squares, a power of two (``>= 1``).
        n: number of images.
        seed: integer seed or ``numpy.random.Generator`` (default 0: the same image each call).
        dtype, device: of the result.

    Returns:
        Tensor of shape ``(n, 1, N, N)``, values in ``[0, 1)``.

    Examples:
        >>> x = haar_sparse(32, block=8)
        >>> x.shape, int(torch.unique(x).numel()) <= 16
        (torch.Size([1, 1, 32, 32]), True)
    """
    size = _check_size(size)
    block = _check_size(block, "block")
    n = _check_size(n, "n")
    if block & (block - 1):
        raise ValueError(f"block must be a power of two, got {block}")
    if size % block:
        raise ValueError(f"size must be a multiple of block = {block}, got {size}")
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)):
        raise TypeError(
            f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}"
        )
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 1, size // block, size // block))
    arr = coarse.repeat(block, axis=-1).repeat(block, axis=-2)
    return _to_tensor(arr, dtype, device)
