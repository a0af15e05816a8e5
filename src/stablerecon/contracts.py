r"""The two contracts every part of stablerecon honours, and the stability threshold.

**Operators.** A forward model ``y = A x`` is anything with

- ``A(x)``: images ``(B, *in_shape)`` to measurements ``(B, *out_shape)``;
- ``A_adjoint(y)``: the exact adjoint ``A^*`` (``<A x, y> = <x, A^* y>``).

Optional capabilities, used when present and filled in otherwise (:func:`operator_norm`,
:func:`infer_shapes`, :func:`apply_dagger`, :func:`capabilities`):

- ``A_dagger(y)``: a pseudo-inverse or cheap inverse (filtered back-projection, zero-filling);
  the adjoint stands in for it;
- ``norm()``: the spectral norm ``||A||_2``; a power iteration on ``A^* A`` stands in;
- ``in_shape`` / ``out_shape``: shapes without the batch dimension (``None`` = any size);
  inferred from one application of ``A_adjoint`` (or ``A``).

These names are DeepInverse's (``LinearPhysics``), so its physics objects satisfy the protocol
unchanged. Every :class:`stablerecon.operators.LinearOperator` has all of them.

**Reconstructors.** A reconstruction method is anything callable as ``method(y, op) -> x_hat``
(DeepInverse's ``Reconstructor`` convention). A method whose output is differentiable in ``y``
says so with ``method.differentiable = True`` (the default for ``torch.nn.Module`` s,
:func:`is_differentiable`); the audit then attacks it with gradients, and otherwise with a
gradient-free search.

**Stability.** :data:`STABILITY_THRESHOLD` is the worst-case amplification above which the audit
calls a method unstable.

This module imports nothing else of stablerecon: every other part depends on it.

>>> import torch
>>> class Scale:                      # a foreign operator: A and A_adjoint only
...     def A(self, x): return 2 * x
...     def A_adjoint(self, y): return 2 * y
>>> op = Scale()
>>> isinstance(op, Operator), capabilities(op).has_norm
(True, False)
>>> round(operator_norm(op, example=torch.ones(1, 1, 4, 4)), 6)
2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "STABILITY_THRESHOLD",
    "Operator",
    "Reconstructor",
    "Capabilities",
    "capabilities",
    "check_operator",
    "check_method",
    "is_differentiable",
    "apply_dagger",
    "infer_shapes",
    "operator_norm",
    "power_iteration",
]

#: Worst-case amplification ``||f(y + e) - f(y)|| / ||e||`` (both measured relative to the
#: clean output and measurements, :func:`stablerecon.audit.worst_case`) above which a method is
#: reported as unstable. An exactly unitary inverse has amplification 1; 3 leaves room for
#: the gain of a good regulariser on noise-like perturbations while flagging the
#: order-of-magnitude blow-ups of Antun et al. (PNAS 2020).
STABILITY_THRESHOLD: float = 3.0


@runtime_checkable
class Operator(Protocol):
    """A linear forward model: ``A`` and its exact adjoint ``A_adjoint`` (see module docs for
    the optional capabilities)."""

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 - the field's name
        """Images ``(B, *in_shape)`` -> measurements ``(B, *out_shape)``."""
        ...

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        """Measurements ``(B, *out_shape)`` -> images ``(B, *in_shape)``, the exact adjoint."""
        ...


@runtime_checkable
class Reconstructor(Protocol):
    """A reconstruction method ``method(y, op) -> x_hat`` of shape ``(B, *op.in_shape)``.

    Optional attribute ``differentiable`` (bool): whether gradients through the method are
    meaningful (see :func:`is_differentiable`)."""

    def __call__(self, y: Tensor, op: Operator) -> Tensor:
        ...


@dataclass(frozen=True)
class Capabilities:
    """What an operator provides itself (``True``) and what stablerecon fills in."""

    has_dagger: bool
    has_norm: bool
    has_shapes: bool
    in_shape: tuple[int | None, ...] | None
    out_shape: tuple[int | None, ...] | None


def _shape(value: object) -> tuple[int | None, ...] | None:
    if value is None:
        return None
    try:
        return tuple(None if s is None else int(s) for s in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None


def capabilities(op: object) -> Capabilities:
    """Detect the optional capabilities of ``op`` (the one place that does so)."""
    in_shape = _shape(getattr(op, "in_shape", None))
    out_shape = _shape(getattr(op, "out_shape", None))
    return Capabilities(
        has_dagger=callable(getattr(op, "A_dagger", None)),
        has_norm=callable(getattr(op, "norm", None)),
        has_shapes=in_shape is not None and out_shape is not None,
        in_shape=in_shape,
        out_shape=out_shape,
    )


def check_operator(op: object, name: str = "op", where: str | None = None) -> Operator:
    """``op`` if it satisfies :class:`Operator`, else a ``TypeError`` naming the argument."""
    if not (callable(getattr(op, "A", None)) and callable(getattr(op, "A_adjoint", None))):
        missing = [m for m in ("A", "A_adjoint") if not callable(getattr(op, m, None))]
        prefix = f"{where}: " if where else ""
        raise TypeError(f"{prefix}argument '{name}' must be a forward operator with methods A and "
                        f"A_adjoint (A_dagger and norm optional), got {type(op).__name__} "
                        f"(missing {', '.join(missing)})")
    return op  # type: ignore[return-value]


def check_method(method: object, name: str = "method") -> Reconstructor:
    """``method`` if it is callable as ``method(y, op)``, else a ``TypeError`` naming it."""
    if not callable(method):
        raise TypeError(f"argument '{name}' must be callable as method(y, op) -> x_hat, "
                        f"got {type(method).__name__}")
    return method  # type: ignore[return-value]


def is_differentiable(method: object) -> bool:
    """Whether gradients may be taken through ``method``: its ``differentiable`` attribute if it
    has one, else ``True`` for ``nn.Module`` s and ``False`` for other callables."""
    flag = getattr(method, "differentiable", None)
    if flag is not None:
        return bool(flag)
    return isinstance(method, torch.nn.Module)


def apply_dagger(op: Operator, y: Tensor) -> Tensor:
    """``op.A_dagger(y)`` if the operator has one, else the adjoint ``op.A_adjoint(y)``."""
    dagger = getattr(op, "A_dagger", None)
    return dagger(y) if callable(dagger) else op.A_adjoint(y)


def infer_shapes(
    op: Operator, *, y: Tensor | None = None, x: Tensor | None = None
) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
    """``(in_shape, out_shape)`` of ``op`` without the batch dimension: its attributes when it
    declares them, else from one application of ``A_adjoint`` to the example measurements
    ``y`` (or of ``A`` to the example images ``x``)."""
    caps = capabilities(op)
    if caps.has_shapes:
        return caps.in_shape, caps.out_shape  # type: ignore[return-value]
    with torch.no_grad():
        if y is not None:
            return tuple(op.A_adjoint(y).shape[1:]), tuple(y.shape[1:])
        if x is not None:
            return tuple(x.shape[1:]), tuple(op.A(x).shape[1:])
    raise ValueError(f"the shapes of {type(op).__name__} are unknown: it has no in_shape/out_shape; "
                     f"pass example measurements y or images x")


def power_iteration(
    op: Operator, example: Tensor, iters: int = 100, tol: float = 1e-7, seed: int = 0
) -> float:
    """``||A||_2`` by power iteration on ``A^* A``, started from a seeded random image shaped like
    ``example`` ``(B, ...)`` (its first item is used), in ``example``'s dtype and device.

    Stops when the estimate changes by less than ``tol`` (relative) or after ``iters`` steps;
    the estimate increases monotonically towards ``||A||`` from below."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = (1, *example.shape[1:])
    real = example.real.dtype if example.is_complex() else example.dtype
    v = torch.randn(shape, generator=gen, dtype=real).to(example.device)
    if example.is_complex():
        v = torch.complex(v, torch.randn(shape, generator=gen, dtype=real).to(example.device))
    estimate = 0.0
    with torch.no_grad():
        for _ in range(iters):
            v = v / torch.linalg.vector_norm(v)
            w = op.A_adjoint(op.A(v))
            if w.is_complex() and not v.is_complex():
                w = w.real
            new = float(torch.linalg.vector_norm(w)) ** 0.5
            v = w
            if new == 0.0:
                return 0.0
            if abs(new - estimate) <= tol * new:
                return new
            estimate = new
    return estimate


def operator_norm(op: Operator, example: Tensor | None = None, iters: int = 100, seed: int = 0) -> float:
    """``||A||_2``: ``op.norm()`` when the operator has it, else :func:`power_iteration` on an
    image shaped like ``example`` (or like the operator's ``in_shape``, float32)."""
    norm = getattr(op, "norm", None)
    if callable(norm):
        return float(norm())
    if example is None:
        in_shape = capabilities(op).in_shape
        if in_shape is None or any(s is None for s in in_shape):
            raise ValueError(f"the norm of {type(op).__name__} needs an example image: it has no norm() "
                             f"and no fixed in_shape")
        example = torch.zeros((1, *in_shape))  # type: ignore[misc]
    return power_iteration(op, example, iters=iters, seed=seed)
