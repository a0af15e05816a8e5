"""Seeded measurement-noise models: Gaussian (absolute or relative level), complex Gaussian,
Poisson, and photon-count (Poisson) noise of CT transmission data.

Every function takes ``seed`` (an int) or ``generator`` (a :class:`torch.Generator` on the
measurement's device); the same seed gives the same noise on the same machine.
"""

from __future__ import annotations

import math

import torch

from .tensors import check_tensor, real_dtype_of

__all__ = ["gaussian_like", "add_gaussian", "poisson", "poisson_transmission", "noise_sigma"]


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


def poisson_transmission(
    line_integrals: torch.Tensor,
    counts: float | torch.Tensor,
    mu: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    eps: float = 0.5,
) -> torch.Tensor:
    r"""Photon-count noise of transmission CT, returned as noisy line integrals.

    A ray with line integral ``p`` (e.g. a sinogram entry of
    :class:`~stablerecon.operators.Radon` or :class:`~stablerecon.operators.FanBeam`, in
    pixel units) is detected with ``N ~ Poisson(I0 exp(-mu p))`` photons out of ``I0 = counts``
    emitted (Beer-Lambert law; ``mu`` converts ``p`` into attenuation, e.g. the attenuation
    coefficient per pixel of a unit image value). The measured line integral is

    .. math::

        \hat p = -\frac{1}{\mu} \log \frac{\max(N, \varepsilon)}{I_0} ,

    with, when many photons arrive (``lambda = I0 exp(-mu p) >> 1``), mean
    ``E[p_hat] ~ p + 1 / (2 mu lambda)`` and variance ``Var[p_hat] ~ 1 / (mu^2 lambda)``
    (the delta method; the low-count rays are the noisy ones).

    **Zero counts**: a ray that receives no photon would give an infinite line integral; its
    count is replaced by ``eps`` (default half a photon), which caps ``p_hat`` at
    ``log(I0 / eps) / mu``; more generally every count below ``eps`` is raised to ``eps``.

    Parameters
    ----------
    line_integrals:
        Real tensor ``(B, ...)`` of line integrals ``p`` (finite).
    counts:
        ``I0``, the expected photon count of an unattenuated ray: a positive finite number,
        or a positive tensor broadcastable to ``line_integrals`` (e.g. a per-detector blank
        scan).
    mu:
        Attenuation per unit of ``p`` (``> 0``); the transmitted fraction is ``exp(-mu p)``.
    seed, generator:
        Exactly one: the seed of a fresh generator, or a :class:`torch.Generator` on the
        device of ``line_integrals``.
    eps:
        Floor of the counts before the logarithm (``0 < eps``), see above.

    Returns
    -------
    Tensor with the shape, dtype and device of ``line_integrals``.
    """
    check_tensor(line_integrals, "line_integrals",
                 (None,) * (line_integrals.ndim - 1) if isinstance(line_integrals, torch.Tensor) else (),
                 kind="real", where="poisson_transmission")
    if isinstance(counts, torch.Tensor):
        if counts.is_complex() or counts.dtype == torch.bool:
            raise TypeError(f"argument 'counts' must be real, got dtype {counts.dtype}")
        if counts.numel() == 0 or not bool(torch.isfinite(counts).all()) or bool((counts <= 0).any()):
            raise ValueError("argument 'counts' must be positive and finite everywhere "
                             f"(min {float(counts.min()) if counts.numel() else 'empty'})")
        try:
            torch.broadcast_shapes(counts.shape, line_integrals.shape)
        except RuntimeError:
            raise ValueError(f"argument 'counts' of shape {tuple(counts.shape)} does not broadcast "
                             f"to 'line_integrals' of shape {tuple(line_integrals.shape)}") from None
        i0 = counts.to(device=line_integrals.device, dtype=line_integrals.dtype)
    else:
        if isinstance(counts, bool) or not isinstance(counts, (int, float)):
            raise TypeError(f"argument 'counts' must be a positive number or tensor, got {counts!r}")
        if not (math.isfinite(counts) and counts > 0):
            raise ValueError(f"argument 'counts' must be a positive finite number, got {counts}")
        i0 = float(counts)
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not (math.isfinite(mu) and mu > 0):
        raise ValueError(f"argument 'mu' must be a positive finite number, got {mu!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"argument 'eps' must be a positive finite number, got {eps!r}")
    rate = i0 * torch.exp(-mu * line_integrals)
    if not bool(torch.isfinite(rate).all()):
        raise ValueError("argument 'line_integrals' is too negative: the expected counts "
                         f"counts * exp(-mu p) overflow (min p {float(line_integrals.min()):g})")
    g = _generator(seed, generator, line_integrals.device)
    measured = torch.poisson(rate, generator=g)
    return -torch.log(measured.clamp_min(eps) / i0) / mu
