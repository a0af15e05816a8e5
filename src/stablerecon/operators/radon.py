"""Parallel-beam computed tomography: the discrete Radon transform and filtered back-projection."""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from .base import LinearOperator, check_tensor

__all__ = ["Radon", "FBP_FILTERS", "clear_radon_cache"]

FBP_FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
"""Names of the filters accepted by :class:`Radon` for filtered back-projection."""

_CACHE_SIZE = 4


# --------------------------------------------------------------------------- the system matrix
@dataclass(frozen=True)
class _SystemMatrix:
    """The CSR arrays of ``A`` and ``A^T`` (float64 values, int32 or int64 indices), on the CPU."""

    crow: torch.Tensor
    col: torch.Tensor
    values: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    values_t: torch.Tensor
    build_seconds: float


def _disk_rows(size: int, circle: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each row ``i``: the first and last column inside the support (``lo > hi``: none).

    With ``circle`` the support is the inscribed disk of scikit-image,
    ``(i - c)^2 + (j - c)^2 <= (size // 2)^2`` with ``c = size // 2``; it is symmetric in
    ``(i, j)``, so the same bounds hold for the rows of each column.
    """
    if not circle:
        return np.zeros(size, np.int64), np.full(size, size - 1, np.int64)
    c = size // 2
    d2 = (size // 2) ** 2 - (np.arange(size) - c) ** 2
    half = np.floor(np.sqrt(np.maximum(d2, 0))).astype(np.int64)
    # The float square root may be off by one ulp for perfect squares: fix with integers.
    half += ((half + 1) ** 2 <= d2).astype(np.int64)
    half -= (half**2 > d2).astype(np.int64)
    lo = np.where(d2 >= 0, np.maximum(c - half, 0), size)
    hi = np.where(d2 >= 0, np.minimum(c + half, size - 1), -1)
    return lo, hi


def _joseph_matrix(size: int, angles: tuple[float, ...], n_det: int,
                   circle: bool) -> scipy.sparse.csr_matrix:
    """Joseph's ray-driven projector as a float64 CSR matrix of shape (n_angles n_det, size^2).

    For each ray the line ``x cos(theta) - y sin(theta) = t`` is stepped along its dominant axis
    one row (or column) at a time; at each step the image is linearly interpolated between the
    two nearest pixels of that row (column) and weighted by the path length per step,
    ``1 / max(|cos theta|, |sin theta|)``. Pixels outside the grid (and, with ``circle``, outside
    the inscribed disk) count as zero.
    """
    c0 = size // 2
    t = np.arange(n_det, dtype=np.float64) - n_det // 2         # detector offsets
    steps = np.arange(size, dtype=np.int64)
    centred = steps.astype(np.float64) - c0
    lo, hi = _disk_rows(size, circle)
    counts, cols, vals = [], [], []
    for theta in np.deg2rad(np.asarray(angles, dtype=np.float64)):
        cos, sin = math.cos(theta), math.sin(theta)
        if abs(cos) >= abs(sin):
            # Step over image rows y = step - c0; the ray crosses row y at x = (t + y sin) / cos.
            pos = (t[:, None] + centred[None, :] * sin) * (1.0 / cos) + c0
            length = 1.0 / abs(cos)
        else:
            # Step over image columns x; the ray crosses column x at y = (x cos - t) / sin.
            pos = (centred[None, :] * cos - t[:, None]) * (1.0 / sin) + c0
            length = 1.0 / abs(sin)
        first = np.floor(pos)
        frac = pos - first
        idx = np.empty((n_det, size, 2), dtype=np.int64)             # (ray, step, neighbour)
        idx[..., 0] = first
        np.add(idx[..., 0], 1, out=idx[..., 1])
        weight = np.empty((n_det, size, 2), dtype=np.float64)
        np.multiply(1.0 - frac, length, out=weight[..., 0])
        np.multiply(frac, length, out=weight[..., 1])
        # Inside the grid and the support; drop the round-off weights of on-pixel crossings.
        keep = ((idx >= lo[None, :, None]) & (idx <= hi[None, :, None])
                & (weight > 1e-12 * length))
        if abs(cos) >= abs(sin):
            pixel = idx + (steps * size)[:, None]
        else:
            pixel = idx * size + steps[:, None]
        counts.append(keep.sum(axis=(1, 2)))
        cols.append(pixel[keep])
        vals.append(weight[keep])
    indptr = np.zeros(len(angles) * n_det + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    matrix = scipy.sparse.csr_matrix(
        (np.concatenate(vals), np.concatenate(cols), indptr),
        shape=(len(angles) * n_det, size * size),
    )
    matrix.has_sorted_indices = False  # column-stepped rays are not in column order
    matrix.sort_indices()
    return matrix


def _csr_arrays(matrix: scipy.sparse.csr_matrix) -> tuple[torch.Tensor, ...]:
    fits = max(matrix.nnz, *matrix.shape) < np.iinfo(np.int32).max
    index_dtype = np.int32 if fits else np.int64
    return (
        torch.from_numpy(np.ascontiguousarray(matrix.indptr, dtype=index_dtype)),
        torch.from_numpy(np.ascontiguousarray(matrix.indices, dtype=index_dtype)),
        torch.from_numpy(np.ascontiguousarray(matrix.data, dtype=np.float64)),
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _system_matrix(size: int, angles: tuple[float, ...], n_det: int,
                   circle: bool) -> _SystemMatrix:
    """Build (once per geometry, LRU-cached) the CSR arrays of ``A`` and of ``A^T``."""
    start = time.perf_counter()
    forward = _joseph_matrix(size, angles, n_det, circle)
    transpose = forward.T.tocsr()  # exactly the same numbers, so the adjoint is exact
    transpose.sort_indices()
    arrays = _csr_arrays(forward) + _csr_arrays(transpose)
    return _SystemMatrix(*arrays, build_seconds=time.perf_counter() - start)


def clear_radon_cache() -> None:
    """Free the system matrices kept for the last few geometries (live operators keep theirs)."""
    _system_matrix.cache_clear()


def _sparse_csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
                shape: tuple[int, int]) -> torch.Tensor:
    # Created outside any torch.func transform (which cannot wrap sparse tensors), so that a
    # first call under torch.func.grad works too; the guard is private API, hence the fallback.
    no_functorch = getattr(torch._C, "_DisableFuncTorch", contextlib.nullcontext)
    with warnings.catch_warnings(), no_functorch():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)


@dataclass(frozen=True)
class _MatrixPair:
    """A sparse CSR matrix ``M`` and its transpose, passed to autograd as one non-tensor."""

    matrix: torch.Tensor
    transpose: torch.Tensor

    def transposed(self) -> _MatrixPair:
        return _MatrixPair(self.transpose, self.matrix)


class _SparseMatmul(torch.autograd.Function):
    """``X -> X M^T`` for a batch of flattened rows ``X`` (N, n) and a sparse CSR ``M`` (m, n).

    The backward pass applies ``M^T`` through the same function (the pair swapped), so
    gradients of any order are available. The matrices travel in a :class:`_MatrixPair` rather
    than as tensor arguments so that ``torch.func.grad``/``vjp`` leave them alone.
    """

    @staticmethod
    def forward(x: torch.Tensor, pair: _MatrixPair) -> torch.Tensor:  # type: ignore[override]
        return torch.sparse.mm(pair.matrix, x.T).T

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:  # type: ignore[override]
        ctx.pair = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _SparseMatmul.apply(grad, ctx.pair.transposed()), None


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
    if isinstance(size, bool):
        raise ValueError(f"argument 'size' must be a positive int, got {size!r}")
    try:
        value = operator.index(size)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"argument 'size' must be a positive int, got {size!r}") from None
    if value <= 0:
        raise ValueError(f"argument 'size' must be a positive int, got {value}")
    return value


def _parse_angles(angles: object) -> tuple[float, ...]:
    if isinstance(angles, bool):
        raise TypeError(f"argument 'angles' must be an int or a sequence of floats, got {angles!r}")
    if isinstance(angles, (int, np.integer)):
        if angles <= 0:
            raise ValueError(f"argument 'angles' must be a positive number of angles, got {angles}")
        return tuple(float(a) for a in np.linspace(0.0, 180.0, int(angles), endpoint=False))
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


# --------------------------------------------------------------------------- the operator
class Radon(LinearOperator):
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

    The integrals are discretised with Joseph's ray-driven method (linear interpolation
    between the two pixels nearest to where the ray crosses each row, or each column for rays
    closer to horizontal, times the path length per step), stored as a sparse matrix. ``A``
    and ``A_adjoint`` multiply by that matrix and by its exact transpose, so the adjoint passes
    the dot-product test to rounding error, and both are differentiable to any order.

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

    The system matrices (float64, with int32 indices when they fit) are built once per geometry
    with vectorised NumPy and kept in a small module-level LRU cache, so a second operator of
    the same geometry is created at once. At ``size = 256`` with 180 angles the matrix has
    about 1.7e7 non-zeros (about 200 MB for ``A`` and as much for ``A^T``; float32 copies are
    derived on first use, per dtype and device). The matrices are non-persistent buffers that
    follow ``.to(device)``; ``.to(dtype)`` leaves them in float64.

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

    in_kind = "real"
    out_complex = False

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
        if not isinstance(circle, (bool, np.bool_)):
            raise TypeError(f"argument 'circle' must be a bool, got {circle!r}")
        circle = bool(circle)
        if detectors is None:
            n_det = size if circle else size + math.ceil(math.sqrt(2) * size - size)
        else:
            if isinstance(detectors, bool) or not isinstance(detectors, (int, np.integer)):
                raise ValueError(f"argument 'detectors' must be a positive int, got {detectors!r}")
            n_det = int(detectors)
            if n_det <= 0:
                raise ValueError(f"argument 'detectors' must be a positive int, got {n_det}")
        if filter not in FBP_FILTERS:
            raise ValueError(f"argument 'filter' must be one of {FBP_FILTERS}, got {filter!r}")

        super().__init__((None, size, size), (None, len(angle_tuple), n_det))
        self.size = size
        self.angles = angle_tuple
        """The projection angles in degrees."""
        self.n_angles = len(angle_tuple)
        self.n_detectors = n_det
        self.circle = circle
        self.filter = filter

        system = _system_matrix(size, angle_tuple, n_det, circle)
        self.build_seconds = system.build_seconds
        """Seconds it took to build this geometry's system matrix (possibly for an earlier
        operator: a cached matrix is reused, not rebuilt)."""
        # The float64 values are stored as their int64 bit patterns so that ``.float()`` or
        # ``.to(torch.float32)`` on an enclosing model moves but never rounds the master copy.
        for name, tensor in (("crow", system.crow), ("col", system.col),
                             ("values", system.values.view(torch.int64)),
                             ("crow_t", system.crow_t), ("col_t", system.col_t),
                             ("values_t", system.values_t.view(torch.int64))):
            self.register_buffer(f"_{name}", tensor, persistent=False)

        self._fbp_pad = max(64, 1 << math.ceil(math.log2(2 * n_det)))
        response = torch.from_numpy(_fourier_filter(self._fbp_pad, filter))
        self.register_buffer("_fbp_response", response, persistent=False)
        self._csr_cache: dict[tuple[torch.dtype, torch.device], _MatrixPair] = {}

    # ------------------------------------------------------------------ matrices
    @property
    def nnz(self) -> int:
        """Number of non-zeros of the system matrix."""
        return int(self._col.numel())

    @property
    def matrix_nbytes(self) -> int:
        """Memory of the float64 master copies of ``A`` and ``A^T`` (indices included), bytes."""
        return sum(t.numel() * t.element_size() for t in
                   (self._crow, self._col, self._values, self._crow_t, self._col_t, self._values_t))

    def _matrices(self, dtype: torch.dtype, device: torch.device, arg: str) -> _MatrixPair:
        """The sparse CSR ``A`` and ``A^T`` in ``dtype`` on ``device`` (cached)."""
        home = self._col.device
        if device != home:
            raise ValueError(
                f"{self.name}: argument '{arg}' is on {device} but the operator is on {home}; "
                "move one of them with .to(device)"
            )
        key = (dtype, home)
        mats = self._csr_cache.get(key)
        if mats is None:
            if any(dev != home for _, dev in self._csr_cache):
                self._csr_cache.clear()  # stale copies from before a .to(device)
            n_rows, n_cols = self.n_angles * self.n_detectors, self.size * self.size
            values = self._values.view(torch.float64).to(dtype)
            values_t = self._values_t.view(torch.float64).to(dtype)
            mats = _MatrixPair(_sparse_csr(self._crow, self._col, values, (n_rows, n_cols)),
                               _sparse_csr(self._crow_t, self._col_t, values_t, (n_cols, n_rows)))
            self._csr_cache[key] = mats
        return mats

    def __getstate__(self) -> dict:
        # Sparse CSR tensors cannot be deep-copied or pickled; the cache is rebuilt on use.
        state = self.__dict__.copy()
        state["_csr_cache"] = {}
        return state

    # ------------------------------------------------------------------ operator
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        pair = self._matrices(x.dtype, x.device, "x")
        y = _SparseMatmul.apply(x.reshape(b * c, self.size * self.size), pair)
        return y.reshape(b, c, self.n_angles, self.n_detectors)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        b, c = y.shape[:2]
        pair = self._matrices(y.dtype, y.device, "y").transposed()
        x = _SparseMatmul.apply(y.reshape(b * c, self.n_angles * self.n_detectors), pair)
        return x.reshape(b, c, self.size, self.size)

    def filter_sinogram(self, y: torch.Tensor) -> torch.Tensor:
        """Convolve each projection of ``y`` ``(B, C, n_angles, n_detectors)`` with the filter.

        Zero-pads the detector axis to ``max(64, 2^ceil(log2(2 n_detectors)))`` samples so the
        circular convolution of the FFT equals the linear one on the detector range. This is
        the first step of ``A_dagger``; the result has the shape and dtype of ``y``.
        """
        check_tensor(y, "y", self.out_shape, "real", where=f"{self.name}.filter_sinogram")
        return self._filter(y)

    def _filter(self, y: torch.Tensor) -> torch.Tensor:
        response = self._fbp_response.to(y.dtype)
        spectrum = torch.fft.rfft(y, n=self._fbp_pad, dim=-1) * response
        return torch.fft.irfft(spectrum, n=self._fbp_pad, dim=-1)[..., : self.n_detectors]

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self._adjoint(self._filter(y)) * (math.pi / (2 * self.n_angles))

    def extra_repr(self) -> str:
        return (f"size={self.size}, n_angles={self.n_angles}, detectors={self.n_detectors}, "
                f"circle={self.circle}, filter={self.filter!r}")
