"""Downsampling (super-resolution)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from .base import LinearOperator
from .tensors import as_hw

__all__ = ["Downsample"]


class Downsample(LinearOperator):
    r"""Downsampling by an integer ``factor``: ``(B, C, H, W) -> (B, C, H/f, W/f)``.

    ``filter="box"`` (default) averages each ``f x f`` block: ``A A^* = I / f^2``,
    ``||A|| = 1/f``, and nearest-neighbour upsampling ``f^2 A^*`` is the exact pseudo-inverse.
    ``filter="none"`` keeps the top-left pixel of each block (pure decimation): ``A A^* = I``,
    ``||A|| = 1`` and ``A^+ = A^*``. Real or complex images.

    Parameters
    ----------
    factor:
        Integer downsampling factor ``f >= 1``; must divide ``H`` and ``W``.
    size:
        Image size ``H`` or ``(H, W)``.
    filter:
        ``"box"`` or ``"none"``.
    channels:
        Number of channels, or ``None`` to accept any.
    """

    adjoint_backward = True

    def __init__(self, factor: int, size: int | tuple[int, int],
                 filter: Literal["box", "none"] = "box", channels: int | None = None) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ValueError(f"argument 'factor' must be an int >= 1, got {factor!r}")
        h, w = as_hw(size, "size")
        if h % factor or w % factor:
            raise ValueError(f"argument 'factor'={factor} must divide the image size {(h, w)}")
        if filter not in ("box", "none"):
            raise ValueError(f"argument 'filter' must be 'box' or 'none', got {filter!r}")
        super().__init__((channels, h, w), (channels, h // factor, w // factor))
        self.factor = factor
        self.filter = filter

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter == "none":
            return x[..., :: self.factor, :: self.factor]
        if x.is_complex():
            return torch.complex(self._forward(x.real), self._forward(x.imag))
        return F.avg_pool2d(x, self.factor)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        f = self.factor
        up = y.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)
        if self.filter == "none":
            mask = torch.zeros(f, f, dtype=torch.bool, device=y.device)
            mask[0, 0] = True
            return up * mask.repeat(y.shape[-2], y.shape[-1])
        return up / f**2

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self._adjoint(y) * (self.factor**2 if self.filter == "box" else 1)

    def _exact_norm(self) -> float:
        return 1.0 / self.factor if self.filter == "box" else 1.0

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, factor={self.factor}, filter={self.filter!r}"
