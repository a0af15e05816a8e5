"""Checks and small helpers shared by the modules of :mod:`stablerecon.csc.robust`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ...validation import positive_float

__all__ = ["check_data", "check_lams", "eval_mode", "correct_of", "typical", "nearest"]


def check_data(x: object, y: object | None = None) -> Tensor:
    """``x`` if it is a finite real floating tensor ``(N, C, H, W)`` with ``N >= 1`` (and ``y``,
    if given, labels of shape ``(N,)``); a ``ValueError`` naming the argument otherwise."""
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"argument 'x' must be a real floating tensor (N, C, H, W), got {got}")
    if x.shape[0] == 0:
        raise ValueError("argument 'x' must hold at least one image")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("argument 'x' contains NaN or Inf values")
    if y is not None and (not isinstance(y, Tensor) or y.shape != (x.shape[0],)):
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"argument 'y' must be labels of shape ({x.shape[0]},), got {got}")
    return x


def check_lams(lams: Sequence[float], name: str = "lams") -> list[float]:
    """``lams`` as a non-empty list of finite floats ``>= 0`` (anything ``float()`` takes)."""
    values = [float(v) for v in lams]
    if not values:
        raise ValueError(f"argument '{name}' must be a non-empty list of finite values >= 0, "
                         f"got {list(lams)}")
    return [positive_float(v, name, allow_zero=True) for v in values]


@contextmanager
def eval_mode(*models: nn.Module | None) -> Iterator[None]:
    """Put ``models`` in eval mode inside a ``with`` block, and restore each one's mode after."""
    modes = [(m, m.training) for m in models if m is not None]
    for m, _ in modes:
        m.eval()
    try:
        yield
    finally:
        for m, was_training in modes:
            m.train(was_training)


@torch.no_grad()
def correct_of(model: nn.Module, x: Tensor, y: Tensor, batch: int) -> Tensor:
    """Per-sample correctness ``(N,)`` (bool) of ``model``'s arg-max on ``x``, in batches."""
    out = []
    for i in range(0, x.shape[0], batch):
        out.append(model(x[i : i + batch]).argmax(1) == y[i : i + batch])
    return torch.cat(out)


def typical(statistic: Tensor) -> float:
    """Geometric mean of positive per-sample statistics (the set's typical value on a log scale)."""
    return float(statistic.double().clamp_min(1e-30).log().mean().exp())


def nearest(grid: Tensor, want: Tensor) -> Tensor:
    """Index into ``grid`` of the value nearest to each of ``want``."""
    return (want.double()[:, None] - grid.double()[None]).abs().argmin(1)
