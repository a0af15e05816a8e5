"""The cheap inverse as a reconstruction method: ``x_hat = A_dagger(y)``."""

from __future__ import annotations

import torch
from torch import nn

from ..contracts import Operator, apply_dagger

__all__ = ["ZeroFilled"]


class ZeroFilled(nn.Module):
    """The cheap inverse alone: ``x_hat = A_dagger(y)`` (real part for real images; the adjoint
    for operators without ``A_dagger``); for subsampled unitary operators the zero-filled
    reconstruction. Linear, so its worst-case amplification is the norm of ``A_dagger``
    relative to the data (1 for subsampled unitary operators)."""

    differentiable = True
    name = "zero-filled"

    def forward(self, y: torch.Tensor, op: Operator) -> torch.Tensor:
        """Reconstruct ``(B, C, H, W)`` from measurements ``y``."""
        x = apply_dagger(op, y)
        return x.real if x.is_complex() else x
