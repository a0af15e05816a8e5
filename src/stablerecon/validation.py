"""Checks of plain Python arguments, shared by every public constructor and function.

Each check returns the value in its canonical type or raises a ``ValueError`` / ``TypeError``
that names the argument, what was expected and what was received. ``where`` (optional) is put
in front of the message, e.g. ``"fista: argument 'max_iter' must be an integer >= 1, got 0"``.
Tensor arguments are checked by :func:`stablerecon.operators.base.check_tensor`; configs by
pydantic (:mod:`stablerecon.config_base`).

>>> positive_int(3, "depth")
3
>>> positive_float(0, "lam", allow_zero=True)
0.0
>>> choice("haar", "wavelet", ("haar", "db4"))
'haar'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = ["positive_int", "positive_float", "choice", "boolean", "budgets", "int_sequence", "device"]


def _prefix(where: str | None) -> str:
    return f"{where}: " if where else ""


def positive_int(value: object, name: str, minimum: int = 1, where: str | None = None) -> int:
    """``value`` as an ``int >= minimum`` (``bool`` is refused; NumPy integers are accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{_prefix(where)}argument '{name}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_float(value: object, name: str, allow_zero: bool = False, where: str | None = None) -> float:
    """``value`` as a finite ``float > 0`` (``>= 0`` with ``allow_zero``)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{_prefix(where)}argument '{name}' must be a finite number {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def choice(value: object, name: str, choices: Iterable[str], where: str | None = None) -> str:
    """``value`` if it is one of ``choices``."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{_prefix(where)}argument '{name}' must be one of {options}, got {value!r}")
    return value


def boolean(value: object, name: str, where: str | None = None) -> bool:
    """``value`` if it is a ``bool`` (``0``/``1`` and strings are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{_prefix(where)}argument '{name}' must be a bool, got {value!r}")
    return value


def budgets(values: object, name: str = "budgets", where: str | None = None) -> list[float]:
    """A non-empty list of finite positive numbers (relative perturbation budgets)."""
    try:
        out = [float(b) for b in values]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        out = []
    if not out or any(not (math.isfinite(b) and b > 0) for b in out):
        raise ValueError(
            f"{_prefix(where)}argument '{name}' must be a non-empty list of positive numbers, got {values!r}"
        )
    return out


def int_sequence(value: int | Sequence[int], length: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """One int repeated ``length`` times, or a sequence of exactly ``length`` ints ``>= minimum``
    (e.g. channels per level of a network)."""
    single = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    values = (value,) * length if single else value
    try:
        values = tuple(values)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"argument '{name}' must be an int or a sequence of {length} ints, "
                         f"got {value!r}") from None
    if len(values) != length:
        raise ValueError(f"argument '{name}' must have one entry per level ({length}), got {len(values)}")
    return tuple(positive_int(v, name, minimum) for v in values)


def device(value: object, name: str = "device") -> str | None:
    """A torch device string that exists on this machine (``None`` stays ``None``): ``"cpu"``,
    ``"cuda"``, ``"cuda:1"``, ``"mps"``; a ``ValueError`` naming the argument for a malformed
    name, a backend that is not available, or a device index beyond those present."""
    if value is None:
        return None
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"argument '{name}' must be a device name such as 'cpu' or 'cuda', "
                        f"got {type(value).__name__}")
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"argument '{name}': {value!r} is not a device ({err})") from None
    if dev.type == "cpu":
        return str(dev)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"argument '{name}' is {str(value)!r} but this machine has no CUDA device "
                             f"(torch {torch.__version__}, CUDA available: {torch.cuda.is_available()})")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"argument '{name}' is {str(value)!r} but this machine has {count} CUDA "
                             f"device(s): cuda:0 .. cuda:{count - 1}")
        return str(dev)
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"argument '{name}' is 'mps' but MPS is not available on this machine")
        return str(dev)
    raise ValueError(f"argument '{name}': device type {dev.type!r} is not supported (use cpu, cuda or mps)")
