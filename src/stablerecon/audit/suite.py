"""The audit suite: every test, for every method, on the same images and operator.

:func:`run` evaluates methods x tests (:data:`~stablerecon.audit.registry.TESTS`) on a set of
images and returns an :class:`~stablerecon.audit.result.AuditResult`. The work is split into
units, one test for one method on one chunk of ``options.batch_size`` images
(:mod:`~stablerecon.audit.units`), run chunk by chunk by an executor
(:mod:`~stablerecon.audit.executors`: in this process, or as Ray tasks on a local or remote
cluster). With ``out`` every finished unit's arrays (``arrays/*.safetensors``) and then its
entry in ``results.json`` are written, each atomically, as the unit finishes; a run that is
killed loses at most the units in progress, and the same call again skips what is done. Every
unit depends only on the method, its images, the operator and the options (each image draws
its random numbers from its own generator), so a resumed or distributed audit ends with the
same entries as one that ran straight through. Images are read one chunk at a time and arrays
streamed to the run folder, so memory does not grow with the number of images. A unit that
raises is recorded as a failure (with its error) and the rest of the audit goes on. At the end
the figures and ``report.html`` are drawn (:mod:`stablerecon.report`).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config_base import ConfigError, validate
from ..contracts import Operator, Reconstructor, capabilities, check_operator
from ..files import write_atomic, write_json
from ..validation import budgets as check_budgets
from ..validation import device as check_device
from .arrays import load_arrays, load_truth, save_truth, slug
from .executors import UnitFailure, make_executor
from .images import ImageSet, as_image_set
from .options import AuditOptions
from .registry import TESTS, UnitContext, default_tests
from .result import AuditResult, fingerprint, operator_label
from .store import options_yaml, read_existing
from .units import AuditJob, Built, UnitKey, UnitOutcome, execute_unit, release, resolve, unit_context

__all__ = ["run"]


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


def _prepare(context: UnitContext, methods: Mapping[str, Reconstructor], todo: list[UnitKey]) -> None:
    """Everything that can fail before the long work: the tests' ``prepare`` hooks on the first
    chunk (errors name the test) and one reconstruction by every method (errors name the
    method)."""
    for test in dict.fromkeys(k.test for k in todo):
        prepare = TESTS.entry(test).meta.get("prepare")
        if prepare is not None:
            try:
                prepare(context)
            except (ValueError, RuntimeError, TypeError) as err:
                raise type(err)(f"test {test!r} cannot run on this operator and these images: "
                                f"{err}") from None
    for name in dict.fromkeys(k.method for k in todo):
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
    images: Tensor | Mapping[str, Tensor] | ImageSet,
    tests: Sequence[str] | None = None,
    budgets: Sequence[float] | None = None,
    *,
    options: AuditOptions | Mapping[str, Any] | None = None,
    make_operator: Callable[[float], Operator] | None = None,
    out: str | Path | None = None,
    report: bool = True,
    progress: bool = True,
    config_text: str | None = None,
    device: str | torch.device | None = None,
    executor: str = "serial",
    address: str | None = None,
    builder: Callable[[], Built] | None = None,
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
        Ground-truth images ``(B, C, H, W)`` in ``[0, 1]``, a mapping of names to images, or an
        :class:`~stablerecon.audit.images.ImageSet` (e.g. :meth:`ImageSet.lazy
        <stablerecon.audit.images.ImageSet.lazy>` over files: read one chunk at a time).
    tests:
        Names from :data:`~stablerecon.audit.registry.TESTS` (default:
        :func:`~stablerecon.audit.registry.default_tests`, every test but ``operator``; those that
        sweep the sampling rate only with ``make_operator``).
    budgets:
        Relative perturbation budgets (shortcut for ``options.budgets``; the report budget
        becomes 2% if listed, else the middle one).
    options:
        :class:`~stablerecon.audit.options.AuditOptions` or a mapping of its fields
        (``batch_size``: images per unit and per forward pass).
    make_operator:
        ``rate -> operator`` for the sampling-rate sweep.
    out:
        Run folder: results are saved as they finish and a rerun resumes (see module docs).
    report:
        Draw ``figures/`` and ``report.html`` into ``out`` at the end.
    progress:
        Show a progress bar over the units (method x test x chunk).
    config_text:
        Text written to ``out/config.yaml`` (default: the options as YAML).
    device:
        Where methods, operator and images run (``"cpu"``, ``"cuda"``, ``"cuda:1"``; default:
        where they are). ``nn.Module`` methods and operators are moved there; plain functions
        must work on tensors of that device.
    executor:
        ``"serial"`` (this process) or ``"ray"`` (Ray tasks on a local or existing cluster,
        :class:`~stablerecon.audit.executors.RayExecutor`; needs ``pip install
        'stablerecon[ray]'``). The entries are the same either way.
    address:
        Ray cluster address (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``; default: a
        local Ray instance). Only with ``executor="ray"``.
    builder:
        For ``executor="ray"``: a picklable callable returning ``(methods, op, make_operator,
        images)`` that workers call to rebuild the audit (e.g. from its config) instead of
        receiving the objects (:func:`stablerecon.runner.run_audit_config` passes one).

    Returns
    -------
    AuditResult
        Failed units (a method that raised on some images) are in ``result.failures`` and in
        the report; a ``RuntimeWarning`` names them.
    """
    methods = _check_methods(methods)
    check_operator(op)
    image_set = as_image_set(images)
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
    device = check_device(device)
    if not isinstance(executor, str):
        raise TypeError(f"argument 'executor' must be 'serial' or 'ray', got {type(executor).__name__}")
    if builder is not None and not callable(builder):
        raise TypeError(f"argument 'builder' must be callable, got {type(builder).__name__}")
    shape = image_set.shape
    in_shape = capabilities(op).in_shape
    if in_shape is not None and len(in_shape) >= 2 and tuple(shape[-2:]) != tuple(in_shape)[-2:]:
        raise ValueError(f"argument 'images' has image shape {tuple(shape)} but the operator takes "
                         f"{tuple(in_shape)}")
    runner = make_executor(executor, address)  # an unreachable cluster fails here, before any work
    token = uuid.uuid4().hex
    try:
        return _run(methods, op, image_set, test_list, options, make_operator, out, report, progress,
                    config_text, device, runner, builder, token)
    finally:
        release(token)
        shutdown = getattr(runner, "shutdown", None)
        if shutdown is not None:
            shutdown()


