"""The sparse system matrix of a ray-driven CT projector, cached within a memory budget.

:class:`~stablerecon.operators.projector.RayDrivenProjector` is matrix-free; where the matrix of
its Joseph weights is small (:data:`MATRIX_BYTES`), this module assembles it once, with its
transpose, from the projector's own ray tables, and ``A`` / ``A^*`` become sparse products.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .projector import RayDrivenProjector

__all__ = ["MATRIX_BYTES", "matrix_bound", "projector_triplets", "cached_matrices"]

MATRIX_BYTES = 256 << 20
"""Default bound on the memory of the cached sparse system matrix of a projector (the matrix
and its transpose in CSR form, per dtype and device, estimated from above as two entries per
ray and image row or column). Within it, ``A`` and ``A^*`` are sparse matrix products with the
weights of the matrix-free engine, assembled once on first use; above it (e.g. 512 x 512 with
720 views, about 8 GB) the operator stays matrix-free. Measured on 2 cores
(``python benchmarks/operators.py``), 8 images of 128 x 128 with 60 views in float32: A + A*
of ``Radon`` 39.7 -> 2.9 ms, of ``FanBeam`` 45.1 -> 2.6 ms; the matrices hold 22 MB there and
take 0.35 s to assemble, with about 3-4 times their memory in use for that moment. At 256 x 256
with 180 views (bound 381 MB, so matrix-free by default; ``matrix_bytes = 1 << 29`` admits it):
266 MB held, 9.6 s and about 1 GB to assemble, A + A* 482 -> 38 ms."""


def matrix_bound(size: int, n_angles: int, n_detectors: int, dtype: torch.dtype) -> int:
    """Bytes of the CSR matrix and its transpose, from above: at most two entries per ray and
    image row (column) it steps over, ``Q = 2 (size // 2) + 1`` steps per ray."""
    q = 2 * (size // 2) + 1
    entries = 2 * q * n_angles * n_detectors
    index = 4 if entries < 2**31 else 8
    return 2 * entries * (dtype.itemsize + index) + 4 * index * (n_angles * n_detectors + size**2)


def _csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """A float64 CSR tensor of the entries ``(rows, cols, values)`` (int32 indices where they fit)."""
    order = np.lexsort((cols, rows))
    index = np.int32 if max(len(values), *shape) < 2**31 else np.int64
    crow = np.zeros(shape[0] + 1, dtype=index)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols[order].astype(index)),
                                       torch.from_numpy(np.ascontiguousarray(values[order])), shape,
                                       dtype=torch.float64, check_invariants=False)


def projector_triplets(op: RayDrivenProjector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The system matrix of ``op`` as ``(rows, columns, values)`` in float64: the entries of
    every ray at every step, from the same positions (``alpha + q beta``), gathers and path
    lengths that the matrix-free engine uses (zero-padded and out-of-support pixels left out)."""
    n, q = op.size, 2 * (op.size // 2) + 1

    def table(name: str, bits: bool = False) -> np.ndarray:
        """A buffer on the CPU (it lives with the operator, maybe on a GPU); ``bits``: float64."""
        t = getattr(op, name)
        return (t.view(torch.float64) if bits else t).cpu().numpy()

    target = table("_target")
    length = table("_length", bits=True)
    steps = np.arange(q, dtype=np.float64) - (q // 2)
    rows, cols, values = [], [], []
    for block in op._blocks:
        rays = block.rays
        alpha = table(f"{block.name}_alpha", bits=True).reshape(rays, 2)[:, 0]
        beta = table(f"{block.name}_beta", bits=True).reshape(rays, 2)[:, 0]
        pick = table(f"{block.name}_pick").astype(np.int64).reshape(q, block.channels, q)
        # grid_sample's bilinear weights (align_corners=False): pixel coordinate of each step
        position = ((alpha[None, :] + steps[:, None] * beta[None, :] + 1.0) * q - 1.0) / 2.0
        left = np.floor(position)
        right_weight = position - left
        left = left.astype(np.int64)
        for channel in range(block.channels):
            ray_rows = target[block.offset + channel * rays + np.arange(rays)]
            for pixel, weight in ((left, 1.0 - right_weight), (left + 1, right_weight)):
                step, ray = np.nonzero((pixel >= 0) & (pixel < q))
                column = pick[step, channel, pixel[step, ray]]
                w = weight[step, ray]
                keep = (column < n * n) & (w != 0.0)
                rows.append(ray_rows[ray[keep]])
                cols.append(column[keep])
                values.append(w[keep] * length[ray_rows[ray[keep]]])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(values)


def cached_matrices(op: RayDrivenProjector, dtype: torch.dtype,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The CSR matrix of ``op`` and its transpose in ``dtype`` on ``device``, assembled on first
    use and kept in the operator's cast cache, or ``None`` when their bound exceeds
    ``op.matrix_bytes`` (a matrix cached before the budget was lowered is dropped) or for dtypes
    other than float32/float64."""
    key, key_t = ("_matrix", dtype, device), ("_matrix_t", dtype, device)
    fits = (dtype in (torch.float32, torch.float64)
            and matrix_bound(op.size, op.n_angles, op.n_detectors, dtype) <= int(op.matrix_bytes))
    if not fits:
        op._cast_cache.pop(key, None)
        op._cast_cache.pop(key_t, None)
        return None
    if key not in op._cast_cache or key_t not in op._cast_cache:
        rows, cols, values = projector_triplets(op)
        shape = (op.n_angles * op.n_detectors, op.size**2)
        op._cast_cache[key] = _csr(rows, cols, values, shape).to(device=device, dtype=dtype)
        op._cast_cache[key_t] = _csr(cols, rows, values, shape[::-1]).to(device=device, dtype=dtype)
    return op._cast_cache[key], op._cast_cache[key_t]
