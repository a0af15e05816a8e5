"""Worst-case and random perturbations of the measurements (Antun et al., PNAS 2020).

For a reconstruction method ``f(y, op) -> x_hat`` and measurements ``y``, :func:`worst_case`
searches, for each relative budget ``r``, a perturbation ``e`` with ``||e|| <= r ||y||`` (per
item, l2 over all measurement entries) that maximises ``||f(y + e) - ref||``, where ``ref`` is
``f(y)`` (instability of the method) or the ground truth (worst accuracy). :func:`random_noise`
draws perturbations of the same norms at random, so that the ratio of the two says how much
worse than noise the worst case is. :func:`penalised_perturbation` is the image-space form of
the PNAS paper: ``max_r ||f(A(x + r)) - f(A x)||^2 - lam ||r||^2`` by momentum ascent.

The audit only uses the contract: ``method(y, op)`` and ``op.A``; differentiable methods
(``method.differentiable`` true, the default for ``nn.Module``) are attacked with gradients,
others by a gradient-free search (random-direction finite differences), and the result says
which.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..contracts import Operator, Reconstructor, is_differentiable
from ..validation import budgets as check_budgets
from .randomness import default_ids, item_generators, item_randn

__all__ = [
    "WorstCaseResult",
    "RandomNoiseResult",
    "PenalisedResult",
    "worst_case",
    "random_noise",
    "penalised_perturbation",
    "not_rare",
    "is_differentiable",
    "batch_norm",
]

def batch_norm(t: Tensor) -> Tensor:
    """l2 norm of each item of a batch over all other axes, shape ``(B,)``."""
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)


def _check_y(y: object) -> Tensor:
    if not isinstance(y, Tensor):
        raise TypeError(f"argument 'y' must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim < 2:
        raise ValueError(f"argument 'y' must be batched (B, ...), got shape {tuple(y.shape)}")
    if not bool(torch.isfinite(torch.view_as_real(y) if y.is_complex() else y).all()):
        raise ValueError("argument 'y' holds NaN or Inf")
    if bool((batch_norm(y) == 0).any()):
        raise ValueError("argument 'y' has an all-zero item: relative budgets need ||y|| > 0")
    return y


def _sphere(like: Tensor, radius: Tensor, gens: list[torch.Generator]) -> Tensor:
    """Uniform random points on the spheres ``||e_b|| = radius_b`` (complex for complex ``like``),
    item ``b`` drawn from ``gens[b]`` (:mod:`~stablerecon.audit.randomness`)."""
    u = item_randn(gens, like.shape[1:], like.dtype, like.device)
    return u * (radius / batch_norm(u)).reshape(-1, *[1] * (like.ndim - 1))


def _project(e: Tensor, radius: Tensor) -> Tensor:
    scale = torch.clamp(radius / batch_norm(e).clamp_min(1e-30), max=1.0)
    return e * scale.reshape(-1, *[1] * (e.ndim - 1))


def _unit(g: Tensor) -> Tensor:
    return g / batch_norm(g).clamp_min(1e-30).reshape(-1, *[1] * (g.ndim - 1))


@dataclass
class WorstCaseResult:
    """Worst perturbations found per budget.

    Arrays are indexed ``[budget, item]``. ``error`` is ``||f(y + e) - ref||``,
    ``relative_error`` that over ``||ref||``, ``amplification`` is
    ``||f(y + e) - f(y)|| / ||e||`` (the local Lipschitz lower bound the search certifies),
    ``perturbation`` the best ``e`` (shape ``(budgets, B, *y.shape[1:])``) and ``output``
    ``f(y + e)``.
    """

    budgets: list[float]
    reference: str
    error: Tensor
    relative_error: Tensor
    amplification: Tensor
    perturbation: Tensor
    output: Tensor
    gradient_free: bool
    steps: int
    restarts: int
    extras: dict = field(default_factory=dict)


def worst_case(
    method: Reconstructor,
    y: Tensor,
    op: Operator,
    budgets: Sequence[float] = (0.005, 0.01, 0.02, 0.05),
    *,
    x: Tensor | None = None,
    reference: str = "output",
    steps: int = 100,
    restarts: int = 2,
    step_size: float = 1.0,
    gradient_free: bool | None = None,
    directions: int = 8,
    seed: int = 0,
    ids: Sequence[int] | None = None,
    progress: bool = False,
) -> WorstCaseResult:
    r"""Largest output error under measurement perturbations ``||e_b|| <= r ||y_b||``.

    Projected steepest ascent in l2 with random restarts, all budgets in one batch (the method
    sees ``len(budgets) * B`` items per call): each restart starts from a random
    point on the sphere of radius ``r ||y_b||`` and takes ``steps`` normalised gradient steps of
    length ``step_size * radius`` (cosine-decayed to a tenth), each followed by projection onto
    the ball; the best iterate of every restart is kept per item. For methods that are not
    differentiable the gradient is replaced by a finite-difference estimate along
    ``directions`` random directions per step (``gradient_free``; slower and weaker, flagged in
    the result).

    Parameters
    ----------
    method:
        ``method(y, op) -> x_hat``.
    y:
        Measurements ``(B, ...)``.
    op:
        Forward operator passed through to ``method``.
    budgets:
        Relative budgets ``r`` (e.g. 0.01 for 1 % of ``||y||``).
    x:
        Ground truth ``(B, C, H, W)``, required for ``reference="truth"``.
    reference:
        ``"output"`` (maximise ``||f(y + e) - f(y)||``) or ``"truth"`` (``||f(y + e) - x||``).
    steps, restarts, step_size:
        Search effort.
    gradient_free:
        Force (``True``) or forbid (``False``) the gradient-free search; default: by
        :func:`is_differentiable`.
    directions:
        Random directions per step of the gradient-free search.
    seed:
        Seed of the random starts and directions.
    ids:
        The items' image indices in the whole audit (default ``0 .. B - 1``): item ``b`` draws
        from its own generator seeded by ``(seed, ids[b])``, so the result of an item does not
        depend on the batch it is in.
    progress:
        Show a progress bar over the search steps (all budgets and restarts).
    """
    y = _check_y(y)
    budgets = check_budgets(budgets)
    if reference not in ("output", "truth"):
        raise ValueError(f"argument 'reference' must be 'output' or 'truth', got {reference!r}")
    if reference == "truth" and x is None:
        raise ValueError("argument 'x' (the ground truth) is required for reference='truth'")
    for name, value in (("steps", steps), ("restarts", restarts), ("directions", directions)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"argument '{name}' must be an integer >= 1, got {value!r}")
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"argument 'step_size' must be a positive number, got {step_size!r}")
    free = (not is_differentiable(method)) if gradient_free is None else bool(gradient_free)

    with torch.no_grad():
        clean = method(y, op)
    ref = clean if reference == "output" else x
    ref = ref.detach()
    ref_norm = batch_norm(ref).clamp_min(1e-30)
    y_norm = batch_norm(y)

    # every budget is searched at once: the items (budget k, image b) are stacked budget-major
    # along the batch axis, each with its own radius and random stream (exact for methods that
    # treat items independently, and 1.1-2.3x faster than a loop over budgets on CPU)
    nb, b = len(budgets), y.shape[0]
    ys = y.repeat(nb, *[1] * (y.ndim - 1))
    refs = ref.repeat(nb, *[1] * (ref.ndim - 1))
    radius = torch.cat([r * y_norm for r in budgets])
    item_ids = default_ids(b, ids)
    gens = [g for k in range(nb) for g in item_generators(seed, item_ids, f"worst_case/{k}", y.device)]
    shape = (-1, *[1] * (y.ndim - 1))

    def loss(e: Tensor) -> Tensor:
        return batch_norm(method(ys + e, op) - refs)

    bar = tqdm(total=nb * restarts * (steps + 1), disable=not progress, desc="worst case",
               unit="step", leave=False)
    best_val = torch.full_like(radius, -1.0)
    best_e = torch.zeros_like(ys)
    for _ in range(restarts):
        e = _sphere(ys, radius, gens)
        for k in range(steps + 1):
            if free:
                with torch.no_grad():
                    value = loss(e)
                    grad = _finite_difference_gradient(loss, e, radius, directions, gens)
            else:
                e_var = e.detach().requires_grad_(True)
                value_t = loss(e_var)
                (grad,) = torch.autograd.grad(value_t.sum(), e_var)
                value = value_t.detach()
            bar.update(nb)
            better = value > best_val
            best_val = torch.where(better, value, best_val)
            best_e = torch.where(better.reshape(shape), e.detach(), best_e)
            if k == steps:
                break
            length = step_size * radius * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / steps)))
            e = _project(e.detach() + length.reshape(shape) * _unit(grad), radius)
    with torch.no_grad():
        out = method(ys + best_e, op).detach()
    cleans = clean.repeat(nb, *[1] * (clean.ndim - 1))
    errors = list(batch_norm(out - refs).reshape(nb, b))
    amps = list((batch_norm(out - cleans) / batch_norm(best_e).clamp_min(1e-30)).reshape(nb, b))
    perts = list(best_e.reshape(nb, b, *y.shape[1:]))
    outs = list(out.reshape(nb, b, *out.shape[1:]))
    bar.close()
    error = torch.stack(errors)
    return WorstCaseResult(
        budgets=budgets, reference=reference, error=error, relative_error=error / ref_norm,
        amplification=torch.stack(amps), perturbation=torch.stack(perts), output=torch.stack(outs),
        gradient_free=free, steps=steps, restarts=restarts,
    )


def _finite_difference_gradient(loss: Callable[[Tensor], Tensor], e: Tensor, radius: Tensor,
                                directions: int, generator: list[torch.Generator]) -> Tensor:
    """Antithetic random-direction estimate of the gradient of ``loss`` at ``e`` (SPSA-like)."""
    c = (0.01 * radius).reshape(-1, *[1] * (e.ndim - 1))
    grad = torch.zeros_like(e)
    for _ in range(directions):
        u = _sphere(e, torch.ones_like(radius), generator)
        diff = (loss(e + c * u) - loss(e - c * u)).reshape(-1, *[1] * (e.ndim - 1))
        grad = grad + diff * u
    return grad


@dataclass
class RandomNoiseResult:
    """Output change under random perturbations of the same norms, ``[budget, item]``:
    ``mean_error`` / ``max_error`` of ``||f(y + e) - f(y)||`` over ``draws`` draws of ``e``
    uniform on the sphere ``||e|| = r ||y||``, and ``mean_amplification`` (over ``||e||``)."""

    budgets: list[float]
    draws: int
    mean_error: Tensor
    max_error: Tensor
    mean_amplification: Tensor


def random_noise(method: Reconstructor, y: Tensor, op: Operator,
                 budgets: Sequence[float] = (0.005, 0.01, 0.02, 0.05), draws: int = 20, seed: int = 0,
                 progress: bool = False, ids: Sequence[int] | None = None) -> RandomNoiseResult:
    """The same budgets as :func:`worst_case`, drawn at random (``draws`` per budget; ``ids``:
    the items' image indices, as in :func:`worst_case`)."""
    y = _check_y(y)
    budgets = check_budgets(budgets)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"argument 'draws' must be an integer >= 1, got {draws!r}")
    generator = item_generators(seed, default_ids(y.shape[0], ids), "random_noise", y.device)
    means, maxes, amps = [], [], []
    with torch.no_grad():
        clean = method(y, op)
        for r in tqdm(budgets, disable=not progress, desc="random noise", unit="budget"):
            radius = r * batch_norm(y)
            errs = torch.stack([batch_norm(method(y + _sphere(y, radius, generator), op) - clean)
                                for _ in range(draws)])
            means.append(errs.mean(0))
            maxes.append(errs.amax(0))
            amps.append(errs.mean(0) / radius)
    return RandomNoiseResult(budgets, draws, torch.stack(means), torch.stack(maxes), torch.stack(amps))