def _run(methods: dict[str, Reconstructor], op: Operator, image_set: ImageSet, test_list: list[str],
         options: AuditOptions, make_operator: Callable[[float], Operator] | None, out: str | Path | None,
         report: bool, progress: bool, config_text: str | None, device: str | None, runner: Any,
         builder: Callable[[], Built] | None, token: str) -> AuditResult:
    label = operator_label(op)
    digest = image_set.digest(options.batch_size)  # reads (and checks) every image once, a chunk at a time
    result = AuditResult(list(methods), list(image_set.names), test_list, options, label, digest=digest,
                         source=image_set)
    folder = Path(out) if out is not None else None
    if folder is not None:
        units, result.timings = read_existing(folder, fingerprint(digest, label, options))
        result.units = units  # a folder may hold more methods and tests: kept in results.json
    wanted = [UnitKey(m, t, c.start, c.stop) for c in result.chunks for m in methods for t in test_list]
    serial = getattr(runner, "name", "serial") == "serial"
    job_local = AuditJob(options=options, token=token, methods=methods, op=op, make_operator=make_operator,
                         images=image_set, folder=str(folder) if folder is not None else None,
                         device=device, progress=progress)
    if serial:
        job = job_local
    elif builder is not None:  # workers rebuild methods, operator and images from the builder
        job = AuditJob(options=options, token=token, builder=builder, folder=job_local.folder,
                       device=device, threads=getattr(runner, "task_cpus", None))
    else:  # workers receive the objects (Ray's serialisation)
        job = AuditJob(options=options, token=token, methods=methods, op=op, make_operator=make_operator,
                       images=image_set, folder=job_local.folder, device=device,
                       threads=getattr(runner, "task_cpus", None))
    first = result.chunks[0]
    _prepare(unit_context(job_local, first.start, first.stop), resolve(job_local)[0],
             [k for k in wanted if k not in result.units])  # before any file
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        text = config_text if config_text is not None else options_yaml(options, list(methods),
                                                                        list(image_set.names), test_list)
        write_atomic(folder / "config.yaml", lambda p: p.write_text(text, encoding="utf-8"))
        for c in result.chunks:
            if load_truth(folder, c.start, c.stop) is None:
                save_truth(folder, c.start, c.stop, image_set.load(c))
        result.path = folder
        for key in [k for k in wanted if k in result.units]:
            keeps = TESTS.entry(key.test).meta.get("arrays", False)
            if keeps and load_arrays(folder, key) is None:
                del result.units[key]  # arrays lost: redo the unit
    todo = [k for k in wanted if k not in result.units]
    try:
        for key, outcome in runner.map(execute_unit, job, todo, progress=progress):
            if isinstance(outcome, UnitFailure):
                result.failures[key] = {"kind": outcome.kind, "message": outcome.message}
                result.timings.pop(key.label, None)
            else:
                assert isinstance(outcome, UnitOutcome)
                result.record(key, outcome.values)
                result.timings[key.label] = outcome.seconds
                if outcome.arrays:
                    result.held_arrays[key] = outcome.arrays
            if folder is not None:
                write_json(folder / "results.json", result.to_json(summary=False))
    except KeyboardInterrupt:
        if folder is not None:
            write_json(folder / "results.json", result.to_json(summary=False))
            raise KeyboardInterrupt(
                f"audit interrupted; finished units are saved in {folder}; run the same command again "
                f"to resume"
            ) from None
        raise
    if folder is not None:
        write_json(folder / "results.json", result.to_json())  # every entry of the folder
    # the result and its report cover the requested methods and tests (a folder may hold more)
    result.units = {k: v for k, v in result.units.items() if k.method in methods and k.test in test_list}
    result._merged = None
    if result.failures:
        lines = [f"{k.label}: {v['kind']}: {v['message']}" for k, v in sorted(result.failures.items())]
        warnings.warn("audit units failed (the rest of the audit went on):\n  " + "\n  ".join(lines),
                      RuntimeWarning, stacklevel=3)
    if folder is not None and report:
        from ..report import write_report

        write_report(result, folder)
    return result
