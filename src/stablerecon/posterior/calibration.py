r"""Diagnostics of posterior samples: calibration, SBC, posterior and re-simulation errors.

Posterior quality is measured, not shown. With posterior samples ``x^(s) ~ q(x | y_i)`` for
test pairs ``(x_i, y_i)`` drawn from the joint:

- :func:`calibration_curve` / :func:`calibration_error`: the calibration error of Ardizzone et
  al. (ICLR 2019, Sec. 4.2): for each level ``q`` the central ``q``-interval of every marginal
  of the samples, ``e_cal(q) = inlier fraction - q``; the median ``|e_cal|`` over ``q``, the
  value at 68%, and the median width of the 68% intervals as sharpness;
- :func:`sbc_ranks` / :func:`sbc_test`: simulation-based calibration (Talts et al. 2018):
  the rank of ``x_i`` among its posterior samples is uniform when ``q`` is the posterior;
  tested by Kolmogorov-Smirnov on randomised ranks;
- :func:`posterior_error`: ``Err_post``, the MMD between samples and reference posterior
  samples (e.g. rejection ABC), averaged over test points;
- :func:`resimulation_error`: ``Err_resim``, the mean squared error between ``y`` and the
  forward model applied to the posterior samples;
- :func:`map_estimate`: the posterior mode by mean-shift on the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from .mmd import DEFAULT_WIDTHS, mmd

__all__ = ["CalibrationResult", "calibration_curve", "calibration_error", "sbc_ranks", "sbc_test",
           "posterior_error", "resimulation_error", "map_estimate"]

LEVELS = np.round(np.arange(0.01, 1.0, 0.01), 2)


def _samples_and_truth(samples: object, truth: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(samples, torch.Tensor) or not isinstance(truth, torch.Tensor):
        raise TypeError("arguments 'samples' and 'truth' must be torch.Tensors")
    if samples.ndim != 3:
        raise ValueError(f"argument 'samples' must have shape (N tests, S samples, D), "
                         f"got {tuple(samples.shape)}")
    if truth.ndim != 2 or truth.shape[0] != samples.shape[0] or truth.shape[1] != samples.shape[2]:
        raise ValueError(f"argument 'truth' must have shape (N, D) = ({samples.shape[0]}, "
                         f"{samples.shape[2]}), got {tuple(truth.shape)}")
    if samples.shape[1] < 2:
        raise ValueError(f"argument 'samples' needs at least 2 samples per test, got {samples.shape[1]}")
    for name, t in (("samples", samples), ("truth", truth)):
        if not torch.isfinite(t).all():
            raise ValueError(f"argument '{name}' contains NaN or Inf values")
    return samples.detach().double(), truth.detach().double()


@dataclass
class CalibrationResult:
    """The calibration curve and its summaries (:func:`calibration_error`).

    Attributes: ``levels`` (the ``q``), ``errors`` (``e_cal(q)``), ``median_abs`` (median of
    ``|e_cal|``), ``at_68`` (``e_cal(0.68)``), ``sharpness`` (median width of the 68% central
    intervals, in the units of ``x``).
    """

    levels: np.ndarray
    errors: np.ndarray
    median_abs: float
    at_68: float
    sharpness: float

    def figure(self, title: str | None = None):  # noqa: ANN201 - matplotlib figure
        """The calibration curve: inlier fraction against ``q``, with the diagonal."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4), constrained_layout=True)
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        ax.plot(self.levels, self.levels + self.errors, lw=1.5)
        ax.set(xlabel="q (central interval level)", ylabel="fraction of truths inside",
               title=title or f"median |e_cal| = {self.median_abs:.3f}")
        return fig


