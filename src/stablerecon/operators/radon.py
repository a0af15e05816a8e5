"""Parallel-beam computed tomography: the discrete Radon transform and filtered back-projection.

The projector is matrix-free at large sizes: Joseph's ray-driven interpolation weights are
recomputed on the fly, in chunks of rays bounded in memory (at small sizes the same weights are
also cached as a sparse matrix within a memory budget), by the engine
:class:`~stablerecon.operators.projector.RayDrivenProjector` that
:class:`~stablerecon.operators.fanbeam.FanBeam` shares. This module also holds the argument
parsing and FBP filters both operators use.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np
import torch

from .base import check_tensor
from .projector import (
    CHUNK_ELEMENTS,
    FBP_FILTERS,
    RayDrivenProjector,
    _as_bits,
    _split_angle,
)

__all__ = ["Radon", "FBP_FILTERS", "RayDrivenProjector", "clear_radon_cache", "CHUNK_ELEMENTS"]


def clear_radon_cache() -> None:
    """Does nothing: kept for compatibility.

    :class:`Radon` used to keep its sparse system matrices in a module-level cache. An operator
    now keeps its own (only within its ``matrix_bytes`` budget), freed with the operator.
    """


# --------------------------------------------------------------------------- FBP filters
def _fourier_filter(n: int, name: str) -> np.ndarray:
    """The frequency response (length ``n``, even) of the FBP filter ``name``, as in skimage.

    The ramp is the DFT of the spatial-domain Ram-Lak kernel of Kak & Slaney (ch. 3, eq. 61),
    ``h(0) = 1/4``, ``h(k) = -1/(pi k)^2`` for odd ``k``, ``0`` for even ``k != 0``, times 2
    (the factor pairs with the back-projection weight ``pi / (2 n_angles)``); the others are
    the ramp times a window.
    """
    k = np.arange(n)
    dist = np.minimum(k, n - k)                    # circular distance from 0
    kernel = np.zeros(n)
    kernel[0] = 0.25
    odd = dist % 2 == 1
    kernel[odd] = -1.0 / (np.pi * dist[odd]) ** 2
    response = 2.0 * np.real(np.fft.fft(kernel))
    if name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(n)[1:]
        response[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        response *= np.fft.fftshift(np.sin(np.linspace(0, np.pi, n, endpoint=False)))
    elif name == "hamming":
        response *= np.fft.fftshift(np.hamming(n))
    elif name == "hann":
        response *= np.fft.fftshift(np.hanning(n))
    # Real data keep only the even part of the response (skimage takes the real part of the
    # inverse FFT, which amounts to the same); the half spectrum serves rfft.
    response = 0.5 * (response + np.roll(response[::-1], 1))
    return response[: n // 2 + 1]


# --------------------------------------------------------------------------- argument parsing
def _parse_size(size: object) -> int:
    """A positive int ``size`` (bools, floats and strings refused)."""
    if isinstance(size, bool):
        raise ValueError(f"argument 'size' must be a positive int, got {size!r}")
    try:
        value = operator.index(size)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"argument 'size' must be a positive int, got {size!r}") from None
    if value <= 0:
        raise ValueError(f"argument 'size' must be a positive int, got {value}")
    return value


def _parse_angles(angles: object, span: float = 180.0) -> tuple[float, ...]:
    """Angles in degrees from an int ``n`` (``n`` equally spaced in ``[0, span)``) or a sequence."""
    if isinstance(angles, bool):
        raise TypeError(f"argument 'angles' must be an int or a sequence of floats, got {angles!r}")
    if isinstance(angles, (int, np.integer)):
        if angles <= 0:
            raise ValueError(f"argument 'angles' must be a positive number of angles, got {angles}")
        return tuple(float(a) for a in np.linspace(0.0, span, int(angles), endpoint=False))
    if isinstance(angles, torch.Tensor):
        array = angles.detach().to("cpu", torch.float64).numpy()
    elif isinstance(angles, (Sequence, np.ndarray)) and not isinstance(angles, (str, bytes)):
        try:
            array = np.asarray(angles, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"argument 'angles' must be an int or a sequence of floats (degrees), got {angles!r}"
            ) from None
    else:
        raise TypeError(
            f"argument 'angles' must be an int or a sequence of floats (degrees), "
            f"got {type(angles).__name__}"
        )
    if array.ndim != 1:
        raise ValueError(f"argument 'angles' must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("argument 'angles' is empty; give at least one angle")
    if not np.isfinite(array).all():
        raise ValueError(f"argument 'angles' contains NaN or Inf values: {array.tolist()}")
    return tuple(float(a) for a in array)


def _parse_detectors(detectors: object) -> int:
    if isinstance(detectors, bool) or not isinstance(detectors, (int, np.integer)):
        raise ValueError(f"argument 'detectors' must be a positive int, got {detectors!r}")
    if int(detectors) <= 0:
        raise ValueError(f"argument 'detectors' must be a positive int, got {int(detectors)}")
    return int(detectors)


def _parse_circle(circle: object) -> bool:
    if not isinstance(circle, (bool, np.bool_)):
        raise TypeError(f"argument 'circle' must be a bool, got {circle!r}")
    return bool(circle)


def _parse_filter(name: object) -> str:
    if name not in FBP_FILTERS:
        raise ValueError(f"argument 'filter' must be one of {FBP_FILTERS}, got {name!r}")
    return str(name)


# --------------------------------------------------------------------------- the operator
class Radon(RayDrivenProjector):
    r"""Parallel-beam CT: the discrete Radon transform ``y = R x``, with FBP as ``A_dagger``.

    The image ``x`` of shape ``(B, C, size, size)`` (real, float32 or float64) samples a
    function ``f`` on the plane at unit pixel spacing: pixel ``(i, j)`` (row ``i``, column
    ``j``) sits at ``(u, v) = (j - c, i - c)`` with ``c = size // 2`` (``u`` to the right, ``v``
    down). The sinogram ``y = R x`` of shape ``(B, C, n_angles, n_detectors)`` holds the line
    integrals

    .. math::

        y[b, c, k, d] = \int_{\mathbb{R}} f_{b,c}\big(t_d \cos\theta_k + s \sin\theta_k,\;
                                       -t_d \sin\theta_k + s \cos\theta_k\big)\, ds

    over the lines ``u cos(theta_k) - v sin(theta_k) = t_d`` at angle ``theta_k`` and signed
    offset ``t_d = d - n_detectors // 2`` (both in pixel units: unit detector spacing, unit
    path length). Angle ``0`` integrates along the columns (``y[..., 0, :]`` are the column
    sums) and angles grow counter-clockwise on screen. This is the
    geometry of ``skimage.transform.radon(image, theta=angles, circle=True)``, whose output
    ``(n_detectors, n_angles)`` is the transpose of one channel of ours.

    The integrals are discretised with Joseph's ray-driven method: each ray is stepped along
    the image rows (or the columns, for rays closer to horizontal,
    ``|sin theta| > |cos theta|``), the image is linearly interpolated between the two pixels
    nearest to where the ray crosses each row (column), and the sum is multiplied by the path
    length per step, ``1 / max(|cos theta|, |sin theta|)``. The projector is matrix-free
    (:class:`RayDrivenProjector`): the two indices and weights of every step are recomputed
    on each call, in chunks of at most ``chunk_elements`` samples, gathered for ``A`` and
    scatter-added for ``A_adjoint``, so the adjoint passes the dot-product test to rounding
    error. Memory: ``O(n_angles n_detectors + size^2)`` for the ray tables plus the bounded
    chunks (about 300 MB at the peak of ``A`` then ``A_adjoint`` on one float32 image at
    ``size = 512`` with 720 angles, where a stored sparse matrix would take about 10 GB). Where
    the matrix is small (its bound at most ``matrix_bytes``, default
    :data:`~stablerecon.operators.projector.MATRIX_BYTES` = 256 MiB: e.g. 128 x 128 with up to
    about 480 views in float32, 320 in float64), the same weights are assembled once into a
    sparse matrix, kept with its transpose, and ``A`` / ``A_adjoint`` are sparse products
    (5-15x faster on batches of small images); ``matrix_bytes = 0`` keeps the operator
    matrix-free.

    With ``circle=True`` (the default) images are assumed to vanish outside the inscribed disk
    ``(i - c)^2 + (j - c)^2 <= (size // 2)^2``, as in scikit-image: pixels outside it are not
    seen by ``A`` (they lie in its null space) and ``A_adjoint`` / ``A_dagger`` return zero
    there. With ``circle=False`` the whole square is projected and the default number of
    detectors covers its diagonal.

    ``A_dagger`` is filtered back-projection (FBP, Kak & Slaney, ch. 3): each projection is
    convolved with the Ram-Lak ramp filter discretised in the spatial domain (optionally
    apodised by a window), by a zero-padded FFT along the detectors, then back-projected with
    ``A_adjoint`` and weighted by ``pi / (2 n_angles)``, so that ``A_dagger(A x)`` approximates
    ``x`` in value (as ``skimage.transform.iradon`` does).

    Parameters
    ----------
    size:
        Side of the square images, in pixels.
    angles:
        An int ``n``: ``n`` equally spaced angles in ``[0, 180)`` degrees (default 180); or a
        sequence / 1-D tensor of angles in degrees.
    detectors:
        Number of detector bins (default: ``size`` with ``circle``, else
        ``ceil(sqrt(2) size)``, as scikit-image).
    circle:
        Restrict the images to the inscribed disk (see above).
    filter:
        FBP filter: ``"ramp"`` (Ram-Lak, default), ``"shepp-logan"``, ``"cosine"``,
        ``"hamming"`` or ``"hann"`` (the same responses as ``skimage.transform.iradon``).

    Examples
    --------
    >>> import torch
    >>> op = Radon(64, angles=90)
    >>> x = torch.zeros(2, 1, 64, 64); x[..., 24:40, 24:40] = 1.0
    >>> op.A(x).shape
    torch.Size([2, 1, 90, 64])
    >>> x_fbp = op.A_dagger(op.A(x))
    >>> bool((x_fbp - x).abs().mean() < 0.05)
    True

    References
    ----------
    A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*, IEEE Press, 1988
    (ch. 3: filtered back-projection and the spatial-domain ramp filter).
    P. M. Joseph, "An improved algorithm for reprojecting rays through pixel images",
    IEEE Trans. Med. Imaging 1 (1982) 192-196.
    """

    def __init__(
        self,
        size: int,
        angles: int | Sequence[float] | torch.Tensor = 180,
        detectors: int | None = None,
        circle: bool = True,
        filter: str = "ramp",
    ) -> None:
        size = _parse_size(size)
        angle_tuple = _parse_angles(angles)
        circle = _parse_circle(circle)
        if detectors is None:
            n_det = size if circle else size + math.ceil(math.sqrt(2) * size - size)
        else:
            n_det = _parse_detectors(detectors)
        filter = _parse_filter(filter)

        self._init_scan(size, angle_tuple, n_det, circle, filter)
        self._set_geometry(angle_tuple)

        self._fbp_pad = max(64, 1 << math.ceil(math.log2(2 * n_det)))
        self.register_buffer("_fbp_response", _as_bits(_fourier_filter(self._fbp_pad, filter)),
                             persistent=False)

    def _canonical_rays(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # At phi in [0, 45] every ray is stepped over the rows: the ray at offset t crosses row
        # v at column (t + v sin) / cos + c.
        t = np.arange(self.n_detectors, dtype=np.float64) - self.n_detectors // 2
        rad = np.deg2rad(phis)
        cos = np.array([math.cos(a) for a in rad])
        sin = np.array([math.sin(a) for a in rad])
        offset = t[None, :] * (1.0 / cos)[:, None] + self.size // 2
        slope = np.broadcast_to((sin / cos)[:, None], offset.shape)
        return np.ones(offset.shape, dtype=bool), offset, slope

    def _split(self, theta: float) -> tuple[float, int, int]:
        # At odd multiples of 45 degrees either axis may be stepped: keep the choice of the
        # former sparse matrix (rows iff |cos| >= |sin| in floating point), which the
        # canonical form steps over the rows iff m is even.
        phi, m, sign = _split_angle(theta)
        if phi == 45.0:
            rad = float(np.deg2rad(theta))
            rows = abs(math.cos(rad)) >= abs(math.sin(rad))
            if rows != (m % 2 == 0):
                m = m + 1 if sign > 0 else m - 1
                sign = -sign
        return phi, m, sign

    def filter_sinogram(self, y: torch.Tensor) -> torch.Tensor:
        """Convolve each projection of ``y`` ``(B, C, n_angles, n_detectors)`` with the filter.

        Zero-pads the detector axis to ``max(64, 2^ceil(log2(2 n_detectors)))`` samples so the
        circular convolution of the FFT equals the linear one on the detector range. This is
        the first step of ``A_dagger``; the result has the shape and dtype of ``y``.
        """
        check_tensor(y, "y", self.out_shape, "real", where=f"{self.name}.filter_sinogram")
        return self._filter(y)

    def _filter(self, y: torch.Tensor) -> torch.Tensor:
        response = self._constant("_fbp_response", y.dtype, y.device)
        spectrum = torch.fft.rfft(y, n=self._fbp_pad, dim=-1) * response
        return torch.fft.irfft(spectrum, n=self._fbp_pad, dim=-1)[..., : self.n_detectors]

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self._adjoint(self._filter(y)) * (math.pi / (2 * self.n_angles))

    def extra_repr(self) -> str:
        return (f"size={self.size}, n_angles={self.n_angles}, detectors={self.n_detectors}, "
                f"circle={self.circle}, filter={self.filter!r}")
