r"""Test-time robustness of SDNet: turning the first CSC layer's ``lam`` to the noise.

SDNet's CSC layer solves ``min_{c >= 0} lam ||c||_1 + 1/2 ||x - D c||^2``; noise that the
dictionary does not explain is left in the residual, and a larger ``lam`` leaves more of it
out of the code. Dai et al. (NeurIPS 2022, Sec. 4.3) sweep ``lam`` on corrupted test sets, see
the best ``lam`` rise with the noise, and fit the best ``lam`` as a function of the layer's
reconstruction residual, a statistic that needs no labels. This module does the same:

- :func:`lam_sweep`: accuracy for every ``lam`` of a grid (per-sample correctness);
- :func:`residuals`: the first CSC layer's per-pixel residual ``||x - D c||^2 / numel`` per sample;
- :class:`ResidualLamFit`: least squares ``lam = a + b log(residual)`` from (mean residual at a
  probe ``lam``, best ``lam``) pairs of several corrupted sets, with its ``R^2``;
- :func:`adaptive_predict`: labels with ``lam`` chosen per sample from the fit (no labels used);
- :func:`pgd_linf`: an ``l_inf`` PGD attack through the full unrolled network (Madry et al. 2018);
- :func:`robustness_study`: all of it for a corruption x severity grid, fit on a validation
  split and measured on a test split, with the conv baseline beside it.

As in the paper's own procedure (its ``robust_inference.py`` fits one line per noise type), the
fit is made per corruption type over its severities and the clean set: the residual moves in
opposite directions for different noises (clipped Gaussian noise lowers it on images with a
dark background, shot noise raises it), so one pooled fit explains little (its ``R^2`` is
reported too). The choice then needs the corruption type, but no class label.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .csc import SDNet

__all__ = [
    "lam_of",
    "residuals",
    "lam_sweep",
    "ResidualLamFit",
    "adaptive_predict",
    "pgd_linf",
    "RobustnessStudy",
    "robustness_study",
]


def _check_data(x: object, y: object | None = None) -> Tensor:
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


def _check_lams(lams: Sequence[float]) -> list[float]:
    out = [float(v) for v in lams]
    if not out or any(not math.isfinite(v) or v < 0 for v in out):
        raise ValueError(f"argument 'lams' must be a non-empty list of finite values >= 0, got {list(lams)}")
    return out


@contextmanager
def lam_of(model: SDNet, lam: float) -> Iterator[SDNet]:
    """Set the first CSC layer's ``lam`` inside a ``with`` block (restored afterwards)."""
    layer = model.first_csc
    old = layer.lam
    layer.lam = lam
    try:
        yield model
    finally:
        layer.lam = old


@torch.no_grad()
def residuals(model: SDNet, x: Tensor, lam: float | None = None, batch: int = 512) -> Tensor:
    """Per-sample residual of the first CSC layer, ``||x_n - D c(x_n)||^2 / numel`` ``(N,)``, at
    ``lam`` (default: the layer's current one), on the network's normalised input."""
    _check_data(x)
    layer = model.first_csc
    out = []
    with lam_of(model, layer.lam if lam is None else lam):
        for i in range(0, x.shape[0], batch):
            out.append(layer(model.normalise(x[i : i + batch]), return_residual=True)[1])
    return torch.cat(out)


@torch.no_grad()
def _correct(model: nn.Module, x: Tensor, y: Tensor, batch: int) -> Tensor:
    out = []
    for i in range(0, x.shape[0], batch):
        out.append(model(x[i : i + batch]).argmax(1) == y[i : i + batch])
    return torch.cat(out)


