r"""Figures of posterior samples (matplotlib; nothing is shown on screen).

- :func:`corner_plot`: pairwise scatter plots (or 2-D histograms) of samples below the diagonal
  and 1-D histograms on it, with reference samples (e.g. rejection ABC) and the truth overlaid;
- :func:`scatter_modes`: 2-D posterior samples of the 8-mode mixture coloured per observed label,
  with the modes' 3-sigma circles (Ardizzone et al., ICLR 2019, Fig. 2);
- :func:`sbc_histogram`: the histogram of simulation-based calibration ranks with the uniform
  expectation and its pointwise binomial 99% band (Talts et al. 2018, Fig. 1);
- :func:`arm_figure`: arms of the inverse-kinematics problem drawn from posterior samples, with
  the observed end point marked (Ardizzone et al., ICLR 2019, Fig. 5).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so no global
figure state is kept (no need to close it); save it with ``fig.savefig(path)``. Array arguments
may be ``torch.Tensor`` or ``numpy`` arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import matplotlib
import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from scipy import stats

from ..validation import choice, positive_float, positive_int
from .problems import GaussianMixture, InverseKinematics

__all__ = ["corner_plot", "scatter_modes", "sbc_histogram", "arm_figure"]

SAMPLE_COLOUR = "tab:blue"
REFERENCE_COLOUR = "tab:orange"
TRUTH_COLOUR = "black"


def _array(value: object, name: str, ndim: int, cols: int | None = None, min_rows: int = 1) -> np.ndarray:
    """``value`` as a finite float64 array of ``ndim`` dimensions (``(rows, cols)`` for 2-D)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu", torch.float64).numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"argument '{name}' must be a torch.Tensor or numpy array, "
                        f"got {type(value).__name__}")
    if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool) or np.iscomplexobj(value):
        raise TypeError(f"argument '{name}' must hold real numbers, got dtype {value.dtype}")
    expected = {1: "(n,)", 2: f"(n, {'d' if cols is None else cols})"}.get(ndim, f"{ndim} dimensions")
    if value.ndim != ndim or (cols is not None and value.shape[-1] != cols):
        raise ValueError(f"argument '{name}' must have shape {expected}, got {value.shape}")
    if value.shape[0] < min_rows:
        raise ValueError(f"argument '{name}' needs at least {min_rows} rows, got {value.shape[0]}")
    value = value.astype(np.float64)
    if not np.isfinite(value).all():
        raise ValueError(f"argument '{name}' contains NaN or Inf values")
    return value


def _alpha(n: int) -> float:
    """Marker/line transparency that keeps ``n`` overlapping items readable."""
    return float(np.clip(100.0 / max(n, 1), 0.15, 0.8))


