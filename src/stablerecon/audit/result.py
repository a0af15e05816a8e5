"""The result of an audit: methods x tests x images, its summary and one-line verdicts, and
its ``results.json`` document.

:class:`AuditResult` holds the numbers (``entries``) and the arrays the report draws;
:meth:`AuditResult.summary` gives one row per method and :meth:`AuditResult.verdict` states in
one line whether the method is stable (worst-case amplification at most
:data:`~stablerecon.contracts.STABILITY_THRESHOLD`), how it compares with random noise, whether
it keeps a small detail and whether more samples make it worse. :meth:`AuditResult.save`
writes a run folder; :func:`stablerecon.audit.load` reads one back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from ..contracts import STABILITY_THRESHOLD, Operator, capabilities
from ..files import write_atomic, write_json
from .arrays import save_arrays
from .options import AuditOptions

__all__ = ["AuditResult", "RESULTS_SCHEMA", "fingerprint", "operator_label", "operator_summary"]

#: Version of the ``results.json`` layout.
RESULTS_SCHEMA = 1


@dataclass
class AuditResult:
    """Methods x tests x images: the numbers (``entries[(method, test)]``, JSON values indexed
    ``[image]`` or ``[budget][image]`` / ``[rate][image]``) and the arrays the report draws
    (``arrays[(method, test)]``, tensors ``(B, ...)``), with the images ``truth``
    ``(B, C, H, W)``, their ``images`` names, the ``options`` and, if saved, the ``path``."""

    methods: list[str]
    images: list[str]
    tests: list[str]
    options: AuditOptions
    truth: Tensor
    operator: str
    entries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    arrays: dict[tuple[str, str], dict[str, Tensor]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    path: Path | None = None

    def get(self, method: str, test: str) -> dict[str, Any] | None:
        """The entry of ``method`` x ``test`` (``None`` if that test was not run)."""
        return self.entries.get((method, test))

    def _budget_index(self) -> int:
        return self.options.budgets.index(self.options.report_budget)

    def summary(self) -> list[dict[str, Any]]:
        """One row per method: mean scores over the images, the worst-case figures at the
        report budget, and a one-line verdict (see :meth:`verdict`)."""
        rows = []
        k = self._budget_index()
        for m in self.methods:
            row: dict[str, Any] = {"method": m}
            acc = self.get(m, "accuracy")
            if acc:
                row["psnr"] = _mean(acc["clean"]["psnr"])
                row["ssim"] = _mean(acc["clean"]["ssim"])
                row["noisy_psnr"] = _mean(acc["noisy"]["psnr"])
            wc = self.get(m, "worst_case")
            if wc:
                row["worst_relative_change"] = _mean(wc["relative_error"][k])
                row["amplification"] = max(max(a) for a in wc["amplification"])
                row["amplification_at_report_budget"] = max(wc["amplification"][k])
                row["not_rare"] = _mean(wc["not_rare"])
                row["gradient_free"] = wc["gradient_free"]
            rn = self.get(m, "random_noise")
            if rn:
                row["random_relative_change"] = _mean(rn["relative_mean_error"][k])
                if wc:
                    row["adversarial_over_random"] = _mean(wc["error"][k]) / max(
                        _mean(rn["mean_error"][k]), 1e-30
                    )
            ke = self.get(m, "kernel")
            if ke:
                row["hallucination"] = _mean(ke["hallucination"])
                row["kernel_bound"] = max(ke["bound"])
            de = self.get(m, "detail")
            if de:
                row["detail_recovered"] = min(de["recovered"])
            op_entry = self.get(m, "operator")
            if op_entry:
                row.update(operator_summary(op_entry))
            sa = self.get(m, "sampling")
            if sa:
                row["sampling_psnr"] = [_mean(p) for p in sa["psnr"]]
            row["verdict"] = self.verdict(m, row)
            rows.append(row)
        return rows

    def verdict(self, method: str, row: dict[str, Any] | None = None) -> str:
        """One line on ``method``: stable or not (worst-case amplification at most
        :data:`~stablerecon.contracts.STABILITY_THRESHOLD`), how much
        worse than random noise its worst case is, whether it loses the detail, and whether
        more samples make it worse."""
        if row is None:
            row = next(r for r in self.summary() if r["method"] == method)
        parts = []
        amp = row.get("amplification")
        if amp is not None:
            search = " (gradient-free search)" if row.get("gradient_free") else ""
            limit = f"{STABILITY_THRESHOLD:g}"
            if amp <= STABILITY_THRESHOLD:
                parts.append(f"stable: worst-case amplification {amp:.2f} <= {limit}{search}")
            else:
                ratio = row.get("adversarial_over_random")
                vs = f", {ratio:.1f}x random noise" if ratio is not None else ""
                parts.append(f"unstable: worst-case amplification {amp:.2f} > {limit}{vs}{search}")
        if "operator_family" in row:
            parts.append(_operator_verdict(row))
        rec = row.get("detail_recovered")
        if rec is not None:
            c = self.options.detail.contrast * 255
            parts.append(
                f"{'keeps' if rec >= 0.5 else 'loses'} the {c:.0f}/255 detail ({100 * rec:.0f}% recovered)"
            )
        psnrs = row.get("sampling_psnr")
        if psnrs is not None and len(psnrs) > 1:
            built = _built_rate_index(self.entries[(method, "sampling")])
            if built is not None and any(p < psnrs[built] - 0.5 for p in psnrs[built + 1 :]):
                parts.append("worse with more samples")
        return "; ".join(parts) if parts else "no stability test run"

    def to_json(self) -> dict[str, Any]:
        """The ``results.json`` document."""
        return {
            "schema": RESULTS_SCHEMA,
            "kind": "stablerecon-audit",
            "operator": self.operator,
            "methods": self.methods,
            "images": self.images,
            "tests": self.tests,
            "options": self.options.model_dump(),
            "fingerprint": fingerprint(self.truth, self.operator, self.options),
            "entries": [{"method": m, "test": t, "values": v} for (m, t), v in self.entries.items()],
            "timings": self.timings,
            "summary": self.summary() if self.entries else [],
        }

    def save(self, path: str | Path, report: bool = True) -> Path:
        """Write ``results.json``, the arrays and (``report``) ``figures/`` and ``report.html``
        into ``path``; returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for (m, t), arrays in self.arrays.items():
            save_arrays(folder, m, t, arrays)
        write_atomic(
            folder / "truth.safetensors", lambda p: save_file({"truth": self.truth.contiguous()}, str(p))
        )
        write_json(folder / "results.json", self.to_json())
        self.path = folder
        if report:
            from ..report import write_report

            write_report(self, folder)
        return folder


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


