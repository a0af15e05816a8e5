"""A DeepInverse model (reconstructor or denoiser) as a stablerecon method ``(y, op) -> x_hat``
(:class:`DeepinvMethod`, :func:`method_from_deepinv`)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..contracts import Operator, apply_dagger, capabilities, check_operator
from ._deepinv_common import Conversions, require_deepinv
from ._deepinv_operator import DeepinvOperator
from ._deepinv_physics import physics_class, to_deepinv
from .channels import from_channels, to_channels

__all__ = ["DeepinvMethod", "method_from_deepinv"]


@dataclass
class _Pairing:
    """The physics a reconstructor is called with, the tensor conventions between it and the
    stablerecon operator, and the stablerecon image shape (``None`` if unknown)."""

    physics: Any
    conventions: Conversions
    image_shape: tuple[int | None, ...] | None


def _model_name(model: object) -> str:
    return type(model).__name__


class DeepinvMethod(nn.Module):
    r"""A DeepInverse model behind stablerecon's method convention ``method(y, op) -> x_hat``;
    build it with :func:`method_from_deepinv`.

    **Reconstructor** (``denoiser_sigma is None``): ``x_hat = model(y', physics)``, where
    ``physics`` is, in order, the ``physics`` given at construction, the physics a
    :class:`~stablerecon.interop.deepinv.DeepinvOperator` ``op`` wraps, ``op`` itself when it is
    a DeepInverse physics, or ``to_deepinv(op)`` (built once per operator); ``y'`` is ``y`` in
    that physics' conventions and the output is converted back (two channels -> complex).

    **Denoiser** (``denoiser_sigma`` given): ``x_hat = model(A^+ y, sigma)``, the denoiser applied
    to the operator's inverse (``op.A_dagger``, else the adjoint; plug-and-play style, one
    step). A complex ``A^+ y`` goes in as two channels unless ``complex=False``, which takes its
    real part (for denoisers of real images).

    The output must be an image of the operator's shape ``(B, *op.in_shape)``; anything else is
    a ``ValueError`` naming the model. ``differentiable`` says whether the audit may take
    gradients (default: ``True`` when the model is an ``nn.Module``).
    """

    def __init__(self, model: Any, physics: Any = None, *, denoiser_sigma: float | None = None,
                 complex: bool | None = None, differentiable: bool | None = None) -> None:
        dinv = require_deepinv()
        if not callable(model):
            raise TypeError(f"argument 'model' must be a DeepInverse model (callable), "
                            f"got {_model_name(model)}")
        denoiser_cls = getattr(dinv.models, "Denoiser", None)
        reconstructor_cls = getattr(dinv.models, "Reconstructor", None)
        if (denoiser_sigma is None and denoiser_cls is not None and isinstance(model, denoiser_cls)
                and not (reconstructor_cls is not None and isinstance(model, reconstructor_cls))):
            raise ValueError(f"argument 'denoiser_sigma' is required: {_model_name(model)} is a "
                             f"denoiser model(x, sigma); pass the noise level it should remove (e.g. "
                             f"0.01), or wrap it in deepinv.models.ArtifactRemoval to make it a "
                             f"reconstructor")
        if denoiser_sigma is not None and (isinstance(denoiser_sigma, bool) or not isinstance(
                denoiser_sigma, (int, float)) or denoiser_sigma < 0):
            raise ValueError(f"argument 'denoiser_sigma' must be a noise level >= 0, got {denoiser_sigma!r}")
        if physics is not None and not callable(getattr(physics, "A", None)):
            raise TypeError(f"argument 'physics' must be a DeepInverse physics, got {type(physics).__name__}")
        super().__init__()
        self.model = model
        self.denoiser_sigma = None if denoiser_sigma is None else float(denoiser_sigma)
        self.complex = complex
        self.differentiable = isinstance(model, nn.Module) if differentiable is None else bool(differentiable)
        self._physics = physics  # not a submodule: the operator's device decides
        self._cache: tuple[weakref.ref | None, _Pairing] | None = None  # (operator, its pairing)

    def _pairing(self, op: Operator) -> _Pairing:
        """The physics to call the model with and its conventions, built once per operator."""
        if isinstance(op, DeepinvOperator) and self._physics is None:
            return _Pairing(op.physics, op, op.in_shape)
        cached = self._cache
        if cached is not None and (cached[0] is None or cached[0]() is op):
            return cached[1]
        ref: weakref.ref | None = None
        physics = self._physics
        if physics is not None and isinstance(physics, physics_class()):
            pairing = _Pairing(physics, physics, physics.stablerecon_shapes[0])
        elif physics is not None:
            shape = capabilities(op).in_shape
            known = shape if shape is not None and all(s is not None for s in shape) else None
            view = DeepinvOperator(physics, in_shape=known, complex=self.complex)
            pairing = _Pairing(physics, view, view.in_shape)
        elif isinstance(op, require_deepinv().physics.Physics):  # a physics used directly: no conversion
            pairing = _Pairing(op, Conversions(), capabilities(op).in_shape)
        else:
            physics = to_deepinv(op, complex=self.complex)
            pairing = _Pairing(physics, physics, physics.stablerecon_shapes[0])
        if self._physics is None:
            try:
                ref = weakref.ref(op)
            except TypeError:  # not weak-referenceable: rebuild on every call
                return pairing
        self._cache = (ref, pairing)
        return pairing

    def _denoise(self, y: Tensor, op: Operator) -> tuple[Tensor, tuple[int, ...]]:
        x0 = apply_dagger(op, y)
        if x0.is_complex() and self.complex is False:
            x0 = x0.real
        two_channels = x0.is_complex() or bool(self.complex)
        if two_channels and (x0.ndim < 2 or x0.shape[1] != 1):
            raise ValueError(f"argument 'op': the inverse returned complex images of shape "
                             f"{tuple(x0.shape)}; a denoiser takes complex images of one channel as two "
                             f"channels")
        out = self.model(to_channels(x0) if two_channels else x0, self.denoiser_sigma)
        self._check_output(out, (x0.shape[0], 2 if two_channels else x0.shape[1], *x0.shape[2:]), "image")
        return (from_channels(out, "model output") if two_channels else out), tuple(x0.shape[1:])

    def _check_output(self, out: object, expected: tuple[int | None, ...], what: str,
                      partial: bool = False) -> None:
        """A ``ValueError`` naming the model unless ``out`` has shape ``expected`` (``None``: any
        size; ``partial``: only its leading axes are given)."""
        if not isinstance(out, Tensor):
            raise TypeError(f"argument 'model': {_model_name(self.model)} must return a tensor, "
                            f"got {type(out).__name__}")
        mismatch = any(e is not None and e != s for e, s in zip(expected, out.shape, strict=False))
        if (out.ndim != len(expected) and not partial) or out.ndim < len(expected) or mismatch:
            shown = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
            raise ValueError(f"argument 'model': {_model_name(self.model)} returned shape "
                             f"{tuple(out.shape)}, expected {what}s of shape {shown}")

    def forward(self, y: Tensor, op: Operator) -> Tensor:
        """``x_hat`` of shape ``(B, *op.in_shape)`` from measurements ``y`` ``(B, *op.out_shape)``."""
        op = check_operator(op, "op")
        if not isinstance(y, Tensor):
            raise TypeError(f"argument 'y' must be a torch.Tensor, got {type(y).__name__}")
        if self.denoiser_sigma is not None:
            x, shape = self._denoise(y, op)
        else:
            pairing = self._pairing(op)
            out = self.model(pairing.conventions.measurements_to_physics(y), pairing.physics)
            shape = pairing.image_shape
            if pairing.conventions.complex_images:
                spatial = tuple(shape[1:]) if shape is not None else ()
                self._check_output(out, (y.shape[0], 2, *spatial) if spatial else (y.shape[0], 2), "image",
                                   partial=not spatial)
                x = from_channels(out, "model output")
            else:
                x = out
        if shape is not None:
            self._check_output(x, (y.shape[0], *shape), "image")
        elif not isinstance(x, Tensor):
            self._check_output(x, (), "image", partial=True)
        return x

    def extra_repr(self) -> str:
        kind = "reconstructor" if self.denoiser_sigma is None else f"denoiser, sigma={self.denoiser_sigma}"
        return f"{kind}, differentiable={self.differentiable}"


def method_from_deepinv(model: Any, physics: Any = None, *, denoiser_sigma: float | None = None,
                        complex: bool | None = None, differentiable: bool | None = None) -> DeepinvMethod:
    """A DeepInverse model as a stablerecon method ``method(y, op) -> x_hat``.

    Parameters
    ----------
    model:
        A DeepInverse reconstructor, called as ``model(y, physics)`` (a trained network such as
        ``ArtifactRemoval(UNet(...))``, an unrolled network, an optimiser such as
        ``deepinv.optim.FISTA``), or, with ``denoiser_sigma``, a denoiser ``model(x, sigma)``.
    physics:
        The DeepInverse physics to give the reconstructor. Default: the physics of a
        :func:`~stablerecon.interop.deepinv.from_deepinv` operator, else ``to_deepinv(op)``.
    denoiser_sigma:
        Treat ``model`` as a denoiser and apply it with this noise level to ``op.A_dagger(y)``.
    complex:
        ``False`` feeds real images to the model where the operator's are complex (see
        :class:`DeepinvMethod`); ``None`` follows the operator.
    differentiable:
        Whether the audit may take gradients through the method (default: the model is an
        ``nn.Module``).

    Returns
    -------
    DeepinvMethod
        An ``nn.Module``: ``.eval()`` and ``.to(device)`` reach the model.
    """
    return DeepinvMethod(model, physics, denoiser_sigma=denoiser_sigma, complex=complex,
                         differentiable=differentiable)
