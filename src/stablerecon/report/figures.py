"""The audit's figures (matplotlib, Agg backend; nothing is shown on screen).

Every function takes an audit result (anything shaped like
:class:`~stablerecon.audit.AuditResult`: ``methods``, ``images``, ``options``, ``entries``,
``summary()``, and for the galleries ``truth_at(ids)`` and ``image_arrays(method, test, ids)``,
which read only the images drawn) and returns a figure, or ``None`` when the tests it needs
were not run.

The report stays small for a dataset audit: an audit of at most ``options.worst_images``
images gets one gallery per image (every method on it); a larger one gets one gallery per
method showing only its ``worst_images`` worst images (:func:`worst_images`), and the
distribution of every per-image score over all images in :func:`distributions`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from ..contracts import STABILITY_THRESHOLD  # noqa: E402
from ..files import write_atomic  # noqa: E402
from .galleries import (  # noqa: E402
    DPI,
    _colours,
    _finite,
    _label,
    _mean,
    _median,
    _worst_caption,
    gallery,
    image_amplification,
    worst_gallery,
    worst_images,
)

if TYPE_CHECKING:  # the report draws audit results; the audit calls the report
    from ..audit.result import AuditResult

__all__ = [
    "FIGURES",
    "DPI",
    "draw_figures",
    "gallery",
    "worst_gallery",
    "worst_images",
    "image_amplification",
    "distributions",
    "error_curves",
    "adversarial_vs_random",
    "accuracy_stability",
    "kernel_and_detail",
    "sampling_curves",
    "operator_curves",
]

def _scores(result: AuditResult) -> list[tuple[str, dict[str, list[float]]]]:
    """``(panel title, {method: per-image finite values})`` for each per-image score present."""
    k = result.options.budgets.index(result.options.report_budget)
    specs: list[tuple[str, str, Callable[[str], list[float | None] | None]]] = [
        ("clean PSNR [dB]", "accuracy", lambda m: result.entries[(m, "accuracy")]["clean"]["psnr"]),
        ("worst-case amplification (max over budgets)", "worst_case",
         lambda m: image_amplification(result, m)),
        (f"worst-case relative change at {100 * result.options.report_budget:g}%", "worst_case",
         lambda m: result.entries[(m, "worst_case")]["relative_error"][k]),
        ("detail recovered (fraction of contrast)", "detail",
         lambda m: result.entries[(m, "detail")]["recovered"]),
        ("hallucination cos(f(Ax) - x, z0)", "kernel",
         lambda m: result.entries[(m, "kernel")]["hallucination"]),
    ]
    out = []
    for title, test, get in specs:
        per: dict[str, list[float]] = {}
        for m in result.methods:
            if (m, test) in result.entries:
                kept = _finite(get(m) or [])
                if kept:
                    per[m] = kept
        if per:
            out.append((title, per))
    return out


def distributions(result: AuditResult) -> Figure | None:
    """Box plots per method of the per-image scores over all images: clean PSNR, worst-case
    amplification (max over budgets; dotted: the stability threshold), worst-case relative
    change at the report budget, detail recovered and hallucination (those present)."""
    scores = _scores(result)
    if not scores:
        return None
    n_methods = max(len(per) for _, per in scores)
    ncols = min(len(scores), 3 if n_methods <= 5 else 2)
    nrows = math.ceil(len(scores) / ncols)
    width = max(4.0, 0.5 * n_methods + 1.5)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 3.6 * nrows), squeeze=False)
    few = len(result.images) <= 12
    for ax, (title, per) in zip(axes.ravel(), scores, strict=False):
        names = list(per)
        colours = _colours(len(result.methods))
        box = ax.boxplot([per[m] for m in names], widths=0.6, patch_artist=True, showfliers=not few,
                         medianprops={"color": "k"}, flierprops={"markersize": 3, "alpha": 0.6})
        for patch, m in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(colours[result.methods.index(m)])
            patch.set_alpha(0.5)
        if few:  # a handful of images: show every one
            for j, m in enumerate(names, start=1):
                ax.plot(np.full(len(per[m]), j), per[m], "k.", ms=4, alpha=0.7)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=25, ha="right", fontsize=8)
        if title.startswith("worst-case amplification"):
            ax.axhline(STABILITY_THRESHOLD, color="k", lw=0.8, ls=":")
            values = [v for m in names for v in per[m] if v > 0]
            if values and max(values) / min(values) > 50:
                ax.set_yscale("log")
            title += f"\n(dotted: stability threshold {STABILITY_THRESHOLD:g})"
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes.ravel()[len(scores):]:
        ax.set_visible(False)
    fig.suptitle(f"per-image scores over {len(result.images)} images (box: quartiles, line: median)",
                 fontsize=10)
    fig.tight_layout()
    return fig


# ---- curves and comparisons ---------------------------------------------------------------------


def _ratios(worst: Sequence[float], random: Sequence[float]) -> list[float]:
    """Per image: worst-case change over the mean random-noise change."""
    return [w / max(r, 1e-30) for w, r in zip(worst, random, strict=True)]


def error_curves(result: AuditResult) -> Figure | None:
    """Relative output change versus budget: worst case (solid) and random noise of the same
    norm (dashed), median over images; right: worst-case amplification, the largest over the
    images (solid) and the median (dashed)."""
    methods = [m for m in result.methods if (m, "worst_case") in result.entries]
    if not methods:
        return None
    budgets = 100 * np.asarray(result.options.budgets)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for m, colour in zip(methods, _colours(len(methods)), strict=True):
        wc = result.entries[(m, "worst_case")]
        ax.plot(budgets, [_median(v) for v in wc["relative_error"]], "-o", color=colour, label=m)
        rn = result.entries.get((m, "random_noise"))
        if rn:
            ax.plot(budgets, [_median(v) for v in rn["relative_mean_error"]], "--", color=colour, alpha=0.7)
        largest = [max(_finite(v), default=math.nan) for v in wc["amplification"]]
        ax2.plot(budgets, largest, "-o", color=colour, label=m)
        if len(result.images) > 1:
            ax2.plot(budgets, [_median(v) for v in wc["amplification"]], "--", color=colour, alpha=0.7)
    ref = result.options.reference
    _label(ax, "perturbation budget ||e|| / ||y|| [%]",
           "||f(y+e) - f(y)|| / ||f(y)||" if ref == "output" else "||f(y+e) - x|| / ||x||",
           "output change (median over images):\nworst case (solid) vs random (dashed)", legend=8)
    ax2.axhline(STABILITY_THRESHOLD, color="k", lw=0.8, ls=":")
    _label(ax2, "perturbation budget [%]", "amplification ||f(y+e) - f(y)|| / ||e||",
           f"worst-case amplification: max (solid), median (dashed)\n"
           f"dotted: stability threshold {STABILITY_THRESHOLD:g}")
    fig.tight_layout()
    return fig


def adversarial_vs_random(result: AuditResult) -> Figure | None:
    """Ratio of the worst-case output change to the mean random-noise change, per budget
    (median over images of the per-image ratio)."""
    methods = [
        m
        for m in result.methods
        if (m, "worst_case") in result.entries and (m, "random_noise") in result.entries
    ]
    if not methods:
        return None
    budgets = result.options.budgets
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(budgets) + 2), 4))
    for i, (m, colour) in enumerate(zip(methods, _colours(len(methods)), strict=True)):
        wc, rn = result.entries[(m, "worst_case")], result.entries[(m, "random_noise")]
        ratios = [_median(_ratios(wc["error"][k], rn["mean_error"][k])) for k in range(len(budgets))]
        ax.bar(np.arange(len(budgets)) + i * width, ratios, width, color=colour, label=m)
    ax.set_xticks(np.arange(len(budgets)) + 0.4 - width / 2, [f"{100 * b:g}%" for b in budgets])
    ax.axhline(1.0, color="k", lw=0.8)
    _label(ax, "perturbation budget", "worst-case change / random-noise change",
           "how much worse than random noise the worst case is (median over images)", legend=8, grid="y")
    fig.tight_layout()
    return fig


def _interval(ci: dict[str, float] | None, value: float) -> list[float]:
    """``[below, above]`` error-bar lengths of a bootstrap interval (zero without one)."""
    if ci is None:
        return [0.0, 0.0]
    return [max(value - ci["low"], 0.0), max(ci["high"] - value, 0.0)]


def accuracy_stability(result: AuditResult) -> Figure | None:
    """The trade-off: clean PSNR against the worst-case relative output change at the report
    budget, one point per method (medians over the images, bars: bootstrap 95% intervals; up
    and left is better)."""
    rows = [r for r in result.summary()
            if r.get("psnr") is not None and r.get("worst_relative_change") is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r, colour in zip(rows, _colours(len(rows)), strict=True):
        x, y = r["worst_relative_change"], r["psnr"]
        ci = r.get("ci", {})
        if math.isfinite(x) and math.isfinite(y):
            xerr = np.asarray(_interval(ci.get("worst_relative_change"), x))[:, None]
            yerr = np.asarray(_interval(ci.get("psnr"), y))[:, None]
            ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", ms=7, color=colour, capsize=3, lw=1)
            ax.annotate(r["method"], (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    many = len(result.images) > 1
    _label(ax, f"worst-case relative output change at {100 * result.options.report_budget:g}% budget",
           "clean PSNR [dB]", "accuracy versus stability" + (" (medians, 95% intervals)" if many else ""))
    fig.tight_layout()
    return fig


def kernel_and_detail(result: AuditResult) -> Figure | None:
    """Left: fraction of the inserted detail's contrast each method recovers (per image, or
    box plots over the images when there are more than eight). Right: hallucination (cosine
    of the error with the kernel detail on the image without it) and detection (cosine of the
    change with the detail), median over images."""
    det = [m for m in result.methods if (m, "detail") in result.entries]
    ker = [m for m in result.methods if (m, "kernel") in result.entries]
    if not det and not ker:
        return None
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if det:
        n_img = len(result.images)
        if n_img <= 8:
            width = 0.8 / n_img
            for j in range(n_img):
                vals = [result.entries[(m, "detail")]["recovered"][j] for m in det]
                ax.bar(np.arange(len(det)) + j * width, vals, width, label=result.images[j])
            ax.set_xticks(np.arange(len(det)) + 0.4 - width / 2, det, rotation=20, ha="right", fontsize=8)
        else:
            ax.boxplot([_finite(result.entries[(m, "detail")]["recovered"]) for m in det], widths=0.6,
                       medianprops={"color": "k"}, flierprops={"markersize": 3})
            ax.set_xticks(range(1, len(det) + 1), det, rotation=20, ha="right", fontsize=8)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        c = result.options.detail.contrast * 255
        _label(ax, None, "fraction of the detail's contrast",
               f"detail recovered ({result.options.detail.kind}, contrast {c:.0f}/255)",
               legend=7 if n_img <= 8 else None, grid="y")
    if ker:
        hall = [_median(result.entries[(m, "kernel")]["hallucination"]) for m in ker]
        detect = [_median(result.entries[(m, "kernel")]["detection"]) for m in ker]
        idx = np.arange(len(ker))
        ax2.bar(idx - 0.2, hall, 0.4, label="hallucination cos(f(Ax) - x, z0)")
        ax2.bar(idx + 0.2, detect, 0.4, label="detection cos(f(A(x+z0)) - f(Ax), z0)")
        ax2.set_xticks(idx, ker, rotation=20, ha="right", fontsize=8)
        ax2.axhline(0, color="k", lw=0.8)
        ax2.set_title("kernel detail z0 (A z0 = 0), median over images")
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def sampling_curves(result: AuditResult) -> Figure | None:
    """PSNR (median over images) against the sampling rate; the dotted line marks the rate of
    the audited operator."""
    methods = [m for m in result.methods if (m, "sampling") in result.entries]
    if not methods:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    built = None
    for m, colour in zip(methods, _colours(len(methods)), strict=True):
        e = result.entries[(m, "sampling")]
        built = e.get("built_rate")
        ax.plot(100 * np.asarray(e["rates"]), [_median(p) for p in e["psnr"]], "-o", color=colour, label=m)
    if built is not None:
        ax.axvline(100 * built, color="k", ls=":", lw=1)
    _label(ax, "sampling rate [%]", "PSNR [dB] (median over images)",
           "accuracy at other sampling rates (more samples, better?)", legend=8)
    fig.tight_layout()
    return fig


def operator_curves(result: AuditResult) -> Figure | None:
    """The ``operator`` test: relative output change against the operator budget
    ``||A_E - A|| <= r ||A||``, worst case (solid) and random perturbations of the same size
    (dashed), mean over images; left the method given ``A_E`` on ``A x``, right given ``A`` on
    ``A_E x``. A method that ignores its ``op`` argument has no left curve."""
    methods = [m for m in result.methods if (m, "operator") in result.entries]
    if not methods:
        return None
    titles = {"given": "given A_E, data A x", "mismatch": "given A, data A_E x (mismatch)"}
    cases = [c for c in titles if any(c in result.entries[(m, "operator")]["cases"] for m in methods)]
    fig, axes = plt.subplots(1, len(cases), figsize=(5.5 * len(cases), 4), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        for m, colour in zip(methods, _colours(len(methods)), strict=True):
            e = result.entries[(m, "operator")]
            values = e.get(case)
            if not values:
                if case in e["cases"]:
                    ax.plot([], [], color=colour, label=f"{m} (ignores op)")
                continue
            budgets = 100 * np.asarray(e["budgets"])
            ax.plot(budgets, [_mean(v) for v in values["relative_error"]], "-o", color=colour, label=m)
            ax.plot(budgets, [_mean(v) for v in values["random_relative_mean_error"]], "--", color=colour,
                    alpha=0.7)
        _label(ax, "operator budget ||A_E - A|| / ||A|| [%]", "||f - f(y, A)|| / ||f(y, A)||",
               f"{titles[case]}\nworst (solid), random (dashed)", legend=8)
    fig.tight_layout()
    return fig


#: The report's figures: file stem -> (drawing function, caption).
FIGURES: dict[str, tuple[Callable[[Any], Figure | None], str]] = {
    "distributions": (
        distributions,
        "Per-image scores over all images, one box per method (box: quartiles, line: median, "
        "whiskers: 1.5 interquartile ranges, dots: images beyond them, or every image when there "
        "are few): clean PSNR, worst-case amplification ||f(y+e) - f(y)|| / ||e|| (the largest over "
        "the budgets; dotted: the stability threshold), the worst-case relative change at the report "
        "budget, the detail recovered and the hallucination.",
    ),
    "error_curves": (
        error_curves,
        "Output change against the perturbation budget, median over the images: the worst case "
        "found by the search (solid) and random perturbations of the same norm (dashed); right, the "
        "amplification ||f(y+e) - f(y)|| / ||e||, the largest over the images (solid) and the median "
        "(dashed).",
    ),
    "adversarial_vs_random": (
        adversarial_vs_random,
        "Worst-case output change divided by the mean change under random perturbations of the same "
        "norm (median over the images of the per-image ratio).",
    ),
    "accuracy_stability": (
        accuracy_stability,
        "The accuracy-stability trade-off: clean PSNR against the worst-case output change at the "
        "report budget (medians over the images, bars: bootstrap 95% intervals of the medians).",
    ),
    "kernel_detail": (
        kernel_and_detail,
        "Small details: how much of an inserted detail each method "
        "recovers, and how it treats a detail in the kernel of the operator.",
    ),
    "sampling": (sampling_curves, "Accuracy at sampling rates above and below the audited one."),
    "operator_curves": (
        operator_curves,
        "Perturbed forward operators (inexact input): output change against the operator budget "
        "||A_E - A|| / ||A||, the worst case found (solid) and random perturbations of the same size "
        "(dashed); left, the method given A_E on data A x; right, given A on data A_E x.",
    ),
}

#: File names of the figures this module draws (others in ``figures/`` are left alone).
_OURS = re.compile(r"^(gallery_\d+|worst_\d+|" + "|".join(FIGURES) + r")\.png$")


def _save(fig: Figure, path: Path, dpi: int = DPI) -> None:
    """Write ``fig`` as an RGB PNG (no alpha channel, zlib-optimised: smaller than matplotlib's
    RGBA) and close it."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    write_atomic(path, lambda p: Image.fromarray(rgb).save(p, format="PNG", optimize=True))


