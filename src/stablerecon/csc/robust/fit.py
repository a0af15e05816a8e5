"""The label-free choice of ``lam``: a log-linear fit of the best ``lam`` against a residual
statistic (:class:`ResidualLamFit`), and predictions with ``lam`` chosen per sample from it
(:func:`adaptive_predict`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..sdnet import SDNet
from ._common import check_data, check_lams, eval_mode, nearest
from .sweep import lam_of, residuals

__all__ = ["ResidualLamFit", "adaptive_predict"]


@dataclass(frozen=True)
class ResidualLamFit:
    """``lam(r) = a + b log r``, clipped to ``[lo, hi]``: the best ``lam`` as a function of a
    residual statistic ``r`` (:func:`~stablerecon.csc.robust.residuals`) at a probe ``lam``;
    ``r2`` is the fit's coefficient of determination on the pairs it was fitted to.

    >>> fit = ResidualLamFit.fit([0.01, 0.1, 1.0], [0.1, 0.2, 0.3])
    >>> round(fit.b, 6), round(fit.r2, 6), fit.lo, fit.hi
    (0.043429, 1.0, 0.1, 0.3)
    """

    a: float
    b: float
    lo: float
    hi: float
    r2: float

    @classmethod
    def fit(cls, residual: Sequence[float], best_lam: Sequence[float]) -> ResidualLamFit:
        """Least squares on pairs (typical residual statistic of a corrupted set at the probe
        ``lam``, that set's best ``lam``); at least two distinct residuals are needed. The
        study uses the geometric mean of the set's per-sample statistics, the value that the
        per-sample choice's ``log`` sees on average."""
        r = torch.as_tensor(list(residual), dtype=torch.float64)
        lam = torch.as_tensor(list(best_lam), dtype=torch.float64)
        if r.ndim != 1 or r.shape != lam.shape or r.numel() < 2:
            raise ValueError(f"arguments 'residual' and 'best_lam' must be equal-length lists of "
                             f">= 2 values, got {r.numel()} and {lam.numel()}")
        if not bool((r > 0).all()) or not bool(torch.isfinite(lam).all()):
            raise ValueError("argument 'residual' must be positive and 'best_lam' finite")
        u = r.log()
        if float(u.std()) == 0:
            raise ValueError("argument 'residual' must hold at least two distinct values")
        design = torch.stack([torch.ones_like(u), u], 1)
        coef = torch.linalg.lstsq(design, lam[:, None]).solution[:, 0]
        pred = design @ coef
        ss_res = float((lam - pred).pow(2).sum())
        ss_tot = float((lam - lam.mean()).pow(2).sum())
        # equal best lams are fitted exactly (b = 0): R^2 = 1, not 1 - rounding / rounding
        r2 = 1.0 - ss_res / ss_tot if float(lam.max()) > float(lam.min()) else 1.0
        return cls(float(coef[0]), float(coef[1]), float(lam.min()), float(lam.max()), r2)

    def __call__(self, residual: Tensor) -> Tensor:
        """``lam`` for each residual ``(N,)``."""
        return (self.a + self.b * residual.double().clamp_min(1e-30).log()).clamp(self.lo, self.hi)


@torch.no_grad()
def adaptive_predict(model: SDNet, x: Tensor, fit: ResidualLamFit, probe_lam: float,
                     grid: Sequence[float], batch: int = 512,
                     statistic: str = "noise") -> tuple[Tensor, Tensor]:
    """Labels ``(N,)`` and the chosen ``lam`` ``(N,)`` per sample, without labels: the residual
    ``statistic`` at ``probe_lam`` (:func:`~stablerecon.csc.robust.residuals`; the one ``fit``
    was made with) gives ``lam = fit(statistic)``, rounded to the nearest value of ``grid`` (so
    that samples with the same ``lam`` run as one batch)."""
    check_data(x)
    g = torch.as_tensor(check_lams(grid, "grid"), dtype=torch.float64)
    chosen = g[nearest(g, fit(residuals(model, x, probe_lam, batch, statistic)))]
    labels = torch.empty(x.shape[0], dtype=torch.long)
    with eval_mode(model):
        for lam in chosen.unique():
            idx = (chosen == lam).nonzero()[:, 0]
            with lam_of(model, float(lam)):
                labels[idx] = torch.cat([model(x[idx[i : i + batch]]).argmax(1)
                                         for i in range(0, idx.numel(), batch)])
    return labels, chosen