def lam_sweep(model: SDNet, x: Tensor, y: Tensor, lams: Sequence[float], batch: int = 512) -> Tensor:
    """Correctness ``(len(lams), N)`` (bool) of ``model`` on ``x`` with the first CSC layer's
    ``lam`` set to each value of ``lams``; ``.float().mean(1)`` is the accuracy per ``lam``."""
    _check_data(x, y)
    was_training = model.training
    model.eval()
    try:
        rows = []
        for lam in _check_lams(lams):
            with lam_of(model, lam):
                rows.append(_correct(model, x, y, batch))
        return torch.stack(rows)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class ResidualLamFit:
    """``lam(r) = a + b log r``, clipped to ``[lo, hi]``: the best ``lam`` as a function of the
    mean residual ``r`` at a probe ``lam``; ``r2`` is the fit's coefficient of
    determination on the pairs it was fitted to."""

    a: float
    b: float
    lo: float
    hi: float
    r2: float

    @classmethod
    def fit(cls, residual: Sequence[float], best_lam: Sequence[float]) -> ResidualLamFit:
        """Least squares on pairs (mean residual of a corrupted set at the probe ``lam``,
        that set's best ``lam``); at least two distinct residuals are needed."""
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
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
        return cls(float(coef[0]), float(coef[1]), float(lam.min()), float(lam.max()), r2)

    def __call__(self, residual: Tensor) -> Tensor:
        """``lam`` for each residual ``(N,)``."""
        return (self.a + self.b * residual.double().clamp_min(1e-30).log()).clamp(self.lo, self.hi)


@torch.no_grad()
def adaptive_predict(model: SDNet, x: Tensor, fit: ResidualLamFit, probe_lam: float,
                     grid: Sequence[float], batch: int = 512) -> tuple[Tensor, Tensor]:
    """Labels ``(N,)`` and the chosen ``lam`` ``(N,)`` per sample, without labels: the residual
    at ``probe_lam`` gives ``lam = fit(residual)``, rounded to the nearest value of ``grid``
    (so that samples with the same ``lam`` run as one batch)."""
    _check_data(x)
    g = torch.as_tensor(_check_lams(grid), dtype=torch.float64)
    want = fit(residuals(model, x, probe_lam, batch))
    chosen = g[(want[:, None] - g[None]).abs().argmin(1)]
    labels = torch.empty(x.shape[0], dtype=torch.long)
    was_training = model.training
    model.eval()
    try:
        for lam in chosen.unique():
            idx = (chosen == lam).nonzero()[:, 0]
            with lam_of(model, float(lam)):
                labels[idx] = torch.cat([model(x[idx[i : i + batch]]).argmax(1)
                                         for i in range(0, idx.numel(), batch)])
    finally:
        model.train(was_training)
    return labels, chosen


def pgd_linf(model: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int = 10, alpha: float | None = None,
             seed: int = 0) -> Tensor:
    r"""``l_inf`` projected gradient ascent on the cross-entropy (Madry et al., ICLR 2018),
    with gradients through every unrolled FISTA step of the CSC layers: ``x_adv`` with
    ``||x_adv - x||_inf <= eps`` and values in ``[0, 1]``, from a random start in the ball."""
    _check_data(x, y)
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"argument 'eps' must be finite and >= 0, got {eps}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"argument 'steps' must be an integer >= 1, got {steps!r}")
    alpha = 2.5 * eps / steps if alpha is None else float(alpha)
    g = torch.Generator(device=x.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        delta = (torch.rand(x.shape, generator=g, dtype=x.dtype, device=x.device) * 2 - 1) * eps
        x_adv = (x + delta).clamp(0, 1).detach()
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1).detach()
    finally:
        model.train(was_training)
    return x_adv


@dataclass
class RobustnessStudy:
    """The results of :func:`robustness_study`; ``rows`` hold, per corruption and severity
    (severity 0: clean), the test accuracy of the baseline, of SDNet at the training ``lam``,
    at every ``lam`` of the grid, at the best ``lam`` (oracle) and with the label-free choice,
    and the mean residual at ``probe_lam``; ``fits`` are the validation-set fits per corruption
    type (over its severities and the clean set), ``pooled`` the single fit over all sets."""

    train_lam: float
    probe_lam: float
    lams: list[float]
    rows: list[dict] = field(default_factory=list)
    fits: dict[str, ResidualLamFit] = field(default_factory=dict)
    pooled: ResidualLamFit | None = None

    def oracle_gain(self) -> float:
        """Sum over the corrupted sets of (best-``lam`` accuracy - training-``lam`` accuracy)."""
        return sum(r["best_accuracy"] - r["sdnet"] for r in self.rows if r["severity"] > 0)

    def adaptive_gain(self) -> float:
        """Sum over the corrupted sets of (label-free accuracy - training-``lam`` accuracy)."""
        return sum(r["adaptive"] - r["sdnet"] for r in self.rows if r["severity"] > 0)

    def recovered(self) -> float:
        """Share of the oracle gain the label-free choice recovers."""
        oracle = self.oracle_gain()
        return self.adaptive_gain() / oracle if oracle > 0 else float("nan")

    def to_dict(self) -> dict:
        def record(f: ResidualLamFit | None) -> dict | None:
            return None if f is None else {"a": f.a, "b": f.b, "r2": f.r2, "lo": f.lo, "hi": f.hi}

        return {"train_lam": self.train_lam, "probe_lam": self.probe_lam, "lams": self.lams,
                "rows": self.rows, "fits": {k: record(f) for k, f in self.fits.items()},
                "pooled": record(self.pooled),
                "oracle_gain": self.oracle_gain(), "adaptive_gain": self.adaptive_gain(),
                "recovered": self.recovered()}


