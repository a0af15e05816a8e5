r"""Test-time robustness of SDNet: turning the first CSC layer's ``lam`` to the noise.

SDNet's CSC layer solves ``min_{c >= 0} lam ||c||_1 + 1/2 ||x - D c||^2``; noise that the
dictionary does not explain is left in the residual ``r = x - D c``, and a larger ``lam`` leaves
more of it out of the code. Dai et al. (NeurIPS 2022, Sec. 4.3) sweep ``lam`` on corrupted test
sets, see the best ``lam`` rise with the noise, and fit the best ``lam`` as a function of the
layer's reconstruction residual, a statistic that needs no labels. This module does the same:

- :func:`lam_sweep`: accuracy for every ``lam`` of a grid (per-sample correctness);
- :func:`residuals`: a per-sample statistic of the first CSC layer's residual, either its
  ``"noise"`` level (:func:`noise_level`, the default) or its mean square ``"energy"``;
- :class:`ResidualLamFit`: least squares ``lam = a + b log(statistic)`` from (typical statistic
  at a probe ``lam``, best ``lam``) pairs of several corrupted sets, with its ``R^2``;
- :func:`adaptive_predict`: labels with ``lam`` chosen per sample from the fit (no labels used);
- :func:`pgd_linf`: an ``l_inf`` PGD attack through the full unrolled network (Madry et al. 2018);
- :func:`robustness_study`: all of it for a corruption x severity grid, fit on a validation
  split and measured on a test split, with the conv baseline beside it.

Which statistic of the residual? Its mean square (``"energy"``) mixes two things: the image
content that the ``l1`` penalty shrinks away, which is smooth and scales with the image, and
the noise that the dictionary leaves out, which is white. Per set the mean square still
follows the noise (the paper fits one line per noise type), but per sample the content term
dominates: on the digits it varies from image to image as much as the set means vary with
the noise, and the clipped Gaussian noise even lowers it (dark backgrounds lose contrast).
The ``"noise"`` statistic keeps only the white part: the robust standard deviation
``median |Laplacian r| / (0.6745 sqrt(20))`` of the residual's 5-point Laplacian, which is
zero on linear ramps and equals ``sigma`` on white Gaussian noise of standard deviation
``sigma`` (the median-absolute-deviation rule of Donoho & Johnstone 1994 on a Laplacian
high-pass, as in Immerkaer's noise estimate, 1996). It predicts the best ``lam`` per sample
and across noise types, so one pooled fit serves every noise and the choice needs neither the
label nor the corruption type (``benchmarks/csc.py`` measures both statistics side by side).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .csc import SDNet

__all__ = [
    "STATISTICS",
    "lam_of",
    "noise_level",
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


#: Per-sample statistics of the residual that :func:`residuals` computes.
STATISTICS: tuple[str, ...] = ("noise", "energy")

_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
#: ``median |Laplacian z|`` for white standard normal ``z``: 0.6745 (the normal's MAD) times
#: the Laplacian's gain ``sqrt(1 + 1 + 1 + 1 + 16)``.
_MAD_SCALE = 0.6744897501960817 * math.sqrt(20.0)


def noise_level(r: Tensor) -> Tensor:
    """Robust estimate ``(N,)`` of the standard deviation of white noise in ``r`` ``(N, C, H, W)``
    (``H, W >= 3``): ``median |Laplacian r| / (0.6745 sqrt(20))`` over the interior pixels of
    all channels, with the 5-point Laplacian. Exact zero on any linear ramp; ``sigma`` (up to
    sampling error) on white Gaussian noise of standard deviation ``sigma``; see the module
    note for why the CSC residual is measured this way."""
    if not isinstance(r, Tensor) or r.ndim != 4 or not r.is_floating_point() or min(r.shape[-2:]) < 3:
        got = f"{tuple(r.shape)} {r.dtype}" if isinstance(r, Tensor) else type(r).__name__
        raise ValueError(f"argument 'r' must be a real floating tensor (N, C, H, W) with H, W >= 3, "
                         f"got {got}")
    kernel = torch.tensor(_LAPLACIAN, dtype=r.dtype, device=r.device)[None, None]
    high = F.conv2d(r.reshape(-1, 1, *r.shape[-2:]), kernel)  # interior pixels only
    return high.reshape(r.shape[0], -1).abs().median(1).values / _MAD_SCALE


def _check_statistic(statistic: object) -> str:
    if statistic not in STATISTICS:
        raise ValueError(f"argument 'statistic' must be one of {STATISTICS}, got {statistic!r}")
    return str(statistic)


@torch.no_grad()
def residuals(model: SDNet, x: Tensor, lam: float | None = None, batch: int = 512,
              statistic: str = "noise") -> Tensor:
    """Per-sample statistic ``(N,)`` of the first CSC layer's residual ``r = x - D c(x)`` at
    ``lam`` (default: the layer's current one), on the network's normalised input:
    ``"noise"``, its white-noise level :func:`noise_level` (standard deviations of the
    normalised input), or ``"energy"``, its mean square ``||r||^2 / numel``."""
    _check_data(x)
    statistic = _check_statistic(statistic)
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


@contextmanager
def _eval_mode(*models: nn.Module | None) -> Iterator[None]:
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
def _correct(model: nn.Module, x: Tensor, y: Tensor, batch: int) -> Tensor:
    out = []
    for i in range(0, x.shape[0], batch):
        out.append(model(x[i : i + batch]).argmax(1) == y[i : i + batch])
    return torch.cat(out)


def lam_sweep(model: SDNet, x: Tensor, y: Tensor, lams: Sequence[float], batch: int = 512) -> Tensor:
    """Correctness ``(len(lams), N)`` (bool) of ``model`` on ``x`` with the first CSC layer's
    ``lam`` set to each value of ``lams``; ``.float().mean(1)`` is the accuracy per ``lam``."""
    _check_data(x, y)
    rows = []
    with _eval_mode(model):
        for lam in _check_lams(lams):
            with lam_of(model, lam):
                rows.append(_correct(model, x, y, batch))
    return torch.stack(rows)


@dataclass(frozen=True)
class ResidualLamFit:
    """``lam(r) = a + b log r``, clipped to ``[lo, hi]``: the best ``lam`` as a function of a
    residual statistic ``r`` (:func:`residuals`) at a probe ``lam``; ``r2`` is the fit's
    coefficient of determination on the pairs it was fitted to."""

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
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
        return cls(float(coef[0]), float(coef[1]), float(lam.min()), float(lam.max()), r2)

    def __call__(self, residual: Tensor) -> Tensor:
        """``lam`` for each residual ``(N,)``."""
        return (self.a + self.b * residual.double().clamp_min(1e-30).log()).clamp(self.lo, self.hi)


def _typical(statistic: Tensor) -> float:
    """Geometric mean of positive per-sample statistics (the set's typical value on a log scale)."""
    return float(statistic.double().clamp_min(1e-30).log().mean().exp())


def _nearest(grid: Tensor, want: Tensor) -> Tensor:
    """Index into ``grid`` of the value nearest to each of ``want``."""
    return (want.double()[:, None] - grid.double()[None]).abs().argmin(1)


@torch.no_grad()
def adaptive_predict(model: SDNet, x: Tensor, fit: ResidualLamFit, probe_lam: float,
                     grid: Sequence[float], batch: int = 512,
                     statistic: str = "noise") -> tuple[Tensor, Tensor]:
    """Labels ``(N,)`` and the chosen ``lam`` ``(N,)`` per sample, without labels: the residual
    ``statistic`` at ``probe_lam`` (:func:`residuals`; the one ``fit`` was made with) gives
    ``lam = fit(statistic)``, rounded to the nearest value of ``grid`` (so that samples with
    the same ``lam`` run as one batch)."""
    _check_data(x)
    g = torch.as_tensor(_check_lams(grid), dtype=torch.float64)
    chosen = g[_nearest(g, fit(residuals(model, x, probe_lam, batch, statistic)))]
    labels = torch.empty(x.shape[0], dtype=torch.long)
    with _eval_mode(model):
        for lam in chosen.unique():
            idx = (chosen == lam).nonzero()[:, 0]
            with lam_of(model, float(lam)):
                labels[idx] = torch.cat([model(x[idx[i : i + batch]]).argmax(1)
                                         for i in range(0, idx.numel(), batch)])
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
    with _eval_mode(model):
        delta = (torch.rand(x.shape, generator=g, dtype=x.dtype, device=x.device) * 2 - 1) * eps
        x_adv = (x + delta).clamp(0, 1).detach()
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1).detach()
    return x_adv


@dataclass
class RobustnessStudy:
    """The results of :func:`robustness_study`.

    ``rows`` hold, per corruption and severity (severity 0: clean), the test accuracy of the
    baseline, of SDNet at the training ``lam``, at every ``lam`` of the grid (``by_lam``), at
    the best ``lam`` (oracle), the label-free choice of the study's ``statistic`` and
    ``fit_by`` (``adaptive``, run with :func:`adaptive_predict`), and, in ``adaptive_by``, the
    label-free accuracy for every statistic of :data:`STATISTICS` and both kinds of fit (keys
    ``"noise/pooled"``, ``"energy/corruption"``, ...; read off the test sweep), with the typical
    (geometric-mean) statistic of the test set in ``residual`` and of the validation set, for
    every statistic, in ``residual_val``. ``fits[statistic]`` holds the
    validation-set fits: ``"pooled"`` over all sets, and one per corruption type (over its
    severities and the clean set)."""

    train_lam: float
    probe_lam: float
    lams: list[float]
    statistic: str = "noise"
    fit_by: str = "pooled"
    rows: list[dict] = field(default_factory=list)
    fits: dict[str, dict[str, ResidualLamFit]] = field(default_factory=dict)

    def fit_for(self, corruption: str, statistic: str | None = None,
                fit_by: str | None = None) -> ResidualLamFit:
        """The fit that chooses ``lam`` on a set of ``corruption`` (the pooled one for the clean set)."""
        fits = self.fits[statistic or self.statistic]
        return fits["pooled"] if (fit_by or self.fit_by) == "pooled" else fits.get(corruption, fits["pooled"])

    def oracle_gain(self) -> float:
        """Sum over the corrupted sets of (best-``lam`` accuracy - training-``lam`` accuracy)."""
        return sum(r["best_accuracy"] - r["sdnet"] for r in self.rows if r["severity"] > 0)

    def adaptive_gain(self, statistic: str | None = None, fit_by: str | None = None) -> float:
        """Sum over the corrupted sets of (label-free accuracy - training-``lam`` accuracy), for
        the study's own choice (default) or another statistic / kind of fit."""
        if statistic is None and fit_by is None:
            return sum(r["adaptive"] - r["sdnet"] for r in self.rows if r["severity"] > 0)
        key = f"{statistic or self.statistic}/{fit_by or self.fit_by}"
        return sum(r["adaptive_by"][key] - r["sdnet"] for r in self.rows if r["severity"] > 0)

    def recovered(self, statistic: str | None = None, fit_by: str | None = None) -> float:
        """Share of the oracle gain that the label-free choice recovers."""
        oracle = self.oracle_gain()
        return self.adaptive_gain(statistic, fit_by) / oracle if oracle > 0 else float("nan")

    def figure(self, statistic: str | None = None) -> Any:
        """A matplotlib figure (built without pyplot): test accuracy against ``lam`` for every
        corruption, one line per severity (the best ``lam`` marked), and the validation sets'
        typical residual ``statistic`` against their best ``lam`` with the pooled fit."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        statistic = _check_statistic(statistic or self.statistic)
        kinds = list(dict.fromkeys(r["corruption"] for r in self.rows if r["severity"] > 0))
        fig = Figure(figsize=(3.0 * (len(kinds) + 1), 3.0), layout="constrained")
        axes = fig.subplots(1, len(kinds) + 1, sharey=False)
        clean = next((r for r in self.rows if r["severity"] == 0), None)
        top = max((r["severity"] for r in self.rows), default=1)
        colours = colormaps["viridis"]
        for ax, kind in zip(axes, kinds, strict=False):
            if clean is not None:
                ax.plot(self.lams, clean["by_lam"], color="0.5", ls="--", lw=1, label="clean")
            for r in (r for r in self.rows if r["corruption"] == kind):
                c = colours(0.9 * (r["severity"] - 1) / max(top - 1, 1))
                ax.plot(self.lams, r["by_lam"], color=c, lw=1.2, label=f"severity {r['severity']}")
                ax.plot([r["best_lam"]], [r["best_accuracy"]], "o", color=c, ms=4)
            ax.axvline(self.train_lam, color="tab:red", ls=":", lw=1)
            ax.set(title=kind, xlabel="lam", ylabel="test accuracy", ylim=(0, 1.02))
        axes[0].legend(fontsize=6)
        ax = axes[-1]
        markers = dict(zip(["clean", *kinds], "os^vDP*X", strict=False))
        for r in self.rows:
            ax.plot([r["residual_val"][statistic]], [r["best_lam_val"]], markers.get(r["corruption"], "o"),
                    color=colours(0.9 * (r["severity"] - 1) / max(top - 1, 1)) if r["severity"] else "0.5",
                    ms=5, label=r["corruption"] if r["severity"] in (0, 1) else None)
        fit = self.fits[statistic]["pooled"]
        values = torch.tensor([r["residual_val"][statistic] for r in self.rows], dtype=torch.float64)
        line = torch.logspace(math.log10(float(values.min())), math.log10(float(values.max())), 50,
                              dtype=torch.float64)
        ax.plot(line.numpy(), fit(line).numpy(), color="k", lw=1, label=f"pooled fit, R$^2$ {fit.r2:.2f}")
        ax.set(xscale="log", xlabel=f"residual {statistic} (validation, typical)", ylabel="best lam",
               title=f"label-free: {self.recovered(statistic, 'pooled'):.0%} of oracle gain")
        ax.legend(fontsize=6)
        return fig

    def to_dict(self) -> dict:
        def record(f: ResidualLamFit) -> dict:
            return {"a": f.a, "b": f.b, "r2": f.r2, "lo": f.lo, "hi": f.hi}

        return {"train_lam": self.train_lam, "probe_lam": self.probe_lam, "lams": self.lams,
                "statistic": self.statistic, "fit_by": self.fit_by, "rows": self.rows,
                "fits": {s: {k: record(f) for k, f in fits.items()} for s, fits in self.fits.items()},
                "oracle_gain": self.oracle_gain(), "adaptive_gain": self.adaptive_gain(),
                "recovered": self.recovered(),
                "recovered_by": {f"{s}/{b}": self.recovered(s, b) for s in self.fits
                                 for b in ("pooled", "corruption")}}


def robustness_study(model: SDNet, baseline: nn.Module | None, x_val: Tensor, y_val: Tensor, x_test: Tensor,
                     y_test: Tensor, lams: Sequence[float],
                     corruptions: Sequence[str] = ("gaussian", "shot", "speckle", "impulse"),
                     severities: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0,
                     probe_lam: float | None = None, statistic: str = "noise", fit_by: str = "pooled",
                     batch: int = 512, progress: bool = True) -> RobustnessStudy:
    """Sweep ``lam`` over ``lams`` on every corrupted validation and test set, fit the residual
    ``statistic`` at ``probe_lam`` (default: the training ``lam``) to the best validation
    ``lam`` (:class:`ResidualLamFit`; ``fit_by="pooled"``: one fit over all sets, so the choice
    needs neither labels nor the corruption type; ``"corruption"``: one fit per type, the
    paper's procedure), and measure the label-free choice on the test sets. Corruptions are
    :func:`stablerecon.data.corrupt` with seeds derived from ``seed`` (validation and test
    drawn independently). Every statistic of :data:`STATISTICS` is fitted and scored too
    (``RobustnessStudy.recovered(statistic, fit_by)``)."""
    from tqdm.auto import tqdm

    from ..data.corruptions import corrupt

    _check_data(x_val, y_val)
    _check_data(x_test, y_test)
    lams = _check_lams(lams)
    statistic = _check_statistic(statistic)
    if fit_by not in ("pooled", "corruption"):
        raise ValueError(f"argument 'fit_by' must be 'pooled' or 'corruption', got {fit_by!r}")
    train_lam = model.first_csc.lam
    probe = train_lam if probe_lam is None else _check_lams([probe_lam])[0]
    with _eval_mode(model, baseline):  # restored afterwards
        settings = [("clean", 0)] + [(c, s) for c in corruptions for s in severities]
        study = RobustnessStudy(train_lam, probe, lams, statistic, fit_by)
        grid = torch.tensor(lams, dtype=torch.float64)
        pairs: dict[str, list[tuple[float, float]]] = {s: [] for s in STATISTICS}
        sets = []
        for k, (kind, sev) in enumerate(tqdm(settings, desc="lam sweep", disable=not progress)):
            xv = x_val if sev == 0 else corrupt(x_val, kind, sev, seed=seed + 2 * k)
            xt = x_test if sev == 0 else corrupt(x_test, kind, sev, seed=seed + 2 * k + 1)
            acc_val = lam_sweep(model, xv, y_val, lams, batch).float().mean(1)
            correct = lam_sweep(model, xt, y_test, lams, batch)
            acc_test = correct.float().mean(1)
            stats_test = {}
            best_val = lams[int(acc_val.argmax())]
            for s in STATISTICS:
                pairs[s].append((_typical(residuals(model, xv, probe, batch, s)), best_val))
                stats_test[s] = residuals(model, xt, probe, batch, s)
            with lam_of(model, train_lam):
                own = float(_correct(model, xt, y_test, batch).float().mean())
            row = {"corruption": kind, "severity": sev, "sdnet": own,
                   "by_lam": [float(a) for a in acc_test], "best_lam": lams[int(acc_test.argmax())],
                   "best_accuracy": float(acc_test.max()), "best_lam_val": best_val,
                   "residual": _typical(stats_test[statistic]),
                   "residual_val": {s: pairs[s][-1][0] for s in STATISTICS}}
            if baseline is not None:
                row["baseline"] = float(_correct(baseline, xt, y_test, batch).float().mean())
            study.rows.append(row)
            sets.append((xt, correct, stats_test))
        for s in STATISTICS:
            study.fits[s] = {"pooled": ResidualLamFit.fit([p[0] for p in pairs[s]], [p[1] for p in pairs[s]])}
            for kind in corruptions:
                own = [p for p, r in zip(pairs[s], study.rows, strict=True)
                       if r["corruption"] in (kind, "clean")]
                study.fits[s][kind] = ResidualLamFit.fit([p[0] for p in own], [p[1] for p in own])
        for row, (xt, correct, stats_test) in zip(study.rows, sets, strict=True):
            labels, chosen = adaptive_predict(model, xt, study.fit_for(row["corruption"]), probe, lams, batch,
                                              statistic)
            row["adaptive"] = float((labels == y_test).float().mean())
            row["adaptive_lam_mean"] = float(chosen.mean())
            row["adaptive_by"] = {}
            for s in STATISTICS:
                for by in ("pooled", "corruption"):
                    pick = _nearest(grid, study.fit_for(row["corruption"], s, by)(stats_test[s]))
                    hit = correct[pick, torch.arange(correct.shape[1])]
                    row["adaptive_by"][f"{s}/{by}"] = float(hit.float().mean())
        return study
