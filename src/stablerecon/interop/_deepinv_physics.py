"""A stablerecon operator as a DeepInverse ``LinearPhysics`` (:func:`to_deepinv`), and
:func:`from_deepinv`, the way back. See :mod:`stablerecon.interop.deepinv` for the conventions."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..contracts import Operator, capabilities, check_operator
from ._deepinv_common import Conversions, require_deepinv
from ._deepinv_operator import DeepinvOperator, _shape_arg
from .channels import to_channels

__all__ = ["from_deepinv", "to_deepinv", "physics_class"]


def from_deepinv(physics: Any, *, in_shape: tuple[int, ...] | None = None, complex: bool | None = None,
                 dagger: str = "auto", kspace: str = "auto") -> Operator:
    """A DeepInverse linear physics as a stablerecon operator.

    Parameters
    ----------
    physics:
        A ``deepinv.physics.LinearPhysics`` (``A`` and an exact ``A_adjoint``). A physics made by
        :func:`to_deepinv` gives back the operator it wraps.
    in_shape:
        The stablerecon image shape ``(C, H, W)`` (``(1, H, W)`` for complex physics). Default:
        from the physics (an MRI mask, Tomography's ``img_width``, an ``img_size``); required
        for physics that take images of any size (``Blur``, ``Denoising``).
    complex:
        Whether the physics uses DeepInverse's two-channel complex representation. Default:
        ``True`` for the MRI physics (``MRI``, ``MultiCoilMRI``, ... : ``MRIMixin``) and for a
        physics made by :func:`to_deepinv` from a complex operator, else ``False``.
    dagger:
        What ``A_dagger`` is: ``"auto"`` (filtered back-projection for physics that have ``fbp``,
        such as ``Tomography``; the physics' ``A_dagger`` otherwise: closed form for the MRI and
        other decomposable physics, an iterative least-squares solve for the rest),
        ``"physics"`` (always the physics' ``A_dagger``) or ``"adjoint"``.
    kspace:
        How the measurements of a complex physics with a 0/1 mask shared by the batch (``MRI``,
        ``MultiCoilMRI``) are laid out: ``"sampled"`` (the default there) keeps the sampled
        values only, ``(B, 1, m)`` or ``(B, 1, N, m)`` for ``N`` coils, ordered as the mask's
        ``nonzero()`` (as :class:`~stablerecon.operators.SubsampledFourier`), so a perturbation
        of the measurements lies where something is measured; ``"grid"`` keeps DeepInverse's full
        grid with zeros off the mask, ``(B, 1, H, W)``. ``"auto"``: sampled when possible.

    Raises
    ------
    TypeError
        If ``physics`` is not a linear physics (a non-linear one has no adjoint).
    ValueError
        If the image shape cannot be known or the physics fails on it.
    ImportError
        If deepinv is not installed.
    """
    require_deepinv()
    inner = getattr(physics, "stablerecon_operator", None)
    if inner is not None and isinstance(physics, physics_class()):
        return inner
    return DeepinvOperator(physics, in_shape=in_shape, complex=complex, dagger=dagger, kspace=kspace)


def _free_to_one(shape: tuple[int | None, ...] | None, name: str) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if shape and shape[0] is None:
        shape = (1, *shape[1:])
    if any(s is None for s in shape):
        raise ValueError(f"the image size of {name} is free ({shape}): pass in_shape=(C, H, W)")
    return tuple(int(s) for s in shape)  # type: ignore[arg-type]


def _op_device(op: object) -> torch.device:
    if isinstance(op, nn.Module):
        for t in (*op.buffers(), *op.parameters()):
            return t.device
    return torch.device("cpu")


def _probe(op: Operator, shape: tuple[int, ...], name: str) -> tuple[Tensor, Tensor]:
    """A seeded random image ``(1, *shape)`` and ``op.A`` of it, in float32 or, if the operator
    refuses it, float64."""
    device = _op_device(op)
    base = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    failure: Exception | None = None
    for dtype in (torch.float32, torch.float64):
        x = base.to(device=device, dtype=dtype)
        try:
            with torch.no_grad():
                return x, op.A(x)
        except Exception as err:  # a foreign operator may raise anything
            failure = err
    raise ValueError(f"argument 'op': {name}.A failed on a random image of shape {tuple(base.shape)} "
                     f"({failure}); pass in_shape=(C, H, W)") from failure


_PHYSICS_CLASS: type | None = None


def physics_class() -> type:
    """The ``deepinv.physics.LinearPhysics`` subclass :func:`to_deepinv` builds (defined on first
    use, since its base class comes from deepinv)."""
    global _PHYSICS_CLASS
    if _PHYSICS_CLASS is None:
        _PHYSICS_CLASS = _define_physics_class(require_deepinv())
    return _PHYSICS_CLASS


def _define_physics_class(dinv: Any) -> type:
    class StableReconPhysics(Conversions, dinv.physics.LinearPhysics):
        """A stablerecon operator as a DeepInverse ``LinearPhysics``; build it with
        :func:`to_deepinv`. ``A``, ``A_adjoint`` and ``A_dagger`` take DeepInverse tensors
        (complex as two channels) and call the operator's; keyword arguments DeepInverse passes
        to them (physics parameters) are ignored: the operator is fixed."""

        def __init__(self, op: Operator, *, in_shape: tuple[int, ...] | None = None,
                     complex: bool | None = None, noise_model: Any = None) -> None:
            op = check_operator(op, "op")
            name = type(op).__name__
            shape = _shape_arg(in_shape, "in_shape") if in_shape is not None else _free_to_one(
                capabilities(op).in_shape, name)
            if shape is None:
                raise ValueError(f"the image shape of {name} is unknown (no in_shape attribute): "
                                 f"pass in_shape=(C, H, W)")
            x, y = _probe(op, shape, name)
            if complex is None:
                complex = bool(getattr(op, "out_complex", False) or getattr(op, "in_kind", None) == "complex"
                               or y.is_complex())
            if complex:
                if shape[0] != 1:
                    raise ValueError(f"argument 'op': complex images have one channel (C = 1); {name} takes "
                                     f"{shape}")
                try:
                    with torch.no_grad():
                        y = op.A(x.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64))
                except (TypeError, ValueError) as err:
                    raise ValueError(f"argument 'complex': {name} refuses complex images ({err})") from None
            kwargs = {} if noise_model is None else {"noise_model": noise_model}
            super().__init__(img_size=(2, *shape[1:]) if complex else shape, **kwargs)
            self.stablerecon_operator = op
            self.complex_images = bool(complex)
            self.complex_measurements = y.is_complex()
            if self.complex_measurements and (y.ndim < 2 or y.shape[1] != 1):
                raise ValueError(f"argument 'op': {name} returns complex measurements of shape "
                                 f"{tuple(y.shape)}; only one complex channel (B, 1, ...) maps onto "
                                 f"DeepInverse's (real, imaginary) axis")
            self.stablerecon_shapes = (shape, tuple(y.shape[1:]))
            self._has_dagger = capabilities(op).has_dagger

        def _image_out(self, x: Tensor) -> Tensor:
            if self.complex_images:
                return to_channels(x)
            return x.real if x.is_complex() else x  # the adjoint of A restricted to real images

        def A(self, x: Tensor, **kwargs: Any) -> Tensor:  # noqa: N802
            y = self.stablerecon_operator.A(self.image_from_physics(x))
            return self.measurements_to_physics(y)

        def A_adjoint(self, y: Tensor, **kwargs: Any) -> Tensor:  # noqa: N802
            return self._image_out(self.stablerecon_operator.A_adjoint(self.measurements_from_physics(y)))

        def A_dagger(self, y: Tensor, **kwargs: Any) -> Tensor:  # noqa: N802
            if not self._has_dagger:
                return super().A_dagger(y, **kwargs)  # DeepInverse's least-squares solve
            return self._image_out(self.stablerecon_operator.A_dagger(self.measurements_from_physics(y)))

    StableReconPhysics.__qualname__ = "StableReconPhysics"
    StableReconPhysics.__module__ = "stablerecon.interop.deepinv"
    return StableReconPhysics


def to_deepinv(op: Operator, *, in_shape: tuple[int, ...] | None = None, complex: bool | None = None,
               noise_model: Any = None) -> Any:
    """A stablerecon (or any duck-typed) operator as a ``deepinv.physics.LinearPhysics``.

    Parameters
    ----------
    op:
        Anything with ``A`` and ``A_adjoint`` (``A_dagger`` is used when present; otherwise the
        physics' ``A_dagger`` is DeepInverse's least-squares solve). A :class:`DeepinvOperator`
        gives back its physics.
    in_shape:
        Image shape ``(C, H, W)`` when ``op`` declares none (a free channel count is taken as 1).
    complex:
        Whether images are complex, i.e. two channels on the DeepInverse side. Default: when
        the operator's measurements are complex or it takes complex images only
        (``out_complex`` / ``in_kind``, else probed with one ``A``). With ``complex=False`` a
        Fourier operator takes real one-channel images and its adjoint returns the real part.
    noise_model:
        A DeepInverse noise model for ``physics(x)`` (default: none, as DeepInverse).
    """
    require_deepinv()
    if isinstance(op, DeepinvOperator):
        return op.physics
    return physics_class()(op, in_shape=in_shape, complex=complex, noise_model=noise_model)
