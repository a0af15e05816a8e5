"""Accuracy of a reconstruction method: PSNR, SSIM, NMSE on clean and noisy measurements."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..contracts import Operator, Reconstructor
from ..metrics import nmse, psnr, ssim
from .randomness import item_noise

__all__ = ["AccuracyResult", "accuracy"]


@dataclass
class AccuracyResult:
    """Per-image scores ``(B,)`` of ``method(A x + n)`` against ``x``, for noise level
    ``noise`` (relative, 0 for clean measurements); PSNR with data range 1."""

    noise: float
    psnr: Tensor
    ssim: Tensor
    nmse: Tensor
    output: Tensor


def accuracy(method: Reconstructor, x: Tensor, op: Operator, noise: float = 0.0,
             seed: int = 0, ids: Sequence[int] | None = None) -> AccuracyResult:
    """Reconstruct images ``x`` ``(B, C, H, W)`` (values in [0, 1]) from ``op.A(x)`` plus
    Gaussian noise of relative level ``noise`` (seeded per image: ``ids`` are the images'
    indices in the audit, see :mod:`~stablerecon.audit.randomness`) and score the result."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"argument 'x' must be a (B, C, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"argument 'noise' must be a finite number >= 0, got {noise!r}")
    with torch.no_grad():
        y = op.A(x)
        if noise > 0:
            y = y + item_noise(y, noise, seed, ids)
        x_hat = method(y, op)
        x_hat = x_hat.real if x_hat.is_complex() else x_hat
    return AccuracyResult(noise, psnr(x_hat, x, data_range=1.0), ssim(x_hat, x, data_range=1.0),
                          nmse(x_hat, x), x_hat)
