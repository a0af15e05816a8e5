"""Test images shared by the solver tests."""

from __future__ import annotations

import torch

DT = torch.float64


def piecewise_constant(size: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """A few random rectangles on a zero background, ``(batch, 1, size, size)`` float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(batch, 1, size, size, dtype=DT)
    for b in range(batch):
        for _ in range(4):
            r0, c0 = (int(v) for v in torch.randint(0, size // 2, (2,), generator=g))
            h, w = (int(v) for v in torch.randint(size // 8, size // 2, (2,), generator=g))
            x[b, 0, r0:r0 + h, c0:c0 + w] += float(torch.rand((), generator=g, dtype=DT)) + 0.2
    return x