def _finite_max(rows: Sequence[Sequence[float | None]]) -> float | None:
    values = [v for row in rows for v in row if v is not None]
    return max(values) if values else None


def operator_summary(entry: dict[str, Any]) -> dict[str, Any]:
    """The summary fields of an ``operator`` entry: the family, whether the method ignores its
    ``op`` argument, and per measured case the largest amplification (units ``||A_E - A|| ||x||``,
    over budgets and images; ``None`` where no perturbation fits, e.g. a drop under ``r < 1``)."""
    row: dict[str, Any] = {"operator_family": entry["family"], "operator_ignores_op": entry["ignores_op"]}
    for case in entry["cases"]:
        values = entry.get(case)
        if values:
            row[f"operator_amplification_{case}"] = _finite_max(values["amplification"])
    return row


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _operator_verdict(row: dict[str, Any]) -> str:
    text = f"operator perturbation ({row['operator_family']}): worst amplification"
    cases = []
    if "operator_amplification_given" in row:
        cases.append(f"{_fmt(row['operator_amplification_given'])} given A_E")
    if "operator_amplification_mismatch" in row:
        cases.append(f"{_fmt(row['operator_amplification_mismatch'])} on data measured with A_E")
    text += (" " + ", ".join(cases) + " (per ||A_E - A|| ||x||)") if cases else " not measured"
    if row["operator_ignores_op"]:
        text += ("; IGNORES its op argument: its output did not change when given A_E, so it cannot "
                 "react to A_E (the given-A_E case is not measured, not 'perfectly stable')")
    return text


def _built_rate_index(entry: dict[str, Any]) -> int | None:
    built = entry.get("built_rate")
    if built is None:
        return None
    rates = entry["rates"]
    return min(range(len(rates)), key=lambda i: abs(rates[i] - built))


def fingerprint(truth: Tensor, operator: str, options: AuditOptions) -> dict[str, str]:
    """What identifies an audit: hashes of the images and the options, and the operator's label;
    a run folder is resumed only by an audit with the same fingerprint."""
    digest = hashlib.sha256(
        truth.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    ).hexdigest()
    opts = hashlib.sha256(json.dumps(options.model_dump(), sort_keys=True).encode()).hexdigest()
    return {"images": digest, "operator": operator, "options": opts}


def operator_label(op: Operator) -> str:
    """The operator's class, shapes, rate and a hash of its mask: what the fingerprint and the
    report call it."""
    parts = [type(op).__name__]
    caps = capabilities(op)
    for attr, shape in (("in_shape", caps.in_shape), ("out_shape", caps.out_shape)):
        if shape is not None:
            parts.append(f"{attr}={shape}")
    rate = getattr(op, "rate", None)
    if isinstance(rate, float):
        parts.append(f"rate={rate:.4f}")
    mask = getattr(op, "mask", None)
    if isinstance(mask, Tensor):
        parts.append("mask=" + hashlib.sha256(mask.to("cpu").numpy().tobytes()).hexdigest()[:12])
    return " ".join(parts)
