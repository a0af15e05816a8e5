"""Sweeping SDNet's first CSC ``lam`` and measuring the layer's residual.

- :func:`lam_of`: set the first CSC layer's ``lam`` inside a ``with`` block;
- :func:`lam_sweep`: per-sample correctness for every ``lam`` of a grid;
- :func:`noise_level`: robust white-noise level of an image (median absolute Laplacian);
- :func:`residuals`: a per-sample statistic (:data:`STATISTICS`) of the first CSC layer's
  residual ``r = x - D c(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from ...validation import choice
from ..sdnet import SDNet
from ._common import check_data, check_lams, correct_of, eval_mode

__all__ = ["STATISTICS", "lam_of", "noise_level", "residuals", "lam_sweep"]

#: Per-sample statistics of the residual that :func:`residuals` computes.
STATISTICS: tuple[str, ...] = ("noise", "energy")

_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
#: ``median |Laplacian z|`` for white standard normal ``z``: 0.6745 (the normal's MAD) times
#: the Laplacian's gain ``sqrt(1 + 1 + 1 + 1 + 16)``.
_MAD_SCALE = 0.6744897501960817 * math.sqrt(20.0)


@contextmanager
def lam_of(model: SDNet, lam: float) -> Iterator[SDNet]:
    """Set the first CSC layer's ``lam`` inside a ``with`` block (restored afterwards).

    >>> net = SDNet(width=4, lam=0.1, steps=2)
    >>> with lam_of(net, 0.3):
    ...     net.first_csc.lam
    0.3
    >>> net.first_csc.lam
    0.1
    """
    layer = model.first_csc
    old = layer.lam
    layer.lam = lam
    try:
        yield model
    finally:
        layer.lam = old


def noise_level(r: Tensor) -> Tensor:
    """Robust estimate ``(N,)`` of the standard deviation of white noise in ``r`` ``(N, C, H, W)``
    (``H, W >= 3``): ``median |Laplacian r| / (0.6745 sqrt(20))`` over the interior pixels of
    all channels, with the 5-point Laplacian. Exact zero on any linear ramp; ``sigma`` (up to
    sampling error) on white Gaussian noise of standard deviation ``sigma``; see
    :mod:`stablerecon.csc.robust` for why the CSC residual is measured this way."""
    if not isinstance(r, Tensor) or r.ndim != 4 or not r.is_floating_point() or min(r.shape[-2:]) < 3:
        got = f"{tuple(r.shape)} {r.dtype}" if isinstance(r, Tensor) else type(r).__name__
        raise ValueError(f"argument 'r' must be a real floating tensor (N, C, H, W) with H, W >= 3, "
                         f"got {got}")
    kernel = torch.tensor(_LAPLACIAN, dtype=r.dtype, device=r.device)[None, None]
    high = F.conv2d(r.reshape(-1, 1, *r.shape[-2:]), kernel)  # interior pixels only
    return high.reshape(r.shape[0], -1).abs().median(1).values / _MAD_SCALE


@torch.no_grad()
def residuals(model: SDNet, x: Tensor, lam: float | None = None, batch: int = 512,
              statistic: str = "noise") -> Tensor:
    """Per-sample statistic ``(N,)`` of the first CSC layer's residual ``r = x - D c(x)`` at
    ``lam`` (default: the layer's current one), on the network's normalised input:
    ``"noise"``, its white-noise level :func:`noise_level` (standard deviations of the
    normalised input), or ``"energy"``, its mean square ``||r||^2 / numel``."""
    check_data(x)
    statistic = choice(statistic, "statistic", STATISTICS)
    layer = model.first_csc
    out = []
    with lam_of(model, layer.lam if lam is None else lam):
        for i in range(0, x.shape[0], batch):
            xn = model.normalise(x[i : i + batch])
            if statistic == "energy":
                out.append(layer(xn, return_residual=True)[1])
            else:
                code = layer(xn)
                out.append(noise_level(xn - layer.synthesis(code, xn.shape[-2:])))
    return torch.cat(out)


def lam_sweep(model: SDNet, x: Tensor, y: Tensor, lams: Sequence[float], batch: int = 512) -> Tensor:
    """Correctness ``(len(lams), N)`` (bool) of ``model`` on ``x`` with the first CSC layer's
    ``lam`` set to each value of ``lams``; ``.float().mean(1)`` is the accuracy per ``lam``."""
    check_data(x, y)
    rows = []
    with eval_mode(model):
        for lam in check_lams(lams):
            with lam_of(model, lam):
                rows.append(correct_of(model, x, y, batch))
    return torch.stack(rows)
