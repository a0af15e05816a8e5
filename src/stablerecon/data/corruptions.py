"""Noise corruptions of images in ``[0, 1]``, with the severities of ImageNet-C.

The four noise corruptions of Hendrycks & Dietterich (2019), with their ImageNet-C
parameters (``imagenet_c/corruptions.py``). ``x`` is the clean image in ``[0, 1]``, ``z`` a
standard normal variable per pixel, and every output is clipped to ``[0, 1]``:

============  ========================================  ====  ====  ====  ====  ====
corruption    model                                      1     2     3     4     5
============  ========================================  ====  ====  ====  ====  ====
gaussian      ``x + sigma * z``; sigma =                 0.08  0.12  0.18  0.26  0.38
shot          ``Poisson(lam * x) / lam``; lam =          60    25    12    5     3
speckle       ``x + x * sigma * z``; sigma =             0.15  0.20  0.35  0.45  0.60
impulse       salt & pepper, fraction of pixels =        0.03  0.06  0.09  0.17  0.27
============  ========================================  ====  ====  ====  ====  ====

Impulse noise replaces each pixel independently with probability ``amount``, by 1 (salt) or
0 (pepper) with equal probability (``skimage.util.random_noise(mode='s&p')``). Every channel
and pixel is corrupted independently.

Randomness: ``seed`` is an ``int`` (a fresh ``torch.Generator`` on ``x.device`` seeded with
it), a ``torch.Generator`` (used as is, advancing its state), or ``None`` (torch's global
generator, so ``torch.manual_seed`` controls it). Same seed, same device: same output.

Reference
---------
D. Hendrycks and T. Dietterich, "Benchmarking neural network robustness to common corruptions
and perturbations", ICLR 2019.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "CORRUPTIONS",
    "SEVERITY_PARAMETERS",
    "corrupt",
    "gaussian",
    "impulse",
    "shot",
    "speckle",
]

#: Parameter per severity 1..5 (index 0..4) for each corruption; see the module table.
SEVERITY_PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot": (60.0, 25.0, 12.0, 5.0, 3.0),
    "speckle": (0.15, 0.20, 0.35, 0.45, 0.60),
    "impulse": (0.03, 0.06, 0.09, 0.17, 0.27),
}

#: Names accepted by :func:`corrupt`.
CORRUPTIONS: tuple[str, ...] = tuple(SEVERITY_PARAMETERS)

Seed = int | torch.Generator | None


def _check_image(x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must have a real floating dtype, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")
    lo, hi = float(x.min()), float(x.max())
    if not (0.0 <= lo and hi <= 1.0):  # also catches NaN
        raise ValueError(f"x must have values in [0, 1], got min {lo} and max {hi}")
    return x


def _parameter(kind: str, severity: object) -> float:
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    return SEVERITY_PARAMETERS[kind][severity - 1]


def _generator(seed: Seed, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


def _arguments(
    kind: str, x: object, severity: object, seed: Seed
) -> tuple[float, Tensor, torch.Generator | None]:
    """The validated arguments of a corruption: its parameter, the image and the generator."""
    parameter = _parameter(kind, severity)
    x = _check_image(x)
    return parameter, x, _generator(seed, x.device)


def _randn(x: Tensor, gen: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)


def _rand(x: Tensor, gen: torch.Generator | None) -> Tensor:
    return torch.rand(x.shape, generator=gen, dtype=x.dtype, device=x.device)


def gaussian(x: Tensor, severity: int = 1, seed: Seed = None) -> Tensor:
    """Additive Gaussian noise: ``clip(x + sigma z, 0, 1)``, sigma from the severity table.

    Args:
        x: images in ``[0, 1]``, any shape (typically ``(B, C, H, W)``), real floating.
        severity: 1..5 -> sigma = 0.08, 0.12, 0.18, 0.26, 0.38.
        seed: int, ``torch.Generator`` or None (see the module notes).

    Returns:
        Tensor like ``x`` (shape, dtype, device), values in ``[0, 1]``.
    """
    sigma, x, gen = _arguments("gaussian", x, severity, seed)
    return (x + sigma * _randn(x, gen)).clamp(0.0, 1.0)


def shot(x: Tensor, severity: int = 1, seed: Seed = None) -> Tensor:
    """Shot (Poisson) noise: ``clip(Poisson(lam x) / lam, 0, 1)``; fewer photons = more noise.

    Args:
        x: images in ``[0, 1]``, any shape, real floating.
        severity: 1..5 -> photon count lam = 60, 25, 12, 5, 3 (at intensity 1).
        seed: int, ``torch.Generator`` or None.

    Returns:
        Tensor like ``x``, values in ``[0, 1]`` (multiples of ``1 / lam``).
    """
    lam, x, gen = _arguments("shot", x, severity, seed)
    return (torch.poisson(x * lam, generator=gen) / lam).clamp(0.0, 1.0)


def speckle(x: Tensor, severity: int = 1, seed: Seed = None) -> Tensor:
    """Multiplicative (speckle) noise: ``clip(x + x sigma z, 0, 1)``.

    Args:
        x: images in ``[0, 1]``, any shape, real floating.
        severity: 1..5 -> sigma = 0.15, 0.20, 0.35, 0.45, 0.60.
        seed: int, ``torch.Generator`` or None.

    Returns:
        Tensor like ``x``, values in ``[0, 1]``.
    """
    sigma, x, gen = _arguments("speckle", x, severity, seed)
    return (x + x * (sigma * _randn(x, gen))).clamp(0.0, 1.0)


def impulse(x: Tensor, severity: int = 1, seed: Seed = None) -> Tensor:
    """Impulse (salt-and-pepper) noise: a fraction ``amount`` of pixels set to 0 or 1.

    Args:
        x: images in ``[0, 1]``, any shape, real floating.
        severity: 1..5 -> amount = 0.03, 0.06, 0.09, 0.17, 0.27 (expected fraction of
            replaced pixels; salt and pepper equally likely).
        seed: int, ``torch.Generator`` or None.

    Returns:
        Tensor like ``x``, values in ``[0, 1]``.
    """
    amount, x, gen = _arguments("impulse", x, severity, seed)
    flipped = _rand(x, gen) < amount
    salt = (_rand(x, gen) < 0.5).to(x.dtype)
    return torch.where(flipped, salt, x)


_FUNCTIONS: dict[str, Callable[[Tensor, int, Seed], Tensor]] = {
    "gaussian": gaussian,
    "shot": shot,
    "speckle": speckle,
    "impulse": impulse,
}


def corrupt(x: Tensor, kind: str, severity: int = 1, seed: Seed = None) -> Tensor:
    """Apply the corruption named ``kind`` (one of :data:`CORRUPTIONS`) at ``severity``.

    Args:
        x: images in ``[0, 1]``, any shape, real floating.
        kind: ``"gaussian"``, ``"shot"``, ``"speckle"`` or ``"impulse"``.
        severity: 1..5 (see the module table).
        seed: int, ``torch.Generator`` or None.

    Returns:
        Tensor like ``x``, values in ``[0, 1]``.

    Raises:
        ValueError: unknown ``kind`` (message lists the valid ones), severity outside 1..5,
            ``x`` outside ``[0, 1]``.
    """
    if kind not in _FUNCTIONS:
        raise ValueError(f"kind must be one of {list(CORRUPTIONS)}, got {kind!r}")
    return _FUNCTIONS[kind](x, severity, seed)
