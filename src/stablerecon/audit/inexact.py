r"""Perturbed forward operators: the inexact-input test (``operator`` in the audit).

A method is usually audited with the exact operator ``A``; in practice it is handed an
approximation ``A_E`` (k-space lines off the grid, a mis-estimated blur kernel, CT angles off by
a little). For a family of perturbed operators ``A_E = family(theta)``
(:mod:`stablerecon.operators.perturbations`) and relative budgets ``r`` in ``(0, 1]``,
:func:`operator_perturbation` searches, per image ``x``, the ``theta`` with
``||A_E - A|| <= r ||A||`` that moves the output most, in two cases:

- ``given``: the data are measured with the true operator, ``y = A x``, and the method is given
  ``A_E``: ``||f(y, A_E) - f(y, A)||``;
- ``mismatch``: the data are measured with the perturbed operator, ``y_E = A_E x``, and the method
  is given the nominal ``A`` (model mismatch): ``||f(y_E, A) - f(y, A)||``.

The amplification is reported in units of ``||A_E - A|| ||x||``:
``error / (family.distance(theta) * ||x||)``. For a linear method ``f(y, A) = P y`` the
mismatch amplification is at most ``||P||`` (``||P (A_E - A) x|| <= ||P|| ||A_E - A|| ||x||``),
so for zero-filling of a unitary-row operator it is at most 1.

Search (Colbrook, Antun, Hansen, PNAS 119 (2022) for the setting): for a continuous family and a
differentiable method (``method.differentiable``, the default for ``nn.Module``; autograd then
reaches ``theta`` through the method's use of ``op.A``/``op.A_adjoint`` in the ``given`` case and
through ``A_E x`` in the ``mismatch`` case), projected steepest ascent over ``theta`` with random
restarts (``family.random`` starts, normalised steps of ``step_size`` times the start's norm,
cosine-decayed to a tenth, each followed by ``family.project``). Otherwise a gradient-free
search: antithetic random-direction finite differences (as the measurement worst case of
:func:`~stablerecon.audit.perturbation.worst_case`) for continuous families, a greedy random
local search (flip one 0/1 entry, or move the number of digits by one, then ``family.project``)
for discrete ones. ``draws`` random perturbations ``family.random(r)`` of the same size are
measured beside it. Only feasible ``theta`` (after projection) are ever recorded.

A method whose output does not change at all when it is given ``A_E`` instead of ``A`` (it
ignores its ``op`` argument, e.g. a network built around the nominal operator, or uses only a part
of it the family leaves alone) is flagged (``ignores_op``); its ``given`` case is not measured
(``None``), never reported as perfectly stable. Its ``mismatch`` case is measured as for any
method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..contracts import Reconstructor, is_differentiable
from ..operators import Blur, Radon, SubsampledFourier
from ..operators.base import LinearOperator
from ..operators.perturbations import PERTURBATIONS, PerturbationFamily, build_perturbation
from ..operators.perturbations.kspace import line_geometry
from ..operators.perturbations.rounding import Rounding
from .perturbation import batch_norm
from .randomness import default_ids, item_generators

__all__ = ["CASES", "OperatorPerturbationResult", "default_family", "make_family", "operator_perturbation",
           "check_operator_budgets"]

#: The two cases of the test: the method given ``A_E`` on ``A x``, and given ``A`` on ``A_E x``.
CASES = ("given", "mismatch")


def default_family(op: object) -> str:
    """The family the ``operator`` test uses for ``op`` when none is named: ``kspace_jitter``
    for a :class:`~stablerecon.operators.SubsampledFourier` whose mask samples whole lines,
    ``kernel`` for a :class:`~stablerecon.operators.Blur`, ``angle_offset`` for a
    :class:`~stablerecon.operators.Radon`, ``additive`` otherwise."""
    if isinstance(op, SubsampledFourier):
        return "kspace_jitter" if line_geometry(op.mask) is not None else "additive"
    if isinstance(op, Blur):
        return "kernel"
    if isinstance(op, Radon):
        return "angle_offset"
    return "additive"


def make_family(op: object, name: str | None = None, **options: Any) -> PerturbationFamily:
    """The perturbation family ``name`` (default: :func:`default_family`) of ``op``; an
    incompatible family or operator is a ``ValueError`` naming ``options.operator.family``."""
    chosen = default_family(op) if name is None else name
    if chosen not in PERTURBATIONS:
        raise ValueError(f"options.operator.family: {PERTURBATIONS.unknown(chosen)}")
    if not isinstance(op, LinearOperator):
        raise ValueError(f"options.operator.family = {chosen!r}: the operator test needs a stablerecon "
                         f"LinearOperator, got {type(op).__name__}")
    try:
        return build_perturbation(chosen, op, **options)
    except (TypeError, ValueError) as err:
        fits = [e.name for e in PERTURBATIONS.entries()
                if any(c in {t.__name__ for t in type(op).__mro__} for c in e.meta.get("operators", ()))]
        where = "options.operator.family" if name is not None else "options.operator.family (default)"
        raise ValueError(f"{where} = {chosen!r} does not apply to operator {type(op).__name__} ({err}); "
                         f"families for it: {fits}") from None


def check_operator_budgets(budgets: object, name: str = "budgets") -> list[float]:
    """Relative operator budgets: a non-empty sequence of finite numbers in ``(0, 1]``; a
    ``ValueError``/``TypeError`` naming ``name`` otherwise."""
    if isinstance(budgets, (str, bytes)) or not isinstance(budgets, Sequence) or not budgets:
        raise TypeError(f"argument '{name}' must be a non-empty list of numbers in (0, 1], got {budgets!r}")
    out = []
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, (int, float)):
            raise TypeError(f"argument '{name}' must hold numbers, got {b!r}")
        if not (math.isfinite(b) and 0 < b <= 1):
            raise ValueError(f"argument '{name}' must hold relative budgets in (0, 1] "
                             f"(||A_E - A|| <= r ||A||), got {b!r}")
        out.append(float(b))
    return out


@dataclass
class OperatorPerturbationResult:
    """The worst and random operator perturbations found, per case (``given``, ``mismatch``).

    Per case, tensors indexed ``[budget, image]``: ``error`` (the largest output change found),
    ``relative_error`` (over ``||f(A x, A)||``, the ``reference_norm`` ``(B,)``), ``distance``
    (``||A_E - A||`` of the worst ``theta``), ``amplification`` (``error / (distance ||x||)``,
    NaN where the distance is 0),
    ``random_mean_error`` / ``random_max_error`` / ``random_mean_amplification`` over ``draws``
    random draws, and ``theta`` ``(budgets, B, *theta_shape)``. ``gradient_free[case]`` says which
    search ran. A case the method cannot react to (``ignores_op``, ``given`` case) is absent from
    the per-case dicts.
    """

    family: str
    distance_kind: str
    continuous: bool
    budgets: list[float]
    cases: list[str]
    ignores_op: bool
    steps: int
    restarts: int
    draws: int
    reference_norm: Tensor
    error: dict[str, Tensor] = field(default_factory=dict)
    relative_error: dict[str, Tensor] = field(default_factory=dict)
    distance: dict[str, Tensor] = field(default_factory=dict)
    amplification: dict[str, Tensor] = field(default_factory=dict)
    random_mean_error: dict[str, Tensor] = field(default_factory=dict)
    random_max_error: dict[str, Tensor] = field(default_factory=dict)
    random_mean_amplification: dict[str, Tensor] = field(default_factory=dict)
    theta: dict[str, Tensor] = field(default_factory=dict)
    gradient_free: dict[str, bool] = field(default_factory=dict)


Loss = Callable[[Tensor], Tensor]


def _unit(t: Tensor) -> Tensor:
    return t / torch.linalg.vector_norm(t).clamp_min(1e-300)


def _cosine(k: int, steps: int) -> float:
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / steps))


def _gradient(loss: Loss, theta: Tensor) -> tuple[float, Tensor | None]:
    """Value and gradient of ``loss`` at ``theta``; ``None`` when autograd cannot reach
    ``theta`` or returns NaN/Inf (the caller switches to the gradient-free search)."""
    var = theta.detach().requires_grad_(True)
    value = loss(var)
    try:
        (grad,) = torch.autograd.grad(value.sum(), var, allow_unused=True)
    except RuntimeError:  # the method cut the graph (numpy, detach, no_grad inside)
        return float(value.detach()), None
    if grad is None or not bool(torch.isfinite(grad).all()):
        return float(value.detach()), None
    return float(value.detach()), grad


def _spsa(loss: Loss, theta: Tensor, c: float, directions: int, generator: torch.Generator) -> Tensor:
    """Antithetic random-direction estimate of the gradient of ``loss`` at ``theta``."""
    grad = torch.zeros_like(theta)
    for _ in range(directions):
        u = _unit(torch.randn(theta.shape, generator=generator, dtype=theta.dtype).to(theta.device))
        grad = grad + float(loss(theta + c * u) - loss(theta - c * u)) * u
    return grad


def _neighbour(family: PerturbationFamily, theta: Tensor, generator: torch.Generator) -> Tensor:
    """A neighbour of a discrete ``theta``: the number of digits moved by one (``rounding``) or
    one 0/1 entry flipped (the drop families)."""
    if isinstance(family, Rounding):
        step = 1.0 if bool(torch.rand((), generator=generator) < 0.5) else -1.0
        return theta + step
    out = theta.clone()
    i = int(torch.randint(out.numel(), (), generator=generator))
    out.view(-1)[i] = 1.0 - out.view(-1)[i]
    return out


def _search(family: PerturbationFamily, loss: Loss, r: float, *, free: bool, steps: int, restarts: int,
            step_size: float, directions: int, generator: torch.Generator,
            bar: Any) -> tuple[float, Tensor, bool]:
    """The best feasible ``theta`` found for budget ``r``: ``(value, theta, gradient_free)``."""
    best_val, best = -1.0, family.nominal_theta()
    for _ in range(restarts):
        theta = family.random(r, generator).detach()
        if not family.continuous:
            with torch.no_grad():
                value = float(loss(theta))
            for _ in range(steps):
                cand = family.project(_neighbour(family, theta, generator), r).detach()
                if not torch.equal(cand, theta):
                    with torch.no_grad():
                        v = float(loss(cand))
                    if v > value:
                        theta, value = cand, v
                bar.update(1)
            if value > best_val:
                best_val, best = value, theta
            free = True
            continue
        radius = float(torch.linalg.vector_norm(theta))
        for k in range(steps + 1):
            grad = None
            if not free:
                value, grad = _gradient(loss, theta)
                free = grad is None
            if free:
                with torch.no_grad():
                    value = float(loss(theta))
                    if k < steps:
                        grad = _spsa(loss, theta, 0.01 * radius, directions, generator)
            bar.update(1)
            if value > best_val:
                best_val, best = value, theta.detach().clone()
            if k == steps or grad is None or not bool(grad.abs().max() > 0):
                if k < steps:
                    bar.update(steps - k)
                break
            step = step_size * radius * _cosine(k, steps)
            theta = family.project(theta.detach() + step * _unit(grad), r).detach()
    return best_val, best, free


def _ignores_op(method: Reconstructor, y: Tensor, clean: Tensor, family: PerturbationFamily,
                budgets: list[float], seed: int) -> bool:
    """Whether the output is bit for bit the same when the method is given a perturbed operator
    (at the largest budget, else at the full budget ``r = 1`` if that has distance 0)."""
    for r in (max(budgets), 1.0):
        try:
            theta = family.random(r, torch.Generator().manual_seed(seed))
        except ValueError:  # the ray never reaches the budget
            continue
        if float(family.distance(theta)) > 0:
            with torch.no_grad():
                return bool(torch.equal(method(y, family(theta)), clean))
    return False


def operator_perturbation(
    method: Reconstructor,
    x: Tensor,
    family: PerturbationFamily,
    budgets: Sequence[float] = (0.005, 0.01, 0.02, 0.05),
    *,
    cases: Sequence[str] = CASES,
    steps: int = 40,
    restarts: int = 2,
    step_size: float = 1.0,
    directions: int = 8,
    draws: int = 10,
    gradient_free: bool | None = None,
    seed: int = 0,
    ids: Sequence[int] | None = None,
    progress: bool = False,
) -> OperatorPerturbationResult:
    r"""Largest and random output changes of ``method`` under operator perturbations
    ``||A_E - A|| <= r ||A||`` of ``family`` (nominal ``A = family.op``), in the cases ``given``
    and ``mismatch`` (see the module).

    Parameters
    ----------
    method:
        ``method(y, op) -> x_hat``.
    x:
        Ground-truth images ``(B, C, H, W)``; each is searched on its own (one ``theta`` per
        image).
    family:
        A :class:`~stablerecon.operators.perturbations.PerturbationFamily` of the nominal operator.
    budgets:
        Relative budgets ``r`` in ``(0, 1]``.
    cases:
        Any of ``"given"``, ``"mismatch"``.
    steps, restarts, step_size, directions:
        Search effort (``directions``: random directions per step of the gradient-free search).
    draws:
        Random perturbations ``family.random(r)`` per budget.
    gradient_free:
        Force (``True``) or forbid (``False``) the gradient-free search; default: by
        :func:`~stablerecon.contracts.is_differentiable` (discrete families are always searched
        gradient-free).
    seed:
        Seed of the random starts, directions and draws (the same for every method).
    ids:
        The images' indices in the audit (default ``0 .. B - 1``): image ``ids[b]``'s search
        is seeded by it, so its result does not depend on the batch it is in.
    progress:
        Show a progress bar over the search steps.
    """
    if not isinstance(family, PerturbationFamily):
        raise TypeError(f"argument 'family' must be a PerturbationFamily, got {type(family).__name__}")
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"argument 'x' must be a (B, C, H, W) tensor, got {getattr(x, 'shape', x)!r}")
    budgets = check_operator_budgets(list(budgets) if isinstance(budgets, tuple) else budgets)
    cases = list(cases)
    if not cases or any(c not in CASES for c in cases) or len(set(cases)) != len(cases):
        raise ValueError(f"argument 'cases' must be distinct names from {list(CASES)}, got {cases!r}")
    for name, value in (("steps", steps), ("restarts", restarts), ("directions", directions),
                        ("draws", draws)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"argument '{name}' must be an integer >= 1, got {value!r}")
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"argument 'step_size' must be a positive number, got {step_size!r}")
    ids = default_ids(x.shape[0], ids)
    op = family.op
    free0 = (not is_differentiable(method)) if gradient_free is None else bool(gradient_free)
    with torch.no_grad():
        y = op.A(x)
        clean = method(y, op).detach()
    x_norm = batch_norm(x).to(torch.float64)
    ref_norm = batch_norm(clean).to(torch.float64).clamp_min(1e-30)
    ignores = "given" in cases and _ignores_op(method, y, clean, family, budgets, seed)
    result = OperatorPerturbationResult(family.name, family.distance_kind, family.continuous, budgets, cases,
                                        ignores, steps, restarts, draws, ref_norm)
    measured = [c for c in cases if not (c == "given" and ignores)]
    b_count = x.shape[0]
    bar = tqdm(total=len(measured) * len(budgets) * b_count * restarts * (steps + 1), disable=not progress,
               desc="operator", unit="step", leave=False)

    def output(case: str, theta: Tensor, idx: slice) -> Tensor:
        a_e = family(theta)
        if case == "given":
            return method(y[idx], a_e)
        return method(a_e.A(x[idx]), op)

    for ci, case in enumerate(CASES):
        if case not in measured:
            continue
        err, dist, thetas, free_any = [], [], [], False
        rand_mean, rand_max, rand_amp = [], [], []
        draw_gen = torch.Generator().manual_seed(seed + 7919 * (ci + 1))
        for k, r in enumerate(budgets):
            row_e, row_d, row_t = [], [], []
            for b in range(b_count):
                idx = slice(b, b + 1)

                def loss(theta: Tensor, idx: slice = idx, case: str = case) -> Tensor:
                    return batch_norm(output(case, theta, idx) - clean[idx])

                gen = item_generators(seed, [ids[b]], f"operator/{case}/{k}")[0]
                _, theta, free = _search(family, loss, r, free=free0, steps=steps, restarts=restarts,
                                         step_size=step_size, directions=directions, generator=gen, bar=bar)
                free_any = free_any or free
                with torch.no_grad():
                    row_e.append(float(loss(theta)))
                row_d.append(float(family.distance(theta)))
                row_t.append(theta.detach().to("cpu"))
            err.append(row_e)
            dist.append(row_d)
            thetas.append(torch.stack(row_t))
            with torch.no_grad():
                errs, amps = [], []
                for _ in range(draws):
                    theta = family.random(r, draw_gen)
                    e = batch_norm(output(case, theta, slice(None)) - clean).to(torch.float64)
                    d = float(family.distance(theta))
                    errs.append(e)
                    amps.append(e / (d * x_norm) if d > 0 else torch.full_like(e, math.nan))
                errs_t = torch.stack(errs)
                rand_mean.append(errs_t.mean(0))
                rand_max.append(errs_t.amax(0))
                rand_amp.append(torch.stack(amps).mean(0))
        error = torch.tensor(err, dtype=torch.float64)
        distance = torch.tensor(dist, dtype=torch.float64)
        result.error[case] = error
        result.relative_error[case] = error / ref_norm
        result.distance[case] = distance
        denom = distance * x_norm
        result.amplification[case] = torch.where(denom > 0, error / denom.clamp_min(1e-300),
                                                 torch.full_like(error, math.nan))
        result.random_mean_error[case] = torch.stack(rand_mean)
        result.random_max_error[case] = torch.stack(rand_max)
        result.random_mean_amplification[case] = torch.stack(rand_amp)
        result.theta[case] = torch.stack(thetas)
        result.gradient_free[case] = free_any
    bar.close()
    return result
