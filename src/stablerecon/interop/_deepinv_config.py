"""DeepInverse physics and models named in a config: the builders behind ``kind: deepinv``
(:func:`operator_from_target`, :func:`method_from_target`)."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..contracts import Operator
from ..targets import call_factory, resolve_target
from ._deepinv_common import require_deepinv
from ._deepinv_method import DeepinvMethod, method_from_deepinv
from ._deepinv_physics import from_deepinv

__all__ = ["operator_from_target", "method_from_target", "MASK_GENERATORS"]

#: ``mask: {kind: ...}`` of an MRI physics -> the DeepInverse generator of Cartesian line masks.
MASK_GENERATORS = {"gaussian": "GaussianMaskGenerator", "random": "RandomMaskGenerator",
                   "equispaced": "EquispacedMaskGenerator"}


def _resolve(target: object, base_dir: str | Path | None, what: str) -> Callable[..., Any]:
    """``target`` as ``"module:name"``, ``"file.py:name"`` or a dotted ``"deepinv.physics.MRI"``."""
    if not isinstance(target, str) or not target:
        raise ValueError(f"{what} target must be a string such as 'deepinv.physics.Tomography', "
                         f"got {target!r}")
    if ":" not in target:
        module, _, attr = target.rpartition(".")
        if not module:
            raise ValueError(f"{what} target {target!r} must name a class or factory in a module, "
                             f"e.g. 'deepinv.physics.Tomography' or 'deepinv.physics:Tomography'")
        target = f"{module}:{attr}"
    return resolve_target(target, base_dir)


def _parameters(factory: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


def _mri_mask(spec: object, size: int, target: str) -> torch.Tensor:
    """A DeepInverse Cartesian mask ``(1, 1, size, size)`` from ``{acceleration | rate, center_fraction,
    seed, kind}``."""
    if not isinstance(spec, dict):
        raise ValueError(f"operator target {target!r}: 'mask' must be a mapping such as {{acceleration: 4, "
                         f"seed: 0}} or a list of 0/1 rows, got {type(spec).__name__}")
    allowed = {"acceleration", "rate", "center_fraction", "seed", "kind"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"operator target {target!r}: 'mask' has unknown keys {unknown}; "
                         f"allowed: {sorted(allowed)}")
    if ("acceleration" in spec) == ("rate" in spec):
        raise ValueError(f"operator target {target!r}: 'mask' needs exactly one of 'acceleration' and "
                         f"'rate', got {sorted(spec)}")
    acceleration = spec["acceleration"] if "acceleration" in spec else None
    if acceleration is None:
        rate = spec["rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError(f"operator target {target!r}: 'mask.rate' must be in (0, 1], got {rate!r}")
        acceleration = 1.0 / rate
    if isinstance(acceleration, bool) or not isinstance(acceleration, (int, float)) or acceleration < 1:
        raise ValueError(f"operator target {target!r}: 'mask.acceleration' must be >= 1, "
                         f"got {acceleration!r}")
    kind = spec.get("kind", "gaussian")
    if kind not in MASK_GENERATORS:
        raise ValueError(f"operator target {target!r}: 'mask.kind' must be one of {list(MASK_GENERATORS)}, "
                         f"got {kind!r}")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"operator target {target!r}: 'mask.seed' must be an integer, got {seed!r}")
    generators = require_deepinv().physics.generator
    cls = getattr(generators, MASK_GENERATORS[kind])
    options: dict[str, Any] = {"acceleration": acceleration, "rng": torch.Generator().manual_seed(seed)}
    if "center_fraction" in spec:
        options["center_fraction"] = spec["center_fraction"]
    try:
        return cls((size, size), **options).step(batch_size=1, seed=seed)["mask"]
    except Exception as err:  # deepinv's own checks
        raise ValueError(f"operator target {target!r}: 'mask' {spec}: {type(err).__name__}: {err}") from None


def operator_from_target(target: str, args: dict[str, Any] | None = None, size: int | None = None,
                         base_dir: str | Path | None = None, **options: Any) -> Operator:
    """A DeepInverse physics named by ``target``, built with ``args``, as a stablerecon operator
    (:func:`~stablerecon.interop.deepinv.from_deepinv`).

    Parameters
    ----------
    target:
        A physics class or a factory returning one: ``"deepinv.physics.Tomography"``,
        ``"deepinv.physics:MRI"`` or ``"path/to/file.py:make_physics"``.
    args:
        Keyword arguments of the class or factory. Filled in from ``size`` when the callable
        takes them and ``args`` does not set them: ``img_width = size`` (Tomography) and
        ``img_size = (size, size)`` for the MRI physics, ``(1, size, size)`` otherwise. For the
        MRI physics, ``mask`` may be a mapping ``{acceleration: 4 | rate: 0.25, seed: 0,
        center_fraction: 0.08, kind: gaussian | random | equispaced}``: a Cartesian line mask
        drawn by DeepInverse's own mask generator (seeded), or a list of 0/1 rows.
    size:
        The image side (the config's ``size``).
    base_dir:
        Folder of the config (for ``file.py`` targets).
    options:
        Passed to :func:`from_deepinv` (``in_shape``, ``complex``, ``dagger``).

    Raises
    ------
    ValueError
        Naming the target, for anything that goes wrong (unknown target, the class raised, the
        result is not a linear physics).
    """
    require_deepinv()
    what = f"operator target {target!r}"
    factory = _resolve(target, base_dir, "operator")
    args = dict(args or {})
    params = _parameters(factory)
    mri = isinstance(factory, type) and _is_mri_class(factory)
    if size is not None:
        if "img_width" in params and "img_width" not in args:
            args["img_width"] = int(size)
        if "img_size" in params and "img_size" not in args:
            args["img_size"] = (int(size), int(size)) if mri else (1, int(size), int(size))
    if "mask" in args and mri:
        mask = args["mask"]
        if isinstance(mask, (list, tuple)):
            args["mask"] = torch.tensor(mask, dtype=torch.float32)
        elif not isinstance(mask, torch.Tensor):
            if size is None:
                raise ValueError(f"{what}: a generated 'mask' needs the image size ('size')")
            args["mask"] = _mri_mask(mask, int(size), target)
    physics = _call_strictly(factory, args, what)
    in_shape = options.pop("in_shape", None)
    try:
        return from_deepinv(physics, in_shape=in_shape, **options)
    except TypeError as err:
        raise ValueError(f"{what}: {err}") from None
    except ValueError as err:
        if in_shape is None and size is not None and "unknown" in str(err):
            try:
                return from_deepinv(physics, in_shape=(1, int(size), int(size)), **options)
            except (TypeError, ValueError) as again:
                raise ValueError(f"{what}: {again}") from None
        raise ValueError(f"{what}: {err}") from None


def _call_strictly(factory: Callable[..., Any], args: dict[str, Any], what: str) -> Any:
    """:func:`call_factory`, where DeepInverse's warning that it ignores arguments (a typo in a
    config) is an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call_factory(factory, args, what)
    for warning in caught:
        message = str(warning.message)
        if "but are ignored" in message:
            raise ValueError(f"{what}: the physics ignored arguments it does not take ({message})")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return result


