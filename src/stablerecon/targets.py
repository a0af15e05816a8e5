"""Loading a researcher's own code named in a config: ``"package.module:factory"`` or
``"path/to/file.py:factory"``.

A *target* names a callable (a factory) that builds a method or an operator. Module targets are
imported the usual way (the package must be importable: installed, or on ``PYTHONPATH``);
file targets are executed as a module of their own, once per file and content, with relative
paths taken from ``base_dir`` (the folder of the config file). Every failure is a
``ValueError`` that says what was asked and what went wrong, so configs can report it against
their field before any work starts.

>>> resolve_target("math:hypot")(3, 4)
5.0
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from .config_base import StrictModel

__all__ = ["resolve_target", "split_target", "call_factory", "TargetParams", "DeepinvParams"]


def split_target(target: object) -> tuple[str, str]:
    """``(module or file, attribute)`` of ``"module:attr"`` / ``"path.py:attr"``."""
    if not isinstance(target, str) or target.count(":") < 1:
        raise ValueError(f"must be 'package.module:factory' or 'path/to/file.py:factory', got {target!r}")
    where, _, attr = target.rpartition(":")
    if not where or not attr.isidentifier():
        raise ValueError(f"must be 'package.module:factory' or 'path/to/file.py:factory', got {target!r}")
    return where, attr


def _load_file(path: Path) -> Any:
    try:
        source = path.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read {str(path)!r}: {err.strerror or err}") from None
    digest = hashlib.sha256(str(path).encode() + b"\0" + source).hexdigest()[:16]
    name = f"stablerecon_target_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{str(path)!r} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # user code: report whatever it raised
        del sys.modules[name]
        raise ValueError(f"running {str(path)!r} raised {type(err).__name__}: {err}") from None
    return module


def resolve_target(target: str, base_dir: str | Path | None = None) -> Callable[..., Any]:
    """The callable ``target`` names.

    Parameters
    ----------
    target:
        ``"package.module:name"`` (imported) or ``"path/to/file.py:name"`` (executed; a
        relative path is taken from ``base_dir``, default the current folder).
    base_dir:
        Folder of the config that names the target.
    """
    where, attr = split_target(target)
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        if not path.is_file():
            raise ValueError(f"file {str(path)!r} of target {target!r} does not exist")
        module = _load_file(path.resolve())
    else:
        try:
            module = importlib.import_module(where)
        except Exception as err:  # ImportError, or whatever the module raised while importing
            raise ValueError(f"module {where!r} of target {target!r} cannot be imported: "
                             f"{type(err).__name__}: {err}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise ValueError(f"target {target!r}: {where!r} has no attribute {attr!r}")
    if not callable(obj):
        raise ValueError(f"target {target!r} is not callable (a {type(obj).__name__})")
    return obj


def _absolute(target: str, base_dir: str | Path | None) -> str:
    where, attr = split_target(target)
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        return f"{path.resolve()}:{attr}"
    return target


def call_factory(factory: Callable[..., Any], args: dict[str, Any], what: str, **offered: Any) -> Any:
    """``factory(**args, **offered)``, where each ``offered`` keyword (e.g. ``op``, ``size``) is
    passed only if the factory takes it and ``args`` does not set it; whatever the factory
    raises becomes a ``ValueError`` that names ``what``."""
    try:
        params = inspect.signature(factory).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):  # builtins without a signature
        params, takes_all = {}, False
    extra = {k: v for k, v in offered.items() if k not in args and (takes_all or k in params)}
    try:
        return factory(**args, **extra)
    except Exception as err:  # user code: report whatever it raised
        raise ValueError(f"{what}: the factory raised {type(err).__name__}: {err}") from None


class TargetParams(StrictModel):
    """Fields of a ``kind: python`` method or operator: ``target`` (``"package.module:factory"``
    or ``"path/to/file.py:factory"``, a path relative to the config file) and ``args``, the
    keyword arguments of the factory. The target is resolved when the config is validated."""

    target: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("target")
    @classmethod
    def _resolvable(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dir")
        resolve_target(value, base)
        return _absolute(value, base)


class DeepinvParams(StrictModel):
    """Fields of a ``kind: deepinv`` method or operator: ``target`` names a DeepInverse class or
    factory, dotted (``"deepinv.physics.Tomography"``) or as ``"module:name"`` /
    ``"file.py:name"``, called with ``args``. Refused, naming the field, when DeepInverse is not
    installed (``pip install 'stablerecon[deepinv]'``) or the target does not resolve."""

    target: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("target")
    @classmethod
    def _resolvable(cls, value: str, info: ValidationInfo) -> str:
        if importlib.util.find_spec("deepinv") is None:
            raise ValueError("kind 'deepinv' needs DeepInverse, which is not installed: "
                             "pip install 'stablerecon[deepinv]' (see the README)")
        if ":" not in value and "." in value:  # deepinv.physics.Tomography
            module, _, attr = value.rpartition(".")
            value = f"{module}:{attr}"
        base = (info.context or {}).get("base_dir")
        resolve_target(value, base)
        return _absolute(value, base)
