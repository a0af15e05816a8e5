"""The self-contained HTML report (jinja2 template, figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..files import write_text
from .figures import draw_figures

__all__ = ["render_html", "write_report"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("stablerecon", "report/templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


_ENV.filters["fmt"] = _fmt


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values))


def _budget_rows(result: Any) -> list[dict[str, Any]]:
    rows = []
    for m in result.methods:
        wc = result.entries.get((m, "worst_case"))
        if not wc:
            continue
        rn = result.entries.get((m, "random_noise"))
        for k, b in enumerate(result.options.budgets):
            row = {
                "method": m,
                "budget": f"{100 * b:g}%",
                "worst": _mean(wc["relative_error"][k]),
                "amplification": max(wc["amplification"][k]),
                "random": None,
                "ratio": None,
            }
            if rn:
                row["random"] = _mean(rn["relative_mean_error"][k])
                row["ratio"] = _mean(wc["error"][k]) / max(_mean(rn["mean_error"][k]), 1e-30)
            rows.append(row)
    return rows


def _kernel_rows(result: Any) -> list[dict[str, Any]]:
    rows = []
    for m in result.methods:
        e = result.entries.get((m, "kernel"))
        if e:
            rows.append(
                {
                    "method": m,
                    "identity_gap": min(e["identity_gap"]),
                    "hallucination": _mean(e["hallucination"]),
                    "detection": _mean(e["detection"]),
                    "bound": max(e["bound"]),
                    "transfer": _mean(e["transfer"]) if e.get("transfer") else None,
                }
            )
    return rows


def render_html(
    result: Any,
    figures: list[tuple[str, Path, str]],
    title: str = "stablerecon audit",
    notes: list[str] | None = None,
) -> str:
    """The report as one HTML string; ``figures`` are ``(title, png_path, caption)``."""
    embedded = [
        {"title": t, "caption": c, "alt": t, "data": base64.b64encode(Path(p).read_bytes()).decode("ascii")}
        for t, p, c in figures
    ]
    methods_info = []
    for m in result.methods:
        wc = result.entries.get((m, "worst_case"))
        methods_info.append(
            {
                "name": m,
                "search": None
                if wc is None
                else ("gradient-free (random directions)" if wc["gradient_free"] else "gradient ascent"),
            }
        )
    template = _ENV.get_template("report.html.j2")
    return template.render(
        title=title,
        version=__version__,
        operator=result.operator,
        images=result.images,
        tests=result.tests,
        options=result.options,
        summary=result.summary(),
        budget_rows=_budget_rows(result),
        kernel_rows=_kernel_rows(result),
        figures=embedded,
        methods=methods_info,
        notes=notes or [],
        report_budget=f"{100 * result.options.report_budget:g}%",
        options_text=html.escape(str(result.options.model_dump())),
    )


def write_report(
    result: Any, folder: str | Path, title: str = "stablerecon audit", notes: list[str] | None = None
) -> Path:
    """Draw the figures into ``folder/figures`` and write ``folder/report.html``; returns its
    path."""
    folder = Path(folder)
    figures = draw_figures(result, folder)
    path = folder / "report.html"
    write_text(path, render_html(result, figures, title=title, notes=notes))
    return path
