"""The audit's figures (matplotlib, Agg backend; nothing is shown on screen).

Every function takes an audit result (anything shaped like
:class:`~stablerecon.audit.AuditResult`: ``methods``, ``images``, ``options``, ``truth``,
``entries``, ``arrays``, ``summary()``) and returns a figure, or ``None`` when the tests it
needs were not run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..contracts import STABILITY_THRESHOLD  # noqa: E402
from ..files import write_atomic  # noqa: E402

if TYPE_CHECKING:  # the report draws audit results; the audit calls the report
    from ..audit.result import AuditResult

__all__ = [
    "FIGURES",
    "draw_figures",
    "gallery",
    "error_curves",
    "adversarial_vs_random",
    "accuracy_stability",
    "kernel_and_detail",
    "sampling_curves",
    "operator_curves",
]


def _img(t: Any) -> np.ndarray:
    a = t.detach().to("cpu").double()
    a = a.abs() if a.is_complex() else a
    return a.numpy()


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def _label(ax: Any, xlabel: str | None, ylabel: str, title: str, *, legend: int | None = None,
           grid: str = "both") -> None:
    """Axis labels, title, grid (``"both"`` or ``"y"``) and, with a font size, the legend."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend is not None:
        ax.legend(fontsize=legend)
    ax.grid(alpha=0.3, axis=grid)