def _is_mri_class(cls: type) -> bool:
    dinv = require_deepinv()
    mixin = getattr(getattr(getattr(dinv, "utils", None), "mixins", None), "MRIMixin", None)
    return mixin is not None and issubclass(cls, mixin)


def method_from_target(target: str, args: dict[str, Any] | None = None, base_dir: str | Path | None = None,
                       *, op: Operator | None = None, denoiser_sigma: float | None = None,
                       **options: Any) -> DeepinvMethod:
    """A DeepInverse model named by ``target``, built with ``args``, as a stablerecon method
    (:func:`~stablerecon.interop.deepinv.method_from_deepinv`).

    Parameters
    ----------
    target:
        A model class or a factory returning one: ``"deepinv.models.DnCNN"``,
        ``"deepinv.optim:FISTA"``, ``"path/to/file.py:make_model"`` (a factory that takes
        ``op`` is given the audit's operator).
    args:
        Keyword arguments of the class or factory. ``pretrained`` defaults to ``None`` for
        callables that take it: nothing is downloaded (load weights from a safetensors file).
    base_dir:
        Folder of the config (for ``file.py`` targets).
    op:
        The operator the method will run on, offered to factories that take ``op``.
    denoiser_sigma:
        Treat the model as a denoiser ``model(x, sigma)`` applied to ``op.A_dagger(y)``.
    options:
        Passed to :func:`method_from_deepinv` (``complex``, ``differentiable``).

    The model is put in evaluation mode. Raises a ``ValueError`` naming the target for anything
    that goes wrong.
    """
    require_deepinv()
    what = f"method target {target!r}"
    factory = _resolve(target, base_dir, "method")
    args = dict(args or {})
    if "pretrained" in _parameters(factory) and "pretrained" not in args:
        args["pretrained"] = None
    offered = {} if op is None else {"op": op}
    model = call_factory(factory, args, what, **offered)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        return method_from_deepinv(model, denoiser_sigma=denoiser_sigma, **options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: {err}") from None

