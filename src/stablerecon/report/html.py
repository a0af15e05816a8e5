"""The self-contained HTML report (jinja2 template, figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .._version import __version__
from ..contracts import STABILITY_THRESHOLD
from ..files import write_text
from .figures import draw_figures

if TYPE_CHECKING:  # the report draws audit results; the audit calls the report
    from ..audit.result import AuditResult

__all__ = ["render_html", "write_report", "findings", "interval_text"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("stablerecon", "report/templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
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


def _median(values: list[float | None]) -> float | None:
    """Median of the finite values (``None`` if there are none)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(statistics.median(kept)) if kept else None


def _largest(values: list[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return max(kept) if kept else None


def interval_text(ci: dict[str, float] | None, value: float | None, digits: int = 3) -> str:
    """A score with its bootstrap interval, ``"4.2 [3.9, 4.6]"`` (``digits`` significant
    digits), the value alone for one image, ``"–"`` without a value."""
    if value is None:
        return "–"
    if ci is None or ci["n"] <= 1:
        return _fmt(float(value), digits)
    return f"{_fmt(ci['median'], digits)} [{_fmt(ci['low'], digits)}, {_fmt(ci['high'], digits)}]"


def _summary_rows(result: AuditResult, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The summary rows with the table's interval texts (``psnr_text``, ``amplification_text``)
    and the number of images behind each method's numbers (``n``)."""
    out = []
    for r in rows:
        ci = r.get("ci", {})
        counts = [int(c["n"]) for c in ci.values()]
        out.append({**r, "psnr_text": interval_text(ci.get("psnr"), r.get("psnr"), 4),
                    "amplification_text": interval_text(ci.get("amplification"), r.get("amplification")),
                    "n": max(counts) if counts else 0})
    return out


def _budget_rows(result: AuditResult) -> list[dict[str, Any]]:
    """Per method x budget: medians over the images of the worst-case and random changes, of
    their per-image ratio and of the amplification, and the largest amplification."""
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
                "worst": _median(wc["relative_error"][k]),
                "amplification_median": _median(wc["amplification"][k]),
                "amplification": _largest(wc["amplification"][k]),
                "random": None,
                "ratio": None,
            }
            if rn:
                row["random"] = _median(rn["relative_mean_error"][k])
                row["ratio"] = _median([w / max(r, 1e-30) for w, r in
                                        zip(wc["error"][k], rn["mean_error"][k], strict=True)])
            rows.append(row)
    return rows


def _kernel_rows(result: AuditResult) -> list[dict[str, Any]]:
    rows = []
    for m in result.methods:
        e = result.entries.get((m, "kernel"))
        if e:
            rows.append(
                {
                    "method": m,
                    "identity_gap": min(e["identity_gap"]),
                    "hallucination": _median(e["hallucination"]),
                    "detection": _median(e["detection"]),
                    "bound": max(e["bound"]),
                    "transfer": _median(e["transfer"]) if e.get("transfer") else None,
                }
            )
    return rows


#: Most failed units the report lists one by one.
MAX_FAILURES = 100


def _failure_rows(result: AuditResult) -> list[dict[str, str]]:
    """The failed units (label, kind, message), in method, test and image order."""
    return [{"label": key.label, "kind": v.get("kind", ""), "message": v.get("message", "")}
            for key, v in sorted(result.failures.items())]


#: Most image names the report's header lists.
MAX_NAMES = 12


def _images_text(names: list[str]) -> str:
    if len(names) <= MAX_NAMES:
        return ", ".join(names)
    shown = MAX_NAMES - 2
    return ", ".join(names[:shown]) + f", ... and {len(names) - shown} more"


#: How the report names the cases of the ``operator`` test.
CASE_LABELS = {
    "given": "given A_E (data A x)",
    "mismatch": "mismatch (data A_E x, given A)",
}


def _operator_rows(result: AuditResult) -> list[dict[str, Any]]:
    """One row per method x case x budget of the ``operator`` test (a single row for a case the
    method cannot react to)."""
    rows = []
    for m in result.methods:
        e = result.entries.get((m, "operator"))
        if not e:
            continue
        for case in e["cases"]:
            values = e.get(case)
            if values is None:
                rows.append({"method": m, "case": CASE_LABELS[case], "budget": "all", "ignored": True})
                continue
            for k, b in enumerate(e["budgets"]):
                amps = [a for a in values["amplification"][k] if a is not None]
                ramps = [a for a in values["random_mean_amplification"][k] if a is not None]
                worst, rand = _mean(values["error"][k]), _mean(values["random_mean_error"][k])
                rows.append({
                    "method": m, "case": CASE_LABELS[case], "budget": f"{100 * b:g}%", "ignored": False,
                    "distance": _mean(values["distance"][k]) / max(e["norm"], 1e-300),
                    "worst": _mean(values["relative_error"][k]),
                    "random": _mean(values["random_relative_mean_error"][k]),
                    "ratio": worst / rand if rand > 0 else None,
                    "amplification": max(amps) if amps else None,
                    "random_amplification": _mean(ramps) if ramps else None,
                    "search": "gradient-free" if values["gradient_free"] else "gradient ascent",
                })
    return rows


def _operator_findings(result: AuditResult) -> list[str]:
    entries = {m: result.entries[(m, "operator")] for m in result.methods
               if (m, "operator") in result.entries}
    if not entries:
        return []
    family = next(iter(entries.values()))["family"]
    parts, ignoring = [], []
    for m, e in entries.items():
        cases = []
        for case in e["cases"]:
            values = e.get(case)
            amps = [a for row in values["amplification"] for a in row if a is not None] if values else []
            if amps:
                cases.append(f"{max(amps):.3g} {CASE_LABELS[case].split(' (')[0]}")
        if e["ignores_op"]:
            ignoring.append(m)
        if cases:
            parts.append(f"{m} {' / '.join(cases)}")
    notes = [f"Operator perturbations ({family}, ||A_E - A|| <= r ||A||): largest amplification in units of "
             f"||A_E - A|| ||x||: " + ("; ".join(parts) if parts else "none measured") + "."]
    if ignoring:
        notes.append(f"{', '.join(ignoring)} ignored the operator it was given: the output did not change "
                     f"when given A_E instead of A, so the method only ever uses the nominal operator and "
                     f"cannot react to A_E. Its given-A_E case is not measured (this is not stability); the "
                     f"mismatch case (data measured with A_E) is.")
    return notes


#: Most examples (images) a finding lists before "... and N more".
MAX_EXAMPLES = 5


def findings(result: AuditResult) -> list[str]:
    """Plain-sentence findings drawn from the numbers: the most accurate and the most stable
    method, the images on which one method keeps a small detail that another loses (at most
    :data:`MAX_EXAMPLES` listed), the kernel identity, methods that get worse with more
    samples, and the failed units. Their length does not grow with the number of images."""
    rows = result.summary()
    notes = []
    acc = [r for r in rows if r.get("psnr") is not None and r.get("worst_relative_change") is not None]
    if len(acc) > 1:
        best = max(acc, key=lambda r: r["psnr"])
        calm = min(acc, key=lambda r: r["worst_relative_change"])
        b = report_budget(result)
        over = f" (medians over {len(result.images)} images)" if len(result.images) > 1 else ""
        notes.append(
            f"Most accurate: {best['method']} ({best['psnr']:.2f} dB, worst-case change "
            f"{best['worst_relative_change']:.3g} at {b}). Most stable: {calm['method']} "
            f"({calm['psnr']:.2f} dB, worst-case change {calm['worst_relative_change']:.3g}){over}."
        )
    amp = {r["method"]: r.get("amplification") for r in rows}
    det = [m for m in result.methods if (m, "detail") in result.entries]
    if len(det) > 1:
        c = result.options.detail.contrast * 255
        cases = []
        for j, image in enumerate(result.images):
            rec = {m: result.entries[(m, "detail")]["recovered"][j] for m in det}
            keep = [m for m in det if rec[m] >= 0.8 and (amp.get(m) or 0) <= STABILITY_THRESHOLD]
            lose = [m for m in det if rec[m] < 0.5]
            if keep and lose:
                cases.append(
                    f"on {image}, {', '.join(f'{m} {100 * rec[m]:.0f}%' for m in keep)} against "
                    f"{', '.join(f'{m} {100 * rec[m]:.0f}%' for m in lose)}"
                )
        if cases:
            more = len(cases) - MAX_EXAMPLES
            listed = "; ".join(cases[:MAX_EXAMPLES]) + (f"; ... and {more} more images" if more > 0 else "")
            notes.append(
                f"Detail ({c:.0f}/255): stable methods recover >= 80% where others recover < 50% "
                f"on {len(cases)} of {len(result.images)} images: " + listed + "."
            )
        else:
            notes.append(
                f"Detail ({c:.0f}/255): on no image does a stable method recover >= 80% of the detail "
                f"while another recovers < 50%."
            )
    ker = [
        (m, min(result.entries[(m, "kernel")]["identity_gap"]))
        for m in result.methods
        if (m, "kernel") in result.entries
    ]
    if ker:
        worst = min(g for _, g in ker)
        notes.append(
            f"Kernel identity ||f(Ax) - x|| + ||f(A(x+z0)) - (x+z0)|| >= ||z0||: smallest gap "
            f"{worst:.3g} over all methods and images ({'holds' if worst >= -1e-3 else 'VIOLATED'})."
        )
    notes += _operator_findings(result)
    notes += _tradeoff_findings(result)
    worse = [r["method"] for r in rows if "worse with more samples" in r["verdict"]]
    if worse:
        notes.append(f"Worse with more samples than the audited rate: {', '.join(worse)}.")
    if result.failures:
        failed = sorted({key.method for key in result.failures})
        notes.append(f"{len(result.failures)} unit(s) of work failed (methods {', '.join(failed)}): their "
                     f"tests are missing from the tables and figures; see Failures.")
    return notes


def _decreasing(values: list[float]) -> bool:
    return all(a > b for a, b in zip(values, values[1:], strict=False))


def _tradeoff_findings(result: AuditResult) -> list[str]:
    chain = list(result.options.tradeoff)
    if not chain or not all((m, "accuracy") in result.entries for m in chain):
        return []
    psnr = [_mean(result.entries[(m, "accuracy")]["clean"]["psnr"]) for m in chain]
    falls = [_decreasing(psnr)]
    trend = "falls" if falls[0] else "does not fall"
    parts = [f"clean PSNR {', '.join(f'{p:.2f}' for p in psnr)} dB ({trend})"]
    if all((m, "worst_case") in result.entries for m in chain):
        for k, b in enumerate(result.options.budgets):
            if b < 0.02:
                continue
            worst = [_mean(result.entries[(m, "worst_case")]["relative_error"][k]) for m in chain]
            falls.append(_decreasing(worst))
            parts.append(f"worst-case change at {100 * b:g}% {', '.join(f'{w:.4f}' for w in worst)} "
                         f"({'falls' if falls[-1] else 'does not fall'})")
    verdict = "reproduced" if all(falls) else (
        "NOT reproduced: more regularisation did not make the method both less accurate and more stable")
    return [f"Accuracy-stability trade-off along {' -> '.join(chain)}: " + "; ".join(parts)
            + f". The theory's ordering is {verdict}."]


def _operator_info(result: AuditResult) -> dict[str, Any] | None:
    e = next((result.entries[(m, "operator")] for m in result.methods if (m, "operator") in result.entries),
             None)
    if e is None:
        return None
    return {"family": e["family"], "distance_kind": e["distance_kind"], "steps": e["steps"],
            "restarts": e["restarts"], "draws": e["draws"]}


def report_budget(result: AuditResult) -> str:
    """The report budget as a percentage string, e.g. ``"2%"``."""
    return f"{100 * result.options.report_budget:g}%"


def render_html(
    result: AuditResult,
    figures: list[tuple[str, Path, str]],
    title: str = "stablerecon audit",
    notes: list[str] | None = None,
    config_text: str | None = None,
) -> str:
    """The report as one HTML string; ``figures`` are ``(title, png_path, caption)``;
    ``config_text`` (the run's ``config.yaml``) is shown so the report names where its
    operators, methods and images came from."""
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
        threshold=STABILITY_THRESHOLD,
        images=result.images,
        images_text=_images_text(list(result.images)),
        tests=result.tests,
        options=result.options,
        summary=_summary_rows(result, result.summary()),
        many=len(result.images) > 1,
        budget_rows=_budget_rows(result),
        failures=_failure_rows(result)[:MAX_FAILURES],
        n_failures=len(result.failures),
        kernel_rows=_kernel_rows(result),
        operator_rows=_operator_rows(result),
        operator_info=_operator_info(result),
        figures=embedded,
        methods=methods_info,
        notes=notes or [],
        report_budget=f"{100 * result.options.report_budget:g}%",
        options_text=html.escape(str(result.options.model_dump())),
        config_text=html.escape(config_text) if config_text else None,
    )


def write_report(
    result: AuditResult, folder: str | Path, title: str = "stablerecon audit", notes: list[str] | None = None
) -> Path:
    """Draw the figures into ``folder/figures`` and write ``folder/report.html``; returns its
    path."""
    folder = Path(folder)
    figures = draw_figures(result, folder)
    path = folder / "report.html"
    config = folder / "config.yaml"
    config_text = config.read_text(encoding="utf-8") if config.is_file() else None
    write_text(path, render_html(result, figures, title=title, notes=findings(result) + list(notes or []),
                                 config_text=config_text))
    return path
