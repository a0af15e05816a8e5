"""A DeepInverse physics behind stablerecon's operator protocol (:class:`DeepinvOperator`; built by
:func:`stablerecon.interop.deepinv.from_deepinv`, where the conventions are described)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from ..contracts import power_iteration
from ..validation import choice
from ._deepinv_common import Conversions, require_deepinv

__all__ = ["DeepinvOperator", "DAGGERS", "KSPACES"]

DAGGERS = ("auto", "physics", "adjoint")
KSPACES = ("auto", "sampled", "grid")


def _format(shape: tuple[int | None, ...]) -> str:
    return "(B, " + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def _check_tensor(t: object, name: str, shape: tuple[int | None, ...], allow_complex: bool,
                  where: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{where}: argument '{name}' must be a torch.Tensor, got {type(t).__name__}")
    if not (t.is_floating_point() or t.is_complex()):
        raise TypeError(f"{where}: argument '{name}' must be floating point, got {t.dtype}")
    if t.is_complex() and not allow_complex:
        raise TypeError(f"{where}: argument '{name}' must be real (the physics is real), got {t.dtype}")
    mismatch = any(s is not None and s != d for s, d in zip(shape, t.shape[1:], strict=False))
    if t.ndim != len(shape) + 1 or mismatch:
        raise ValueError(f"{where}: argument '{name}' must have shape {_format(shape)}, got {tuple(t.shape)}")
    return t


def _shape_arg(value: object, name: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError(f"argument '{name}' must be a tuple of ints (C, H, W) without the batch axis, "
                        f"got {value!r}") from None
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"argument '{name}' must be positive sizes (C, H, W) without the batch axis, "
                         f"got {value!r}")
    return shape


def _dtype_and_device(physics: object) -> tuple[torch.dtype, torch.device]:
    """The real dtype the physics computes in (its ``dtype`` attribute or first floating buffer)
    and its device."""
    dtype = getattr(physics, "dtype", None)
    device = torch.device("cpu")
    if isinstance(physics, nn.Module):
        tensors = [*physics.named_buffers(), *physics.named_parameters()]
        # LinearPhysics keeps a float32 '_device_holder' whatever its precision: look past it
        tensors.sort(key=lambda item: item[0].endswith("_device_holder"))
        for _, t in tensors:
            if t.is_floating_point():
                device = t.device
                if not isinstance(dtype, torch.dtype):
                    dtype = t.dtype
                break
    return (dtype if isinstance(dtype, torch.dtype) and dtype.is_floating_point else torch.float32), device


def _physics_image_shape(physics: object, is_complex: bool) -> tuple[int, ...] | None:
    """The image shape (without batch) the physics declares: an MRI mask ``(B, 2, *S)``,
    Tomography's ``img_width``, or an ``img_size`` of ints; ``None`` if it declares none."""
    channels = 2 if is_complex else 1
    mask = getattr(physics, "mask", None)
    if is_complex and isinstance(mask, Tensor) and mask.ndim >= 4:
        return (2, *(int(s) for s in mask.shape[2:]))
    width = getattr(physics, "img_width", None)
    if isinstance(width, int):
        return (channels, width, width)
    size = getattr(physics, "img_size", None)
    if isinstance(size, (tuple, list)) and len(size) >= 2 and all(isinstance(s, int) for s in size):
        size = tuple(size)
        if len(size) == 2:
            return (channels, *size)
        return (2, *size[1:]) if is_complex else size
    return None


def _is_mri(physics: object, dinv: Any) -> bool:
    mixin = getattr(getattr(getattr(dinv, "utils", None), "mixins", None), "MRIMixin", None)
    return mixin is not None and isinstance(physics, mixin)


def _check_linear(physics: object, dinv: Any) -> None:
    name = type(physics).__name__
    if not callable(getattr(physics, "A", None)):
        raise TypeError(f"argument 'physics' must be a deepinv.physics.LinearPhysics, "
                        f"got {name} (no method A)")
    linear = getattr(dinv.physics, "LinearPhysics", None)
    is_physics = isinstance(physics, dinv.physics.Physics)
    if (is_physics and linear is not None and not isinstance(physics, linear)) or not callable(
            getattr(physics, "A_adjoint", None)):
        raise TypeError(f"argument 'physics' must be a linear physics (deepinv.physics.LinearPhysics, "
                        f"with an exact A_adjoint), got {name}: a non-linear physics has no adjoint, and "
                        f"stablerecon's solvers and audit need one")


