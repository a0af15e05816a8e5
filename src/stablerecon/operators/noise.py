"""Seeded measurement-noise models: Gaussian (absolute or relative level), complex Gaussian,
Poisson.

Every function takes ``seed`` (an int) or ``generator`` (a :class:`torch.Generator` on the
measurement's device); the same seed gives the same noise on the same machine.
"""

from __future__ import annotations

import math

import torch

from .tensors import check_tensor, real_dtype_of

__all__ = ["gaussian_like", "add_gaussian", "poisson", "noise_sigma"]


def _generator(seed: int | None, generator: torch.Generator | None,
               device: torch.device) -> torch.Generator:
    if generator is not None:
        if seed is not None:
            raise ValueError("give either 'seed' or 'generator', not both")
        return generator
    if seed is None:
        raise ValueError("argument 'seed' is required (or pass a 'generator') for reproducible noise")
    return torch.Generator(device=device).manual_seed(int(seed))


def noise_sigma(y: torch.Tensor, sigma: float | None = None, rel: float | None = None) -> torch.Tensor:
    """Per-item noise standard deviation, shape ``(B,)``.

    Exactly one of ``sigma`` (absolute, per entry) and ``rel`` (relative level:
    ``sigma_b = rel * ||y_b||_2 / sqrt(m)`` with ``m`` entries per item, so that
    ``E ||n_b||^2 = rel^2 ||y_b||^2``) must be given.
    """
    if (sigma is None) == (rel is None):
        raise ValueError("give exactly one of 'sigma' (absolute) and 'rel' (relative noise level)")
    b = y.shape[0]
    if sigma is not None:
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"argument 'sigma' must be a finite number >= 0, got {sigma}")
        return torch.full((b,), float(sigma), dtype=real_dtype_of(y.dtype), device=y.device)
    rel = float(rel)  # type: ignore[arg-type]
    if not (math.isfinite(rel) and rel >= 0):
        raise ValueError(f"argument 'rel' must be a finite number >= 0, got {rel}")
    flat = y.reshape(b, -1)
    return rel * torch.linalg.vector_norm(flat, dim=1) / math.sqrt(flat.shape[1])


def gaussian_like(
    y: torch.Tensor,
    sigma: float | None = None,
    rel: float | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """White Gaussian noise with the shape and dtype of ``y`` (``(B, ...)``).

    Real ``y``: entries ``N(0, sigma^2)``. Complex ``y``: circular complex Gaussian with
    ``E |n_i|^2 = sigma^2`` (real and imaginary parts ``N(0, sigma^2 / 2)``). The level is
    absolute (``sigma``) or relative (``rel``, see :func:`noise_sigma`).
    """
    check_tensor(y, "y", (None,) * (y.ndim - 1) if isinstance(y, torch.Tensor) else (),
                 where="gaussian_like")
    s = noise_sigma(y, sigma, rel).reshape(-1, *([1] * (y.ndim - 1)))
    g = _generator(seed, generator, y.device)
    rdt = real_dtype_of(y.dtype)
    if y.is_complex():
        re = torch.randn(y.shape, generator=g, dtype=rdt, device=y.device)
        im = torch.randn(y.shape, generator=g, dtype=rdt, device=y.device)
        return torch.complex(re, im) * (s / math.sqrt(2.0))
    return torch.randn(y.shape, generator=g, dtype=rdt, device=y.device) * s


def add_gaussian(y: torch.Tensor, sigma: float | None = None, rel: float | None = None,
                 seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """``y + gaussian_like(y, ...)``."""
    return y + gaussian_like(y, sigma=sigma, rel=rel, seed=seed, generator=generator)


def poisson(y: torch.Tensor, photons: float, seed: int | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson (shot) noise: ``Poisson(photons * y) / photons`` for nonnegative real ``y``.

    ``photons`` is the expected count for a measurement of value 1; larger is less noisy
    (variance ``y / photons``).
    """
    check_tensor(y, "y", (None,) * (y.ndim - 1) if isinstance(y, torch.Tensor) else (),
                 kind="real", where="poisson")
    if not (math.isfinite(photons) and photons > 0):
        raise ValueError(f"argument 'photons' must be a positive finite number, got {photons}")
    if bool((y < 0).any()):
        raise ValueError(f"argument 'y' must be nonnegative for Poisson noise (min {float(y.min()):g})")
    g = _generator(seed, generator, y.device)
    return torch.poisson(y * photons, generator=g) / photons