def calibration_curve(samples: torch.Tensor, truth: torch.Tensor,
                      levels: Sequence[float] | np.ndarray = LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """``(levels, e_cal)``: for each ``q`` the fraction of marginals ``truth[i, d]`` inside the
    central ``q``-interval of ``samples[i, :, d]``, minus ``q``.

    Args:
        samples: posterior samples ``(N, S, D)`` for ``N`` test points.
        truth: the true ``x`` ``(N, D)`` of each test point.
        levels: interval levels in ``(0, 1)``.
    """
    samples, truth = _samples_and_truth(samples, truth)
    levels = np.asarray(levels, dtype=float)
    if levels.ndim != 1 or not ((levels > 0) & (levels < 1)).all():
        raise ValueError("argument 'levels' must be numbers in (0, 1)")
    q = torch.as_tensor(levels, dtype=torch.float64)
    lo = torch.quantile(samples, (0.5 - q / 2), dim=1)  # (L, N, D)
    hi = torch.quantile(samples, (0.5 + q / 2), dim=1)
    inside = ((truth >= lo) & (truth <= hi)).double().mean(dim=(1, 2)).numpy()
    return levels, inside - levels


def calibration_error(samples: torch.Tensor, truth: torch.Tensor) -> CalibrationResult:
    """The paper's calibration summary over ``q = 0.01 .. 0.99`` (see the module docs)."""
    levels, errors = calibration_curve(samples, truth)
    s, _ = _samples_and_truth(samples, truth)
    widths = torch.quantile(s, 0.84, dim=1) - torch.quantile(s, 0.16, dim=1)
    at = int(np.argmin(np.abs(levels - 0.68)))
    return CalibrationResult(levels, errors, float(np.median(np.abs(errors))), float(errors[at]),
                             float(widths.median()))


def sbc_ranks(samples: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Ranks ``(N, D)`` of each ``truth[i, d]`` among its ``S`` samples (number of samples below
    it): uniform on ``{0, ..., S}`` when the samples are exact posterior draws and the test
    pairs come from the joint (Talts et al., "Validating Bayesian inference algorithms with
    simulation-based calibration", 2018)."""
    samples, truth = _samples_and_truth(samples, truth)
    return (samples < truth.unsqueeze(1)).sum(dim=1).numpy()


def sbc_test(samples: torch.Tensor, truth: torch.Tensor, seed: int = 0) -> tuple[float, np.ndarray]:
    """Kolmogorov-Smirnov test of uniform SBC ranks: ``(smallest p-value over dimensions,
    p-value per dimension)``. Ranks are randomised within their cell, ``(r + U) / (S + 1)``,
    which is exactly ``U(0, 1)`` under calibration."""
    ranks = sbc_ranks(samples, truth)
    s = samples.shape[1]
    u = (ranks + np.random.default_rng(seed).random(ranks.shape)) / (s + 1)
    pvalues = np.array([stats.kstest(u[:, d], "uniform").pvalue for d in range(u.shape[1])])
    return float(pvalues.min()), pvalues


def posterior_error(samples: torch.Tensor, reference: torch.Tensor,
                    widths: Sequence[float] = DEFAULT_WIDTHS) -> float:
    """``Err_post``: the (unbiased) squared MMD between ``samples`` ``(N, S, D)`` and reference
    posterior samples ``(N, R, D)`` of the same ``N`` test points, averaged over them."""
    if samples.ndim != 3 or reference.ndim != 3 or samples.shape[0] != reference.shape[0] \
            or samples.shape[2] != reference.shape[2]:
        raise ValueError(f"arguments 'samples' {tuple(samples.shape)} and 'reference' "
                         f"{tuple(reference.shape)} must be (N, S, D) and (N, R, D)")
    values = [float(mmd(samples[i].double(), reference[i].double(), widths)) for i in range(samples.shape[0])]
    return float(np.mean(values))


def resimulation_error(samples: torch.Tensor, y: torch.Tensor,
                       forward: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """``Err_resim``: mean over test points and samples of ``||forward(x^(s)) - y_i||^2``, for
    samples ``(N, S, D)`` and observations ``y`` ``(N, M)``; ``forward`` maps ``(K, D)`` to
    ``(K, M)`` (the noise-free simulator)."""
    if samples.ndim != 3 or y.ndim != 2 or y.shape[0] != samples.shape[0]:
        raise ValueError(f"arguments 'samples' {tuple(samples.shape)} and 'y' {tuple(y.shape)} must be "
                         "(N, S, D) and (N, M)")
    n, s, d = samples.shape
    with torch.no_grad():
        sim = forward(samples.reshape(n * s, d)).reshape(n, s, -1)
    return float((sim - y.unsqueeze(1)).pow(2).sum(-1).mean())


def map_estimate(samples: torch.Tensor, bandwidth: float | None = None,
                 iterations: int = 100) -> torch.Tensor:
    """The posterior mode of each test point by Gaussian mean-shift on its samples ``(N, S, D)``
    (started from every sample; the mode with most samples converging to it, i.e. the highest
    kernel density). ``bandwidth`` defaults to Scott's rule per test point. Returns ``(N, D)``."""
    if samples.ndim != 3:
        raise ValueError(f"argument 'samples' must have shape (N, S, D), got {tuple(samples.shape)}")
    out = []
    for pts in samples.detach().double():
        s, d = pts.shape
        h = bandwidth if bandwidth is not None else float(pts.std(0).mean()) * s ** (-1 / (d + 4))
        h = max(h, 1e-12)
        x = pts.clone()
        for _ in range(iterations):
            w = torch.exp(-(x.unsqueeze(1) - pts.unsqueeze(0)).pow(2).sum(-1) / (2 * h * h))
            x = (w @ pts) / w.sum(1, keepdim=True)
        density = torch.exp(-(x.unsqueeze(1) - pts.unsqueeze(0)).pow(2).sum(-1) / (2 * h * h)).sum(1)
        out.append(x[int(density.argmax())])
    return torch.stack(out).to(samples.dtype)
