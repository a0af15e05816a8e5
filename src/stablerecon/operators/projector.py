"""The ray-driven projection engine of CT, shared by :class:`~stablerecon.operators.Radon` and
:class:`~stablerecon.operators.FanBeam`.

The projector is matrix-free: Joseph's ray-driven interpolation weights are recomputed on the
fly, in chunks of rays bounded in memory (:data:`CHUNK_ELEMENTS`); a subclass describes its rays
(:meth:`RayDrivenProjector._canonical_rays`). Where the system matrix is small (at most
:data:`MATRIX_BYTES`, e.g. 128 x 128 images with a few hundred views), the same weights are
also assembled once into a sparse matrix and its transpose, which then serve ``A`` and ``A^*``
(about 5-15x faster than recomputing them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import positive_float, positive_int
from .base import LinearOperator, _AdjointPair
from .projector_matrix import MATRIX_BYTES, cached_matrices, matrix_bound

__all__ = ["RayDrivenProjector", "FBP_FILTERS", "CHUNK_ELEMENTS", "MATRIX_BYTES", "nyquist_views"]

FBP_FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
"""Names of the filters accepted by :class:`Radon` for filtered back-projection."""

CHUNK_ELEMENTS = 1 << 24
"""Default bound on the elements of the temporaries of one chunk of rays,
``Q * rays * (4 + 2 channels)`` with ``Q = 2 (size // 2) + 1``: about
``4 * CHUNK_ELEMENTS`` bytes (64 MB) in float32, twice that in float64. Measured on an idle
2-core machine (A + A*, minimum of 6 runs), ``2**24`` beat ``2**25`` by 22% at 256 x 256 with 180
angles (8 images), 27% at 512 x 512 with 720 angles and 10% at 128 x 128 with 60 angles: larger
temporaries exceed glibc's 32 MiB ``mmap`` threshold and are faulted in afresh on every call,
smaller ones (``2**22``) make more, slower calls. Larger chunks make fewer calls, which can pay
when the cores are shared with other work (each parallel call waits for its slowest thread)."""

def nyquist_views(size: int, scan_degrees: float = 180.0) -> int:
    """Views of a fully sampled scan of a ``size``-pixel field of view over ``scan_degrees``.

    Parallel-beam CT over 180 degrees needs about ``pi size / 2`` views for the angular
    sampling of the sinogram to match its radial sampling (Kak & Slaney, ch. 5; the same
    count as radial MRI spokes); a scan over ``scan_degrees`` at the same angular step needs
    ``scan_degrees / 180`` times as many (a full 360-degree fan-beam scan: ``pi size``). The
    sampling ``rate`` of a CT operator is its number of views over this count.
    """
    size = positive_int(size, "size", where="nyquist_views")
    scan_degrees = positive_float(scan_degrees, "scan_degrees", where="nyquist_views")
    return math.ceil(math.pi * size / 2.0 * scan_degrees / 180.0)


# torch.nn.functional.grid_sample's codes for its (bilinear, zeros) modes.
_BILINEAR, _ZEROS = 0, 0


# --------------------------------------------------------------------------- the support
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


def _support_mask(size: int, circle: bool) -> np.ndarray:
    """Boolean ``(size, size)`` mask of the pixels an operator sees (the disk, or all)."""
    lo, hi = _disk_rows(size, circle)
    cols = np.arange(size)
    return (cols[None, :] >= lo[:, None]) & (cols[None, :] <= hi[:, None])


# --------------------------------------------------------------------------- the engine
def _as_bits(array: np.ndarray) -> torch.Tensor:
    """A float64 array as its int64 bit pattern (module casts such as ``.float()`` leave it)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64)).view(torch.int64)


