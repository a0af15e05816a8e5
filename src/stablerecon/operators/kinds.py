"""Operators from their config description: the operator-kind registry and :class:`OperatorSpec`.

An operator of a YAML config (training or audit) is ``{kind: NAME, size: N, ...}``; ``kind`` is
an entry of :data:`OPERATOR_KINDS`, which builds the operator from the validated spec. The
shipped kinds use the common sampling fields of :class:`OperatorSpec` (``mask``, ``rate``,
``seed`` for the subsampled transforms, ``angles`` for the Radon transform); a new kind can
declare fields of its own (``params``) and is then one :meth:`~stablerecon.registry.Registry.register`
call away from configs and ``stablerecon list``.

Entry metadata: ``complex`` (measurements are complex: networks may take complex input),
``sweep`` (the audit's sampling sweep may vary the kind's sampling: ``True`` sets the spec's
``rate``; a function ``(spec, rate) -> spec`` for kinds sampled otherwise, e.g. the CT kinds,
whose ``angles`` become ``rate`` times :func:`~stablerecon.operators.projector.nyquist_views`),
``uses`` (the common fields that matter to the kind, for listings and folder names).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

from pydantic import field_validator, model_validator

from ..config_base import NonNegativeInt, OddInt, PositiveFloat, PositiveInt, Rate, StrictModel
from ..contracts import Operator, check_operator
from ..registry import KindSpec, Registry
from ..targets import DeepinvParams, TargetParams, call_factory, resolve_target, split_target
from .base import Identity, LinearOperator
from .blur import Blur, box_kernel, gaussian_kernel
from .coils import birdcage_maps
from .dense import GaussianMatrix
from .downsample import Downsample
from .fanbeam import FanBeam
from .fourier import SubsampledFourier
from .hadamard import SubsampledWalshHadamard
from .inpainting import Inpainting
from .masks import MASKS
from .multicoil import SubsampledMultiCoilFourier
from .nufft import NonCartesianFourier
from .projector import nyquist_views
from .radon import Radon
from .trajectories import nyquist_spokes, radial, radial_dcf, spiral

__all__ = ["OPERATOR_KINDS", "OperatorSpec", "build_operator"]

#: The operator kinds of configs: ``name -> build(spec) -> LinearOperator``.
OPERATOR_KINDS: Registry[Callable[[OperatorSpec], LinearOperator]] = Registry("operator kind")


class OperatorSpec(KindSpec):
    """A forward operator from its description: ``kind`` (see :data:`OPERATOR_KINDS`), image
    ``size``, and the common sampling fields (``mask`` generator, ``rate``, ``seed``; ``angles``
    for ``radon``); fields of other kinds are validated by their kind."""

    registry = OPERATOR_KINDS

    kind: str = "fourier"
    size: PositiveInt = 128
    mask: str = "variable_density"
    rate: Rate = 0.25
    seed: NonNegativeInt = 0
    angles: PositiveInt = 60

    @field_validator("mask")
    @classmethod
    def _known_mask(cls, value: str) -> str:
        if value not in MASKS:
            raise ValueError(f"unknown mask {value!r}; choose from {sorted(MASKS)}")
        return value

    @model_validator(mode="after")
    def _kind_checks(self) -> OperatorSpec:
        check = OPERATOR_KINDS.entry(self.kind).meta.get("check")
        if check is not None:
            check(self)
        return self

    @property
    def is_complex(self) -> bool:
        """Whether the measurements of this kind are complex."""
        return bool(OPERATOR_KINDS.entry(self.kind).meta.get("complex", False))

    @property
    def sweepable(self) -> bool:
        """Whether the sampling of this kind can be swept (:meth:`at_rate`)."""
        return bool(OPERATOR_KINDS.entry(self.kind).meta.get("sweep", False))

    def at_rate(self, rate: float) -> OperatorSpec:
        """This spec sampled at ``rate`` (the audit's sampling sweep): the ``rate`` field, or
        what the kind's ``sweep`` function sets (CT: ``angles``)."""
        sweep = OPERATOR_KINDS.entry(self.kind).meta.get("sweep", False)
        if not sweep:
            raise ValueError(f"operator kind {self.kind!r} has no sampling rate to sweep")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError(f"argument 'rate' must be in (0, 1], got {rate!r}")
        if callable(sweep):
            return sweep(self, float(rate))
        return self.model_copy(update={"rate": float(rate)})

    def label(self) -> str:
        """Short file-name-safe description, e.g. ``fourier-128-variable_density-0.25``."""
        uses = OPERATOR_KINDS.entry(self.kind).meta.get("uses", ())
        parts = [self.kind, str(self.size)]
        if "mask" in uses:
            parts.append(self.mask)
        if "rate" in uses:
            parts.append(f"{self.rate:g}")
        if "angles" in uses:
            parts.append(f"{self.angles}angles")
        for key, value in self.params.model_dump().items():
            if key == "target":
                parts.append(split_target(value)[1])
            elif isinstance(value, float):
                parts.append(f"{key}{value:g}")
            elif isinstance(value, (int, str)) and str(value).replace("_", "").replace(".", "").isalnum():
                parts.append(f"{key}{value}")
        return "-".join(parts)

    def build(self) -> Operator:
        """The operator this spec describes."""
        return build_operator(self)


def build_operator(spec: OperatorSpec) -> Operator:
    """The operator ``spec`` describes (through its kind's builder)."""
    return OPERATOR_KINDS[spec.kind](spec)


def _mask(spec: OperatorSpec, **kwargs: Any) -> Any:
    generator = MASKS[spec.mask]
    kwargs = {k: v for k, v in kwargs.items() if k in inspect.signature(generator).parameters}
    return generator(spec.size, spec.rate, seed=spec.seed, **kwargs)


@OPERATOR_KINDS.register("fourier", summary="subsampled 2-D Fourier transform (single-coil MRI), "
                         "zero-filling as A_dagger", complex=True, sweep=True,
                         uses=("size", "mask", "rate", "seed"))
def _fourier(spec: OperatorSpec) -> LinearOperator:
    return SubsampledFourier(_mask(spec))


def _power_of_two(spec: OperatorSpec) -> None:
    if spec.size & (spec.size - 1):
        raise ValueError(f"size must be a power of two for kind 'hadamard', got {spec.size}")


@OPERATOR_KINDS.register("hadamard", summary="subsampled Walsh-Hadamard transform (sequency "
                         "ordered; size a power of two)", sweep=True, check=_power_of_two,
                         uses=("size", "mask", "rate", "seed"))
def _hadamard(spec: OperatorSpec) -> LinearOperator:
    return SubsampledWalshHadamard(_mask(spec, origin="corner"))  # low sequencies at the corner


def _views(scan_degrees: float) -> Callable[[OperatorSpec, float], OperatorSpec]:
    """The CT sweep: ``angles = max(1, round(rate * nyquist_views(size, scan_degrees)))``."""
    def at_rate(spec: OperatorSpec, rate: float) -> OperatorSpec:
        views = max(1, round(rate * nyquist_views(spec.size, scan_degrees)))
        return spec.model_copy(update={"angles": views})
    return at_rate


@OPERATOR_KINDS.register("radon", summary="parallel-beam Radon transform (CT) at `angles` angles, "
                         "filtered back-projection as A_dagger; swept over views (rate x pi size / 2)",
                         sweep=_views(Radon.scan_degrees), uses=("size", "angles"))
def _radon(spec: OperatorSpec) -> LinearOperator:
    return Radon(spec.size, angles=spec.angles)



@OPERATOR_KINDS.register("gaussian", summary="dense Gaussian matrix (compressed sensing), "
                         "round(rate * size^2) measurements, seeded", sweep=True,
                         uses=("size", "rate", "seed"))
def _gaussian(spec: OperatorSpec) -> LinearOperator:
    return GaussianMatrix(max(1, round(spec.rate * spec.size**2)), (spec.size, spec.size), seed=spec.seed)


class FanBeamParams(StrictModel):
    """Fields of ``fanbeam``: source-to-centre and centre-to-detector distances in units of the
    image ``size`` (pixels / size; defaults 2 and 1, i.e. the operator's defaults)."""

    source_distance: PositiveFloat = 2.0
    detector_distance: PositiveFloat = 1.0

    @field_validator("source_distance")
    @classmethod
    def _outside(cls, value: float) -> float:
        if value <= 0.5:
            raise ValueError(f"source_distance must put the source outside the field of view (more than "
                             f"0.5 sizes from the centre), got {value}")
        return value


@OPERATOR_KINDS.register("fanbeam", summary="fan-beam CT (flat detector, full 360-degree scan) at `angles` "
                         "angles, fan-beam FBP as A_dagger; distances in image sizes; swept over views "
                         "(rate x pi size)", sweep=_views(FanBeam.scan_degrees),
                         params=FanBeamParams, uses=("size", "angles"))
def _fanbeam(spec: OperatorSpec) -> LinearOperator:
    p = spec.params
    return FanBeam(spec.size, angles=spec.angles, source_distance=p.source_distance * spec.size,
                   detector_distance=p.detector_distance * spec.size)


class MultiCoilParams(StrictModel):
    """Fields of ``multicoil``: ``coils`` simulated birdcage receive coils on a circle of
    ``coil_radius`` half fields of view, ``acs`` calibration lines of line masks (``null``: the
    mask's default), and the CG-SENSE settings of ``A_dagger``."""

    coils: PositiveInt = 8
    coil_radius: PositiveFloat = 1.5
    acs: NonNegativeInt | None = None
    cg_iter: PositiveInt = 10

    @field_validator("coil_radius")
    @classmethod
    def _outside(cls, value: float) -> float:
        if value <= 2**0.5:
            raise ValueError(f"coil_radius must exceed sqrt(2) ~ 1.4142 (coils outside the field of view), "
                             f"got {value}")
        return value


def _acs_needs_line_mask(spec: OperatorSpec) -> None:
    if spec.params.acs is not None and "acs" not in inspect.signature(MASKS[spec.mask]).parameters:
        raise ValueError(f"field 'acs' applies to line masks (e.g. mask: cartesian_lines), not to "
                         f"mask {spec.mask!r}")


@OPERATOR_KINDS.register("multicoil", summary="multi-coil Cartesian MRI (SENSE): `coils` birdcage maps, "
                         "e.g. mask: cartesian_lines with `acs` calibration lines; CG-SENSE as A_dagger",
                         complex=True, sweep=True, params=MultiCoilParams, check=_acs_needs_line_mask,
                         uses=("size", "mask", "rate", "seed"))
def _multicoil(spec: OperatorSpec) -> LinearOperator:
    p = spec.params
    extra = {} if p.acs is None else {"acs": p.acs}
    maps = birdcage_maps(p.coils, spec.size, radius=p.coil_radius)
    return SubsampledMultiCoilFourier(_mask(spec, **extra), maps, cg_iter=p.cg_iter)


class NonCartesianParams(StrictModel):
    """Fields of ``noncartesian``: the ``trajectory`` (``radial`` spokes, ``rate`` times the
    Nyquist number ``ceil(pi size / 2)``; or ``spiral`` with ``interleaves`` arms of ``rate``
    times the Nyquist number of turns), ``golden``-angle ordering, ``coils`` simulated birdcage
    coils (0: single coil), the density compensation of ``A_dagger`` (``pipe_menon``
    iterations, or the analytic ``ramp`` of radial trajectories) and the NUFFT ``backend``."""

    trajectory: Literal["radial", "spiral"] = "radial"
    interleaves: PositiveInt = 8
    golden: bool = False
    coils: NonNegativeInt = 0
    coil_radius: PositiveFloat = 1.5
    dcf: Literal["pipe_menon", "ramp"] = "pipe_menon"
    backend: Literal["finufft", "torchkbnufft"] = "finufft"

    @model_validator(mode="after")
    def _consistent(self) -> NonCartesianParams:
        if self.dcf == "ramp" and self.trajectory != "radial":
            raise ValueError("dcf 'ramp' is the analytic density of radial trajectories; use dcf: pipe_menon")
        if self.coils and self.coil_radius <= 2**0.5:
            raise ValueError(f"coil_radius must exceed sqrt(2) ~ 1.4142 (coils outside the field of view), "
                             f"got {self.coil_radius}")
        return self


@OPERATOR_KINDS.register("noncartesian", summary="non-Cartesian MRI through a NUFFT: radial spokes or spiral "
                         "arms (`rate` of the Nyquist sampling), single- or multi-coil (`coils`), gridding "
                         "with density compensation as A_dagger", complex=True, sweep=True,
                         params=NonCartesianParams, uses=("size", "rate"))
def _noncartesian(spec: OperatorSpec) -> LinearOperator:
    p, n = spec.params, spec.size
    dcf = None
    if p.trajectory == "radial":
        spokes = max(1, round(spec.rate * nyquist_spokes(n)))
        traj = radial(n, spokes, golden=p.golden)
        if p.dcf == "ramp":
            dcf = radial_dcf(n, spokes, golden=p.golden)
    else:
        turns = max(spec.rate * n / (2 * p.interleaves), 1.0 / p.interleaves)
        traj = spiral(n, p.interleaves, turns=turns, golden=p.golden)
    maps = birdcage_maps(p.coils, n, radius=p.coil_radius) if p.coils else None
    return NonCartesianFourier(traj, n, maps=maps, dcf=dcf, backend=p.backend)


class BlurParams(StrictModel):
    """Fields of ``blur``: a ``gaussian`` kernel of standard deviation ``sigma`` pixels or a
    ``box`` of ``width`` pixels (odd)."""

    kernel: Literal["gaussian", "box"] = "gaussian"
    sigma: PositiveFloat = 1.5
    width: OddInt = 5


@OPERATOR_KINDS.register("blur", summary="periodic convolution with a Gaussian or box kernel (deblurring)",
                         params=BlurParams, uses=("size",))
def _blur(spec: OperatorSpec) -> LinearOperator:
    p = spec.params
    kernel = gaussian_kernel(p.sigma) if p.kernel == "gaussian" else box_kernel(p.width)
    return Blur(kernel, spec.size)


@OPERATOR_KINDS.register("inpainting", summary="keeps the pixels of a sampling mask, e.g. "
                         "mask: uniform_random (inpainting)",
                         sweep=True, uses=("size", "mask", "rate", "seed"))
def _inpainting(spec: OperatorSpec) -> LinearOperator:
    return Inpainting(_mask(spec))


class DownsampleParams(StrictModel):
    """Fields of ``downsample``: the integer ``factor`` (dividing ``size``) and the ``filter``."""

    factor: PositiveInt = 2
    filter: Literal["box", "none"] = "box"


@OPERATOR_KINDS.register("downsample", summary="box-filtered downsampling by an integer factor "
                         "(super-resolution)", params=DownsampleParams, uses=("size",))
def _downsample(spec: OperatorSpec) -> LinearOperator:
    return Downsample(spec.params.factor, spec.size, filter=spec.params.filter)


@OPERATOR_KINDS.register("identity", summary="the identity (denoising)", uses=("size",))
def _identity(spec: OperatorSpec) -> LinearOperator:
    return Identity(spec.size)


@OPERATOR_KINDS.register("python", summary="your own operator: `target` names a factory (module:name or "
                         "file.py:name) called with `args` (and `size` if it takes it); it must return an "
                         "object with A and A_adjoint", params=TargetParams, uses=("size",))
def _python(spec: OperatorSpec) -> Operator:
    params = spec.params
    what = f"operator target {params.target!r}"
    op = call_factory(resolve_target(params.target), params.args, what, size=spec.size)
    try:
        return check_operator(op, "operator", where=what)
    except TypeError as err:
        raise ValueError(str(err)) from None


@OPERATOR_KINDS.register("deepinv", summary="a DeepInverse physics: `target` names its class or a factory "
                         "(e.g. deepinv.physics.Tomography) called with `args`, image size `size`; "
                         "needs stablerecon[deepinv]", params=DeepinvParams, uses=("size",))
def _deepinv(spec: OperatorSpec) -> Operator:
    from ..interop.deepinv import operator_from_target

    return operator_from_target(spec.params.target, spec.params.args, spec.size)
