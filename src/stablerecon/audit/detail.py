"""Lost details and the sampling-rate sweep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..contracts import Operator, Reconstructor
from ..data import insert_detail
from ..metrics import nmse, psnr, ssim
from .randomness import item_noise

__all__ = ["DetailResult", "detail_test", "SamplingResult", "sampling_sweep"]


@dataclass
class DetailResult:
    """How much of an inserted detail a method recovers, per image ``(B,)``.

    ``recovered`` is the least-squares coefficient of the reconstructed difference on the true
    one inside the detail's mask, ``<f(A x_d) - f(A x), x_d - x> / ||x_d - x||^2``: 1 when the
    detail comes through at full contrast, 0 when it is lost. ``mask`` is the detail's support
    ``(H, W)``; ``with_detail`` / ``without`` the two reconstructions.
    """

    kind: str
    contrast: float
    recovered: Tensor
    mask: Tensor
    with_detail: Tensor
    without: Tensor


def detail_test(method: Reconstructor, x: Tensor, op: Operator, kind: str = "blob",
                contrast: float = 30 / 255, position: tuple[int, int] | None = None,
                size: int | None = None, text: str = "OK", noise: float = 0.0,
                seed: int = 0, ids: Sequence[int] | None = None) -> DetailResult:
    """Insert a small detail (:func:`stablerecon.data.insert_detail`) of ``contrast`` into
    ``x`` and measure the fraction of it that the method recovers inside the detail's mask.
    Both images are measured with the same noise draw (relative level ``noise``), so that the
    difference of the reconstructions is caused by the detail alone (``ids``: the images'
    indices in the audit, which seed their noise)."""
    if contrast == 0:
        raise ValueError("argument 'contrast' must be nonzero")
    x_d, mask = insert_detail(x, kind=kind, contrast=contrast, position=position, size=size,
                              text=text, seed=seed)
    with torch.no_grad():
        y, y_d = op.A(x), op.A(x_d)
        if noise > 0:
            n = item_noise(y, noise, seed, ids)
            y, y_d = y + n, y_d + n
        out, out_d = method(y, op), method(y_d, op)
        out, out_d = (t.real if t.is_complex() else t for t in (out, out_d))
        truth = (x_d - x) * mask
        found = (out_d - out) * mask
        dims = tuple(range(1, x.ndim))
        recovered = (found * truth).sum(dim=dims) / (truth * truth).sum(dim=dims)
    return DetailResult(kind, float(contrast), recovered, mask[0, 0], out_d, out)


@dataclass
class SamplingResult:
    """Accuracy of a method at several sampling rates, indexed ``[rate, item]``."""

    rates: list[float]
    psnr: Tensor
    ssim: Tensor
    nmse: Tensor


def sampling_sweep(method: Reconstructor, x: Tensor, make_operator: Callable[[float], Operator],
                   rates: Sequence[float], noise: float = 0.0, seed: int = 0,
                   ids: Sequence[int] | None = None) -> SamplingResult:
    """Reconstruct ``x`` from ``make_operator(rate)`` measurements at each rate (relative noise
    ``noise``): the "more samples, worse results" test of Antun et al. for methods built for
    one rate; ``ids``: the images' indices in the audit, which seed their noise)."""
    rates = [float(r) for r in rates]
    if not rates or any(not 0 < r <= 1 for r in rates):
        raise ValueError(f"argument 'rates' must be a non-empty list of numbers in (0, 1], got {rates!r}")
    scores: dict[str, list[Tensor]] = {"psnr": [], "ssim": [], "nmse": []}
    with torch.no_grad():
        for r in rates:
            op = make_operator(r)
            y = op.A(x)
            if noise > 0:
                y = y + item_noise(y, noise, seed, ids)
            x_hat = method(y, op)
            x_hat = x_hat.real if x_hat.is_complex() else x_hat
            scores["psnr"].append(psnr(x_hat, x, data_range=1.0))
            scores["ssim"].append(ssim(x_hat, x, data_range=1.0))
            scores["nmse"].append(nmse(x_hat, x))
    return SamplingResult(rates, *(torch.stack(scores[k]) for k in ("psnr", "ssim", "nmse")))