def _colours(n: int) -> list[Any]:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def gallery(result: AuditResult, image: int) -> Figure | None:
    """Per method (rows): reconstruction, its error, the worst perturbation seen in image space
    (``|A^* e|``), the perturbed reconstruction and the change it causes, for image
    ``image``; the first row shows the ground truth."""
    methods = [
        m for m in result.methods if (m, "accuracy") in result.arrays or (m, "worst_case") in result.arrays
    ]
    if not methods:
        return None
    truth = _img(result.truth[image, 0])
    budget = result.options.report_budget
    cols = [
        "reconstruction",
        "|error|",
        f"worst perturbation |A*e| ({100 * budget:g}%)",
        "perturbed reconstruction",
        "|change|",
    ]
    fig, axes = plt.subplots(
        len(methods) + 1, len(cols), figsize=(2.3 * len(cols), 2.3 * (len(methods) + 1)), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    axes[0, 0].imshow(truth, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("ground truth", fontsize=9)
    axes[0, 0].set_ylabel(result.images[image], fontsize=9)
    err_max = 0.25
    for r, m in enumerate(methods, start=1):
        acc = result.arrays.get((m, "accuracy"), {})
        wc = result.arrays.get((m, "worst_case"), {})
        recon = acc.get("reconstruction", wc.get("clean_output"))
        panels: list[tuple[np.ndarray | None, dict[str, Any]]] = [
            (None if recon is None else _img(recon[image, 0]), {"cmap": "gray", "vmin": 0, "vmax": 1}),
            (
                None if recon is None else np.abs(_img(recon[image, 0]) - truth),
                {"cmap": "magma", "vmin": 0, "vmax": err_max},
            ),
        ]
        if wc:
            pert = np.abs(_img(wc["perturbation_image"][image, 0]))
            change = np.abs(_img(wc["perturbed_output"][image, 0]) - _img(wc["clean_output"][image, 0]))
            panels += [
                (pert, {"cmap": "viridis"}),
                (_img(wc["perturbed_output"][image, 0]), {"cmap": "gray", "vmin": 0, "vmax": 1}),
                (change, {"cmap": "magma", "vmin": 0, "vmax": err_max}),
            ]
        for c, (arr, kw) in enumerate(panels):
            if arr is not None:
                axes[r, c].imshow(arr, **kw)
            if r == 1:
                axes[r, c].set_title(cols[c], fontsize=9)
        axes[r, 0].set_ylabel(m, fontsize=9)
        axes[r, 0].set_frame_on(True)
    fig.suptitle(
        f"{result.images[image]}: reconstructions and worst-case perturbations "
        f"(error colour scale 0 to {err_max})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def error_curves(result: AuditResult) -> Figure | None:
    """Relative output change versus budget: worst case (solid) and random noise of the same
    norm (dashed), mean over images; right: worst-case amplification."""
    methods = [m for m in result.methods if (m, "worst_case") in result.entries]
    if not methods:
        return None
    budgets = 100 * np.asarray(result.options.budgets)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for m, colour in zip(methods, _colours(len(methods)), strict=True):
        wc = result.entries[(m, "worst_case")]
        ax.plot(budgets, [_mean(v) for v in wc["relative_error"]], "-o", color=colour, label=m)
        rn = result.entries.get((m, "random_noise"))
        if rn:
            ax.plot(budgets, [_mean(v) for v in rn["relative_mean_error"]], "--", color=colour, alpha=0.7)
        ax2.plot(budgets, [max(v) for v in wc["amplification"]], "-o", color=colour, label=m)
    ref = result.options.reference
    _label(ax, "perturbation budget ||e|| / ||y|| [%]",
           "||f(y+e) - f(y)|| / ||f(y)||" if ref == "output" else "||f(y+e) - x|| / ||x||",
           "output change: worst case (solid) vs random (dashed)", legend=8)
    ax2.axhline(STABILITY_THRESHOLD, color="k", lw=0.8, ls=":")
    _label(ax2, "perturbation budget [%]", "max amplification ||f(y+e) - f(y)|| / ||e||",
           f"worst-case amplification (dotted: stability threshold {STABILITY_THRESHOLD:g})")
    fig.tight_layout()
    return fig


def adversarial_vs_random(result: AuditResult) -> Figure | None:
    """Ratio of the worst-case output change to the mean random-noise change, per budget."""
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
        ratios = [_mean(wc["error"][k]) / max(_mean(rn["mean_error"][k]), 1e-30) for k in range(len(budgets))]
        ax.bar(np.arange(len(budgets)) + i * width, ratios, width, color=colour, label=m)
    ax.set_xticks(np.arange(len(budgets)) + 0.4 - width / 2, [f"{100 * b:g}%" for b in budgets])
    ax.axhline(1.0, color="k", lw=0.8)
    _label(ax, "perturbation budget", "worst-case change / random-noise change",
           "how much worse than random noise the worst case is", legend=8, grid="y")
    fig.tight_layout()
    return fig


def accuracy_stability(result: AuditResult) -> Figure | None:
    """The trade-off: clean PSNR against the worst-case relative output change at the report
    budget, one point per method (up and left is better)."""
    rows = [r for r in result.summary() if "psnr" in r and "worst_relative_change" in r]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r, colour in zip(rows, _colours(len(rows)), strict=True):
        ax.scatter(r["worst_relative_change"], r["psnr"], s=60, color=colour)
        ax.annotate(
            r["method"],
            (r["worst_relative_change"], r["psnr"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    _label(ax, f"worst-case relative output change at {100 * result.options.report_budget:g}% budget",
           "clean PSNR [dB]", "accuracy versus stability")
    fig.tight_layout()
    return fig


def kernel_and_detail(result: AuditResult) -> Figure | None:
    """Left: fraction of the inserted detail's contrast each method recovers (per image).
    Right: hallucination (cosine of the error with the kernel detail on the image without it)
    and detection (cosine of the change with the detail), mean over images."""
    det = [m for m in result.methods if (m, "detail") in result.entries]
    ker = [m for m in result.methods if (m, "kernel") in result.entries]
    if not det and not ker:
        return None
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if det:
        n_img = len(result.images)
        width = 0.8 / n_img
        for j in range(n_img):
            vals = [result.entries[(m, "detail")]["recovered"][j] for m in det]
            ax.bar(np.arange(len(det)) + j * width, vals, width, label=result.images[j])
        ax.set_xticks(np.arange(len(det)) + 0.4 - width / 2, det, rotation=20, ha="right", fontsize=8)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        c = result.options.detail.contrast * 255
        _label(ax, None, "fraction of the detail's contrast",
               f"detail recovered ({result.options.detail.kind}, contrast {c:.0f}/255)", legend=7, grid="y")
    if ker:
        hall = [_mean(result.entries[(m, "kernel")]["hallucination"]) for m in ker]
        detect = [_mean(result.entries[(m, "kernel")]["detection"]) for m in ker]
        idx = np.arange(len(ker))
        ax2.bar(idx - 0.2, hall, 0.4, label="hallucination cos(f(Ax) - x, z0)")
        ax2.bar(idx + 0.2, detect, 0.4, label="detection cos(f(A(x+z0)) - f(Ax), z0)")
        ax2.set_xticks(idx, ker, rotation=20, ha="right", fontsize=8)
        ax2.axhline(0, color="k", lw=0.8)
        ax2.set_title("kernel detail z0 (A z0 = 0)")
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def sampling_curves(result: AuditResult) -> Figure | None:
    """PSNR (mean over images) against the sampling rate; the dotted line marks the rate of
    the audited operator."""
    methods = [m for m in result.methods if (m, "sampling") in result.entries]
    if not methods:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    built = None
    for m, colour in zip(methods, _colours(len(methods)), strict=True):
        e = result.entries[(m, "sampling")]
        built = e.get("built_rate")
        ax.plot(100 * np.asarray(e["rates"]), [_mean(p) for p in e["psnr"]], "-o", color=colour, label=m)
    if built is not None:
        ax.axvline(100 * built, color="k", ls=":", lw=1)
    _label(ax, "sampling rate [%]", "PSNR [dB]", "accuracy at other sampling rates (more samples, better?)",
           legend=8)
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
    "error_curves": (
        error_curves,
        "Output change against the perturbation budget: the worst case found by "
        "the search (solid) and random perturbations of the same norm (dashed); right, the "
        "largest amplification ||f(y+e) - f(y)|| / ||e||.",
    ),
    "adversarial_vs_random": (
        adversarial_vs_random,
        "Worst-case output change divided by the mean change under random perturbations of the same norm.",
    ),
    "accuracy_stability": (
        accuracy_stability,
        "The accuracy-stability trade-off: clean PSNR against the "
        "worst-case output change at the report budget.",
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


def _save(fig: Figure, path: Path) -> None:
    write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=90))
    plt.close(fig)


def draw_figures(result: AuditResult, folder: str | Path) -> list[tuple[str, Path, str]]:
    """Draw every figure the result has data for into ``folder/figures``; returns
    ``(title, path, caption)`` per figure, galleries first."""
    out = Path(folder) / "figures"
    drawn: list[tuple[str, Path, str]] = []
    for i, name in enumerate(result.images):
        fig = gallery(result, i)
        if fig is not None:
            path = out / f"gallery_{i:02d}.png"
            _save(fig, path)
            drawn.append(
                (
                    f"Reconstructions: {name}",
                    path,
                    "Per method: reconstruction from clean measurements, its error, the worst "
                    "perturbation found at the report budget (seen through the adjoint), the "
                    "reconstruction from the perturbed measurements and the change.",
                )
            )
    for stem, (draw, caption) in FIGURES.items():
        fig = draw(result)
        if fig is not None:
            path = out / f"{stem}.png"
            _save(fig, path)
            drawn.append((stem.replace("_", " "), path, caption))
    return drawn
