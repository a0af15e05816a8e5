"""Tensor checks and small tensor helpers shared by the operators (and by ``sparsity``).

- :func:`check_tensor`: validate a batched tensor argument (type, dtype, shape, finiteness);
  :class:`skip_finite_checks` / :func:`finite_checks_enabled` turn the NaN/Inf scan off inside
  solver loops, :func:`all_finite` is that scan;
- :func:`complex_dtype_of`, :func:`real_dtype_of`: matching dtypes of the same precision;
- :func:`inner_product`: the batched Hilbert inner product of the dot-product test;
- :func:`gather_last`, :func:`scatter_last`: sampling and zero-filling along the last axis;
- :func:`as_hw`, :func:`format_shape`, :func:`shapes_compatible`: image sizes and shapes with
  ``None`` wildcards (:data:`Shape`).

Everything is re-exported by :mod:`stablerecon.operators.base`, the historical home of these
names.

>>> check_tensor(torch.zeros(2, 1, 4, 4), "x", (None, 4, 4)).shape
torch.Size([2, 1, 4, 4])
>>> as_hw(8, "size"), as_hw((4, 6), "size")
((8, 8), (4, 6))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

Shape = tuple[int | None, ...]
"""A shape without the batch dimension; ``None`` stands for "any size" (e.g. channels)."""

DomainKind = Literal["real", "complex", "any"]
"""Which tensors an operator accepts: real only, complex, or both."""

REAL_DTYPES = (torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)
SUPPORTED_DTYPES = REAL_DTYPES + COMPLEX_DTYPES

__all__ = [
    "Shape",
    "DomainKind",
    "REAL_DTYPES",
    "COMPLEX_DTYPES",
    "SUPPORTED_DTYPES",
    "complex_dtype_of",
    "real_float_tensor",
    "real_dtype_of",
    "check_tensor",
    "all_finite",
    "skip_finite_checks",
    "finite_checks_enabled",
    "inner_product",
    "gather_last",
    "scatter_last",
    "as_hw",
    "format_shape",
    "shapes_compatible",
]


def complex_dtype_of(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype with the precision of ``dtype`` (float32 -> complex64)."""
    if dtype in COMPLEX_DTYPES:
        return dtype
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def real_dtype_of(dtype: torch.dtype) -> torch.dtype:
    """The real dtype with the precision of ``dtype`` (complex64 -> float32)."""
    if dtype in REAL_DTYPES:
        return dtype
    return torch.float64 if dtype == torch.complex128 else torch.float32


def format_shape(shape: Sequence[int | None]) -> str:
    """A batched shape for messages: entry 0 is written ``B``, ``None`` entries ``*``.

    >>> format_shape((None, None, 16, 16))
    '(B, *, 16, 16)'
    """
    return "(" + ", ".join("B" if i == 0 else ("*" if s is None else str(s))
                           for i, s in enumerate(shape)) + ")"


