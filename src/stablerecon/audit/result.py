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

import numpy as np
import torch
from torch import Tensor

from ..contracts import STABILITY_THRESHOLD, Operator, capabilities
from ..files import write_json
from .arrays import load_arrays, load_truth, save_arrays, save_truth
from .images import ImageSet, chunks
from .merge import merge_values
from .options import AuditOptions
from .registry import TESTS
from .statistics import MedianCI, median_ci
from .units import UnitKey

__all__ = ["AuditResult", "RESULTS_SCHEMA", "fingerprint", "operator_label", "operator_summary"]

#: Version of the ``results.json`` layout.
RESULTS_SCHEMA = 2


@dataclass
class AuditResult:
    """Methods x tests x images.

    The numbers are kept per unit (``units[UnitKey]``: one test for one method on one chunk of
    images, see :mod:`~stablerecon.audit.units`); :attr:`entries` joins the chunks of each
    (method, test) into JSON values over all images (lists indexed ``[image]`` or
    ``[budget][image]`` / ``[rate][image]``), for the (method, test) pairs whose every chunk
    finished. ``failures`` holds the units that raised (``{"kind", "message"}``). Arrays
    (reconstructions, perturbations) are read on demand from the run folder (``path``) or, for
    an audit run without one, kept in memory: :meth:`image_arrays` gives those of chosen
    images, :attr:`arrays` all of them. ``images`` are the image names, ``source`` the
    :class:`~stablerecon.audit.images.ImageSet` (``None`` for a loaded audit, whose images
    are read from ``truth/``)."""

    methods: list[str]
    images: list[str]
    tests: list[str]
    options: AuditOptions
    operator: str
    digest: str = ""
    units: dict[UnitKey, dict[str, Any]] = field(default_factory=dict)
    failures: dict[UnitKey, dict[str, str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    source: ImageSet | None = None
    held_arrays: dict[UnitKey, dict[str, Tensor]] = field(default_factory=dict)
    _merged: dict[tuple[str, str], dict[str, Any]] | None = field(default=None, repr=False)

    # ---- the numbers ------------------------------------------------------------------------

    @property
    def chunks(self) -> list[range]:
        """The chunks of images (``options.batch_size`` each) the units run on."""
        return chunks(len(self.images), self.options.batch_size)

    def keys(self, method: str, test: str) -> list[UnitKey]:
        """The units of ``method`` x ``test``, in image order."""
        return [UnitKey(method, test, c.start, c.stop) for c in self.chunks]

    def record(self, key: UnitKey, values: dict[str, Any]) -> None:
        """Keep the values of a finished unit (and forget an earlier failure of it)."""
        self.units[key] = values
        self.failures.pop(key, None)
        self._merged = None

    @property
    def entries(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(method, test): values over all images}`` for every pair whose chunks all finished."""
        if self._merged is None:
            merged = {}
            for m in self.methods:
                for t in self.tests:
                    keys = self.keys(m, t)
                    if all(k in self.units for k in keys):
                        constants = TESTS.entry(t).meta.get("constants", ()) if t in TESTS else ()
                        merged[(m, t)] = merge_values([self.units[k] for k in keys], constants)
            self._merged = merged
        return self._merged

    def get(self, method: str, test: str) -> dict[str, Any] | None:
        """The entry of ``method`` x ``test`` (``None`` if that test was not run or not finished)."""
        return self.entries.get((method, test))

    # ---- images and arrays ------------------------------------------------------------------

    def truth_at(self, ids: Sequence[int]) -> Tensor:
        """The ground-truth images ``ids`` ``(len(ids), C, H, W)``."""
        ids = list(ids)
        if self.source is not None:
            return self.source.load(ids).detach().to("cpu")
        if self.path is None:
            raise ValueError("this audit has neither its images nor a run folder")
        rows: dict[int, Tensor] = {}
        for c in self.chunks:
            if not any(c.start <= i < c.stop for i in ids):
                continue
            got = load_truth(self.path, c.start, c.stop)
            if got is None:
                raise ValueError(f"{self.path}: images {c.start}..{c.stop - 1} are missing from truth/")
            for i in ids:
                if c.start <= i < c.stop:
                    rows[i] = got[i - c.start]
        return torch.stack([rows[i] for i in ids])

    @property
    def truth(self) -> Tensor:
        """All ground-truth images ``(B, C, H, W)`` (read from the source or the run folder)."""
        return self.truth_at(range(len(self.images)))

    def _unit_arrays(self, key: UnitKey) -> dict[str, Tensor] | None:
        if key in self.held_arrays:
            return self.held_arrays[key]
        if self.path is not None and key in self.units:
            return load_arrays(self.path, key)
        return None

    def image_arrays(self, method: str, test: str, ids: Sequence[int]) -> dict[str, Tensor]:
        """The arrays of ``method`` x ``test`` for images ``ids`` (each ``(len(ids), ...)``),
        read chunk by chunk; empty when the unit keeps none."""
        ids = list(ids)
        rows: dict[int, dict[str, Tensor]] = {}
        for key in self.keys(method, test):
            want = [i for i in ids if key.start <= i < key.stop]
            if not want:
                continue
            arrays = self._unit_arrays(key)
            if not arrays:
                return {}
            for i in want:
                rows[i] = {k: v[i - key.start] for k, v in arrays.items()}
        if len(rows) != len(ids):
            return {}
        names = rows[ids[0]].keys()
        return {k: torch.stack([rows[i][k] for i in ids]) for k in names}

    @property
    def arrays(self) -> dict[tuple[str, str], dict[str, Tensor]]:
        """``{(method, test): arrays over all images}`` (read from the run folder: for a large
        audit prefer :meth:`image_arrays`)."""
        out = {}
        for m, t in self.entries:
            got = self.image_arrays(m, t, range(len(self.images)))
            if got:
                out[(m, t)] = got
        return out

    # ---- summary ----------------------------------------------------------------------------

    def _budget_index(self) -> int:
        return self.options.budgets.index(self.options.report_budget)

    def _ci(self, values: Sequence[float | None]) -> MedianCI | None:
        return median_ci(values, seed=self.options.seed)

    def summary(self) -> list[dict[str, Any]]:
        """One row per method: the median over the images of each score (``ci[score]``: the
        median with its bootstrap 95% interval, :func:`~stablerecon.audit.statistics.median_ci`),
        the worst image, and a one-line verdict (see :meth:`verdict`)."""
        rows = []
        k = self._budget_index()
        for m in self.methods:
            row: dict[str, Any] = {"method": m}
            ci: dict[str, dict[str, float]] = {}

            def put(name: str, values: Sequence[float | None], row: dict[str, Any] = row,
                    ci: dict[str, dict[str, float]] = ci) -> None:
                stat = self._ci(values)
                row[name] = None if stat is None else stat.median
                if stat is not None:
                    ci[name] = {"median": stat.median, "low": stat.low, "high": stat.high, "n": stat.n}

            acc = self.get(m, "accuracy")
            if acc:
                put("psnr", acc["clean"]["psnr"])
                put("ssim", acc["clean"]["ssim"])
                put("noisy_psnr", acc["noisy"]["psnr"])
            wc = self.get(m, "worst_case")
            if wc:
                per_image = [max(col) for col in zip(*wc["amplification"], strict=True)]
                put("worst_relative_change", wc["relative_error"][k])
                put("amplification", per_image)
                worst = max(range(len(per_image)), key=per_image.__getitem__)
                row["amplification_max"] = per_image[worst]
                row["worst_image"] = self.images[worst]
                put("amplification_at_report_budget", wc["amplification"][k])
                put("not_rare", wc["not_rare"])
                row["gradient_free"] = wc["gradient_free"]
            rn = self.get(m, "random_noise")
            if rn:
                put("random_relative_change", rn["relative_mean_error"][k])
                if wc:
                    put("adversarial_over_random", [w / max(r, 1e-30) for w, r in
                                                    zip(wc["error"][k], rn["mean_error"][k], strict=True)])
            ke = self.get(m, "kernel")
            if ke:
                put("hallucination", ke["hallucination"])
                row["kernel_bound"] = max(ke["bound"])
            de = self.get(m, "detail")
            if de:
                put("detail_recovered", de["recovered"])
                row["detail_recovered_min"] = min(de["recovered"])
            op_entry = self.get(m, "operator")
            if op_entry:
                row.update(operator_summary(op_entry))
            sa = self.get(m, "sampling")
            if sa:
                row["sampling_psnr"] = [float(np.median(p)) for p in sa["psnr"]]
            row["images"] = len(self.images)
            row["ci"] = ci
            row["verdict"] = self.verdict(m, row)
            rows.append(row)
        return rows

    def verdict(self, method: str, row: dict[str, Any] | None = None) -> str:
        """One line on ``method``: stable or not (the median over the images of the worst-case
        amplification at most :data:`~stablerecon.contracts.STABILITY_THRESHOLD`), stated with
        its bootstrap 95% interval and the worst image, how much worse than random noise its
        worst case is, whether it loses the detail, and whether more samples make it worse."""
        if row is None:
            row = next(r for r in self.summary() if r["method"] == method)
        parts = []
        amp = row.get("amplification")
        ci = row.get("ci", {})
        if amp is not None:
            search = " (gradient-free search)" if row.get("gradient_free") else ""
            limit = f"{STABILITY_THRESHOLD:g}"
            stated = _stated(ci.get("amplification"), amp)
            notes = []
            c = ci.get("amplification")
            if c is not None and c["n"] > 1:
                notes.append(f"median over {int(c['n'])} images, 95% interval")
                if c["low"] <= STABILITY_THRESHOLD < c["high"]:
                    notes.append(f"the interval straddles {limit}")
            if len(self.images) > 1 and row.get("amplification_max") is not None:
                notes.append(f"worst image {row['worst_image']} {row['amplification_max']:.3g}")
            extra = f" ({'; '.join(notes)})" if notes else ""
            if amp <= STABILITY_THRESHOLD:
                parts.append(f"stable: worst-case amplification {stated} <= {limit}{extra}{search}")
            else:
                ratio = row.get("adversarial_over_random")
                vs = f", {ratio:.1f}x random noise" if ratio is not None else ""
                parts.append(f"unstable: worst-case amplification {stated} > {limit}{extra}{vs}{search}")
        if "operator_family" in row:
            parts.append(_operator_verdict(row))
        rec = row.get("detail_recovered")
        if rec is not None:
            c = self.options.detail.contrast * 255
            parts.append(
                f"{'keeps' if rec >= 0.5 else 'loses'} the {c:.0f}/255 detail ("
                f"{_stated(ci.get('detail_recovered'), rec, percent=True)} recovered)"
            )
        psnrs = row.get("sampling_psnr")
        if psnrs is not None and len(psnrs) > 1:
            built = _built_rate_index(self.entries[(method, "sampling")])
            if built is not None and any(p < psnrs[built] - 0.5 for p in psnrs[built + 1 :]):
                parts.append("worse with more samples")
        if any(key.method == method for key in self.failures):
            failed = sorted({key.test for key in self.failures if key.method == method})
            parts.append(f"FAILED in {', '.join(failed)} (see failures)")
        return "; ".join(parts) if parts else "no stability test run"

    # ---- files ------------------------------------------------------------------------------

    def to_json(self, summary: bool = True) -> dict[str, Any]:
        """The ``results.json`` document (``summary``: with the summary rows, computed from the
        finished entries)."""
        return {
            "schema": RESULTS_SCHEMA,
            "kind": "stablerecon-audit",
            "operator": self.operator,
            "methods": self.methods,
            "images": self.images,
            "tests": self.tests,
            "options": self.options.model_dump(),
            "fingerprint": fingerprint(self.digest, self.operator, self.options),
            "entries": [{"method": k.method, "test": k.test, "images": [k.start, k.stop], "values": v}
                        for k, v in sorted(self.units.items())],
            "failures": [{"method": k.method, "test": k.test, "images": [k.start, k.stop], **v}
                         for k, v in sorted(self.failures.items())],
            "timings": self.timings,
            "summary": self.summary() if summary and self.entries else [],
        }

    def save(self, path: str | Path, report: bool = True) -> Path:
        """Write ``results.json``, the images, the arrays and (``report``) ``figures/`` and
        ``report.html`` into ``path``; returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for key in self.units:
            arrays = self._unit_arrays(key)
            if arrays:
                save_arrays(folder, key, arrays)
        for c in self.chunks:
            save_truth(folder, c.start, c.stop, self.truth_at(c))
        write_json(folder / "results.json", self.to_json())
        self.path = folder
        if report:
            from ..report import write_report

            write_report(self, folder)
        return folder


def _stated(ci: dict[str, float] | None, value: float, percent: bool = False) -> str:
    """``"4.2 [3.9, 4.6]"`` (the value alone for one image)."""
    scale, unit = (100.0, "%") if percent else (1.0, "")
    if ci is None or ci["n"] <= 1:
        return f"{scale * value:.3g}{unit}"
    return f"{scale * ci['median']:.3g}{unit} [{scale * ci['low']:.3g}, {scale * ci['high']:.3g}]"


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


def fingerprint(digest: str, operator: str, options: AuditOptions) -> dict[str, str]:
    """What identifies an audit: the hash of its images (:meth:`ImageSet.digest
    <stablerecon.audit.images.ImageSet.digest>`), the hash of the options and the operator's
    label; a run folder is resumed only by an audit with the same fingerprint."""
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