def corner_plot(samples: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray | None = None,
                reference: torch.Tensor | np.ndarray | None = None, labels: Sequence[str] | None = None,
                bins: int = 40, kind: Literal["scatter", "hist"] = "scatter",
                title: str | None = None) -> Figure:
    """Pairwise marginals of posterior samples.

    Below the diagonal, panel ``(i, j)`` shows coordinate ``j`` (horizontal) against ``i``
    (vertical): a scatter plot of ``samples`` (``kind="scatter"``, one point per sample), or a
    2-D histogram with ``bins`` bins per axis (``kind="hist"``); ``reference`` samples are
    scattered on top in another colour (or drawn as histogram contours). The diagonal shows the
    1-D histograms (densities) of each coordinate, the reference as a step line. ``truth`` is
    marked by lines on the diagonal and a cross below it. Panels above the diagonal are hidden.

    Args:
        samples: posterior samples ``(n, d)``.
        truth: the true ``x`` ``(d,)``, or ``None``.
        reference: reference posterior samples ``(m, d)`` (e.g. rejection ABC), or ``None``.
        labels: ``d`` axis labels (default ``x_1 .. x_d``).
        bins: histogram bins per axis.
        kind: ``"scatter"`` or ``"hist"`` for the panels below the diagonal.
        title: figure title.

    Examples
    --------
    >>> fig = corner_plot(torch.randn(100, 3), truth=torch.zeros(3), reference=torch.randn(50, 3))
    >>> len(fig.axes), fig.axes[3].collections[0].get_offsets().shape  # panel (1, 0): 100 points
    (9, (100, 2))
    """
    s = _array(samples, "samples", 2, min_rows=2)
    d = s.shape[1]
    if d < 1:
        raise ValueError(f"argument 'samples' must have at least one column, got shape {s.shape}")
    t = None if truth is None else _array(truth, "truth", 1)
    if t is not None and t.shape != (d,):
        raise ValueError(f"argument 'truth' must have shape ({d},), got {t.shape}")
    ref = None if reference is None else _array(reference, "reference", 2, cols=d)
    names = [f"$x_{{{k + 1}}}$" for k in range(d)] if labels is None else list(labels)
    if len(names) != d or not all(isinstance(n, str) for n in names):
        raise ValueError(f"argument 'labels' must be {d} strings, got {labels!r}")
    bins = positive_int(bins, "bins")
    kind = choice(kind, "kind", ("scatter", "hist"))  # type: ignore[assignment]

    both = s if ref is None else np.concatenate([s, ref])
    lo, hi = both.min(0), both.max(0)
    if t is not None:
        lo, hi = np.minimum(lo, t), np.maximum(hi, t)
    pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - pad, hi + pad

    size = min(2.2 * d, 12.0)
    fig = Figure(figsize=(size + 0.5, size + 0.3), layout="constrained")
    axes = fig.subplots(d, d, squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                edges = np.linspace(lo[j], hi[j], bins + 1)
                ax.hist(s[:, j], bins=edges, density=True, color=SAMPLE_COLOUR, alpha=0.6, label="samples")
                if ref is not None:
                    ax.hist(ref[:, j], bins=edges, density=True, histtype="step", color=REFERENCE_COLOUR,
                            lw=1.2, label="reference")
                if t is not None:
                    ax.axvline(t[j], color=TRUTH_COLOUR, lw=1, ls="--")
                ax.set_yticks([])
                ax.set_xlim(lo[j], hi[j])
            else:
                if kind == "scatter":
                    ax.scatter(s[:, j], s[:, i], s=4, color=SAMPLE_COLOUR, alpha=_alpha(len(s)), lw=0,
                               rasterized=True)
                    if ref is not None:
                        ax.scatter(ref[:, j], ref[:, i], s=4, color=REFERENCE_COLOUR, alpha=_alpha(len(ref)),
                                   lw=0, rasterized=True)
                else:
                    ex, ey = np.linspace(lo[j], hi[j], bins + 1), np.linspace(lo[i], hi[i], bins + 1)
                    counts, _, _ = np.histogram2d(s[:, j], s[:, i], bins=(ex, ey))
                    ax.pcolormesh(ex, ey, counts.T, cmap="Blues", rasterized=True)
                    if ref is not None:
                        # coarser bins: reference sets (ABC) are usually small
                        cx = np.linspace(lo[j], hi[j], max(bins // 3, 5) + 1)
                        cy = np.linspace(lo[i], hi[i], max(bins // 3, 5) + 1)
                        rc, _, _ = np.histogram2d(ref[:, j], ref[:, i], bins=(cx, cy))
                        if rc.max() > rc.min():
                            centres_x, centres_y = (cx[1:] + cx[:-1]) / 2, (cy[1:] + cy[:-1]) / 2
                            ax.contour(centres_x, centres_y, rc.T, levels=3, colors=REFERENCE_COLOUR,
                                       linewidths=0.8)
                if t is not None:
                    ax.plot([t[j]], [t[i]], marker="x", color=TRUTH_COLOUR, ms=7, mew=1.5, ls="none")
                ax.set_xlim(lo[j], hi[j])
                ax.set_ylim(lo[i], hi[i])
            if i == d - 1:
                ax.set_xlabel(names[j])
            else:
                ax.tick_params(labelbottom=False)
            if 0 < i and j == 0:
                ax.set_ylabel(names[i])
            elif i != j:
                ax.tick_params(labelleft=False)
    if ref is not None:
        axes[0, 0].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title)
    return fig


def scatter_modes(problem: GaussianMixture,
                  samples_by_label: Mapping[int, torch.Tensor | np.ndarray] | torch.Tensor | np.ndarray,
                  sigma: float = 3.0, title: str | None = None) -> Figure:
    """Posterior samples of the 8-mode mixture, one colour per observed label.

    Each mode is drawn as a circle of radius ``sigma * problem.std`` around its mean, in the
    colour of the label it carries (dashed), so samples of a label should fill exactly the
    circles of that colour.

    Args:
        problem: the :class:`~stablerecon.posterior.problems.GaussianMixture`.
        samples_by_label: ``{label: samples (n, 2)}``, or an array ``(L, n, 2)`` whose row ``l``
            holds the samples for label ``l`` (``L <= problem.dim_y``), e.g. the output of
            ``model.sample(torch.eye(problem.dim_y), n)``.
        sigma: circle radius in mode standard deviations.
        title: axes title.

    Examples
    --------
    >>> problem = GaussianMixture("some")
    >>> fig = scatter_modes(problem, problem.sample_posterior(torch.eye(problem.dim_y), 20, seed=0))
    >>> len(fig.axes[0].collections), len(fig.axes[0].patches)  # 5 labels, 8 mode circles
    (5, 8)
    """
    if not isinstance(problem, GaussianMixture):
        raise TypeError(f"argument 'problem' must be a GaussianMixture, got {type(problem).__name__}")
    if isinstance(samples_by_label, Mapping):
        groups = dict(samples_by_label)
    elif isinstance(samples_by_label, (torch.Tensor, np.ndarray)):
        if samples_by_label.ndim != 3:
            raise ValueError("argument 'samples_by_label' must be a dict {label: (n, 2)} or have shape "
                             f"(L, n, 2), got {tuple(samples_by_label.shape)}")
        groups = dict(enumerate(samples_by_label))
    else:
        raise TypeError("argument 'samples_by_label' must be a dict {label: (n, 2)} or an (L, n, 2) array, "
                        f"got {type(samples_by_label).__name__}")
    if not groups:
        raise ValueError("argument 'samples_by_label' is empty")
    for label in groups:
        integer = isinstance(label, (int, np.integer)) and not isinstance(label, bool)
        if not integer or not 0 <= label < problem.dim_y:
            raise ValueError(f"argument 'samples_by_label': labels must be integers in [0, {problem.dim_y}), "
                             f"got {label!r}")
    arrays = {int(k): _array(v, f"samples_by_label[{k}]", 2, cols=2) for k, v in groups.items()}
    sigma = positive_float(sigma, "sigma")

    cmap = matplotlib.colormaps["tab10"]
    fig = Figure(figsize=(4.6, 4.4), layout="constrained")
    ax = fig.subplots()
    means = problem.means.numpy()
    for mean, label in zip(means, problem.mode_labels.tolist(), strict=True):
        ax.add_patch(Circle(tuple(mean), sigma * problem.std, fill=False, ls="--", lw=1,
                            color=cmap(label % 10)))
    for label, pts in sorted(arrays.items()):
        ax.scatter(pts[:, 0], pts[:, 1], s=4, color=cmap(label % 10), alpha=_alpha(len(pts) / 10), lw=0,
                   label=f"y = {label}", rasterized=True)
    reach = float(np.abs(means).max() + 2 * sigma * problem.std)
    ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title=title or f"posterior samples per label ({problem.labels!r} labels)")
    ax.legend(fontsize=7, markerscale=3, loc="upper right", framealpha=0.8)
    return fig


def sbc_histogram(ranks: torch.Tensor | np.ndarray, n_samples: int, bins: int = 20, level: float = 0.99,
                  labels: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Histogram of simulation-based calibration ranks (Talts et al. 2018), one panel per dimension.

    With ``S = n_samples`` posterior samples per test point, a calibrated posterior gives ranks
    uniform on ``{0, ..., S}``. The ``S + 1`` rank values are split into ``bins`` groups of
    (nearly) equal size at integer boundaries; a bin holding ``k`` of the values then has
    ``Binomial(N, k / (S + 1))`` counts, drawn as its expectation (line) and its central
    ``level`` interval (grey band, pointwise). Choose ``bins`` dividing ``S + 1`` for equal bins.
    Bars too high in the middle mean over-dispersed samples, a U shape under-dispersed (too
    confident) ones, a slope a biased posterior.

    Args:
        ranks: integer ranks ``(N,)`` or ``(N, D)`` in ``[0, n_samples]``, e.g.
            :func:`~stablerecon.posterior.calibration.sbc_ranks`.
        n_samples: the number ``S`` of posterior samples the ranks were computed from.
        bins: number of bins, ``1 <= bins <= S + 1``.
        level: coverage of the band, in ``(0, 1)``.
        labels: a title per dimension (default ``x_1 .. x_D``).
        title: figure title.

    Examples
    --------
    >>> ranks = np.random.default_rng(0).integers(0, 100, size=(500, 2))
    >>> fig = sbc_histogram(ranks, n_samples=99, bins=20)
    >>> [int(sum(b.get_height() for b in ax.containers[0])) for ax in fig.axes]
    [500, 500]
    """
    r = ranks.detach().cpu().numpy() if isinstance(ranks, torch.Tensor) else ranks
    if not isinstance(r, np.ndarray):
        raise TypeError(f"argument 'ranks' must be a torch.Tensor or numpy array, got {type(ranks).__name__}")
    if r.ndim == 1:
        r = r[:, None]
    r = _array(r, "ranks", 2)
    if r.shape[1] < 1:
        raise ValueError(f"argument 'ranks' must have shape (N,) or (N, D), got {r.shape}")
    s = positive_int(n_samples, "n_samples")
    if not np.array_equal(r, np.round(r)) or r.min() < 0 or r.max() > s:
        raise ValueError(f"argument 'ranks' must hold integers in [0, n_samples={s}], "
                         f"got values in [{r.min():g}, {r.max():g}]")
    bins = positive_int(bins, "bins")
    if bins > s + 1:
        raise ValueError(f"argument 'bins' must be <= n_samples + 1 = {s + 1}, got {bins}")
    if not 0 < level < 1:
        raise ValueError(f"argument 'level' must be in (0, 1), got {level!r}")
    dims = r.shape[1]
    names = [f"$x_{{{k + 1}}}$" for k in range(dims)] if labels is None else list(labels)
    if len(names) != dims:
        raise ValueError(f"argument 'labels' must have {dims} entries, got {len(names)}")

    n = r.shape[0]
    edges = np.floor(np.linspace(0, s + 1, bins + 1))  # integer edges; bin b holds [edges[b], edges[b+1])
    edges[-1] = s + 1
    width = np.diff(edges)
    p = width / (s + 1)
    expected = n * p
    lo = stats.binom.ppf((1 - level) / 2, n, p)
    hi = stats.binom.ppf((1 + level) / 2, n, p)
    cols = min(dims, 4)
    rows = -(-dims // cols)
    fig = Figure(figsize=(3.4 * cols, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for k in range(dims):
        ax = axes[k]
        counts = np.array([np.sum((r[:, k] >= a) & (r[:, k] < b)) for a, b in zip(edges[:-1], edges[1:],
                                                                                   strict=True)])
        ax.bar(edges[:-1], counts, width=width, align="edge", color=SAMPLE_COLOUR, alpha=0.8,
               edgecolor="white", lw=0.4, label="ranks")
        ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="0.4",
                        alpha=0.3, lw=0, zorder=3, label=f"{100 * level:g}% band")
        ax.stairs(expected, edges, color="0.3", lw=1, label="uniform")
        ax.set(xlim=(0, s + 1), xlabel="rank", title=names[k])
        if k % cols == 0:
            ax.set_ylabel("count")
    for ax in axes[dims:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def _draw_arms(ax: Any, problem: InverseKinematics, x: np.ndarray, y: np.ndarray, colour: str,
               title: str) -> None:
    joints = problem.joints(torch.as_tensor(x, dtype=torch.float64)).numpy()  # (n, 4, 2)
    ax.axvline(0.0, color="0.5", lw=2.5, zorder=0)  # the rail
    ax.add_collection(LineCollection(joints, colors=colour, linewidths=0.8, alpha=_alpha(len(x)) / 1.5))
    ax.scatter(joints[:, 0, 0], joints[:, 0, 1], s=6, color=colour, alpha=_alpha(len(x)), lw=0, zorder=2)
    ax.plot([y[0]], [y[1]], marker="+", color=TRUTH_COLOUR, ms=14, mew=2, ls="none", zorder=3,
            label="observed end point")
    ax.set(aspect="equal", title=title, xlabel="horizontal")


def arm_figure(problem: InverseKinematics, samples: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray,
               reference: torch.Tensor | np.ndarray | None = None, title: str = "posterior samples",
               reference_title: str = "reference (ABC)") -> Figure:
    """Arms of the inverse-kinematics problem for posterior samples of one observation.

    Each sample ``x = (rail height, three angles)`` is drawn as its rail point and three
    segments (:meth:`~stablerecon.posterior.problems.InverseKinematics.joints`), all in one
    :class:`~matplotlib.collections.LineCollection`; the rail is the grey vertical line and the
    observed end point ``y`` a cross. With ``reference`` (e.g. rejection-ABC samples) a second
    panel with the same limits shows it on the left, as in the paper.

    Args:
        problem: the :class:`~stablerecon.posterior.problems.InverseKinematics` problem.
        samples: posterior samples ``(n, 4)``.
        y: the observed end point ``(2,)``.
        reference: reference posterior samples ``(m, 4)``, or ``None``.
        title, reference_title: panel titles.

    Examples
    --------
    >>> arm = InverseKinematics()
    >>> fig = arm_figure(arm, arm.sample_prior(30, seed=0), torch.tensor([1.5, 0.0]))
    >>> len(fig.axes[0].collections[0].get_segments())  # one polyline per sample
    30
    """
    if not isinstance(problem, InverseKinematics):
        raise TypeError("argument 'problem' must be an InverseKinematics problem, "
                        f"got {type(problem).__name__}")
    x = _array(samples, "samples", 2, cols=4)
    target = _array(y, "y", 1)
    if target.shape != (2,):
        raise ValueError(f"argument 'y' must have shape (2,), got {target.shape}")
    ref = None if reference is None else _array(reference, "reference", 2, cols=4)

    panels = [(x, SAMPLE_COLOUR, title)] if ref is None else [(ref, REFERENCE_COLOUR, reference_title),
                                                             (x, SAMPLE_COLOUR, title)]
    fig = Figure(figsize=(3.8 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharex=True, sharey=True).ravel()
    points = []
    for ax, (arms, colour, name) in zip(axes, panels, strict=True):
        _draw_arms(ax, problem, arms, target, colour, name)
        points.append(problem.joints(torch.as_tensor(arms, dtype=torch.float64)).reshape(-1, 2).numpy())
    pts = np.concatenate([*points, target[None], np.zeros((1, 2))])
    lo, hi = pts.min(0), pts.max(0)
    centre, half = (lo + hi) / 2, 0.55 * float((hi - lo).max()) + 0.1
    axes[0].set_xlim(centre[0] - half, centre[0] + half)
    axes[0].set_ylim(centre[1] - half, centre[1] + half)
    axes[0].set_ylabel("vertical")
    axes[-1].legend(fontsize=7, loc="lower right")
    return fig
