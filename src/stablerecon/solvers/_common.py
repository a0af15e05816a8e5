"""What the iterative solvers of this package share: their diagnostics record, the checks of
their common arguments, and small per-item reductions.

:func:`~stablerecon.solvers.fista`, :func:`~stablerecon.solvers.primal_dual_tv` and
:func:`~stablerecon.solvers.primal_dual` all take a forward operator on images
``(B, C, H, W)``, an iteration budget with a relative-change tolerance, and return a
:class:`SolverInfo` on request; the checks below name the failing argument and prefix the
solver's name (``where``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..contracts import check_operator
from ..operators.adapter import as_linear_operator
from ..operators.base import LinearOperator, check_tensor, complex_dtype_of, real_dtype_of
from ..validation import boolean

__all__ = [
    "SolverInfo",
    "linear_operator",
    "check_linear_operator",
    "check_iterations",
    "check_lam",
    "working_dtypes",
    "check_x0",
    "item_norms",
    "relative_change",
    "progress_range",
    "lipschitz",
    "data_term",
]


@dataclass
class SolverInfo:
    """Diagnostics of an iterative solve (FISTA, primal-dual TV, Chambolle-Pock).

    Attributes
    ----------
    iterations:
        Number of iterations run.
    objective:
        Objective value of the iterate (the returned estimate) after each iteration, a float64
        tensor of shape ``(iterations, B)`` (detached).
    relative_change:
        ``||x_{k+1} - x_k|| / max(||x_k||, tiny)`` of the last iteration per batch item,
        shape ``(B,)`` (detached).
    converged:
        Whether the stopping rule ``relative_change < tol`` held for every batch item before
        ``max_iter`` was reached.
    extras:
        Solver-specific values (step sizes, final dual variables).
    """

    iterations: int
    objective: torch.Tensor
    relative_change: torch.Tensor
    converged: bool
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_history(cls, history: list[torch.Tensor], batch: int, iterations: int,
                     relative_change: torch.Tensor, converged: bool,
                     extras: dict[str, object] | None = None) -> SolverInfo:
        """The record of a run whose objective values ``(B,)`` per iteration are ``history``
        (empty when they were not recorded)."""
        objective = torch.stack(history) if history else torch.empty(0, batch, dtype=torch.float64)
        return cls(iterations=iterations, objective=objective, relative_change=relative_change.detach(),
                   converged=converged, extras=dict(extras or {}))


def linear_operator(op: object, name: str, where: str, y: object = None) -> LinearOperator:
    """``op`` as a :class:`~stablerecon.operators.LinearOperator`: itself if it is one, else any
    :class:`~stablerecon.contracts.Operator` (``A`` and ``A_adjoint``) adapted by
    :func:`~stablerecon.operators.as_linear_operator`, its shapes inferred from the
    measurements ``y`` ``(B, ...)`` when it declares none. A ``TypeError`` names the argument
    ``name`` when ``op`` is no operator (or ``y`` no tensor); a ``ValueError`` when the adapter
    cannot learn the operator's shapes."""
    if isinstance(op, LinearOperator):
        return op
    check_operator(op, name, where)
    if y is not None and not isinstance(y, torch.Tensor):
        raise TypeError(f"{where}: argument 'y' must be a torch.Tensor, got {type(y).__name__}")
    try:
        return as_linear_operator(op, example=y)
    except ValueError as err:
        raise ValueError(f"{where}: argument '{name}': {err}") from None


def check_linear_operator(op: object, name: str, where: str, y: object = None) -> LinearOperator:
    """``op`` as a :class:`~stablerecon.operators.LinearOperator` on images ``(B, C, H, W)``
    (``in_shape`` of length 3); any other operator is adapted, see :func:`linear_operator`."""
    op = linear_operator(op, name, where, y)
    if len(op.in_shape) != 3:
        raise ValueError(
            f"{where}: argument '{name}' must act on images (B, C, H, W), i.e. in_shape of length 3, "
            f"got in_shape={op.in_shape}"
        )
    return op


