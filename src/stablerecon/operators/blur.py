"""Circular convolution (deblurring)."""

from __future__ import annotations

import math

import torch

from .base import LinearOperator
from .tensors import as_hw, complex_dtype_of

__all__ = ["Blur", "gaussian_kernel", "box_kernel"]


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """Normalised isotropic Gaussian kernel ``(size, size)``, float64, sum 1.

    ``size`` defaults to the odd integer ``2 * ceil(3 sigma) + 1``.
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"argument 'sigma' must be a positive finite number, got {sigma!r}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"argument 'size' must be a positive int, got {size!r}")
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    k = g[:, None] * g[None, :]
    return k / k.sum()


def box_kernel(size: int) -> torch.Tensor:
    """Uniform ``(size, size)`` averaging kernel, float64, sum 1."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"argument 'size' must be a positive int, got {size!r}")
    return torch.full((size, size), 1.0 / size**2, dtype=torch.float64)


class Blur(LinearOperator):
    r"""Circular 2-D convolution ``y = k * x`` computed by FFT (periodic boundary).

    ``(k * x)[i, j] = sum_{a, b} k[a, b] x[i - a + ca, j - b + cb]`` (indices modulo the image
    size) with the kernel centre ``(ca, cb) = (kh // 2, kw // 2)``; this equals
    ``scipy.ndimage.convolve(x, k, mode="wrap")`` for odd kernel sizes. ``A^*`` convolves with
    the flipped conjugate kernel; ``||A|| = max |K(f)|`` (the largest modulus of the transfer
    function) exactly. ``A_dagger`` is the Tikhonov-regularised inverse filter
    ``conj(K) / (|K|^2 + eps)`` with ``eps = dagger_eps`` (an exact inverse is unstable).

    Shapes: images and measurements ``(B, C, H, W)``; real kernels keep real images real.

    Parameters
    ----------
    kernel:
        Tensor ``(kh, kw)`` with ``kh <= H``, ``kw <= W``, finite.
    size:
        Image size ``H`` or ``(H, W)``.
    dagger_eps:
        Regularisation of the inverse filter used by ``A_dagger``.
    channels:
        Number of channels, or ``None`` to accept any.
    """

    adjoint_backward = True

    def __init__(self, kernel: torch.Tensor, size: int | tuple[int, int],
                 dagger_eps: float = 1e-3, channels: int | None = None) -> None:
        h, w = as_hw(size, "size")
        if not isinstance(kernel, torch.Tensor):
            raise TypeError(f"argument 'kernel' must be a torch.Tensor, got {type(kernel).__name__}")
        if kernel.ndim != 2 or kernel.numel() == 0:
            raise ValueError(
                f"argument 'kernel' must be a non-empty 2-D tensor, got shape {tuple(kernel.shape)}"
            )
        if kernel.shape[0] > h or kernel.shape[1] > w:
            raise ValueError(
                f"argument 'kernel' of shape {tuple(kernel.shape)} is larger than the image {(h, w)}"
            )
        if not bool(torch.isfinite(kernel).all()):
            raise ValueError("argument 'kernel' contains NaN or Inf values")
        if not (math.isfinite(dagger_eps) and dagger_eps > 0):
            raise ValueError(f"argument 'dagger_eps' must be positive, got {dagger_eps}")
        super().__init__((channels, h, w), (channels, h, w))
        kh, kw = kernel.shape
        dtype = torch.complex128 if kernel.is_complex() else torch.float64
        padded = torch.zeros(h, w, dtype=dtype)
        padded[:kh, :kw] = kernel.detach().cpu().to(dtype)
        padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
        self.register_buffer("kernel", kernel.detach().cpu().to(dtype), persistent=False)
        self.register_buffer("transfer", torch.fft.fft2(padded), persistent=False)
        self.real_kernel = not kernel.is_complex()
        self.dagger_eps = float(dagger_eps)
        self.out_complex = False

    def _filter(self, x: torch.Tensor, name: str, conj: bool = False) -> torch.Tensor:
        cdt = complex_dtype_of(x.dtype)
        t = self._buffer_as(name, cdt, x.device)
        if conj:
            t = t.conj()
        out = torch.fft.ifft2(torch.fft.fft2(x) * t)
        return out.real if (self.real_kernel and not x.is_complex()) else out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._filter(x, "transfer")

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._filter(y, "transfer", conj=True)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "inverse_filter"):
            t = self.transfer
            self.register_buffer("inverse_filter", t.conj() / (t.abs() ** 2 + self.dagger_eps),
                                 persistent=False)
        return self._filter(y, "inverse_filter")

    def _exact_norm(self) -> float:
        return float(self.transfer.abs().max())
