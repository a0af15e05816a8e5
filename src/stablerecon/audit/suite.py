"""The audit suite: every test, for every method, on the same images and operator.

:func:`run` evaluates methods x tests (:data:`~stablerecon.audit.registry.TESTS`) on a batch of
images (every test sees all images at once) and returns an
:class:`~stablerecon.audit.result.AuditResult`. With ``out`` it writes, after each finished
(method, test) unit, the unit's arrays (``arrays/*.safetensors``) and then the entry in
``results.json``, each atomically; a run that is killed loses at most the unit in progress,
and the same call again skips what is done. Every unit depends only on the method, the
images, the operator and the options' seed, so a resumed audit ends with the same entries as
one that ran straight through. At the end the figures and ``report.html`` are drawn
(:mod:`stablerecon.report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from ..config_base import ConfigError, validate
from ..contracts import Operator, Reconstructor, capabilities, check_operator
from ..files import write_atomic, write_json
from ..validation import budgets as check_budgets
from .arrays import load_arrays, save_arrays, slug
from .options import AuditOptions
from .registry import TESTS, UnitContext, default_tests
from .result import AuditResult, fingerprint, operator_label
from .store import options_yaml, read_existing

__all__ = ["run"]


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


def _check_methods(methods: Mapping[str, Reconstructor]) -> dict[str, Reconstructor]:
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


def _probe(name: str, method: Reconstructor, x: Tensor, op: Operator) -> None:
    """One reconstruction of one image before any long work: a method that raises, or returns
    something other than a finite image of the images' shape, is refused naming it."""
    was_training = getattr(method, "training", None)
    if was_training:
        method.eval()
    try:
        with torch.no_grad():
            out = method(op.A(x), op)
    except Exception as err:  # the method is the user's code: report whatever it raised
        raise ValueError(f"argument 'methods'[{name!r}] raised {type(err).__name__} on the first image: "
                         f"{err}") from None
    finally:
        if was_training:
            method.train()
    if not isinstance(out, Tensor):
        raise TypeError(f"argument 'methods'[{name!r}] must return a tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"argument 'methods'[{name!r}] returned shape {tuple(out.shape)} for images of "
                         f"shape {tuple(x.shape)}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"argument 'methods'[{name!r}] returned NaN or Inf on the first image")


def _prepare(context: UnitContext, methods: Mapping[str, Reconstructor], todo: list[tuple[str, str]]) -> None:
    """Everything that can fail before the long work: the tests' ``prepare`` hooks (errors name
    the test) and one reconstruction by every method (errors name the method)."""
    for test in dict.fromkeys(t for _, t in todo):
        prepare = TESTS.entry(test).meta.get("prepare")
        if prepare is not None:
            try:
                prepare(context)
            except (ValueError, RuntimeError, TypeError) as err:
                raise type(err)(f"test {test!r} cannot run on this operator and these images: "
                                f"{err}") from None
    for name in dict.fromkeys(m for m, _ in todo):
        _probe(name, methods[name], context.x[:1], context.op)


def _needs_sweep(test: str) -> bool:
    return bool(TESTS.entry(test).meta.get("needs_sweep", False))


def _check_tests(tests: Sequence[str] | None, has_sweep: bool) -> list[str]:
    if tests is None:
        return [t for t in default_tests() if has_sweep or not _needs_sweep(t)]
    if isinstance(tests, str):
        tests = [tests]
    unknown = [t for t in tests if t not in TESTS]
    if unknown or not tests:
        raise ValueError(f"argument 'tests' must be a non-empty list from {list(TESTS)}, got {list(tests)!r}")
    for t in tests:
        if _needs_sweep(t) and not has_sweep:
            raise ValueError(f"test {t!r} needs argument 'make_operator' (rate -> operator)")
    return [t for t in TESTS if t in tests]


def run(
    methods: Mapping[str, Reconstructor],
    op: Operator,
    images: Tensor | Mapping[str, Tensor],
    tests: Sequence[str] | None = None,
    budgets: Sequence[float] | None = None,
    *,
    options: AuditOptions | Mapping[str, Any] | None = None,
    make_operator: Callable[[float], Operator] | None = None,
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
        Names from :data:`~stablerecon.audit.registry.TESTS` (default:
        :func:`~stablerecon.audit.registry.default_tests`, every test but ``operator``; those that
        sweep the sampling rate only with ``make_operator``).
    budgets:
        Relative perturbation budgets (shortcut for ``options.budgets``; the report budget
        becomes 2% if listed, else the middle one).
    options:
        :class:`~stablerecon.audit.options.AuditOptions` or a mapping of its fields.
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
    check_operator(op)
    x, names = _check_images(images)
    if options is None:
        options = AuditOptions()
    elif isinstance(options, Mapping):
        options = validate(AuditOptions, dict(options), source="argument 'options'")
    elif not isinstance(options, AuditOptions):
        raise TypeError(f"argument 'options' must be AuditOptions or a mapping, got {type(options).__name__}")
    if budgets is not None:
        budgets = check_budgets(budgets)
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
    in_shape = capabilities(op).in_shape
    if in_shape is not None and len(in_shape) >= 2 and tuple(x.shape[-2:]) != tuple(in_shape)[-2:]:
        raise ValueError(
            f"argument 'images' has image shape {tuple(x.shape[1:])} but the operator takes {tuple(in_shape)}"
        )
    label = operator_label(op)
    result = AuditResult(list(methods), names, test_list, options, x.detach().clone(), label)
    folder = Path(out) if out is not None else None
    if folder is not None:
        result.entries, result.timings = read_existing(folder, fingerprint(result.truth, label, options))
    units = [(m, t) for m in methods for t in test_list]
    context = UnitContext(x, op, options, make_operator, progress)
    _prepare(context, methods, [u for u in units if u not in result.entries])  # before any file
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        text = (
            config_text
            if config_text is not None
            else options_yaml(options, list(methods), names, test_list)
        )
        write_atomic(folder / "config.yaml", lambda p: p.write_text(text, encoding="utf-8"))
        write_atomic(
            folder / "truth.safetensors", lambda p: save_file({"truth": result.truth.contiguous()}, str(p))
        )
        result.path = folder
        for key in list(result.entries):
            if key[0] in methods:
                arrays = load_arrays(folder, *key)
                keeps = key[1] in TESTS and TESTS.entry(key[1]).meta.get("arrays", False)
                if arrays is None and keeps:
                    del result.entries[key]  # arrays lost: redo the unit
                elif arrays:
                    result.arrays[key] = arrays
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
                values, arrays = TESTS[test](method, context)
            finally:
                if was_training:
                    method.train()
            result.timings[f"{name}: {test}"] = round(time.perf_counter() - started, 3)
            result.entries[(name, test)] = values
            result.arrays[(name, test)] = arrays
            if folder is not None:
                save_arrays(folder, name, test, arrays)
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
