"""Methods and images from their config descriptions: the method-kind registry and the builders.

A method of an audit config is ``{name: LABEL, kind: KIND, ...}``; ``kind`` is an entry of
:data:`METHODS`, whose ``params`` model says which further fields apply and whose builder
turns the validated fields and the operator into a method ``method(y, op) -> x_hat``. Operators
come from :data:`stablerecon.operators.kinds.OPERATOR_KINDS` (:func:`build_operator`), audit
tests from :data:`stablerecon.audit.TESTS`. Config validation
(:class:`stablerecon.config.MethodSpec`), :func:`build_method` and ``stablerecon list`` all read
:data:`METHODS`, so a new kind is one registration (see :mod:`stablerecon.registry`).

Images of an audit config are names: shipped images (``camera``), generated ones
(``shepp_logan``, the MR phantoms ``mr_t1``/``mr_t2``/``mr_pd``, random members ``ellipses:SEED``
and ``mr:SEED`` or ranges ``ellipses:0-99``), or the user's own files: paths and globs of PNG,
JPEG, TIFF, BMP, ``.npy`` and ``.npz`` files read by :func:`stablerecon.data.read_images` with
its explicit rules for colour, value range and size (:func:`build_images`, :func:`check_image_names`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationInfo, field_validator
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from . import data
from .config_base import PositiveFloat, PositiveInt, StrictModel
from .contracts import Operator, Reconstructor
from .nets import DeepImagePrior, FIRENet, ZeroFilled
from .operators.kinds import OperatorSpec, build_operator
from .registry import Registry
from .solvers import SparseReconstructor
from .targets import DeepinvParams, TargetParams, call_factory, resolve_target
from .training import available_pretrained, load, pretrained

__all__ = ["METHODS", "build_method", "build_operator", "build_images", "image_sources", "check_image_names",
           "GENERATED_IMAGES", "FIXED_IMAGES", "SEEDED_IMAGES", "OperatorSpec", "load_weights"]

#: The method kinds of audit configs: ``name -> build(params, op) -> method``.
METHODS: Registry[Callable[[Any, Operator], Reconstructor]] = Registry("method kind")

#: Generated images of one kind each: ``name -> generate(size)``.
FIXED_IMAGES: dict[str, Callable[[int], torch.Tensor]] = {
    "shepp_logan": lambda size: data.shepp_logan(size),
    "mr_t1": lambda size: data.mr_phantom(size, "t1"),
    "mr_t2": lambda size: data.mr_phantom(size, "t2"),
    "mr_pd": lambda size: data.mr_phantom(size, "pd"),
}
#: Random families, named ``NAME:SEED`` or ``NAME:FIRST-LAST``: ``name -> generate(size, seed)``.
SEEDED_IMAGES: dict[str, Callable[[int, int], torch.Tensor]] = {
    "ellipses": lambda size, seed: data.ellipses(1, size, seed=seed),
    "mr": lambda size, seed: data.mr_phantom(size, seed=seed),
}
#: Image names generated rather than shipped (the seeded ones take ``:SEED``).
GENERATED_IMAGES = (*FIXED_IMAGES, *SEEDED_IMAGES)


class SolverParams(StrictModel):
    """Fields of the classical solvers: regularisation weight ``lam`` and iterations
    ``max_iter`` (``null``: the solver's tuned defaults)."""

    lam: PositiveFloat | None = None
    max_iter: PositiveInt | None = None


class FIRENetParams(StrictModel):
    """Fields of FIRENET: ``lam``, ``restarts``, ``inner`` (``null``: the defaults)."""

    lam: PositiveFloat | None = None
    restarts: PositiveInt | None = None
    inner: PositiveInt | None = None


class DIPParams(StrictModel):
    """Fields of the Deep Image Prior: fitting ``steps`` (``null``: 300)."""

    steps: PositiveInt | None = None


class PretrainedParams(StrictModel):
    """Fields of a shipped trained method: ``weights``, its name."""

    weights: str

    @field_validator("weights")
    @classmethod
    def _shipped(cls, value: str) -> str:
        if value not in available_pretrained():
            raise ValueError(f"unknown shipped weights {value!r}; choose from {available_pretrained()}")
        return value


class CheckpointParams(StrictModel):
    """Fields of a trained checkpoint: ``weights``, the path of a checkpoint or run folder."""

    weights: str

    @field_validator("weights")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must be a checkpoint path or run folder")
        return value


class PythonMethodParams(TargetParams):
    """Fields of ``kind: python``: ``target`` names a factory (``"package.module:name"`` or
    ``"path/to/file.py:name"``, relative to the config file) called with ``args`` (and ``op``,
    the audit's operator, if it takes an argument of that name); it returns a method
    ``(y, op) -> x_hat`` or an ``nn.Module``. ``weights``: an optional ``.safetensors`` file
    loaded into the returned module (strictly: every key and shape must match; nothing is
    unpickled)."""

    weights: str | None = None

    @field_validator("weights")
    @classmethod
    def _safetensors(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path((info.context or {}).get("base_dir") or ".") / path
        if path.suffix != ".safetensors":
            raise ValueError(f"must be a .safetensors file (weights are never unpickled), got {value!r}")
        if not path.is_file():
            raise ValueError(f"file {str(path)!r} does not exist")
        try:
            with safe_open(str(path), framework="pt") as f:
                f.keys()
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{str(path)!r} is not a readable safetensors file ({err})") from None
        return str(path.resolve())


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load the ``.safetensors`` file ``path`` into ``module`` strictly (every key and shape must
    match); a ``ValueError`` naming the file otherwise."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"weights {str(path)!r} are not a readable safetensors file ({err})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        message = " ".join(str(err).split())
        raise ValueError(f"weights {str(path)!r} do not match the module: {message}") from None
    return module


def _python_method(params: PythonMethodParams, op: Operator) -> Reconstructor:
    what = f"target {params.target!r}"
    method = call_factory(resolve_target(params.target), params.args, what, op=op)
    if params.weights is not None:
        if not isinstance(method, nn.Module):
            raise ValueError(f"{what}: 'weights' need an nn.Module, the factory returned a "
                             f"{type(method).__name__}")
        load_weights(method, params.weights)
    if not callable(method):
        raise ValueError(f"{what}: the factory must return a method (y, op) -> x_hat or an nn.Module, "
                         f"got a {type(method).__name__}")
    if isinstance(method, nn.Module):
        method.eval()
    return method


def _given(params: StrictModel) -> dict[str, Any]:
    return {k: v for k, v in params.model_dump().items() if v is not None}


METHODS.register("zero_filled", lambda params, op: ZeroFilled(),
                 summary="A_dagger(y), real part (zero-filling for subsampled unitary operators)")
_SOLVERS = {
    "fista": "l1-wavelet LASSO by FISTA (SparseReconstructor)",
    "primal_dual": "weighted square-root LASSO by Chambolle-Pock (SparseReconstructor)",
    "tv": "total-variation regularisation by Chambolle-Pock (SparseReconstructor)",
}
for _kind in SparseReconstructor.METHODS:
    METHODS.register(
        _kind,
        lambda params, op, kind=_kind: SparseReconstructor(kind, op, **_given(params)),
        summary=_SOLVERS.get(_kind, SparseReconstructor(_kind).name),
        params=SolverParams,
    )
METHODS.register("firenet", lambda params, op: FIRENet(op, **_given(params)),
                 summary="FIRENET: restarted primal-dual network, provably stable, no training",
                 params=FIRENetParams)
METHODS.register("dip", lambda params, op: DeepImagePrior.cheap(**_given(params)),
                 summary="Deep Image Prior (untrained generator fitted per measurement), audit setting",
                 params=DIPParams)
METHODS.register("pretrained", lambda params, op: pretrained(params.weights, op).eval(),
                 summary="shipped trained network `weights` (see trained methods below)",
                 params=PretrainedParams)
METHODS.register("checkpoint", lambda params, op: load(params.weights, op).eval(),
                 summary="network trained with `stablerecon train`: checkpoint or run folder `weights`",
                 params=CheckpointParams)
METHODS.register("python", _python_method, params=PythonMethodParams,
                 summary="your own method: `target` names a factory (module:name or file.py:name) called "
                         "with `args` (and `op`); optional `weights` (.safetensors)")


def _deepinv_method(params: DeepinvParams, op: Operator) -> Reconstructor:
    from .interop.deepinv import method_from_target

    return method_from_target(params.target, params.args)


METHODS.register("deepinv", _deepinv_method, params=DeepinvParams,
                 summary="a DeepInverse model or reconstructor: `target` names its class or a factory "
                         "called with `args`; called as model(y, physics); needs stablerecon[deepinv]")


def build_method(spec: Any, op: Operator) -> Reconstructor:
    """The method a :class:`~stablerecon.config.MethodSpec` ``spec`` describes, for operator
    ``op`` (trained networks in eval mode); a ``ValueError`` naming the method when it cannot be
    built."""
    try:
        return METHODS[spec.kind](spec.params, op)
    except ValueError as err:
        raise ValueError(f"method {spec.name!r} (kind {spec.kind!r}): {err}") from None


def _seed_range(seed: str) -> range | None:
    """``"7"`` -> ``range(7, 8)``, ``"0-99"`` -> ``range(0, 100)``; ``None`` if not of that form."""
    if seed.isdigit():
        return range(int(seed), int(seed) + 1)
    first, sep, last = seed.partition("-")
    if sep and first.isdigit() and last.isdigit() and int(first) <= int(last):
        return range(int(first), int(last) + 1)
    return None


def check_image_names(names: Sequence[str]) -> list[str]:
    """``names`` if each is a shipped image, a generated one (:data:`FIXED_IMAGES`), a member
    ``NAME:SEED`` or range ``NAME:FIRST-LAST`` (both included) of a random family
    (:data:`SEEDED_IMAGES`: ``ellipses``, ``mr``), or a file path / glob
    (:func:`stablerecon.data.is_image_path`; the files are read by :func:`build_images`) and none
    is listed twice; a ``ValueError`` naming the first bad one otherwise."""
    shipped = data.available_images()
    for item in names:
        if data.is_image_path(item):
            continue
        base, _, seed = item.partition(":")
        if base in SEEDED_IMAGES and (seed == "" or _seed_range(seed) is not None):
            continue
        if seed or (base not in FIXED_IMAGES and base not in shipped):
            raise ValueError(f"unknown image {item!r}; use a shipped image {shipped}, a generated one "
                             f"{sorted(FIXED_IMAGES)}, a random one {sorted(SEEDED_IMAGES)} as NAME:SEED or "
                             f"NAME:FIRST-LAST (e.g. 'ellipses:0-99'), or an image file "
                             f"({', '.join(data.IMAGE_SUFFIXES)}) or glob")
    if len(set(names)) != len(names):
        raise ValueError(f"images are listed twice: {list(names)}")
    seen: dict[str, str] = {}
    for item in names:
        base, _, seed = item.partition(":")
        if base in SEEDED_IMAGES and seed and not data.is_image_path(item):
            for k in _seed_range(seed) or ():
                if f"{base}:{k}" in seen:
                    raise ValueError(f"image '{base}:{k}' is listed twice (by {seen[f'{base}:{k}']!r} "
                                     f"and {item!r})")
                seen[f"{base}:{k}"] = item
    return list(names)


def image_sources(
    names: Sequence[str],
    size: int,
    *,
    base_dir: str | Path | None = None,
    resize: bool = False,
    grey: str = "luminance",
    value_range: str = "error",
) -> list[tuple[str, Callable[[], torch.Tensor]]]:
    """The images of ``names`` as ``(name, load)`` pairs, without reading or generating any:
    ``load()`` returns the image ``(1, 1, size, size)``. Ranges ``ellipses:0-99`` (``mr:0-99``)
    become one entry per phantom (``ellipses:0`` ...), globs one entry per file (sorted), so that an audit of
    a large set holds one chunk of images at a time (:class:`stablerecon.audit.ImageSet`).
    Duplicates (also through a range or a glob) are refused naming the entry (``images[i]``)."""
    out: list[tuple[str, Callable[[], torch.Tensor]]] = []
    where: dict[str, str] = {}

    def add(key: str, load: Callable[[], torch.Tensor], field: str) -> None:
        if key in where:
            raise ValueError(f"{field}: the image {key!r} is listed twice (also by {where[key]})")
        where[key] = field
        out.append((key, load))

    for i, name in enumerate(names):
        field = f"images[{i}]"
        if data.is_image_path(name):
            for key, target, _ in data.list_images(name, base_dir=base_dir, where=field):
                add(key, lambda t=target, f=field: data.read_image(
                    t, size=size, resize=resize, grey=grey, value_range=value_range, complex_ok=False,
                    where=f), field)
            continue
        base, _, seed = name.partition(":")
        if base in FIXED_IMAGES and not seed:
            add(name, lambda b=base: FIXED_IMAGES[b](size), field)
        elif base in SEEDED_IMAGES:
            seeds = _seed_range(seed) if seed else range(0, 1)
            if seeds is None:
                raise ValueError(f"{field}: unknown image {name!r}")
            for k in seeds:
                add(f"{base}:{k}" if len(seeds) > 1 or seed else name,
                    lambda b=base, k=k: SEEDED_IMAGES[b](size, k), field)
        else:
            add(name, lambda b=base: data.image(b, size=size), field)
    return out


def build_images(
    names: Sequence[str],
    size: int,
    *,
    base_dir: str | Path | None = None,
    resize: bool = False,
    grey: str = "luminance",
    value_range: str = "error",
) -> dict[str, torch.Tensor]:
    """Real images ``(1, 1, size, size)`` in ``[0, 1]`` by name: shipped images,
    generated ones (``shepp_logan``, ``mr_t2``, ``ellipses:SEED``, ``mr:SEED`` and ranges
    ``ellipses:FIRST-LAST``), and files or globs
    (relative to ``base_dir``, the config's folder) read by :func:`stablerecon.data.read_images`
    under the rules ``resize``, ``grey`` and ``value_range``. A file is named by its path
    (relative to ``base_dir``); a file of another size is refused unless ``resize``. Complex
    arrays are refused: the audit's ground truths are real images (store the modulus for MRI).
    Errors name the entry (``images[i]``). Everything is read at once; :func:`image_sources`
    reads one image at a time."""
    return {name: load() for name, load in image_sources(names, size, base_dir=base_dir, resize=resize,
                                                           grey=grey, value_range=value_range)}
