"""The audit report's galleries: which images to show (the worst per method) and the panels
of reconstructions, errors and worst-case perturbations (matplotlib, Agg backend).

An audit of at most ``options.worst_images`` images gets one gallery per image (every method on
it); a larger one gets one gallery per method showing only its ``worst_images`` worst images
(:func:`worst_images`: largest worst-case amplification, else lowest clean PSNR), read with
``truth_at(ids)`` and ``image_arrays(method, test, ids)`` so that only the images drawn are
loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

if TYPE_CHECKING:  # the report draws audit results; the audit calls the report
    from ..audit.result import AuditResult

__all__ = ["DPI", "PANEL", "ERR_MAX", "gallery", "worst_gallery", "worst_images", "image_amplification"]

#: Resolution of the report's PNGs (dots per inch).
DPI = 80
#: Side of one image panel of a gallery, in inches (``PANEL * DPI`` pixels).
PANEL = 1.6
#: Largest absolute error the galleries' error and change panels show (colour scale 0 to it).
ERR_MAX = 0.25


def _img(t: Any) -> np.ndarray:
    a = t.detach().to("cpu").double()
    a = a.abs() if a.is_complex() else a
    return a.numpy()


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _median(values: Sequence[float | None]) -> float:
    """Median of the finite values (NaN if none)."""
    kept = _finite(values)
    return float(np.median(kept)) if kept else math.nan


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


# ---- which images the galleries show ------------------------------------------------------------


def image_amplification(result: AuditResult, method: str) -> list[float] | None:
    """The worst-case amplification of ``method`` per image, the largest over the budgets
    (NaN where no budget gives a finite value); ``None`` without a ``worst_case`` entry."""
    wc = result.entries.get((method, "worst_case"))
    if not wc:
        return None
    out = []
    for col in zip(*wc["amplification"], strict=True):
        kept = _finite(col)
        out.append(max(kept) if kept else math.nan)
    return out


def worst_images(result: AuditResult, method: str, k: int | None = None) -> list[int]:
    """Indices of the ``k`` (default ``options.worst_images``) worst images of ``method``,
    worst first: the largest worst-case amplification (:func:`image_amplification`) or, without
    a ``worst_case`` entry, the lowest clean PSNR; empty when neither test finished. Ties keep
    image order; images with an undefined score come last."""
    k = result.options.worst_images if k is None else k
    amp = image_amplification(result, method)
    if amp is not None:
        score = [-a if math.isfinite(a) else math.inf for a in amp]
    else:
        acc = result.entries.get((method, "accuracy"))
        if not acc:
            return []
        score = [float(p) if p is not None and not math.isnan(float(p)) else math.inf
                 for p in acc["clean"]["psnr"]]
    return sorted(range(len(score)), key=lambda i: (score[i], i))[:k]


# ---- galleries ----------------------------------------------------------------------------------


def _arrays(result: AuditResult, method: str, test: str, ids: Sequence[int]) -> dict[str, Any]:
    """The arrays of a finished (method, test) for images ``ids`` (empty otherwise)."""
    if (method, test) not in result.entries:
        return {}
    return result.image_arrays(method, test, list(ids))


def _columns(result: AuditResult) -> list[str]:
    budget = result.options.report_budget
    return ["reconstruction", "|error|", f"worst perturbation\n|A*e| at {100 * budget:g}%",
            "perturbed reconstruction", "|change|"]


def _panels(truth: np.ndarray, acc: dict[str, Any], wc: dict[str, Any],
            row: int) -> list[tuple[np.ndarray | None, dict[str, Any]]]:
    """Reconstruction, |error|, |A* e|, perturbed reconstruction and |change| of image ``row``
    of the arrays (``None`` where the test did not run)."""
    recon = acc.get("reconstruction", wc.get("clean_output"))
    gray = {"cmap": "gray", "vmin": 0, "vmax": 1}
    err = {"cmap": "magma", "vmin": 0, "vmax": ERR_MAX}
    rec = None if recon is None else _img(recon[row, 0])
    panels: list[tuple[np.ndarray | None, dict[str, Any]]] = [
        (rec, gray), (None if rec is None else np.abs(rec - truth), err)]
    if wc:
        out = _img(wc["perturbed_output"][row, 0])
        panels += [
            (np.abs(_img(wc["perturbation_image"][row, 0])), {"cmap": "viridis"}),
            (out, gray),
            (np.abs(out - _img(wc["clean_output"][row, 0])), err),
        ]
    else:
        panels += [(None, {})] * 3
    return panels


def _tight_below_title(fig: Figure, title: float = 0.12) -> None:
    """Tight layout leaving ``title`` inches at the top for the figure's title."""
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - title / fig.get_figheight()))


def _blank(axes: Any) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)