def _shared_binary_mask(physics: object) -> Tensor | None:
    """The physics' k-space mask on its grid ``(*R)`` when it is 0/1 and the same for the whole
    batch and both channels (mask of shape ``(1, 2, *R)``), else ``None``."""
    mask = getattr(physics, "mask", None)
    if not isinstance(mask, Tensor) or mask.ndim < 4 or mask.shape[0] != 1 or mask.shape[1] != 2:
        return None
    if not bool(((mask == 0) | (mask == 1)).all()) or not torch.equal(mask[0, 0], mask[0, 1]):
        return None
    return mask[0, 0]


class DeepinvOperator(Conversions, nn.Module):
    r"""A DeepInverse linear physics behind stablerecon's operator protocol; build it with
    :func:`from_deepinv`.

    ``A``, ``A_adjoint`` and ``A_dagger`` take and return stablerecon tensors (images
    ``(B, *in_shape)``, measurements ``(B, *out_shape)``) and call the physics' own methods on
    the converted tensors (:mod:`stablerecon.interop.channels`); gradients flow through. The
    physics is ``self.physics`` (a submodule: ``.to(device)`` moves it). Noise is never added:
    ``A`` is the physics' noiseless ``A``.

    Attributes
    ----------
    in_shape, out_shape:
        Shapes without the batch axis (stablerecon side).
    is_complex:
        Whether the physics works on DeepInverse's two-channel complex representation (MRI).
    in_kind, out_complex:
        stablerecon's vocabulary for the same: ``"any"``/``True`` for complex physics (real images
        are taken as complex with zero imaginary part), ``"real"``/``False`` otherwise.
    dagger, kspace:
        Which inverse ``A_dagger`` applies and how k-space is laid out (see :func:`from_deepinv`).
    rate:
        Fraction of the k-space grid that is sampled (``kspace="sampled"`` only).
    """

    def __init__(self, physics: Any, *, in_shape: tuple[int, ...] | None = None, complex: bool | None = None,
                 dagger: str = "auto", kspace: str = "auto") -> None:
        dinv = require_deepinv()
        _check_linear(physics, dinv)
        super().__init__()
        self.physics = physics
        if complex is None:  # DeepInverse's MRI physics, or a physics made by to_deepinv
            complex = bool(getattr(physics, "complex_images", False)) or _is_mri(physics, dinv)
        self.is_complex = bool(complex)
        self.dagger = choice(dagger, "dagger", DAGGERS)
        kspace = choice(kspace, "kspace", KSPACES)
        self.complex_images = self.complex_measurements = self.is_complex
        self._norm: float | None = None
        name = type(physics).__name__
        if in_shape is not None:
            shape = _shape_arg(in_shape, "in_shape")
            if self.is_complex and shape[0] != 1:
                raise ValueError(f"argument 'in_shape': complex images have one channel (C = 1), got {shape}")
            physics_shape = (2, *shape[1:]) if self.is_complex else shape
        else:
            physics_shape = _physics_image_shape(physics, self.is_complex)
            if physics_shape is None:
                raise ValueError(f"the image shape of {name} is unknown (no img_size, img_width or mask): "
                                 f"pass in_shape=(C, H, W)")
            shape = (1, *physics_shape[1:]) if self.is_complex else physics_shape
        dtype, device = _dtype_and_device(physics)
        probe = torch.zeros((1, *physics_shape), dtype=dtype, device=device)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = physics.A(probe)
        except Exception as err:  # the physics may raise anything
            raise ValueError(f"argument 'physics': {name}.A failed on an image of shape {tuple(probe.shape)} "
                             f"({err}); pass in_shape=(C, H, W)") from err
        if self.is_complex:
            if y.is_complex() or y.ndim < 2 or y.shape[1] != 2:
                raise ValueError(f"argument 'complex': {name} returns measurements of shape {tuple(y.shape)} "
                                 f"({y.dtype}), not DeepInverse's complex representation (B, 2, ...)")
            out_shape = (1, *y.shape[2:])
        else:
            out_shape = tuple(y.shape[1:])
        grid = _shared_binary_mask(physics) if self.is_complex else None
        fits = grid is not None and tuple(y.shape[-grid.ndim:]) == tuple(grid.shape)
        if kspace == "sampled" and not fits:
            raise ValueError(f"argument 'kspace': 'sampled' needs a complex physics with a 0/1 mask shared "
                             f"by the batch (mask of shape (1, 2, ...)); {name} has none")
        self.kspace = "sampled" if fits and kspace != "grid" else "grid"
        self.rate: float | None = None
        self._grid: tuple[int, ...] = ()
        if self.kspace == "sampled":
            index = grid.flatten().nonzero().squeeze(1)
            self.register_buffer("_samples", index, persistent=False)
            self._grid = tuple(int(s) for s in grid.shape)
            self.rate = len(index) / grid.numel()
            out_shape = (1, *y.shape[2:-grid.ndim], len(index))
        self.in_shape: tuple[int, ...] = tuple(shape)
        self.out_shape: tuple[int, ...] = out_shape
        self.in_kind = "any" if self.is_complex else "real"
        self.out_complex = self.is_complex or y.is_complex()
        self._dtype = dtype

    @property
    def name(self) -> str:
        return f"deepinv.{type(self.physics).__name__}"

    @property
    def mask(self) -> Tensor | None:
        """The physics' sampling mask when it has one (MRI, inpainting), else ``None``."""
        mask = getattr(self.physics, "mask", None)
        return mask if isinstance(mask, Tensor) else None

    def measurements_to_physics(self, y: Tensor) -> Tensor:
        """stablerecon measurements -> the physics' (the sampled values put back on the grid)."""
        if self._grid:
            full = y.new_zeros((*y.shape[:-1], math.prod(self._grid)))
            y = full.index_copy(-1, self._samples, y).unflatten(-1, self._grid)
        return super().measurements_to_physics(y)

    def measurements_from_physics(self, y: Tensor, name: str = "y") -> Tensor:
        """The physics' measurements -> stablerecon's (the sampled values only)."""
        y = super().measurements_from_physics(y, name)
        if self._grid:
            y = y.flatten(-len(self._grid)).index_select(-1, self._samples)
        return y

    def _where(self, method: str) -> str:
        return f"{self.name}.{method}"

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 - the field's name
        """Images ``(B, *in_shape)`` -> measurements ``(B, *out_shape)``: ``physics.A``."""
        _check_tensor(x, "x", self.in_shape, self.is_complex, self._where("A"))
        return self.measurements_from_physics(self.physics.A(self.image_to_physics(x)))

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        """Measurements -> images: ``physics.A_adjoint``, the exact adjoint."""
        _check_tensor(y, "y", self.out_shape, self.out_complex, self._where("A_adjoint"))
        return self.image_from_physics(self.physics.A_adjoint(self.measurements_to_physics(y)))

    def A_dagger(self, y: Tensor) -> Tensor:  # noqa: N802
        """Measurements -> images: the inverse chosen by ``dagger`` (see :func:`from_deepinv`)."""
        _check_tensor(y, "y", self.out_shape, self.out_complex, self._where("A_dagger"))
        yp = self.measurements_to_physics(y)
        if self.dagger == "adjoint":
            xp = self.physics.A_adjoint(yp)
        elif self.dagger == "auto" and callable(getattr(self.physics, "fbp", None)):
            xp = self.physics.A_dagger(yp, fbp=True)
        else:
            xp = self.physics.A_dagger(yp)
        return self.image_from_physics(xp)

    def forward(self, x: Tensor) -> Tensor:
        """``op(x)`` is ``op.A(x)``."""
        return self.A(x)

    def norm(self, recompute: bool = False) -> float:
        """``||A||_2`` by power iteration on ``A^* A`` (:func:`stablerecon.contracts.power_iteration`,
        in the physics' precision), computed once."""
        if self._norm is None or recompute:
            dtype = self._dtype
            if self.is_complex:
                dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
            _, device = _dtype_and_device(self.physics)
            example = torch.zeros((1, *self.in_shape), dtype=dtype, device=device)
            self._norm = power_iteration(self, example, iters=200, tol=1e-6)
        return self._norm

    def extra_repr(self) -> str:
        return (f"in_shape={_format(self.in_shape)}, out_shape={_format(self.out_shape)}, "
                f"complex={self.is_complex}, dagger={self.dagger!r}, kspace={self.kspace!r}")