def robustness_study(model: SDNet, baseline: nn.Module | None, x_val: Tensor, y_val: Tensor, x_test: Tensor,
                     y_test: Tensor, lams: Sequence[float],
                     corruptions: Sequence[str] = ("gaussian", "shot", "speckle", "impulse"),
                     severities: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0,
                     probe_lam: float | None = None, batch: int = 512,
                     progress: bool = True) -> RobustnessStudy:
    """Sweep ``lam`` over ``lams`` on every corrupted validation and test set, fit the residual
    at ``probe_lam`` (default: the training ``lam``) to the best validation ``lam``
    (:class:`ResidualLamFit`, one per corruption type, see the module note), and measure the
    label-free choice on the test sets (clean test set: with the pooled fit). Corruptions
    are :func:`stablerecon.data.corrupt` with seeds derived from ``seed`` (validation and test
    drawn independently)."""
    from tqdm.auto import tqdm

    from ..data.corruptions import corrupt

    _check_data(x_val, y_val)
    _check_data(x_test, y_test)
    lams = _check_lams(lams)
    train_lam = model.first_csc.lam
    probe = train_lam if probe_lam is None else _check_lams([probe_lam])[0]
    settings = [("clean", 0)] + [(c, s) for c in corruptions for s in severities]
    study = RobustnessStudy(train_lam, probe, lams)
    pairs = []
    for k, (kind, sev) in enumerate(tqdm(settings, desc="lam sweep", disable=not progress)):
        xv = x_val if sev == 0 else corrupt(x_val, kind, sev, seed=seed + 2 * k)
        xt = x_test if sev == 0 else corrupt(x_test, kind, sev, seed=seed + 2 * k + 1)
        acc_val = lam_sweep(model, xv, y_val, lams, batch).float().mean(1)
        acc_test = lam_sweep(model, xt, y_test, lams, batch).float().mean(1)
        res_val = float(residuals(model, xv, probe, batch).mean())
        pairs.append((res_val, lams[int(acc_val.argmax())]))
        with lam_of(model, train_lam):
            own = float(_correct(model.eval(), xt, y_test, batch).float().mean())
        row = {"corruption": kind, "severity": sev, "sdnet": own,
               "by_lam": [float(a) for a in acc_test], "best_lam": lams[int(acc_test.argmax())],
               "best_accuracy": float(acc_test.max()), "best_lam_val": lams[int(acc_val.argmax())],
               "residual": float(residuals(model, xt, probe, batch).mean()), "_x": xt}
        if baseline is not None:
            row["baseline"] = float(_correct(baseline.eval(), xt, y_test, batch).float().mean())
        study.rows.append(row)
    study.pooled = ResidualLamFit.fit([p[0] for p in pairs], [p[1] for p in pairs])
    for kind in corruptions:
        own = [p for p, r in zip(pairs, study.rows, strict=True) if r["corruption"] in (kind, "clean")]
        study.fits[kind] = ResidualLamFit.fit([p[0] for p in own], [p[1] for p in own])
    for row in study.rows:
        fit = study.fits.get(row["corruption"], study.pooled)
        labels, chosen = adaptive_predict(model, row.pop("_x"), fit, probe, lams, batch)
        row["adaptive"] = float((labels == y_test).float().mean())
        row["adaptive_lam_mean"] = float(chosen.mean())
    return study
