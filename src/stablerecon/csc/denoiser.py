"""The CSC denoiser: ``x_hat = D c(x)``, an image rebuilt from its sparse code.

:class:`CSCDenoiser` is one :class:`~stablerecon.csc.CSCLayer` whose input and output have the
same channels; inside ``stablerecon.nets.PostProcessing(denoiser, op, residual=False)`` it is a
differentiable reconstruction method (the ``csc`` kind of :class:`~stablerecon.config.TrainingConfig`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..validation import positive_int
from .layer import CSCLayer

__all__ = ["CSCDenoiser"]


class CSCDenoiser(nn.Module):
    """A CSC network trained to denoise: ``x_hat = D c(x)``, the reconstruction of the input
    from its sparse code in a learned dictionary (:class:`~stablerecon.csc.CSCLayer`).

    ``in_channels = out_channels = channels``, so that it fits
    :class:`~stablerecon.nets.PostProcessing` with ``residual=False`` (``x_hat = D c(A_dagger y)``),
    a differentiable reconstruction method the stability audit can test. ``lam`` can be changed
    after training (``denoiser.layer.lam``) to denoise more or less.

    Parameters
    ----------
    channels:
        Image channels.
    atoms, kernel_size:
        Number and (odd) size of the dictionary's atoms.
    lam, steps:
        Sparsity weight and FISTA iterations.
    seed:
        Seeds the initial atoms.

    Examples
    --------
    >>> denoiser = CSCDenoiser(1, atoms=8, kernel_size=5, lam=0.05, steps=5, seed=0)
    >>> tuple(denoiser(torch.rand(2, 1, 16, 16)).shape)
    (2, 1, 16, 16)
    """

    def __init__(self, channels: int = 1, atoms: int = 32, kernel_size: int = 7, lam: float = 0.05,
                 steps: int = 20, seed: int = 0) -> None:
        super().__init__()
        self.in_channels = self.out_channels = positive_int(channels, "channels", where="CSCDenoiser")
        self.layer = CSCLayer(channels, atoms, kernel_size, 1, lam=lam, steps=steps, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoised ``(B, C, H, W)`` of ``x`` ``(B, C, H, W)``."""
        # the image mean is removed before coding (sparse codes of the detail) and added back
        mean = x.mean(dim=(2, 3), keepdim=True)
        c = self.layer(x - mean)
        return self.layer.synthesis(c, (x.shape[-2], x.shape[-1])) + mean
