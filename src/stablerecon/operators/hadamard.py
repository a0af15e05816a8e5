"""Subsampled Walsh-Hadamard transform (binary-pattern imaging, single-pixel cameras)."""

from __future__ import annotations

import functools
import math

import torch

from .base import LinearOperator
from .masks import check_mask, rate
from .tensors import gather_last, scatter_last

__all__ = ["SubsampledWalshHadamard", "fwht", "sequency_permutation"]


def _is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


def sequency_permutation(n: int) -> torch.Tensor:
    """Natural (Sylvester) row index of the Walsh function of each sequency ``0..n-1``.

    Row ``s`` of the sequency-ordered Walsh matrix (``s`` sign changes) is row
    ``bitreverse(gray(s))`` of the natural-order Hadamard matrix.
    """
    if not _is_power_of_two(n):
        raise ValueError(f"argument 'n' must be a power of two, got {n}")
    bits = n.bit_length() - 1
    s = torch.arange(n)
    gray = s ^ (s >> 1)
    rev = torch.zeros_like(gray)
    for b in range(bits):
        rev |= ((gray >> b) & 1) << (bits - 1 - b)
    return rev


@functools.lru_cache(maxsize=64)
def _hadamard_block(r: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Orthonormal natural-order (Sylvester) Hadamard matrix of size ``r`` (a power of two)."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < r:
        h = torch.cat((torch.cat((h, h), 1), torch.cat((h, -h), 1)), 0)
    return (h / math.sqrt(r)).to(dtype=dtype, device=device)


def _radix_factors(n: int, max_radix_bits: int = 6) -> list[int]:
    """Split ``n = 2**k`` into as few, as equal, powers of two ``<= 2**max_radix_bits``."""
    k = n.bit_length() - 1
    m = max(1, -(-k // max_radix_bits))
    bits = [k // m + (1 if i < k % m else 0) for i in range(m)]
    return [1 << b for b in bits]


def fwht(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Orthonormal fast Walsh-Hadamard transform (natural order) along ``dim``.

    Uses the Kronecker factorisation ``H_n = H_{r_1} (x) ... (x) H_{r_m}`` with radices
    ``r_j <= 64``: each factor is one batched matrix product over a reshaped view (no
    transposes), ``O(n sum_j r_j)`` work per vector instead of ``O(n^2)``, at BLAS speed. The
    transform is symmetric and its own inverse. ``x.shape[dim]`` must be a power of two;
    complex ``x`` is transformed through its real view (the matrix is real).
    """
    n = x.shape[dim]
    if not _is_power_of_two(n):
        raise ValueError(f"fwht: size {n} along dim {dim} is not a power of two")
    dim = dim % x.ndim
    shape = x.shape
    work = torch.view_as_real(x) if x.is_complex() else x
    pre = math.prod(shape[:dim])
    post = work.numel() // (pre * n)
    inner = n
    for r in _radix_factors(n):
        inner //= r
        block = _hadamard_block(r, work.dtype, work.device)
        work = torch.matmul(block, work.reshape(-1, r, inner * post))
    work = work.reshape(*shape, 2) if x.is_complex() else work.reshape(shape)
    return torch.view_as_complex(work) if x.is_complex() else work


class SubsampledWalshHadamard(LinearOperator):
    r"""Subsampled orthonormal 2-D Walsh-Hadamard transform in sequency order, ``y = P_\Omega W x``.

    ``W = W_H \otimes W_W`` applies the sequency-ordered (Walsh) orthonormal Hadamard matrix
    along rows and columns; low sequencies sit at small indices, so masks should be drawn
    with ``origin="corner"`` (e.g. ``masks.variable_density(n, rate, origin="corner")``).
    ``W`` is orthogonal and symmetric: ``A A^* = I``, ``||A|| = 1`` and ``A_dagger = A_adjoint``.

    Shapes: images ``(B, C, H, W)`` (``H``, ``W`` powers of two), real or complex;
    measurements ``(B, C, m)`` with ``m = mask.sum()`` in ``mask.nonzero()`` order, real for
    real images.

    References
    ----------
    Adcock, Hansen, Poon, Roman, "Breaking the coherence barrier: a new theory for compressed
    sensing", Forum Math. Sigma 5 (2017); Colbrook, Antun, Hansen, "The difficulty of computing
    stable and accurate neural networks", PNAS 119 (2022) (FIRENET with Haar wavelets).
    """

    adjoint_backward = True

    def __init__(self, mask: torch.Tensor, channels: int | None = None) -> None:
        mask = check_mask(mask, "mask").cpu()
        h, w = mask.shape
        if not (_is_power_of_two(h) and _is_power_of_two(w)):
            raise ValueError(
                f"argument 'mask' must have power-of-two sides for the Walsh-Hadamard "
                f"transform, got shape {(h, w)}"
            )
        super().__init__((channels, h, w), (channels, int(mask.sum())))
        self.register_buffer("mask", mask, persistent=False)
        py, px = sequency_permutation(h), sequency_permutation(w)
        natural = (py[:, None] * w + px[None, :])[mask]
        self.register_buffer("indices", natural.long(), persistent=False)

    @property
    def rate(self) -> float:
        """Actual sampling rate ``m / (H W)``."""
        return rate(self.mask)

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        return fwht(fwht(x, dim=-1), dim=-2)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = self._buffer_as("indices", torch.long, x.device)
        return gather_last(self._transform(x).flatten(-2), idx)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        h, w = self.in_shape[-2], self.in_shape[-1]
        idx = self._buffer_as("indices", torch.long, y.device)
        z = scatter_last(y, idx, h * w)
        return self._transform(z.unflatten(-1, (h, w)))

    def _exact_norm(self) -> float:
        return 1.0
