"""The audit tests: :data:`TESTS`, one entry per test, ``name -> unit``.

A *unit* runs one test for one method on one chunk of the images of an audit
(``options.batch_size`` images per forward pass) and returns what the run keeps: JSON values
(per-image lists with the image axis last: ``[image]``, ``[budget][image]`` or
``[rate][image]``) and the arrays the report draws (first axis: image). Its signature is
``unit(method, ctx) -> (values, arrays)`` with the :class:`UnitContext` of the chunk (images,
their indices in the audit, operator, options, the optional rate -> operator builder). A unit
must depend only on the method, the images, the operator and the options (their seed
included), and each image's numbers only on that image (random draws come from per-image
generators seeded by ``ctx.ids``, :mod:`~stablerecon.audit.randomness`), so that a resumed or
distributed audit ends with the same entries as one that ran straight through, whatever the
chunks.

Entry metadata: ``needs_sweep`` (the unit needs ``ctx.make_operator``; the suite leaves it out
otherwise), ``arrays`` (the unit's arrays are needed by the report: a resumed audit whose
arrays were lost redoes it), ``prepare`` (``prepare(ctx)``, run once before any test of the
audit: the method-independent part of a test, such as the kernel split, which fails there, naming
the test, rather than after hours of other tests; its result is kept in ``ctx.cache``, which
belongs to the chunk), ``constants`` (keys of the values whose lists are not per image, such
as the sampling sweep's ``rates``: :func:`~stablerecon.audit.merge.merge_values` keeps them
once when it joins the chunks).
Adding a test is one registration::

    @TESTS.register("my_test", summary="what it measures")
    def _my_test(method, ctx):
        x_hat = method(ctx.op.A(ctx.x), ctx.op)
        return {"norm": batch_norm(x_hat).tolist()}, {}

after which ``tests: [my_test]`` is valid in an audit config, ``stablerecon list`` shows it and
:func:`stablerecon.audit.run` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..contracts import Operator, Reconstructor
from ..data import insert_detail
from ..operators.nullspace import kernel_split
from ..registry import Registry
from .accuracy import accuracy
from .detail import detail_test, sampling_sweep
from .inexact import check_operator_budgets, make_family, operator_perturbation
from .kernel import kernel_test
from .options import AuditOptions
from .perturbation import batch_norm, not_rare, random_noise, worst_case

__all__ = ["TESTS", "UnitContext", "Unit", "default_tests"]


@dataclass(frozen=True)
class UnitContext:
    """What a unit sees: the chunk's images ``x`` ``(B, C, H, W)``, the operator, the audit
    options, the ``rate -> operator`` builder of the sampling sweep (or ``None``) and whether to
    show progress bars; ``cache`` keeps what the tests' ``prepare`` hooks computed for this
    chunk; ``ids`` are the images' indices in the audit (default ``0 .. B - 1``) and
    ``neighbour`` ``(B, C, H, W)`` holds, for each image, the image before it in the audit (the
    last for the first; ``None`` for a one-image audit)."""

    x: Tensor
    op: Operator
    options: AuditOptions
    make_operator: Callable[[float], Operator] | None = None
    progress: bool = False
    cache: dict[str, Any] = field(default_factory=dict, compare=False)
    ids: list[int] | None = None
    neighbour: Tensor | None = None

    @property
    def image_ids(self) -> list[int]:
        """``ids``, or ``0 .. B - 1``."""
        return list(self.ids) if self.ids is not None else list(range(self.x.shape[0]))

    @property
    def other(self) -> Tensor | None:
        """``neighbour``; when not given, the images rolled by one within the chunk (``None``
        for one image)."""
        if self.neighbour is not None:
            return self.neighbour
        return torch.roll(self.x, 1, dims=0) if self.x.shape[0] > 1 else None


Unit = Callable[[Reconstructor, UnitContext], tuple[dict[str, Any], dict[str, Tensor]]]

#: The audit tests, in the order the report shows them.
TESTS: Registry[Unit] = Registry("audit test")


def default_tests() -> list[str]:
    """The registered test names, in order, but those registered with ``default=False``
    (``operator``): the default ``tests`` of an audit config and of :func:`~stablerecon.audit.run`."""
    return [t for t in TESTS if TESTS.entry(t).meta.get("default", True)]


def _tolist(t: Tensor) -> Any:
    return t.detach().to("cpu", torch.float64).tolist()


def _real(t: Tensor) -> Tensor:
    return t.real if t.is_complex() else t


def _centre(x: Tensor, position: tuple[int, int] | None) -> tuple[int, int]:
    return tuple(position) if position is not None else (x.shape[-2] // 2, x.shape[-1] // 2)  # type: ignore[return-value]


@TESTS.register("accuracy", summary="PSNR, SSIM and NMSE on clean and noisy measurements", arrays=True)
def _accuracy(method: Reconstructor, ctx: UnitContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
    opts = ctx.options
    clean = accuracy(method, ctx.x, ctx.op, seed=opts.seed, ids=ctx.image_ids)
    noisy = accuracy(method, ctx.x, ctx.op, noise=opts.noise, seed=opts.seed, ids=ctx.image_ids)
    values: dict[str, Any] = {"noise": opts.noise}
    for key, res in (("clean", clean), ("noisy", noisy)):
        values[key] = {"psnr": _tolist(res.psnr), "ssim": _tolist(res.ssim), "nmse": _tolist(res.nmse)}
    return values, {"reconstruction": clean.output, "noisy_reconstruction": noisy.output}


@TESTS.register("worst_case", summary="worst measurement perturbation per budget (gradient or "
                "gradient-free search), amplification, and whether its damage survives noise", arrays=True)
def _worst_case(method: Reconstructor, ctx: UnitContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
    x, op, opts = ctx.x, ctx.op, ctx.options
    with torch.no_grad():
        y = op.A(x)
    res = worst_case(method, y, op, opts.budgets, x=x, reference=opts.reference, steps=opts.steps,
                     restarts=opts.restarts, step_size=opts.step_size, directions=opts.directions,
                     seed=opts.seed, ids=ctx.image_ids, progress=ctx.progress)
    k = opts.budgets.index(opts.report_budget)
    e = res.perturbation[k]
    kept = not_rare(method, y, op, e, scale=opts.not_rare_scale, draws=opts.not_rare_draws, seed=opts.seed,
                    ids=ctx.image_ids)
    with torch.no_grad():
        clean = _real(method(y, op))
        seen = _real(op.A_adjoint(e))
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
    arrays = {"clean_output": clean, "perturbed_output": _real(res.output[k]), "perturbation_image": seen}
    return values, arrays


@TESTS.register("random_noise", summary="random measurement perturbations of the same budgets")
def _random_noise(method: Reconstructor, ctx: UnitContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
    x, op, opts = ctx.x, ctx.op, ctx.options
    with torch.no_grad():
        y = op.A(x)
        ref = batch_norm(_real(method(y, op))).clamp_min(1e-30)
    res = random_noise(method, y, op, opts.budgets, draws=opts.draws, seed=opts.seed, ids=ctx.image_ids)
    return {
        "draws": res.draws,
        "mean_error": _tolist(res.mean_error),
        "max_error": _tolist(res.max_error),
        "relative_mean_error": _tolist(res.mean_error / ref),
        "mean_amplification": _tolist(res.mean_amplification),
    }, {}


def _kernel_prepare(ctx: UnitContext) -> None:
    """The kernel split of the inserted detail, once per audit (it depends on the images, the
    operator and the options only): ``z0`` in the kernel of A and ``z`` with ``||A z|| / ||z||``
    the configured ratio (:func:`~stablerecon.operators.nullspace.kernel_split`, which raises,
    naming the operator, when the kernel part cannot be computed to ``options.kernel.target``)."""
    if "kernel" in ctx.cache:
        return
    x, spec = ctx.x, ctx.options.kernel
    x64 = x.double()
    x_d, _ = insert_detail(x64, kind="blob", contrast=spec.contrast, position=_centre(x, spec.position),
                           size=spec.diameter, soft=False)
    ctx.cache["kernel"] = kernel_split(x_d - x64, ctx.op, ratio=spec.ratio, target=spec.target)


@TESTS.register("kernel", summary="hallucination of a detail in the kernel of A, and the "
                "troublesome-kernel bound for a near-kernel detail", arrays=True, prepare=_kernel_prepare)
def _kernel(method: Reconstructor, ctx: UnitContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
    x, op, spec = ctx.x, ctx.op, ctx.options.kernel
    _kernel_prepare(ctx)
    split = ctx.cache["kernel"]  # z0 (exact kernel) and z (ratio)
    other = ctx.other
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


@TESTS.register("detail", summary="fraction of a small inserted detail (blob or text) recovered", arrays=True)
def _detail(method: Reconstructor, ctx: UnitContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
    x, spec = ctx.x, ctx.options.detail
    res = detail_test(method, x, ctx.op, kind=spec.kind, contrast=spec.contrast,
                      position=_centre(x, spec.position), size=spec.size, text=spec.text, noise=spec.noise,
                      seed=ctx.options.seed, ids=ctx.image_ids)
    return ({"kind": res.kind, "contrast": res.contrast, "recovered": _tolist(res.recovered)},
            {"found": res.with_detail - res.without, "mask": res.mask.to(torch.float32)})


@TESTS.register("sampling", summary="accuracy at other sampling rates than the method was built for "
                "(the sampling-rate paradox)", needs_sweep=True, constants=("rates",))
def _sampling(method: Reconstructor, ctx: UnitContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
    if ctx.make_operator is None:
        raise ValueError("test 'sampling' needs argument 'make_operator' (rate -> operator)")
    opts = ctx.options
    res = sampling_sweep(method, ctx.x, ctx.make_operator, opts.rates, noise=opts.noise, seed=opts.seed,
                         ids=ctx.image_ids)
    built = getattr(ctx.op, "rate", None)
    return ({"rates": res.rates, "built_rate": float(built) if isinstance(built, float) else None,
             "psnr": _tolist(res.psnr), "ssim": _tolist(res.ssim), "nmse": _tolist(res.nmse)}, {})


def _operator_prepare(ctx: UnitContext) -> None:
    """The perturbation family of ``options.operator`` built for the operator and its budgets
    checked, once per audit, before any method runs: an incompatible family (e.g.
    ``angle_offset`` on a Fourier operator) or a budget outside ``(0, 1]`` fails here, naming
    the field."""
    if "operator" in ctx.cache:
        return
    spec, opts = ctx.options.operator, ctx.options
    if spec.budgets is not None:
        budgets = list(spec.budgets)
    else:
        try:
            budgets = check_operator_budgets(opts.budgets, "options.budgets")
        except ValueError as err:
            raise ValueError(f"{err}; operator budgets are relative to ||A|| and must lie in (0, 1]: set "
                             "options.operator.budgets") from None
    family = make_family(ctx.op, spec.family, **spec.family_options)
    ctx.cache["operator"] = (family, budgets)


def _finite(t: Tensor) -> list[list[float | None]]:
    return [[v if math.isfinite(v) else None for v in row] for row in _tolist(t)]


@TESTS.register("operator", summary="perturbed forward operators ||A_E - A|| <= r ||A|| (inexact input): "
                "the method given A_E on A x, and given A on A_E x; worst case and random, in units of "
                "||A_E - A|| ||x||", prepare=_operator_prepare, default=False,
                constants=("budgets", "cases"))
def _operator(method: Reconstructor, ctx: UnitContext) -> tuple[dict[str, Any], dict[str, Tensor]]:
    _operator_prepare(ctx)
    family, budgets = ctx.cache["operator"]
    spec, opts = ctx.options.operator, ctx.options
    res = operator_perturbation(
        method, ctx.x, family, budgets, cases=spec.cases, steps=spec.steps or opts.steps,
        restarts=spec.restarts or opts.restarts, step_size=opts.step_size, directions=opts.directions,
        draws=spec.draws or opts.draws, seed=opts.seed, ids=ctx.image_ids, progress=ctx.progress)
    values: dict[str, Any] = {
        "family": res.family, "distance_kind": res.distance_kind, "continuous": res.continuous,
        "budgets": res.budgets, "cases": res.cases, "ignores_op": res.ignores_op, "steps": res.steps,
        "restarts": res.restarts, "draws": res.draws, "norm": float(family.op.norm()),
    }
    arrays: dict[str, Tensor] = {}
    for case in res.cases:
        if case not in res.error:  # the method ignores op: the given case is not measured
            values[case] = None
            continue
        values[case] = {
            "gradient_free": res.gradient_free[case],
            "error": _tolist(res.error[case]),
            "relative_error": _tolist(res.relative_error[case]),
            "distance": _tolist(res.distance[case]),
            "amplification": _finite(res.amplification[case]),
            "random_mean_error": _tolist(res.random_mean_error[case]),
            "random_max_error": _tolist(res.random_max_error[case]),
            "random_relative_mean_error": _tolist(res.random_mean_error[case] / res.reference_norm),
            "random_mean_amplification": _finite(res.random_mean_amplification[case]),
        }
        arrays[f"theta_{case}"] = res.theta[case]
    return values, arrays