def draw_figures(result: AuditResult, folder: str | Path) -> list[tuple[str, Path, str]]:
    """Draw every figure the result has data for into ``folder/figures``; returns
    ``(title, path, caption)`` per figure, galleries first.

    An audit of at most ``options.worst_images`` images gets one gallery per image
    (``gallery_NN.png``, every method on image ``NN``); a larger one gets one gallery per method
    (``worst_NN.png``, method ``NN``) of its worst images (:func:`worst_gallery`). Figures of an
    earlier report in ``figures/`` that this one does not draw are removed."""
    out = Path(folder) / "figures"
    drawn: list[tuple[str, Path, str]] = []
    k = result.options.worst_images
    if len(result.images) <= k:
        for i, name in enumerate(result.images):
            fig = gallery(result, i)
            if fig is not None:
                path = out / f"gallery_{i:02d}.png"
                _save(fig, path)
                drawn.append((
                    f"Reconstructions: {name}",
                    path,
                    "Per method: reconstruction from clean measurements, its error, the worst "
                    "perturbation found at the report budget (seen through the adjoint), the "
                    "reconstruction from the perturbed measurements and the change (one gallery per "
                    f"image: the audit has at most options.worst_images = {k} images).",
                ))
    else:
        for j, m in enumerate(result.methods):
            fig = worst_gallery(result, m)
            if fig is not None:
                path = out / f"worst_{j:02d}.png"
                _save(fig, path)
                drawn.append((f"Worst images: {m}", path, _worst_caption(result, m)))
    for stem, (draw, caption) in FIGURES.items():
        fig = draw(result)
        if fig is not None:
            path = out / f"{stem}.png"
            _save(fig, path)
            drawn.append((stem.replace("_", " "), path, caption))
    if out.is_dir():
        keep = {p.name for _, p, _ in drawn}
        for stale in out.glob("*.png"):
            if _OURS.match(stale.name) and stale.name not in keep:
                stale.unlink()
    return drawn