def gallery(result: AuditResult, image: int) -> Figure | None:
    """Per method (rows): reconstruction, its error, the worst perturbation seen in image space
    (``|A^* e|``), the perturbed reconstruction and the change it causes, for image
    ``image``; the first row shows the ground truth. Reads the arrays of this image only."""
    loaded = [(m, _arrays(result, m, "accuracy", [image]), _arrays(result, m, "worst_case", [image]))
              for m in result.methods]
    loaded = [(m, acc, wc) for m, acc, wc in loaded if acc or wc]
    if not loaded:
        return None
    truth = _img(result.truth_at([image])[0, 0])
    cols = _columns(result)
    fig, axes = plt.subplots(len(loaded) + 1, len(cols), figsize=(PANEL * len(cols), PANEL * (len(loaded) + 1)
                                                                  + 0.4), squeeze=False)
    _blank(axes)
    axes[0, 0].imshow(truth, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("ground truth", fontsize=8)
    axes[0, 0].set_ylabel(result.images[image], fontsize=8)
    for r, (m, acc, wc) in enumerate(loaded, start=1):
        for c, (arr, kw) in enumerate(_panels(truth, acc, wc, 0)):
            if arr is not None:
                axes[r, c].imshow(arr, **kw)
            if r == 1:
                axes[r, c].set_title(cols[c], fontsize=8)
        axes[r, 0].set_ylabel(m, fontsize=8)
        axes[r, 0].set_frame_on(True)
    fig.suptitle(f"{result.images[image]}: reconstructions and worst-case perturbations "
                 f"(error colour scale 0 to {ERR_MAX})", fontsize=9)
    _tight_below_title(fig)
    return fig


def worst_gallery(result: AuditResult, method: str) -> Figure | None:
    """The worst images of ``method`` (:func:`worst_images`, worst first), one row each:
    ground truth, reconstruction, its error, the worst perturbation seen in image space
    (``|A^* e|``), the perturbed reconstruction and the change it causes. Reads the arrays of
    these images only."""
    ids = worst_images(result, method)
    if not ids:
        return None
    acc, wc = _arrays(result, method, "accuracy", ids), _arrays(result, method, "worst_case", ids)
    if not acc and not wc:
        return None
    truth = result.truth_at(ids)
    amp = image_amplification(result, method)
    psnr = result.entries[(method, "accuracy")]["clean"]["psnr"] if acc else None
    cols = ["ground truth", *_columns(result)]
    fig, axes = plt.subplots(len(ids), len(cols), figsize=(PANEL * len(cols), PANEL * len(ids) + 0.4),
                             squeeze=False)
    _blank(axes)
    for r, i in enumerate(ids):
        t = _img(truth[r, 0])
        panels = [(t, {"cmap": "gray", "vmin": 0, "vmax": 1}), *_panels(t, acc, wc, r)]
        for c, (arr, kw) in enumerate(panels):
            if arr is not None:
                axes[r, c].imshow(arr, **kw)
            if r == 0:
                axes[r, c].set_title(cols[c], fontsize=8)
        notes = []
        if amp is not None:
            notes.append(f"amp. {amp[i]:.3g}")
        if psnr is not None and psnr[i] is not None:
            notes.append(f"{psnr[i]:.1f} dB")
        axes[r, 0].set_ylabel("\n".join([_short(result.images[i]), *notes]), fontsize=7)
        axes[r, 0].set_frame_on(True)
    by = "largest worst-case amplification" if amp is not None else "lowest clean PSNR"
    fig.suptitle(f"{method}: its {len(ids)} images with the {by} (error colour scale 0 to {ERR_MAX})",
                 fontsize=9)
    _tight_below_title(fig)
    return fig


def _short(name: str, width: int = 24) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


def _worst_caption(result: AuditResult, method: str) -> str:
    ids = worst_images(result, method)
    amp = image_amplification(result, method)
    if amp is not None:
        rows = ", ".join(f"{result.images[i]} (amplification {amp[i]:.3g})" for i in ids)
        by = "largest worst-case amplification (max over the budgets)"
    else:
        psnr = result.entries[(method, "accuracy")]["clean"]["psnr"]
        rows = ", ".join(f"{result.images[i]} (PSNR {psnr[i]:.2f} dB)" for i in ids)
        by = "lowest clean PSNR (no worst-case test)"
    n, k = len(result.images), result.options.worst_images
    return (f"The {len(ids)} of {n} images on which {method} has the {by}, worst first: {rows}. "
            f"Columns: ground truth, reconstruction from clean measurements, its error, the worst "
            f"perturbation found at the report budget (seen through the adjoint), the reconstruction "
            f"from the perturbed measurements and the change. The audit has more than "
            f"options.worst_images = {k} images, so the report shows each method on its own worst "
            f"images only; the distributions figure shows every image.")


# ---- distributions over the images --------------------------------------------------------------


