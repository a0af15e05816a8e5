"""Gaussian random matrices: the forward model of classical compressed sensing."""

from __future__ import annotations

import torch

from .base import LinearOperator
from .tensors import as_hw, real_dtype_of

__all__ = ["GaussianMatrix"]


class GaussianMatrix(LinearOperator):
    r"""Compressed sensing with an i.i.d. Gaussian matrix on flattened images, ``y = G vec(x)``.

    ``G`` has shape ``(m, n)`` with entries ``N(0, 1/m)`` (so ``E ||G x||^2 = ||x||^2``), drawn
    from ``seed``; each channel of an image ``(B, C, H, W)`` with ``H W = n`` is flattened in
    row-major order and mapped to ``(B, C, m)``. Complex images are mapped part by part.
    ``A_dagger`` is the Moore-Penrose pseudo-inverse (minimum-norm solution for ``m <= n``,
    least squares otherwise), computed once by a Cholesky factorisation of the Gram matrix.

    Parameters
    ----------
    m:
        Number of measurements per channel.
    n:
        Number of pixels, as ``n`` (a perfect square, image ``sqrt(n) x sqrt(n)``) or as the
        image size ``(H, W)``.
    seed:
        Seed of the matrix.
    channels:
        Number of channels, or ``None`` to accept any.

    References
    ----------
    Candes, Romberg, Tao, "Robust uncertainty principles", IEEE Trans. Inf. Theory 52 (2006).
    """

    def __init__(self, m: int, n: int | tuple[int, int], seed: int = 0,
                 channels: int | None = None) -> None:
        if isinstance(m, bool) or not isinstance(m, int) or m <= 0:
            raise ValueError(f"argument 'm' must be a positive int, got {m!r}")
        if isinstance(n, int) and not isinstance(n, bool):
            side = int(round(n**0.5))
            if n <= 0 or side * side != n:
                raise ValueError(
                    f"argument 'n' must be a positive perfect square or an image size (H, W), got {n}"
                )
            h = w = side
        else:
            h, w = as_hw(n, "n")
        super().__init__((channels, h, w), (channels, m))
        g = torch.Generator().manual_seed(seed)
        matrix = torch.randn(m, h * w, generator=g, dtype=torch.float64) / m**0.5
        self.register_buffer("matrix", matrix, persistent=False)
        self._pinv_factor: torch.Tensor | None = None

    def _apply_matrix(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``x @ M.T`` for the buffer ``M`` called ``name`` (part by part for complex ``x``)."""
        if x.is_complex():
            m = self._buffer_as(name, real_dtype_of(x.dtype), x.device)
            return torch.complex(x.real @ m.T, x.imag @ m.T)
        return x @ self._buffer_as(name, x.dtype, x.device).T

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_matrix("matrix", x.flatten(-2))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        h, w = self.in_shape[-2], self.in_shape[-1]
        if y.is_complex():
            m = self._buffer_as("matrix", real_dtype_of(y.dtype), y.device)
            x = torch.complex(y.real @ m, y.imag @ m)
        else:
            x = y @ self._buffer_as("matrix", y.dtype, y.device)
        return x.unflatten(-1, (h, w))

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "pinv") or self.pinv.device != self.matrix.device:
            g = self.matrix
            if g.shape[0] <= g.shape[1]:  # G^T (G G^T)^{-1}
                chol = torch.linalg.cholesky(g @ g.T)
                pinv = torch.cholesky_solve(g, chol).T
            else:  # (G^T G)^{-1} G^T
                chol = torch.linalg.cholesky(g.T @ g)
                pinv = torch.cholesky_solve(g.T, chol)
            self.register_buffer("pinv", pinv.contiguous(), persistent=False)
            self._cast_cache = {k: v for k, v in self._cast_cache.items() if k[0] != "pinv"}
        h, w = self.in_shape[-2], self.in_shape[-1]
        return self._apply_matrix("pinv", y).unflatten(-1, (h, w))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.out_shape[-1]}, n={self.matrix.shape[1]}"

