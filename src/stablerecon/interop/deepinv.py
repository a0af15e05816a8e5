r"""DeepInverse (``deepinv`` >= 0.5) and stablerecon, both ways.

- :func:`from_deepinv`: a DeepInverse linear physics (``MRI``, ``MultiCoilMRI``, ``Tomography``,
  ``Blur``, ``Inpainting``, ...) as a stablerecon operator, for stablerecon's solvers, FIRENET
  and the audit;
- :func:`to_deepinv`: a stablerecon (or any duck-typed) operator as a
  ``deepinv.physics.LinearPhysics``, for DeepInverse's solvers, priors and trainers;
- :func:`method_from_deepinv`: a DeepInverse reconstructor ``model(y, physics)`` or denoiser
  ``model(x, sigma)`` as a stablerecon method ``(y, op) -> x_hat``, to audit it;
- :func:`operator_from_target`, :func:`method_from_target`: the same from a config's
  ``target`` and ``args`` (``kind: deepinv``).

**Tensor conventions.** Both libraries put images as ``(B, C, H, W)``. Real physics take the
same tensors on both sides. DeepInverse's complex physics (MRI) use two real channels (real,
imaginary) where stablerecon uses a complex dtype with one channel: an image ``(B, 2, H, W)``
is ``(B, 1, H, W)`` complex, k-space ``(B, 2, *R)`` is ``(B, 1, *R)`` complex (``R = (H, W)``
for ``MRI``, ``(N, H, W)`` for ``MultiCoilMRI`` with ``N`` coils), exactly
(:mod:`stablerecon.interop.channels`), so adjoints stay adjoints. Real images given to a
complex physics have zero imaginary part.

DeepInverse's MRI k-space is the full grid with zeros off the mask; by default
:func:`from_deepinv` keeps only the sampled values, ``(B, 1, m)``, as stablerecon's
``SubsampledFourier`` does, so that the audit perturbs only what is measured
(``kspace="grid"`` keeps the grid).

**What does not carry over.** A physics' noise model is not applied (``A`` is noiseless; add
noise with :mod:`stablerecon.operators.noise`). Masks that differ across the batch keep the
grid layout (random perturbations then put part of their energy where nothing is measured).
Physics parameters DeepInverse passes
as keyword arguments (``physics.A(x, mask=...)``) are ignored by :func:`to_deepinv`'s physics:
the operator is fixed. Non-linear physics have no adjoint and are refused.

deepinv is imported on first use: the rest of stablerecon works without it, and every function
here raises an ``ImportError`` that says how to install it when it is missing.

>>> import deepinv as dinv, torch                                       # doctest: +SKIP
>>> op = from_deepinv(dinv.physics.Tomography(angles=30, img_width=64, normalize=True))  # doctest: +SKIP
>>> op.in_shape, op.out_shape                                           # doctest: +SKIP
((1, 64, 64), (1, 91, 30))
>>> physics = to_deepinv(sr.operators.SubsampledFourier(mask))          # doctest: +SKIP
>>> float(physics.adjointness_test(torch.rand(1, 2, 64, 64))) < 1e-5    # doctest: +SKIP
True
"""

from __future__ import annotations

from typing import Any

from ._deepinv_common import MISSING_DEEPINV, require_deepinv
from ._deepinv_config import MASK_GENERATORS, method_from_target, operator_from_target
from ._deepinv_method import DeepinvMethod, method_from_deepinv
from ._deepinv_operator import DeepinvOperator
from ._deepinv_physics import from_deepinv, physics_class, to_deepinv

__all__ = [
    "from_deepinv",
    "to_deepinv",
    "method_from_deepinv",
    "operator_from_target",
    "method_from_target",
    "DeepinvOperator",
    "DeepinvMethod",
    "physics_class",
    "require_deepinv",
    "MISSING_DEEPINV",
    "MASK_GENERATORS",
]


def __getattr__(name: str) -> Any:
    if name == "StableReconPhysics":  # the LinearPhysics subclass, defined once deepinv is imported
        return physics_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