def shapes_compatible(a: Shape, b: Shape) -> bool:
    """Whether two shapes can describe the same tensor (``None`` matches any size)."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


_CHECK_FINITE = True


class skip_finite_checks:  # noqa: N801 - used as a context manager, reads like a function
    """Context manager that turns off the NaN/Inf scan of operator inputs.

    Shape and dtype checks stay on. The scan costs one pass over the data and, on a GPU, a
    device synchronisation per call; iterative solvers that have validated their inputs once
    may run their inner loop inside ``with skip_finite_checks():``.
    """

    def __enter__(self) -> None:
        global _CHECK_FINITE
        self._previous = _CHECK_FINITE
        _CHECK_FINITE = False

    def __exit__(self, *exc: object) -> None:
        global _CHECK_FINITE
        _CHECK_FINITE = self._previous


def finite_checks_enabled() -> bool:
    """False inside :class:`skip_finite_checks` (value scans of inputs are skipped)."""
    return _CHECK_FINITE


def check_tensor(
    value: object,
    name: str,
    shape: Shape,
    kind: DomainKind = "any",
    where: str = "",
    check_finite: bool = True,
) -> torch.Tensor:
    """Validate a batched tensor argument and return it.

    Parameters
    ----------
    value:
        The object received.
    name:
        The argument's name, used in error messages.
    shape:
        Expected shape *without* the batch dimension; ``None`` entries match any size.
    kind:
        ``"real"`` accepts float32/float64, ``"complex"`` complex64/complex128 (real input is
        accepted too and promoted by the caller), ``"any"`` all four.
    where:
        Prefix naming the operator and method, e.g. ``"SubsampledFourier.A"``.
    check_finite:
        Reject NaN/Inf entries.

    Raises
    ------
    TypeError
        If ``value`` is not a tensor or has an unsupported dtype.
    ValueError
        If the shape does not match or the tensor holds NaN/Inf.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{prefix}argument '{name}' must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{prefix}argument '{name}' must have dtype float32, float64, complex64 or complex128, "
            f"got {value.dtype}"
        )
    if kind == "real" and value.dtype not in REAL_DTYPES:
        raise TypeError(f"{prefix}argument '{name}' must be real (float32/float64), got {value.dtype}")
    expected = (None, *shape)
    if value.ndim != len(expected) or any(
        e is not None and e != s for e, s in zip(expected, value.shape, strict=True)
    ):
        raise ValueError(
            f"{prefix}argument '{name}' must have shape {format_shape(expected)} "
            f"(B = batch, * = any), got {tuple(value.shape)}"
        )
    if value.shape[0] == 0:
        raise ValueError(f"{prefix}argument '{name}' has an empty batch (shape {tuple(value.shape)})")
    if check_finite and _CHECK_FINITE and not all_finite(value):
        raise ValueError(f"{prefix}argument '{name}' contains NaN or Inf values")
    return value


def all_finite(value: torch.Tensor) -> bool:
    """Whether every entry of ``value`` is finite (no NaN, no +-Inf).

    A floating-point sum is finite only if every term is, so one reduction (no temporary
    mask) settles the common case; only when the sum is not finite (NaN/Inf present, or an
    overflow of large finite values) is the exact elementwise test run.
    """
    flat = torch.view_as_real(value) if value.is_complex() else value
    if bool(torch.isfinite(flat.sum())):
        return True
    return bool(torch.isfinite(flat).all())


def real_float_tensor(value: object, name: str, shape: str, unit: str = "") -> torch.Tensor:
    """``value`` as a real floating-point tensor (NumPy arrays converted), else a ``TypeError``
    naming argument ``name`` with its expected ``shape`` (text, e.g. ``"(2, K)"``) and ``unit``."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"argument '{name}' must be a torch.Tensor of shape {shape}, "
                        f"got {type(value).__name__}")
    if value.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"argument '{name}' must be real (float32/float64{unit}), got {value.dtype}")
    return value


def gather_last(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[..., index]`` for a 1-D ``index`` (``torch.gather`` is the fastest CPU path)."""
    return torch.gather(values, -1, index.expand(*values.shape[:-1], -1))


def scatter_last(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Zero tensor with last dimension ``size`` and ``out[..., index] = values`` (1-D index)."""
    out = values.new_zeros((*values.shape[:-1], size))
    return out.scatter_(-1, index.expand(*values.shape[:-1], -1), values)


def inner_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Hilbert inner product ``<a, b> = sum conj(a) b`` per batch item.

    Returns a tensor of shape ``(B,)``, complex when either argument is complex (so the
    dot-product test checks complex linearity, not only real linearity); for real tensors it
    is the usual dot product.
    """
    prod = (torch.conj(a) * b) if (a.is_complex() or b.is_complex()) else a * b
    return prod.reshape(prod.shape[0], -1).sum(dim=1)


def as_hw(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """Parse an image size given as ``N`` (square) or ``(H, W)``; positive integers only.

    Raises ``TypeError`` for anything but an int or a pair of ints (``bool`` included) and
    ``ValueError`` for a size that is not positive, naming the argument ``name``.
    """
    if isinstance(size, bool):
        raise TypeError(f"argument '{name}' must be an int or a pair of ints, got {size!r}")
    if isinstance(size, int):
        h = w = size
    elif isinstance(size, Sequence) and len(size) == 2 and all(
        isinstance(s, int) and not isinstance(s, bool) for s in size
    ):
        h, w = int(size[0]), int(size[1])
    else:
        raise TypeError(f"argument '{name}' must be an int or a pair of ints, got {size!r}")
    if h <= 0 or w <= 0:
        raise ValueError(f"argument '{name}' must be positive, got {size!r}")
    return h, w
