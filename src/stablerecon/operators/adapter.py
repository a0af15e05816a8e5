r"""Any forward model as a :class:`~stablerecon.operators.LinearOperator`.

:func:`as_linear_operator` turns an object that has only ``A`` and ``A_adjoint`` (the
:class:`~stablerecon.contracts.Operator` protocol: a researcher's own PyTorch operator, a
DeepInverse physics, ...) into a :class:`LinearOperator`, so that every solver and network of
stablerecon runs on it. What the object does not declare is learnt once, from one example:

- ``in_shape`` / ``out_shape``: the object's attributes when it has both, else
  :func:`~stablerecon.contracts.infer_shapes` does, from example measurements (one ``A_adjoint``) or
  an example image (one ``A``);
- ``out_complex``: whether ``A`` of a seeded random real image is complex;
- ``in_kind`` (the one place where the real/complex convention of a foreign operator is
  decided): ``"any"`` if ``A`` accepts complex images and is complex-linear on them
  (``A(i x) = i A(x)`` to 1e-3 relative), else ``"real"`` (``A`` raises on a complex image or
  drops its imaginary part);
- ``norm()``: the object's ``norm()`` when it has one, else the power iteration of
  :meth:`LinearOperator.norm` (Rayleigh quotient of ``A^* A``), run in the example's precision
  and on its device;
- ``A_dagger``: the object's when it has one, else the adjoint
  (:func:`~stablerecon.contracts.apply_dagger`).

What was learnt (shapes, kinds, norm) is kept per object and per shape (weakly: nothing keeps
the object alive), so that a solver adapting the same operator on every call pays for the
probe and the power iteration once. An operator whose ``A`` changes after it was adapted
(e.g. a new sampling mask set in place) must be a new object, or call ``norm(recompute=True)``.

Every public call of the result validates its argument like any stablerecon operator
(:func:`~stablerecon.operators.tensors.check_tensor`: shape, dtype, finiteness).

>>> import torch
>>> class Double:                      # a foreign operator: A and A_adjoint only
...     def A(self, x): return 2 * x
...     def A_adjoint(self, y): return 2 * y
>>> op = as_linear_operator(Double(), example=torch.ones(1, 1, 4, 4))
>>> op.in_shape, op.in_kind, op.out_complex, round(op.norm(), 6)
((1, 4, 4), 'any', False, 2.0)
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

import torch

from ..contracts import Operator, apply_dagger, capabilities, check_operator
from .base import LinearOperator
from .tensors import DomainKind, Shape, check_tensor, complex_dtype_of, real_dtype_of, shapes_compatible

__all__ = ["as_linear_operator", "AdaptedOperator"]

_MAX_FACTS_PER_OPERATOR = 8


@dataclass
class _Facts:
    """What was learnt about one foreign operator at one shape."""

    in_shape: Shape
    out_shape: Shape
    in_kind: DomainKind
    out_complex: bool
    dtype: torch.dtype  # real dtype the operator was probed in
    device: torch.device
    image_shape: tuple[int, ...]  # a concrete image shape (without batch) it was probed on
    norm: float | None = None


class _FactCache:
    """The facts learnt per foreign operator object, keyed by identity and held weakly."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref, list[_Facts]]] = {}

    def lookup(self, op: object, example: torch.Tensor | None, image: torch.Tensor | None) -> _Facts | None:
        entry = self._entries.get(id(op))
        if entry is None or entry[0]() is not op:
            return None
        for facts in entry[1]:
            ref = image if image is not None else example
            if ref is not None and ref.device != facts.device:
                continue
            if image is not None and not shapes_compatible(facts.in_shape, tuple(image.shape[1:])):
                continue
            if example is not None and not shapes_compatible(facts.out_shape, tuple(example.shape[1:])):
                continue
            return facts
        return None

    def store(self, op: object, facts: _Facts) -> None:
        key = id(op)
        entry = self._entries.get(key)
        if entry is None or entry[0]() is not op:
            try:
                ref = weakref.ref(op, lambda _ref, key=key: self._entries.pop(key, None))
            except TypeError:  # not weak-referenceable: learn again on every call
                return
            entry = (ref, [])
            self._entries[key] = entry
        entry[1].append(facts)
        del entry[1][:-_MAX_FACTS_PER_OPERATOR]


