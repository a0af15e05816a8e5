"""The audit suite: every test, for every method, on the same images and operator.

:func:`run` evaluates methods x tests on a batch of images (every test sees all images at
once) and returns an :class:`AuditResult`. With ``out`` it writes, after each finished
(method, test) unit, the unit's arrays (``arrays/*.safetensors``) and then the entry in
``results.json``, each atomically; a run that is killed loses at most the unit in progress,
and the same call again skips what is done. Every unit depends only on the method, the
images, the operator and the options' seed, so a resumed audit ends with the same entries as
one that ran straight through. At the end the figures and ``report.html`` are drawn
(:mod:`stablerecon.report`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from ..config import AUDIT_TESTS, AuditOptions, ConfigError, validate
from ..data import insert_detail
from ..files import write_atomic, write_json
from ..operators.nullspace import kernel_split
from .accuracy import accuracy
from .detail import detail_test, sampling_sweep
from .kernel import kernel_test
from .perturbation import batch_norm, not_rare, random_noise, worst_case

__all__ = ["AuditResult", "run", "load", "TESTS", "RESULTS_SCHEMA", "slug"]

TESTS = AUDIT_TESTS
RESULTS_SCHEMA = 1
Method = Callable[..., Tensor]


def slug(name: str) -> str:
    """File-name form of a method name: ``"U-Net (jitter 2%)"`` -> ``"u-net-jitter-2"``."""
    out = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return out or "method"


def _tolist(t: Tensor) -> Any:
    return t.detach().to("cpu", torch.float64).tolist()


def _real(t: Tensor) -> Tensor:
    return t.real if t.is_complex() else t


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
            sa = self.get(m, "sampling")
            if sa:
                row["sampling_psnr"] = [_mean(p) for p in sa["psnr"]]
            row["verdict"] = self.verdict(m, row)
            rows.append(row)
        return rows

    def verdict(self, method: str, row: dict[str, Any] | None = None) -> str:
        """One line on ``method``: stable or not (worst-case amplification ``<= 3``), how much
        worse than random noise its worst case is, whether it loses the detail, and whether
        more samples make it worse."""
        if row is None:
            row = next(r for r in self.summary() if r["method"] == method)
        parts = []
        amp = row.get("amplification")
        if amp is not None:
            search = " (gradient-free search)" if row.get("gradient_free") else ""
            if amp <= 3:
                parts.append(f"stable: worst-case amplification {amp:.2f} <= 3{search}")
            else:
                ratio = row.get("adversarial_over_random")
                vs = f", {ratio:.1f}x random noise" if ratio is not None else ""
                parts.append(f"unstable: worst-case amplification {amp:.2f} > 3{vs}{search}")
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
            "fingerprint": _fingerprint(self.truth, self.operator, self.options),
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
            _save_arrays(folder, m, t, arrays)
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


def _built_rate_index(entry: dict[str, Any]) -> int | None:
    built = entry.get("built_rate")
    if built is None:
        return None
    rates = entry["rates"]
    return min(range(len(rates)), key=lambda i: abs(rates[i] - built))


def _fingerprint(truth: Tensor, operator: str, options: AuditOptions) -> dict[str, str]:
    digest = hashlib.sha256(
        truth.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    ).hexdigest()
    opts = hashlib.sha256(json.dumps(options.model_dump(), sort_keys=True).encode()).hexdigest()
    return {"images": digest, "operator": operator, "options": opts}


def _operator_label(op: object) -> str:
    parts = [type(op).__name__]
    for attr in ("in_shape", "out_shape"):
        shape = getattr(op, attr, None)
        if shape is not None:
            parts.append(f"{attr}={tuple(shape)}")
    rate = getattr(op, "rate", None)
    if isinstance(rate, float):
        parts.append(f"rate={rate:.4f}")
    mask = getattr(op, "mask", None)
    if isinstance(mask, Tensor):
        parts.append("mask=" + hashlib.sha256(mask.to("cpu").numpy().tobytes()).hexdigest()[:12])
    return " ".join(parts)


def _arrays_path(folder: Path, method: str, test: str) -> Path:
    return folder / "arrays" / f"{slug(method)}.{test}.safetensors"


def _save_arrays(folder: Path, method: str, test: str, arrays: dict[str, Tensor]) -> None:
    if not arrays:
        return
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in arrays.items()}
    write_atomic(_arrays_path(folder, method, test), lambda p: save_file(tensors, str(p)))


def _check_images(images: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, list[str]]:
    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(
                f"argument 'images' must be a (B, C, H, W) tensor, got shape {tuple(images.shape)}"
            )
        x, names = images, [f"image{i}" for i in range(images.shape[0])]
    elif isinstance(images, Mapping):
        if not images:
            raise ValueError("argument 'images' must hold at least one image")
        items = []
        for name, img in images.items():
            if not isinstance(img, Tensor):
                raise TypeError(
                    f"argument 'images'[{name!r}] must be a torch.Tensor, got {type(img).__name__}"
                )
            while img.ndim < 4:
                img = img.unsqueeze(0)
            if img.ndim != 4 or img.shape[0] != 1:
                raise ValueError(
                    f"argument 'images'[{name!r}] must be one image (C, H, W) or (1, C, H, W), "
                    f"got shape {tuple(img.shape)}"
                )
            items.append(img)
        shapes = {tuple(i.shape) for i in items}
        if len(shapes) > 1:
            raise ValueError(f"argument 'images' must hold images of one shape, got {sorted(shapes)}")
        x, names = torch.cat(items), [str(n) for n in images]
    else:
        raise TypeError(
            f"argument 'images' must be a tensor or a mapping of names to tensors, "
            f"got {type(images).__name__}"
        )
    if x.shape[0] == 0:
        raise ValueError("argument 'images' must hold at least one image")
    if x.is_complex() or not x.is_floating_point():
        raise TypeError(f"argument 'images' must be real floating point, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("argument 'images' holds NaN or Inf")
    return x, names


def _check_methods(methods: Mapping[str, Method]) -> dict[str, Method]:
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError(
            "argument 'methods' must be a non-empty mapping of names to methods method(y, op) -> x_hat"
        )
    seen: dict[str, str] = {}
    for name, method in methods.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"argument 'methods': names must be non-empty strings, got {name!r}")
        if not callable(method):
            raise TypeError(
                f"argument 'methods'[{name!r}] must be callable as method(y, op), got {type(method).__name__}"
            )
        s = slug(name)
        if s in seen:
            raise ValueError(f"argument 'methods': names {seen[s]!r} and {name!r} collide as file names")
        seen[s] = name
    return dict(methods)


def _check_tests(tests: Sequence[str] | None, has_sweep: bool) -> list[str]:
    if tests is None:
        return [t for t in TESTS if t != "sampling" or has_sweep]
    if isinstance(tests, str):
        tests = [tests]
    unknown = [t for t in tests if t not in TESTS]
    if unknown or not tests:
        raise ValueError(f"argument 'tests' must be a non-empty list from {list(TESTS)}, got {list(tests)!r}")
    if "sampling" in tests and not has_sweep:
        raise ValueError("test 'sampling' needs argument 'make_operator' (rate -> operator)")
    return [t for t in TESTS if t in tests]


def _centre(x: Tensor, position: tuple[int, int] | None) -> tuple[int, int]:
    return tuple(position) if position is not None else (x.shape[-2] // 2, x.shape[-1] // 2)  # type: ignore[return-value]


def _unit(
    method: Method,
    test: str,
    x: Tensor,
    op: object,
    opts: AuditOptions,
    make_operator: Callable[[float], object] | None,
    progress: bool = False,
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Run one test for one method on all images; returns (JSON values, arrays)."""
    seed = opts.seed
    if test == "accuracy":
        clean = accuracy(method, x, op, seed=seed)
        noisy = accuracy(method, x, op, noise=opts.noise, seed=seed)
        values = {"noise": opts.noise}
        for key, res in (("clean", clean), ("noisy", noisy)):
            values[key] = {"psnr": _tolist(res.psnr), "ssim": _tolist(res.ssim), "nmse": _tolist(res.nmse)}
        return values, {"reconstruction": clean.output, "noisy_reconstruction": noisy.output}
    if test == "worst_case":
        with torch.no_grad():
            y = op.A(x)
        res = worst_case(
            method,
            y,
            op,
            opts.budgets,
            x=x,
            reference=opts.reference,
            steps=opts.steps,
            restarts=opts.restarts,
            step_size=opts.step_size,
            directions=opts.directions,
            seed=seed,
            progress=progress,
        )
        k = opts.budgets.index(opts.report_budget)
        e = res.perturbation[k]
        kept = not_rare(method, y, op, e, scale=opts.not_rare_scale, draws=opts.not_rare_draws, seed=seed)
        with torch.no_grad():
            clean = _real(method(y, op))
            seen = _real(op.A_adjoint(e)) if hasattr(op, "A_adjoint") else torch.zeros_like(x)
        values = {
            "reference": res.reference,
            "gradient_free": res.gradient_free,
            "steps": res.steps,
            "restarts": res.restarts,
            "error": _tolist(res.error),
            "relative_error": _tolist(res.relative_error),
            "amplification": _tolist(res.amplification),
            "perturbation_norm": _tolist(torch.stack([batch_norm(p) for p in res.perturbation])),
            "not_rare": _tolist(kept),
            "not_rare_scale": opts.not_rare_scale,
        }
        return values, {
            "clean_output": clean,
            "perturbed_output": _real(res.output[k]),
            "perturbation_image": seen,
        }
    if test == "random_noise":
        with torch.no_grad():
            y = op.A(x)
            ref = batch_norm(_real(method(y, op))).clamp_min(1e-30)
        res = random_noise(method, y, op, opts.budgets, draws=opts.draws, seed=seed)
        return {
            "draws": res.draws,
            "mean_error": _tolist(res.mean_error),
            "max_error": _tolist(res.max_error),
            "relative_mean_error": _tolist(res.mean_error / ref),
            "mean_amplification": _tolist(res.mean_amplification),
        }, {}
    if test == "kernel":
        spec = opts.kernel
        x64 = x.double()
        x_d, _ = insert_detail(
            x64,
            kind="blob",
            contrast=spec.contrast,
            position=_centre(x, spec.position),
            size=spec.diameter,
            soft=False,
        )
        split = kernel_split(x_d - x64, op, ratio=spec.ratio)  # z0 (exact kernel) and z (ratio)
        other = torch.roll(x, 1, dims=0) if x.shape[0] > 1 else None
        z0 = split.z0.to(x.dtype)
        ex = kernel_test(method, x, op, z0, x_other=other)
        nr = kernel_test(method, x, op, split.z.to(x.dtype))
        values = {
            "z0_norm": _tolist(ex.z_norm),
            "kernel_ratio": _tolist(split.kernel_ratio),
            "error_x": _tolist(ex.error_x),
            "error_xz0": _tolist(ex.error_xz),
            "identity_gap": _tolist(ex.identity_gap),
            "hallucination": _tolist(ex.hallucination),
            "detection": _tolist(ex.detection),
            "transfer": _tolist(ex.transfer) if ex.transfer is not None else None,
            "ratio": spec.ratio,
            "z_norm": _tolist(nr.z_norm),
            "error_xz": _tolist(nr.error_xz),
            "bound": _tolist(nr.bound),
        }
        return values, {"z0": z0}
    if test == "detail":
        spec = opts.detail
        res = detail_test(
            method,
            x,
            op,
            kind=spec.kind,
            contrast=spec.contrast,
            position=_centre(x, spec.position),
            size=spec.size,
            text=spec.text,
            noise=spec.noise,
            seed=seed,
        )
        return (
            {"kind": res.kind, "contrast": res.contrast, "recovered": _tolist(res.recovered)},
            {"found": res.with_detail - res.without, "mask": res.mask.to(torch.float32)},
        )
    if test == "sampling":
        if make_operator is None:
            raise ValueError("test 'sampling' needs argument 'make_operator' (rate -> operator)")
        res = sampling_sweep(method, x, make_operator, opts.rates, noise=opts.noise, seed=seed)
        built = getattr(op, "rate", None)
        return (
            {
                "rates": res.rates,
                "built_rate": float(built) if isinstance(built, float) else None,
                "psnr": _tolist(res.psnr),
                "ssim": _tolist(res.ssim),
                "nmse": _tolist(res.nmse),
            },
            {},
        )
    raise ValueError(f"unknown test {test!r}")


