r"""``kernel``: deblurring with a mismatched kernel, ``k + dk``."""

from __future__ import annotations

import torch

from ..blur import Blur
from ..tensors import complex_dtype_of
from .family import PerturbationFamily, PerturbedOperator, require_operator

__all__ = ["KernelMismatch", "MismatchedBlur"]


class MismatchedBlur(PerturbedOperator):
    r"""Periodic convolution with ``k + dk`` (built by :class:`KernelMismatch`):
    ``A_E x = A x + dk * x``, so ``theta = 0`` gives the nominal operator bit for bit.
    ``A_dagger`` is the nominal's Tikhonov inverse filter with the perturbed transfer function,
    ``conj(K_E) / (|K_E|^2 + eps)``, ``eps = nominal.dagger_eps``."""

    def __init__(self, nominal: Blur, theta: torch.Tensor, delta: torch.Tensor) -> None:
        super().__init__(nominal, theta, KernelMismatch.name)
        self.delta = delta  # the transfer function of dk, (H, W) complex128

    def _filter(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(device=x.device, dtype=complex_dtype_of(x.dtype))
        out = torch.fft.ifft2(torch.fft.fft2(x) * t)
        return out.real if (self.nominal.real_kernel and not x.is_complex()) else out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nominal._forward(x) + self._filter(x, self.delta)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.nominal._adjoint(y) + self._filter(y, self.delta.conj())

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        t = self.nominal.transfer.to(self.delta.device) + self.delta
        return self._filter(y, t.conj() / (t.abs() ** 2 + self.nominal.dagger_eps))


class KernelMismatch(PerturbationFamily):
    r"""``kernel``: the blur kernel of a :class:`~stablerecon.operators.Blur` off by ``dk``.

    ``theta = dk`` has the kernel's shape ``(kh, kw)`` (real kernels) or ``(kh, kw, 2)``
    (complex kernels, real and imaginary parts last) and is placed as the kernel is (centre
    ``(kh // 2, kw // 2)`` at the origin, periodic boundary, as :class:`Blur`). ``A_E - A`` is
    the periodic convolution with ``dk``, diagonalised by the DFT, so ``distance`` is exact:
    ``||A_E - A||_2 = max_f |DFT(dk)(f)|`` over the ``H x W`` frequencies. It is a norm of
    ``theta`` (``homogeneity = 1``, differentiable where the maximum is attained once);
    :meth:`project` rescales radially onto its ball (not the Euclidean nearest point).
    """

    name = "kernel"
    continuous = True
    distance_kind = "exact"
    homogeneity = 1

    def __init__(self, op: Blur) -> None:
        require_operator(op, (Blur,), self.name)
        kh, kw = op.kernel.shape
        super().__init__(op, (kh, kw) if op.real_kernel else (kh, kw, 2))

    def transfer(self, theta: torch.Tensor) -> torch.Tensor:
        """``DFT(dk)`` on the ``H x W`` grid (complex128), differentiable in ``theta``."""
        h, w = self.op.in_shape[-2], self.op.in_shape[-1]
        dk = theta if self.op.real_kernel else torch.view_as_complex(theta.contiguous())
        kh, kw = dk.shape
        padded = torch.nn.functional.pad(dk.to(torch.complex128), (0, w - kw, 0, h - kh))
        padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
        return torch.fft.fft2(padded)

    def _build(self, theta: torch.Tensor) -> MismatchedBlur:
        return MismatchedBlur(self.op, theta, self.transfer(theta))

    def _distance(self, theta: torch.Tensor) -> torch.Tensor:
        return self.transfer(theta).abs().max()
