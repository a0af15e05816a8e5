"""Pixel masking (inpainting)."""

from __future__ import annotations

import torch

from .base import LinearOperator
from .masks import check_mask
from .tensors import gather_last, scatter_last

__all__ = ["Inpainting"]


class Inpainting(LinearOperator):
    r"""Observe the pixels where ``mask`` is ``True``: ``y = x[..., mask]``.

    Shapes: images ``(B, C, H, W)``, real or complex; measurements ``(B, C, m)``, the ``m``
    observed pixels of every channel in ``mask.nonzero()`` order. ``A A^* = I``,
    ``||A|| = 1``, and ``A_adjoint`` (which zero-fills the missing pixels) is also the
    pseudo-inverse.

    Parameters
    ----------
    mask:
        Boolean tensor ``(H, W)``, ``True`` where a pixel is observed; at least one pixel.
    channels:
        Number of channels, or ``None`` to accept any.
    """

    adjoint_backward = True

    def __init__(self, mask: torch.Tensor, channels: int | None = None) -> None:
        mask = check_mask(mask, "mask").cpu()
        h, w = mask.shape
        super().__init__((channels, h, w), (channels, int(mask.sum())))
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("indices", torch.nonzero(mask.flatten()).flatten(), persistent=False)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return gather_last(x.flatten(-2), self._buffer_as("indices", torch.long, x.device))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        h, w = self.in_shape[-2], self.in_shape[-1]
        idx = self._buffer_as("indices", torch.long, y.device)
        return scatter_last(y, idx, h * w).unflatten(-1, (h, w))

    def _exact_norm(self) -> float:
        return 1.0