def _read_existing(folder: Path, fingerprint: dict[str, str]) -> tuple[dict, dict]:
    path = folder / "results.json"
    if not path.is_file():
        return {}, {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"argument 'out': {path} is not a readable audit results file ({err}); "
            f"move it away or choose another folder"
        ) from None
    if (
        not isinstance(doc, dict)
        or doc.get("kind") != "stablerecon-audit"
        or doc.get("schema") != RESULTS_SCHEMA
    ):
        raise ValueError(f"argument 'out': {path} is not a stablerecon audit (schema {RESULTS_SCHEMA})")
    old = doc.get("fingerprint", {})
    for key in ("images", "operator", "options"):
        if old.get(key) != fingerprint[key]:
            raise ValueError(
                f"argument 'out': {folder} holds an audit with different {key}; choose another folder"
            )
    entries = {(e["method"], e["test"]): e["values"] for e in doc.get("entries", [])}
    return entries, dict(doc.get("timings", {}))


def _load_arrays(folder: Path, method: str, test: str) -> dict[str, Tensor] | None:
    path = _arrays_path(folder, method, test)
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except (SafetensorError, OSError):
        return None


def run(
    methods: Mapping[str, Method],
    op: object,
    images: Tensor | Mapping[str, Tensor],
    tests: Sequence[str] | None = None,
    budgets: Sequence[float] | None = None,
    *,
    options: AuditOptions | Mapping[str, Any] | None = None,
    make_operator: Callable[[float], object] | None = None,
    out: str | Path | None = None,
    report: bool = True,
    progress: bool = True,
    config_text: str | None = None,
) -> AuditResult:
    """Audit reconstruction methods side by side.

    Parameters
    ----------
    methods:
        Names to methods ``method(y, op) -> x_hat``; differentiable ones (``nn.Module`` s or
        ``method.differentiable = True``) are attacked with gradients, others by a
        gradient-free search.
    op:
        Forward operator (anything with ``A``, ``A_adjoint``; ``A_dagger`` and ``norm`` help).
    images:
        Ground-truth images ``(B, C, H, W)`` in ``[0, 1]``, or a mapping of names to images.
    tests:
        Subset of :data:`TESTS` (default: all; ``sampling`` only with ``make_operator``).
    budgets:
        Relative perturbation budgets (shortcut for ``options.budgets``; the report budget
        becomes 2% if listed, else the middle one).
    options:
        :class:`~stablerecon.config.AuditOptions` or a mapping of its fields.
    make_operator:
        ``rate -> operator`` for the sampling-rate sweep.
    out:
        Run folder: results are saved as they finish and a rerun resumes (see module docs).
    report:
        Draw ``figures/`` and ``report.html`` into ``out`` at the end.
    progress:
        Show a progress bar over (method, test) units.
    config_text:
        Text written to ``out/config.yaml`` (default: the options as YAML).

    Returns
    -------
    AuditResult
    """
    methods = _check_methods(methods)
    if not hasattr(op, "A"):
        raise TypeError(
            f"argument 'op' must be a forward operator with A and A_adjoint, got {type(op).__name__}"
        )
    x, names = _check_images(images)
    if options is None:
        options = AuditOptions()
    elif isinstance(options, Mapping):
        options = validate(AuditOptions, dict(options), source="argument 'options'")
    elif not isinstance(options, AuditOptions):
        raise TypeError(f"argument 'options' must be AuditOptions or a mapping, got {type(options).__name__}")
    if budgets is not None:
        budgets = [float(b) for b in budgets]
        if not budgets or any(not (math.isfinite(b) and b > 0) for b in budgets):
            raise ValueError(
                f"argument 'budgets' must be a non-empty list of positive numbers, got {budgets!r}"
            )
        report_budget = 0.02 if 0.02 in budgets else budgets[len(budgets) // 2]
        try:
            options = validate(
                AuditOptions, {**options.model_dump(), "budgets": budgets, "report_budget": report_budget}
            )
        except ConfigError as err:
            raise ValueError(str(err)) from None
    test_list = _check_tests(tests, make_operator is not None)
    unknown = [t for t in options.tradeoff if t not in methods]
    if unknown:
        raise ValueError(f"argument 'options': tradeoff names methods that are not audited: {unknown}")
    in_shape = getattr(op, "in_shape", None)
    if in_shape is not None and len(in_shape) >= 2 and tuple(x.shape[-2:]) != tuple(in_shape)[-2:]:
        raise ValueError(
            f"argument 'images' has image shape {tuple(x.shape[1:])} but the operator takes {tuple(in_shape)}"
        )
    label = _operator_label(op)
    result = AuditResult(list(methods), names, test_list, options, x.detach().clone(), label)
    folder = Path(out) if out is not None else None
    if folder is not None:
        result.entries, result.timings = _read_existing(folder, _fingerprint(result.truth, label, options))
        folder.mkdir(parents=True, exist_ok=True)
        text = (
            config_text
            if config_text is not None
            else _options_yaml(options, list(methods), names, test_list)
        )
        write_atomic(folder / "config.yaml", lambda p: p.write_text(text, encoding="utf-8"))
        write_atomic(
            folder / "truth.safetensors", lambda p: save_file({"truth": result.truth.contiguous()}, str(p))
        )
        result.path = folder
        for key in list(result.entries):
            if key[0] in methods:
                arrays = _load_arrays(folder, *key)
                if arrays is None and key[1] in ("accuracy", "worst_case", "kernel", "detail"):
                    del result.entries[key]  # arrays lost: redo the unit
                elif arrays:
                    result.arrays[key] = arrays
    units = [(m, t) for m in methods for t in test_list]
    todo = [u for u in units if u not in result.entries]
    bar = tqdm(
        total=len(units),
        initial=len(units) - len(todo),
        disable=not progress,
        desc="audit",
        unit="test",
        dynamic_ncols=True,
    )
    try:
        for name, test in todo:
            bar.set_postfix_str(f"{name}: {test}")
            method = methods[name]
            was_training = getattr(method, "training", None)
            if was_training:
                method.eval()
            started = time.perf_counter()
            try:
                values, arrays = _unit(method, test, x, op, options, make_operator, progress)
            finally:
                if was_training:
                    method.train()
            result.timings[f"{name}: {test}"] = round(time.perf_counter() - started, 3)
            result.entries[(name, test)] = values
            result.arrays[(name, test)] = arrays
            if folder is not None:
                _save_arrays(folder, name, test, arrays)
                write_json(folder / "results.json", result.to_json())
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        if folder is not None:
            raise KeyboardInterrupt(
                f"audit interrupted; finished tests are saved in {folder}; "
                f"run the same command again to resume"
            ) from None
        raise
    bar.close()
    if folder is not None:
        write_json(folder / "results.json", result.to_json())  # every entry of the folder
    # the result and its report cover the requested methods and tests (a folder may hold more)
    result.entries = {k: v for k, v in result.entries.items() if k in set(units)}
    result.arrays = {k: v for k, v in result.arrays.items() if k in set(units)}
    if folder is not None:
        if report:
            from ..report import write_report

            write_report(result, folder)
    return result


def _options_yaml(options: AuditOptions, methods: list[str], images: list[str], tests: list[str]) -> str:
    import yaml

    return yaml.safe_dump(
        {"methods": methods, "images": images, "tests": tests, "options": options.model_dump()},
        sort_keys=False,
    )


def load(path: str | Path) -> AuditResult:
    """Read a saved audit (``results.json``, ``truth.safetensors`` and the arrays) back into an
    :class:`AuditResult`, e.g. to redraw its report."""
    folder = Path(path)
    file = folder / "results.json"
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        truth = load_file(str(folder / "truth.safetensors"))["truth"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError, KeyError) as err:
        raise ValueError(f"argument 'path': {folder} does not hold a readable audit ({err})") from None
    if doc.get("kind") != "stablerecon-audit" or doc.get("schema") != RESULTS_SCHEMA:
        raise ValueError(f"argument 'path': {file} is not a stablerecon audit (schema {RESULTS_SCHEMA})")
    options = validate(AuditOptions, doc["options"], source=str(file))
    result = AuditResult(
        doc["methods"],
        doc["images"],
        doc["tests"],
        options,
        truth,
        doc["operator"],
        timings=doc.get("timings", {}),
        path=folder,
    )
    for e in doc["entries"]:
        key = (e["method"], e["test"])
        result.entries[key] = e["values"]
        arrays = _load_arrays(folder, *key)
        if arrays:
            result.arrays[key] = arrays
    return result