def check_iterations(max_iter: object, tol: object, where: str) -> tuple[int, float]:
    """``(max_iter, tol)`` as an ``int >= 1`` and a ``float >= 0`` (a non-number is a
    ``TypeError``, an out-of-range number a ``ValueError``)."""
    if isinstance(max_iter, bool) or not isinstance(max_iter, int):
        raise TypeError(f"{where}: argument 'max_iter' must be an int, got {max_iter!r}")
    if max_iter < 1:
        raise ValueError(f"{where}: argument 'max_iter' must be >= 1, got {max_iter}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)):
        raise TypeError(f"{where}: argument 'tol' must be a number, got {tol!r}")
    if math.isnan(tol) or tol < 0:
        raise ValueError(f"{where}: argument 'tol' must be >= 0, got {tol}")
    return max_iter, float(tol)


def check_lam(lam: object, batch: int, dtype: torch.dtype, device: torch.device,
              where: str) -> torch.Tensor:
    """``lam`` as a real tensor of shape ``()`` or ``(B,)`` (positive, finite)."""
    if isinstance(lam, bool):
        raise TypeError(f"{where}: argument 'lam' must be a positive number or a tensor, got {lam!r}")
    if isinstance(lam, (int, float)):
        if not math.isfinite(lam) or lam <= 0:
            raise ValueError(f"{where}: argument 'lam' must be positive and finite, got {lam}")
        return torch.tensor(float(lam), dtype=dtype, device=device)
    if not isinstance(lam, torch.Tensor):
        raise TypeError(
            f"{where}: argument 'lam' must be a positive number or a tensor, got {type(lam).__name__}"
        )
    if lam.is_complex() or not lam.is_floating_point():
        raise TypeError(f"{where}: argument 'lam' must be a real floating tensor, got {lam.dtype}")
    if lam.ndim > 1 or (lam.ndim == 1 and lam.shape[0] != batch):
        raise ValueError(
            f"{where}: argument 'lam' must be a scalar or have shape (B,) = ({batch},), "
            f"got {tuple(lam.shape)}"
        )
    if not bool(torch.isfinite(lam).all()) or bool((lam <= 0).any()):
        raise ValueError(f"{where}: argument 'lam' must be positive and finite, got {lam.detach()}")
    return lam.to(dtype=dtype, device=device)


def working_dtypes(y: torch.Tensor, op: LinearOperator, real: bool,
                   where: str) -> tuple[torch.dtype, torch.dtype]:
    """(image dtype, its real dtype) for measurements ``y``: real images when ``real``, else
    complex ones (refused for operators that accept only real images)."""
    real = boolean(real, "real", where=where)
    rdtype = real_dtype_of(y.dtype)
    if real:
        return rdtype, rdtype
    if op.in_kind == "real":
        raise ValueError(
            f"{where}: argument 'real' must be True for {op.name}, which accepts only real images"
        )
    return complex_dtype_of(y.dtype), rdtype


def check_x0(x0: object, shape: torch.Size, dtype: torch.dtype, real: bool, where: str) -> torch.Tensor:
    """The initial image ``x0`` of exactly ``shape`` ``(B, C, H, W)``, cast to ``dtype``."""
    x0 = check_tensor(x0, "x0", tuple(shape[1:]), "real" if real else "any", where=where)
    if x0.shape != shape:
        raise ValueError(f"{where}: argument 'x0' must have shape {tuple(shape)}, got {tuple(x0.shape)}")
    return x0.to(dtype=dtype)


def item_norms(t: torch.Tensor) -> torch.Tensor:
    """The Euclidean norm of each batch item of ``t`` ``(B, ...)``, shape ``(B,)``."""
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)


def relative_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``||new - old|| / max(||old||, tiny)`` per batch item (detached, shape ``(B,)``)."""
    with torch.no_grad():
        num = item_norms(new - old)
        den = item_norms(old)
        return num / den.clamp_min(torch.finfo(den.dtype).tiny)


def progress_range(max_iter: int, progress: bool, desc: str) -> Iterator[int] | tqdm:
    """``range(max_iter)`` behind a tqdm bar labelled ``desc`` (hidden unless ``progress``)."""
    if not isinstance(progress, bool):
        raise TypeError(f"{desc}: argument 'progress' must be a bool, got {progress!r}")
    return tqdm(range(max_iter), desc=desc, disable=not progress, leave=False)


def lipschitz(op: LinearOperator, where: str) -> float:
    """``||A||^2``, the Lipschitz constant of the gradient of ``0.5 ||A x - y||^2``."""
    norm = float(op.norm())
    if not math.isfinite(norm) or norm <= 0:
        raise ValueError(f"{where}: the operator norm ||A|| of {op.name} must be positive and finite, "
                         f"got {norm}")
    return norm**2


def data_term(ax: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``0.5 ||A x - y||_2^2`` per batch item from ``A x`` and ``y``, shape ``(B,)``."""
    r = ax - y
    r = torch.view_as_real(r) if r.is_complex() else r
    return 0.5 * r.reshape(r.shape[0], -1).square().sum(dim=1)