_CACHE = _FactCache()


class AdaptedOperator(LinearOperator):
    """A foreign operator (anything with ``A`` and ``A_adjoint``) behind the
    :class:`LinearOperator` interface; build it with :func:`as_linear_operator`.

    ``A``, ``A_adjoint`` and ``A_dagger`` validate their argument, then call the wrapped
    object's ``A``, ``A_adjoint`` and ``A_dagger`` (the adjoint when it has none); gradients flow
    through them. The wrapped object is ``self.op`` (a submodule when it is an ``nn.Module``).
    """

    def __init__(self, op: Operator, facts: _Facts) -> None:
        super().__init__(facts.in_shape, facts.out_shape)
        self.op = op
        self.in_kind = facts.in_kind
        self.out_complex = facts.out_complex
        self._facts = facts

    @property
    def name(self) -> str:
        return type(self.op).__name__

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.A(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.A_adjoint(y)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return apply_dagger(self.op, y)

    def _exact_norm(self) -> float | None:
        norm = getattr(self.op, "norm", None)
        return float(norm()) if callable(norm) else None

    def _probe_dtype(self, precision: torch.dtype = torch.float64) -> torch.dtype:
        # the precision the operator was probed in: a foreign operator may work in one only
        return self._facts.dtype if self.in_kind == "real" else complex_dtype_of(self._facts.dtype)

    def _probe_device(self) -> torch.device:
        return self._facts.device

    def probe_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The image shape the operator was probed on, with batch ``batch``."""
        return (batch, *self._facts.image_shape)

    def norm(self, max_iter: int = 500, tol: float = 1e-7, seed: int = 0, recompute: bool = False) -> float:
        """``||A||_2``: the wrapped object's ``norm()`` if it has one, else power iteration (see
        :meth:`LinearOperator.norm`); computed once per wrapped object and shape."""
        if self._facts.norm is None or recompute:
            self._facts.norm = super().norm(max_iter=max_iter, tol=tol, seed=seed, recompute=True)
        return self._facts.norm


def _check_example(value: object, name: str) -> torch.Tensor | None:
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"argument '{name}' must be a torch.Tensor or None, got {type(value).__name__}")
    if value.ndim < 2:
        raise ValueError(f"argument '{name}' must be batched (B, ...), got shape {tuple(value.shape)}")
    return check_tensor(value, name, (None,) * (value.ndim - 1), check_finite=False)


def _apply(fn_name: str, op: object, t: torch.Tensor, what: str) -> torch.Tensor:
    """``op.<fn_name>(t)``, its failure reported as a ``ValueError`` naming the operator."""
    try:
        out = getattr(op, fn_name)(t)
    except Exception as err:  # a foreign operator may raise anything
        raise ValueError(f"{type(op).__name__}.{fn_name} failed on {what} of shape {tuple(t.shape)} "
                         f"({t.dtype}): {err}") from err
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{type(op).__name__}.{fn_name} must return a torch.Tensor, got {type(out).__name__}")
    return out


def _accepts_complex(op: Operator, x: torch.Tensor, ax: torch.Tensor) -> bool:
    """Whether ``A`` takes complex images and is complex-linear on them: ``A(i x) = i A(x)``."""
    try:
        az = op.A(1j * x.to(complex_dtype_of(x.dtype)))
    except Exception:  # refused: a real-only operator
        return False
    if not isinstance(az, torch.Tensor) or not az.is_complex() or az.shape != ax.shape:
        return False
    scale = float(torch.linalg.vector_norm(ax))
    return float(torch.linalg.vector_norm(az - 1j * ax)) <= 1e-3 * scale


def _learn(op: Operator, example: torch.Tensor | None, image: torch.Tensor | None) -> _Facts:
    """Probe a foreign operator: shapes, real/complex conventions, working precision."""
    caps = capabilities(op)
    ref = image if image is not None else example
    device = ref.device if ref is not None else torch.device("cpu")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "casting complex values to real" while probing
        if caps.has_shapes:
            in_shape, out_shape = caps.in_shape, caps.out_shape
        elif image is not None:  # as contracts.infer_shapes, with a clear error if A fails
            in_shape = tuple(image.shape[1:])
            out_shape = tuple(_apply("A", op, image[:1], "the example image").shape[1:])
        else:
            adjoint = _apply("A_adjoint", op, example[:1], "the example measurements")
            in_shape, out_shape = tuple(adjoint.shape[1:]), tuple(example.shape[1:])
        shape = tuple(in_shape)  # type: ignore[arg-type]
        if any(s is None for s in shape):  # declared with free sizes: take them from the example
            if image is not None:
                shape = tuple(image.shape[1:])
            elif example is not None:
                shape = tuple(_apply("A_adjoint", op, example[:1], "the example measurements").shape[1:])
            else:
                shape = tuple(1 if s is None else s for s in shape)
        candidates = [real_dtype_of(ref.dtype)] if ref is not None else [torch.float64, torch.float32]
        generator = torch.Generator().manual_seed(0)
        probe = torch.randn((1, *shape), generator=generator, dtype=torch.float64)
        failure: ValueError | None = None
        for dtype in candidates:
            x = probe.to(dtype=dtype, device=device)
            try:
                ax = _apply("A", op, x, "a random real image")
            except ValueError as err:
                failure = err
                continue
            in_kind: DomainKind = "any" if _accepts_complex(op, x, ax) else "real"
            return _Facts(in_shape=tuple(in_shape), out_shape=tuple(out_shape),  # type: ignore[arg-type]
                          in_kind=in_kind, out_complex=ax.is_complex(), dtype=dtype, device=device,
                          image_shape=tuple(int(s) for s in shape))
    assert failure is not None
    raise failure


def as_linear_operator(op: object, *, example: torch.Tensor | None = None,
                       image: torch.Tensor | None = None) -> LinearOperator:
    """``op`` as a :class:`LinearOperator`: itself if it is one, else an :class:`AdaptedOperator`.

    Parameters
    ----------
    op:
        A :class:`~stablerecon.contracts.Operator`: ``A`` and ``A_adjoint``; ``A_dagger``,
        ``norm()``, ``in_shape`` and ``out_shape`` are used when present.
    example:
        Example measurements ``(B, *out_shape)`` (e.g. the ``y`` a solver was given): the
        shapes come from ``A_adjoint`` of its first item when ``op`` declares none, and the
        precision (float32/float64) and device of the probe from it.
    image:
        Or an example image ``(B, *in_shape)`` (shapes from ``A`` of its first item).

    Without either, ``op`` must declare ``in_shape`` and ``out_shape``; it is then probed in
    float64 (float32 if ``A`` refuses float64) on the CPU.

    Raises
    ------
    TypeError
        If ``op`` lacks ``A`` or ``A_adjoint``, or an example is not a tensor.
    ValueError
        If the shapes cannot be known, or ``op`` fails on the example (the message names it).
    """
    if isinstance(op, LinearOperator):
        return op
    op = check_operator(op, "op")
    example = _check_example(example, "example")
    image = _check_example(image, "image")
    if example is None and image is None and not capabilities(op).has_shapes:
        raise ValueError(f"the shapes of {type(op).__name__} are unknown: it has no in_shape/out_shape; "
                         f"pass example measurements ('example') or an example image ('image')")
    facts = _CACHE.lookup(op, example, image)
    if facts is None:
        facts = _learn(op, example, image)
        _CACHE.store(op, facts)
    return AdaptedOperator(op, facts)
