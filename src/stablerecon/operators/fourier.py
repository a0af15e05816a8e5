"""Subsampled discrete Fourier transform: the forward model of Cartesian MRI."""

from __future__ import annotations

import math

import torch

from .base import LinearOperator
from .masks import check_mask, rate
from .tensors import complex_dtype_of, gather_last, scatter_last

__all__ = ["SubsampledFourier", "centered_fft2", "centered_ifft2"]


def centered_fft2(x: torch.Tensor) -> torch.Tensor:
    """Unitary centred 2-D DFT over the last two axes: ``fftshift(fft2(ifftshift(x)))``."""
    return torch.fft.fftshift(
        torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)
    )


def centered_ifft2(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`centered_fft2` (and its adjoint): ``fftshift(ifft2(ifftshift(k)))``."""
    return torch.fft.fftshift(
        torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)
    )


class SubsampledFourier(LinearOperator):
    r"""Subsampled unitary centred 2-D DFT, ``y = P_\Omega F x`` (Cartesian MRI).

    ``F`` is the unitary DFT with the zero frequency at ``(H // 2, W // 2)`` and the image
    origin at the centre (``fftshift(fft2(ifftshift(x)))`` with ``norm="ortho"``); ``P_Omega``
    keeps the coefficients where ``mask`` is ``True``. Since ``F`` is unitary, ``A A^* = I``,
    ``||A|| = 1`` and the zero-filled adjoint is the Moore-Penrose pseudo-inverse
    (``A_dagger = A_adjoint``).

    Shapes: images ``(B, C, H, W)`` real or complex; measurements ``(B, C, m)`` complex, with
    ``m = mask.sum()`` samples ordered as ``mask.nonzero()`` (row-major over centred k-space).

    The shifts are folded into a precomputed phase and index gather, so one ``A`` costs one
    FFT plus an ``O(m)`` gather (see ``benchmarks/operators.py``).

    Parameters
    ----------
    mask:
        Boolean tensor ``(H, W)`` in centred k-space coordinates (see
        :mod:`stablerecon.operators.masks`); must sample at least one coefficient.
    channels:
        Number of image channels, or ``None`` (default) to accept any.

    Examples
    --------
    >>> import torch
    >>> from stablerecon.operators import SubsampledFourier, masks
    >>> op = SubsampledFourier(masks.variable_density(32, rate=0.25, seed=0))
    >>> y = op.A(torch.rand(2, 1, 32, 32))
    >>> y.shape, y.dtype
    (torch.Size([2, 1, 256]), torch.complex64)
    >>> round(op.norm(), 6)
    1.0

    References
    ----------
    Lustig, Donoho, Pauly, "Sparse MRI", Magn. Reson. Med. 58 (2007).
    """

    adjoint_backward = True

    out_complex = True

    def __init__(self, mask: torch.Tensor, channels: int | None = None) -> None:
        mask = check_mask(mask, "mask").cpu()
        h, w = mask.shape
        m = int(mask.sum())
        super().__init__((channels, h, w), (channels, m))
        self.register_buffer("mask", mask, persistent=False)
        # Flat index (in un-shifted FFT order) of each sampled centred position, and the phase
        # that replaces the input ifftshift: fft2(ifftshift(x))[k] = exp(2i pi k.s / N) fft2(x)[k].
        grid = torch.arange(h * w).reshape(h, w)
        unshifted = torch.fft.fftshift(grid, dim=(-2, -1))[mask]
        ky, kx = unshifted // w, unshifted % w
        theta = 2 * math.pi * (ky.double() * (h // 2) / h + kx.double() * (w // 2) / w)
        self.register_buffer("indices", unshifted.long(), persistent=False)
        self.register_buffer("phase", torch.polar(torch.ones_like(theta), theta), persistent=False)
        # Real images: read the half spectrum of rfft2 and use Hermitian symmetry
        # X[k] = conj(X[-k]) for the columns it omits (half the FFT work of fft2).
        half = w // 2 + 1
        mirrored = kx >= half
        ry = torch.where(mirrored, (-ky) % h, ky)
        rx = torch.where(mirrored, (-kx) % w, kx)
        self.register_buffer("rindices", (ry * half + rx).long(), persistent=False)
        conj_sign = torch.stack((torch.ones_like(theta), 1.0 - 2.0 * mirrored.double()), dim=-1)
        self.register_buffer("rconj", conj_sign, persistent=False)

    @property
    def rate(self) -> float:
        """Actual sampling rate ``m / (H W)``."""
        return rate(self.mask)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_complex():
            k = torch.fft.fft2(x, norm="ortho").flatten(-2)
            idx = self._buffer_as("indices", torch.long, k.device)
            samples = gather_last(k, idx)
        else:
            k = torch.fft.rfft2(x, norm="ortho").flatten(-2)
            idx = self._buffer_as("rindices", torch.long, k.device)
            sign = self._buffer_as("rconj", x.dtype, x.device)
            samples = torch.view_as_complex(torch.view_as_real(gather_last(k, idx)) * sign)
        return samples * self._buffer_as("phase", samples.dtype, samples.device)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        cdt = complex_dtype_of(y.dtype)
        y = y.to(cdt)
        h, w = self.in_shape[-2], self.in_shape[-1]
        phase = self._buffer_as("phase", cdt, y.device)
        idx = self._buffer_as("indices", torch.long, y.device)
        z = scatter_last(y * phase.conj(), idx, h * w)
        return torch.fft.ifft2(z.unflatten(-1, (h, w)), norm="ortho")

    def _exact_norm(self) -> float:
        return 1.0

    def kspace(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled centred k-space ``(B, C, H, W)`` of measurements ``y`` (for display)."""
        h, w = self.in_shape[-2], self.in_shape[-1]
        cdt = complex_dtype_of(y.dtype)
        out = y.new_zeros((*y.shape[:-1], h, w), dtype=cdt)
        out[..., self.mask.to(y.device)] = y.to(cdt)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rate={self.rate:.4f}"