def _needs_graph(t: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and t.requires_grad


# The symmetries of the pixel grid (the dihedral group of the square) as integer matrices acting
# on the centred coordinates (u, v) = (column - c, row - c).
_QUARTER = np.array([[0, 1], [-1, 0]])          # rotation by -90 degrees: (u, v) -> (v, -u)
_FLIP_V = np.array([[1, 0], [0, -1]])            # (u, v) -> (u, -v)
_FLIP_U = np.array([[-1, 0], [0, 1]])            # (u, v) -> (-u, v)


def _split_angle(theta: float) -> tuple[float, int, int]:
    """Exact ``theta = sign * phi + 90 m`` (degrees) with ``phi`` in ``[0, 45]``, ``sign = +-1``."""
    r = math.fmod(theta, 90.0)                   # exact; theta - r = 90 k exactly
    k = round((theta - r) / 90.0)
    if 0.0 <= r <= 45.0:
        return r, k, 1
    if r > 45.0:
        return 90.0 - r, k + 1, -1               # exact (Sterbenz)
    if r >= -45.0:
        return -r, k, -1
    return 90.0 + r, k - 1, 1


def _apply_symmetry(images: torch.Tensor, matrix: tuple[int, int, int, int]) -> torch.Tensor:
    """``h[i, j] = X[c + v', c + u']`` with ``(u', v') = M (j - c, i - c)``, on the last two
    dims of a square ``(..., Q, Q)`` stack centred at ``c = (Q - 1) / 2`` (a pixel permutation)."""
    a, b, c, d = matrix
    if b == 0:                                   # diagonal: flips
        dims = [dim for dim, s in ((-1, a), (-2, d)) if s < 0]
        return images.flip(dims) if dims else images
    dims = [dim for dim, s in ((-2, b), (-1, c)) if s < 0]
    swapped = images.transpose(-1, -2)
    return swapped.flip(dims) if dims else swapped


def _apply_symmetry_adjoint(images: torch.Tensor, matrix: tuple[int, int, int, int]) -> torch.Tensor:
    """The inverse (= adjoint) pixel permutation of :func:`_apply_symmetry`."""
    a, b, c, d = matrix
    if b == 0:
        dims = [dim for dim, s in ((-1, a), (-2, d)) if s < 0]
        return images.flip(dims) if dims else images
    dims = [dim for dim, s in ((-2, b), (-1, c)) if s < 0]
    return (images.flip(dims) if dims else images).transpose(-1, -2)


class _Block:
    """The rays of one group of canonical angles stepped along one axis (``kind``)."""

    def __init__(self, name: str, kind: str, n_phi: int, channels: int, pointers: np.ndarray,
                 offset: int) -> None:
        self.name = name                 # prefix of the block's buffers
        self.kind = kind                 # "rows" or "cols"
        self.n_phi = n_phi
        self.channels = channels         # symmetries sharing each sampling call
        self.pointers = pointers         # start of each canonical angle's rays, (n_phi + 1,)
        self.rays = int(pointers[-1])
        self.offset = offset             # first row of the block in the canonical sinogram


class RayDrivenProjector(LinearOperator):
    r"""Joseph's ray-driven projector of 2-D line integrals, matrix-free (shared engine).

    A subclass describes its rays by :meth:`_canonical_rays`: for projection angles ``phi`` in
    ``[0, 45]`` degrees, whether each ray (detector) is stepped over the image **rows**
    (``|dv| >= |du|`` along the ray) or over the **columns**, and the line
    ``pos(q) = a + b q`` giving, at the centred coordinate ``q = k - size // 2`` of the ``k``-th
    row (column), the column (row) index where the ray crosses it. The path length per step is
    ``L = sqrt(1 + b^2)``, and the projection of a ray is

    .. math::

        y_r = L_r \sum_{k} \Big[(1 - \phi_{rk})\, x_{k, \lfloor p_{rk} \rfloor}
               + \phi_{rk}\, x_{k, \lfloor p_{rk} \rfloor + 1}\Big],
        \qquad p_{rk} = a_r + b_r q_k,\ \phi_{rk} = p_{rk} - \lfloor p_{rk} \rfloor,

    pixels outside the image (and, with ``circle``, outside the inscribed disk) counting as
    zero; the adjoint scatters ``L_r y_r`` back with the same two indices and weights.

    Any angle is ``theta = +-phi + 90 m`` with ``phi`` in ``[0, 45]``, and the rays at
    ``theta`` are those at ``phi`` moved by a symmetry ``M`` of the pixel grid (a rotation by a
    multiple of 90 degrees, possibly with a mirror), so projecting ``x`` at ``theta`` is
    projecting the permuted image ``x o M`` at ``phi``; the detector order is reversed for a
    mirror when the geometry says so (``_mirror_reverses``: fan beams, whose mirror image
    swaps the sides of the fan). All the angles that share ``phi`` (up to 8, e.g. 4 for equally
    spaced angles over ``[0, 180)``) are projected by one sampling call, the permuted images
    stacked as channels (one precomputed gather builds them, padding and support included).

    The samples are computed chunk by chunk with :func:`torch.nn.functional.grid_sample`
    (bilinear, zero padding) on the image rows seen as one-row images, whose interpolation
    along a row is exactly the two-pixel gather above; the adjoint is the input gradient of
    the same call (``aten::grid_sampler_2d_backward``), which scatter-adds the same weights, so
    the two are exact transposes up to the order of floating-point summation. Nothing of size
    ``n_rays * size`` is kept: the weights are recomputed per call from three numbers per ray,
    and at most about ``chunk_elements`` samples (times the channels) live at once.

    Float64 images are projected with float64 sample positions; float32 images with float32
    positions (the float32 and float64 results then differ by about ``1e-6`` relatively for
    smooth images at ``size = 512``, up to ``3e-5`` for white noise, while each precision's
    ``A`` and ``A^*`` are exact transposes).

    Where the sparse matrix of these weights fits in ``matrix_bytes`` (default
    :data:`MATRIX_BYTES`), it is assembled on the first call, kept per dtype and device (in
    compressed sparse rows, with its transpose), and ``A`` / ``A^*`` are products with it and its
    transpose: the same weights, so the same operator to rounding, and still exact transposes of
    each other. Set ``matrix_bytes = 0`` on an instance to keep it matrix-free.

    ``A`` and ``A_adjoint`` are each other's backward pass (``adjoint_backward``), so gradients
    of any order are available, and nothing of the forward pass is kept for the backward.
    """

    in_kind = "real"
    out_complex = False
    adjoint_backward = True
    chunk_elements: int = CHUNK_ELEMENTS
    """Bound on ``Q * rays * (4 + 2 channels)`` per chunk (``Q = 2 (size // 2) + 1``), see
    :data:`CHUNK_ELEMENTS`; set it on an instance to trade memory for speed."""
    matrix_bytes: int = MATRIX_BYTES
    """Bound on the cached sparse matrix (see :data:`MATRIX_BYTES`); 0: always matrix-free."""
    _mirror_reverses = False
    _mirror = _FLIP_V
    scan_degrees: float = 180.0
    """The angular range of a full scan (180 for parallel beam, 360 for a full fan-beam scan)."""

    size: int
    n_angles: int
    n_detectors: int
    circle: bool

    def _init_scan(self, size: int, angles: tuple[float, ...], n_detectors: int, circle: bool,
                   filter: str) -> None:
        """Shapes ``(size, size) -> (n_angles, n_detectors)`` and the attributes every scan has
        (called first by a subclass's ``__init__``, before :meth:`_set_geometry`)."""
        LinearOperator.__init__(self, (None, size, size), (None, len(angles), n_detectors))
        self.size = size
        self.angles = angles
        """The projection (source) angles in degrees."""
        self.n_angles = len(angles)
        self.n_detectors = n_detectors
        self.circle = circle
        self.filter = filter
        """The FBP filter (a name of ``FBP_FILTERS``)."""

    @property
    def rate(self) -> float:
        """Sampling rate: the number of views over :func:`nyquist_views` of a full scan."""
        return self.n_angles / nyquist_views(self.size, self.scan_degrees)

    # ------------------------------------------------------------------ geometry (subclass)
    def _canonical_rays(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, a, b)``, each ``(len(phis), n_detectors)``, at angles ``phis`` (degrees)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _split(self, theta: float) -> tuple[float, int, int]:
        """``theta = sign * phi + 90 m``; subclasses may pick the other form at ``phi = 45``."""
        return _split_angle(theta)

    def _set_geometry(self, angles: Sequence[float]) -> None:
        """Group the angles by canonical angle and register the rays (called by ``__init__``)."""
        n, n_det = self.size, self.n_detectors
        q_size = 2 * (n // 2) + 1
        members: dict[float, list[tuple[tuple[int, ...], int, bool]]] = {}
        for index, theta in enumerate(angles):
            phi, m, sign = self._split(float(theta))
            matrix = np.linalg.matrix_power(_QUARTER, m % 4)
            if sign < 0:
                matrix = matrix @ self._mirror
            code = tuple(int(e) for e in matrix.reshape(-1))
            members.setdefault(phi + 0.0, []).append((code, index, sign < 0 and self._mirror_reverses))
        by_signature: dict[tuple, list[float]] = {}
        for phi, entries in members.items():
            entries.sort()
            by_signature.setdefault(tuple(e[0] for e in entries), []).append(phi)

        # X: the image padded to Q x Q, as flat indices into [x.flatten(), 0] (n^2: zero)
        support = _support_mask(n, self.circle)
        source = np.full((q_size, q_size), n * n, dtype=np.int64)
        source[:n, :n] = np.where(support, np.arange(n * n).reshape(n, n), n * n)
        source_t = torch.from_numpy(source)
        position_t = torch.arange(q_size * q_size).reshape(q_size, q_size)
        index_dtype = torch.int32 if q_size * q_size * 8 < 2**31 else torch.int64

        self._blocks: list[_Block] = []
        self._groups: list[tuple[str, tuple[tuple[int, ...], ...]]] = []
        targets, lengths = [], []
        offset = 0
        for g, (signature, phis) in enumerate(sorted(by_signature.items())):
            phis.sort()
            t_count = len(signature)
            rows, a_all, b_all = self._canonical_rays(np.asarray(phis, dtype=np.float64))
            angle = np.array([[e[1] for e in members[p]] for p in phis])            # (P, T)
            reverse = np.array([[e[2] for e in members[p]] for p in phis])          # (P, T)
            det = np.arange(n_det)
            column = np.where(reverse[..., None], n_det - 1 - det, det)             # (P, T, D)
            target = angle[..., None] * n_det + column                              # (P, T, D)
            # per group: its canonical angles and where each (angle, symmetry, detector) goes
            self._groups.append((f"_g{g}", signature))
            self.register_buffer(f"_g{g}_phi", _as_bits(np.asarray(phis)), persistent=False)
            self.register_buffer(f"_g{g}_target", torch.from_numpy(target.reshape(-1)),
                                 persistent=False)
            # the permuted images h_t = X o M_t, and where each pixel of X lands in h_t
            h_source = torch.stack([_apply_symmetry(source_t, mat) for mat in signature])
            h_position = torch.stack([_apply_symmetry_adjoint(position_t, mat)[:n, :n]
                                      for mat in signature])                        # (T, n, n)
            for kind, select in (("rows", rows), ("cols", ~rows)):
                if not select.any():
                    continue
                name = f"_g{g}_{kind}"
                p_idx, d_idx = np.nonzero(select)                                   # by angle
                pointers = np.concatenate([[0], np.cumsum(select.sum(axis=1))])
                a, b = a_all[p_idx, d_idx], b_all[p_idx, d_idx]
                if not (np.isfinite(a).all() and np.isfinite(b).all()):  # pragma: no cover
                    raise ValueError(f"{self.name}: the ray geometry is not finite")
                # grid_sample's coordinates (align_corners=False): pixel p is at (2 p + 1) / Q - 1;
                # (alpha, 0) + q (beta, 0) is the grid point (x, y) of step q (y = 0: one-row images)
                zero = np.zeros_like(a)
                alpha = np.stack([(2.0 * a + 1.0) / q_size - 1.0, zero], axis=-1)
                beta = np.stack([2.0 * b / q_size, zero], axis=-1)
                self.register_buffer(f"{name}_alpha", _as_bits(alpha), persistent=False)
                self.register_buffer(f"{name}_beta", _as_bits(beta), persistent=False)
                targets.append(target[p_idx, :, d_idx].T.reshape(-1))               # (T, R)
                lengths.append(np.tile(np.sqrt(1.0 + b * b), t_count))
                # one-row images (step, symmetry, 1, position along the step)
                if kind == "rows":
                    pick = h_source.permute(1, 0, 2)                                # (Q, T, Q)
                    step, along = h_position // q_size, h_position % q_size
                else:
                    pick = h_source.permute(2, 0, 1)
                    step, along = h_position % q_size, h_position // q_size
                place = (step * t_count + torch.arange(t_count)[:, None, None]) * q_size + along
                self.register_buffer(f"{name}_pick", pick.reshape(-1).to(index_dtype), persistent=False)
                self.register_buffer(f"{name}_place", place.reshape(-1).to(index_dtype),
                                     persistent=False)
                block = _Block(name, kind, len(phis), t_count, pointers, offset)
                self._blocks.append(block)
                offset += t_count * block.rays
        target_all = np.concatenate(targets)
        if offset != self.n_angles * n_det or not np.array_equal(  # pragma: no cover - invariant
                np.sort(target_all), np.arange(offset)):
            raise AssertionError(f"{self.name}: the rays do not cover the sinogram once")
        order = np.empty_like(target_all)
        order[target_all] = np.arange(offset)
        self.register_buffer("_target", torch.from_numpy(target_all), persistent=False)
        self.register_buffer("_order", torch.from_numpy(order), persistent=False)
        length = np.empty(offset)
        length[target_all] = np.concatenate(lengths)
        self.register_buffer("_length", _as_bits(length), persistent=False)
        self.register_buffer("_support", torch.from_numpy(support), persistent=False)

    # ------------------------------------------------------------------ constants
    def _constant(self, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The float64 constant ``name`` (stored as int64 bits) in ``dtype`` on ``device``, cached."""
        key = (name, dtype, device)
        cached = self._cast_cache.get(key)
        if cached is None:
            master: torch.Tensor = getattr(self, name)
            if master.dtype == torch.int64:
                master = master.view(torch.float64)
            cached = master.to(device=device, dtype=dtype)
            self._cast_cache[key] = cached
        return cached

    def _home(self, t: torch.Tensor, arg: str) -> torch.device:
        home = self._support.device
        if t.device != home:
            raise ValueError(
                f"{self.name}: argument '{arg}' is on {t.device} but the operator is on {home}; "
                "move one of them with .to(device)"
            )
        return home

    def _batch_step(self, batch: int) -> int:
        """Images per batch slice: the 8 permuted copies of a slice stay within the budget."""
        q = 2 * (self.size // 2) + 1
        return max(1, min(batch, int(self.chunk_elements) // (16 * q * q)))

    def _chunks(self, block: _Block, channels: int) -> list[tuple[int, int]]:
        """Ray ranges ``(start, stop)`` of whole canonical angles, within the budget."""
        q = 2 * (self.size // 2) + 1
        limit = max(1, int(self.chunk_elements) // (q * (4 + 2 * channels)))
        ptr, out, first = block.pointers, [], 0
        while first < block.n_phi:
            last = first + 1
            while last < block.n_phi and ptr[last + 1] - ptr[first] <= limit:
                last += 1
            if ptr[last] > ptr[first]:
                out.append((int(ptr[first]), int(ptr[last])))
            first = last
        return out

    def _grid(self, block: _Block, start: int, stop: int, buffer: torch.Tensor,
              steps: torch.Tensor) -> torch.Tensor:
        """The sampling grid ``(Q, 1, stop - start, 2)`` of the block's rays ``start:stop``."""
        alpha = self._constant(f"{block.name}_alpha", buffer.dtype, buffer.device)[start:stop]
        beta = self._constant(f"{block.name}_beta", buffer.dtype, buffer.device)[start:stop]
        grid = buffer[:, : stop - start]
        torch.addcmul(alpha[None], steps, beta[None], out=grid)
        return grid.unsqueeze(1)

    # ------------------------------------------------------------------ the sparse matrix
    def _matrix_bound(self, dtype: torch.dtype) -> int:
        """Upper bound on the bytes of the cached matrix and its transpose in ``dtype``."""
        return matrix_bound(self.size, self.n_angles, self.n_detectors, dtype)

    def _matrices(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The cached sparse matrix and its transpose, or ``None`` (see :func:`cached_matrices`)."""
        return cached_matrices(self, dtype, device)

    # ------------------------------------------------------------------ projection
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x`` ``(B, C, size, size)``, no autograd graph."""
        b, c = x.shape[:2]
        n, dtype = self.size, x.dtype
        device = self._home(x, "x")
        matrices = self._matrices(dtype, device)
        if matrices is not None:
            flat = x.reshape(b * c, n * n).T.contiguous()
            return torch.sparse.mm(matrices[0], flat).T.reshape(b, c, self.n_angles, self.n_detectors)
        q = 2 * (n // 2) + 1
        steps = (torch.arange(q, dtype=dtype, device=device) - (q // 2))[:, None, None]
        flat = x.reshape(b * c, n * n)
        canonical = x.new_empty(b * c, self.n_angles * self.n_detectors)   # rays in block order
        batch = self._batch_step(b * c)
        for lo in range(0, b * c, batch):
            hi = min(b * c, lo + batch)
            m = hi - lo
            extended = torch.cat([flat[lo:hi], flat.new_zeros(m, 1)], dim=1)
            for block in self._blocks:
                t = block.channels
                chunks = self._chunks(block, t * m)
                picked = extended.index_select(1, getattr(self, f"{block.name}_pick"))
                if m == 1:
                    images = picked.view(q, t, 1, q)
                else:
                    images = picked.view(m, q, t, q).permute(1, 2, 0, 3).reshape(q, t * m, 1, q)
                widest = max(stop - start for start, stop in chunks)
                buffer = torch.empty(q, widest, 2, dtype=dtype, device=device)
                out = canonical[lo:hi, block.offset: block.offset + t * block.rays].view(m, t, -1)
                for start, stop in chunks:
                    grid = self._grid(block, start, stop, buffer, steps)
                    samples = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                            align_corners=False)            # (Q, T m, 1, r)
                    torch.sum(samples.view(q, t, m, stop - start), dim=0,
                              out=out[:, :, start:stop].transpose(0, 1))
        y = canonical.index_select(1, self._order) * self._constant("_length", dtype, device)
        return y.reshape(b, c, self.n_angles, self.n_detectors)

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        """``A^* y`` for ``y`` ``(B, C, n_angles, n_detectors)``, no autograd graph."""
        b, c = y.shape[:2]
        n, dtype = self.size, y.dtype
        device = self._home(y, "y")
        matrices = self._matrices(dtype, device)
        if matrices is not None:
            flat = y.reshape(b * c, self.n_angles * self.n_detectors).T.contiguous()
            return torch.sparse.mm(matrices[1], flat).T.reshape(b, c, n, n)
        q = 2 * (n // 2) + 1
        steps = (torch.arange(q, dtype=dtype, device=device) - (q // 2))[:, None, None]
        weighted = y.reshape(b * c, -1) * self._constant("_length", dtype, device)
        canonical = weighted.index_select(1, self._target)                     # rays in block order
        x = y.new_zeros(b * c, n * n)
        batch = self._batch_step(b * c)
        for lo in range(0, b * c, batch):
            hi = min(b * c, lo + batch)
            m = hi - lo
            for block in self._blocks:
                t = block.channels
                chunks = self._chunks(block, t * m)
                widest = max(stop - start for start, stop in chunks)
                buffer = torch.empty(q, widest, 2, dtype=dtype, device=device)
                dummy = torch.zeros((), dtype=dtype, device=device).expand(q, t * m, 1, q)
                rays = canonical[lo:hi, block.offset: block.offset + t * block.rays].view(m, t, -1)
                acc = None
                for start, stop in chunks:
                    grid = self._grid(block, start, stop, buffer, steps)
                    grad_out = rays[:, :, start:stop].transpose(0, 1).reshape(1, t * m, 1, -1)
                    grad_in = torch.ops.aten.grid_sampler_2d_backward(
                        grad_out.expand(q, -1, -1, -1), dummy, grid, _BILINEAR, _ZEROS, False,
                        [True, False])[0]
                    acc = grad_in if acc is None else acc.add_(grad_in)
                if m == 1:
                    flat = acc.view(1, -1)
                else:
                    flat = acc.view(q, t, m, q).permute(2, 0, 1, 3).reshape(m, -1)
                place = getattr(self, f"{block.name}_place")
                x[lo:hi] += flat.index_select(1, place).view(m, t, n * n).sum(1)
        if self.circle:
            x = x * self._constant("_support", dtype, device).view(-1)
        return x.reshape(b, c, n, n)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if _needs_graph(x):
            return _AdjointPair.apply(x, self, False)
        return self._project(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if _needs_graph(y):
            return _AdjointPair.apply(y, self, True)
        return self._backproject(y)

    def _probe_device(self) -> torch.device:
        return self._support.device

    def __getstate__(self) -> dict:
        # The cast cache may hold float64 views of the int64 masters, which torch.save refuses
        # (two views of one storage with different types); it is rebuilt on use.
        state = self.__dict__.copy()
        state["_cast_cache"] = {}
        return state