@dataclass
class PenalisedResult:
    """Image-space perturbation ``r`` of the PNAS 2020 attack and its effect: ``perturbation``
    ``r`` ``(B, C, H, W)``, ``measurement_ratio`` ``||A r|| / ||A x||``, ``image_ratio``
    ``||r|| / ||x||``, ``output_change`` ``||f(A(x + r)) - f(A x)||`` and the ``objective``
    history."""

    perturbation: Tensor
    output: Tensor
    measurement_ratio: Tensor
    image_ratio: Tensor
    output_change: Tensor
    objective: list[float]


def penalised_perturbation(method: Reconstructor, x: Tensor, op: Operator, lam: float = 1.0, steps: int = 100,
                           step_size: float = 0.01, momentum: float = 0.9, seed: int = 0) -> PenalisedResult:
    r"""The perturbation of Antun et al. (PNAS 2020): maximise
    ``||f(A(x + r)) - f(A x)||^2 - lam ||r||^2`` over image-space ``r`` by gradient ascent with
    momentum (step ``step_size * ||x||`` along the normalised ascent direction), from a small
    random start. Needs a differentiable method."""
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"argument 'lam' must be a finite number >= 0, got {lam!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"argument 'steps' must be an integer >= 1, got {steps!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"argument 'momentum' must lie in [0, 1), got {momentum!r}")
    if not is_differentiable(method):
        raise ValueError("penalised_perturbation needs a differentiable method (method.differentiable)")
    generator = item_generators(seed, range(x.shape[0]), "penalised", x.device)
    y = op.A(x)
    with torch.no_grad():
        clean = method(y, op)
    x_norm = batch_norm(x).reshape(-1, *[1] * (x.ndim - 1))
    r = 1e-3 * _sphere(x, batch_norm(x), generator)
    velocity = torch.zeros_like(r)
    history = []
    for _ in range(steps):
        r_var = r.detach().requires_grad_(True)
        objective = (batch_norm(method(op.A(x + r_var), op) - clean) ** 2 - lam * batch_norm(r_var) ** 2)
        (grad,) = torch.autograd.grad(objective.sum(), r_var)
        history.append(float(objective.detach().mean()))
        velocity = momentum * velocity + _unit(grad)
        r = r.detach() + step_size * x_norm * _unit(velocity)
    with torch.no_grad():
        out = method(op.A(x + r), op)
    return PenalisedResult(
        perturbation=r.detach(), output=out,
        measurement_ratio=batch_norm(op.A(r)) / batch_norm(y), image_ratio=batch_norm(r) / batch_norm(x),
        output_change=batch_norm(out - clean), objective=history,
    )


def not_rare(method: Reconstructor, y: Tensor, op: Operator, perturbation: Tensor, scale: float = 0.5,
             draws: int = 10, seed: int = 0, ids: Sequence[int] | None = None) -> Tensor:
    """The "not rare" check of Antun et al.: the fraction of the damage of a worst-case
    perturbation ``e`` that survives random noise of norm ``scale * ||e||`` added to it,
    ``||f(y + e + n) - f(y)|| / ||f(y + e) - f(y)||``, averaged over ``draws`` draws, per item
    ``(B,)``. Values near 1 mean the bad perturbations fill a neighbourhood, not a point."""
    y = _check_y(y)
    if perturbation.shape != y.shape:
        raise ValueError(f"argument 'perturbation' must have the shape of 'y' {tuple(y.shape)}, "
                         f"got {tuple(perturbation.shape)}")
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"argument 'scale' must be a finite number >= 0, got {scale!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"argument 'draws' must be an integer >= 1, got {draws!r}")
    generator = item_generators(seed, default_ids(y.shape[0], ids), "not_rare", y.device)
    with torch.no_grad():
        clean = method(y, op)
        damage = batch_norm(method(y + perturbation, op) - clean).clamp_min(1e-30)
        radius = scale * batch_norm(perturbation)
        kept = [batch_norm(method(y + perturbation + _sphere(y, radius, generator), op) - clean) / damage
                for _ in range(draws)]
    return torch.stack(kept).mean(0)
