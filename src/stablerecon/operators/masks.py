"""Sampling patterns for subsampled unitary transforms (MRI k-space, Walsh-Hadamard).

Every pattern is a boolean tensor of shape ``(H, W)``; ``True`` marks a sampled coefficient.
Each generator takes the target sampling ``rate`` (fraction of coefficients, in ``(0, 1]``) and a
``seed``; :func:`rate` reports the rate actually achieved (radial patterns can only approximate
it). Densities are centred on the zero frequency, which sits

* at ``(H // 2, W // 2)`` for ``origin="center"`` (centred DFT, :class:`SubsampledFourier`), or
* at ``(0, 0)`` for ``origin="corner"`` (sequency-ordered Walsh-Hadamard,
  :class:`SubsampledWalshHadamard`, whose low sequencies are at small indices).

:func:`cartesian_lines` samples whole phase-encode lines with a fully sampled calibration (ACS)
block at the centre, the masks of clinical (multi-coil) MRI.

References: Lustig, Donoho, Pauly, "Sparse MRI", MRM 2007 (variable density); Adcock, Hansen,
Poon, Roman, "Breaking the coherence barrier", Forum Math. Sigma 2017 (multilevel sampling).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from .tensors import as_hw

Origin = Literal["center", "corner"]

__all__ = [
    "variable_density_lines",
    "variable_density",
    "radial",
    "uniform_random",
    "cartesian_lines",
    "rate",
    "check_mask",
    "MASKS",
]


def _check_rate(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"argument 'rate' must be a finite number in (0, 1], got {value!r}")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"argument 'rate' must lie in (0, 1], got {value}")
    return float(value)


def _check_origin(origin: str) -> Origin:
    if origin not in ("center", "corner"):
        raise ValueError(f"argument 'origin' must be 'center' or 'corner', got {origin!r}")
    return origin  # type: ignore[return-value]


def _common_arguments(size: int | tuple[int, int], rate: float,
                      origin: str = "center") -> tuple[int, int, float, Origin]:
    """The validated arguments every generator takes: ``H``, ``W``, the rate and the origin."""
    h, w = as_hw(size, "size")
    return h, w, _check_rate(rate), _check_origin(origin)


def _distance_1d(n: int, origin: Origin) -> np.ndarray:
    """Normalised distance of each index to the zero frequency, in [0, 1]."""
    idx = np.arange(n, dtype=np.float64)
    d = np.abs(idx - n // 2) / max(n / 2, 1) if origin == "center" else idx / max(n, 1)
    return np.clip(d, 0.0, 1.0)


def _distance_2d(h: int, w: int, origin: Origin) -> np.ndarray:
    dy = _distance_1d(h, origin)[:, None]
    dx = _distance_1d(w, origin)[None, :]
    return np.sqrt(dy**2 + dx**2)


def _lines_mask(h: int, w: int, lines: np.ndarray, axis: int) -> torch.Tensor:
    """The ``(h, w)`` mask of whole rows (``axis=0``) or columns (``axis=1``) ``lines`` (indices or
    a boolean selector)."""
    mask = np.zeros((h, w), dtype=bool)
    if axis == 0:
        mask[lines, :] = True
    else:
        mask[:, lines] = True
    return torch.from_numpy(mask)


def _weighted_choice(weights: np.ndarray, k: int, rng: np.random.Generator,
                     forced: np.ndarray) -> np.ndarray:
    """Pick ``k`` indices including all ``forced`` ones, others with probability ~ weights."""
    chosen = np.zeros(weights.size, dtype=bool)
    chosen[forced] = True
    remaining = k - int(chosen.sum())
    if remaining > 0:
        free = np.flatnonzero(~chosen)
        p = weights[free]
        p = p / p.sum()
        # Efraimidis-Spirakis weighted sampling without replacement: top-k of u^(1/w).
        keys = np.log(rng.random(free.size)) / np.maximum(p, 1e-300)
        pick = free[np.argpartition(-keys, remaining - 1)[:remaining]]
        chosen[pick] = True
    return chosen


def variable_density_lines(
    size: int | tuple[int, int],
    rate: float,
    seed: int = 0,
    center_fraction: float = 0.08,
    decay: float = 2.0,
    axis: int = 0,
    origin: Origin = "center",
) -> torch.Tensor:
    """Cartesian variable-density sampling of whole k-space lines (phase encodes).

    ``round(rate * H)`` rows (``axis=0``; columns for ``axis=1``) are sampled: the central
    ``center_fraction`` of them always, the rest at random with probability proportional to
    ``(1 - d)**decay`` where ``d`` in [0, 1] is the normalised distance to the centre line.

    Returns
    -------
    torch.Tensor
        Boolean mask of shape ``(H, W)``.
    """
    h, w, r, origin = _common_arguments(size, rate, origin)
    if axis not in (0, 1):
        raise ValueError(f"argument 'axis' must be 0 or 1, got {axis!r}")
    if not 0.0 <= center_fraction <= 1.0:
        raise ValueError(f"argument 'center_fraction' must lie in [0, 1], got {center_fraction}")
    n = h if axis == 0 else w
    k = max(1, round(r * n))
    d = _distance_1d(n, origin)
    n_center = min(k, round(center_fraction * n))
    forced = np.argsort(d, kind="stable")[:n_center]
    rng = np.random.default_rng(seed)
    lines = _weighted_choice((1.0 - d) ** decay + 1e-3, k, rng, forced)
    return _lines_mask(h, w, lines, axis)


def variable_density(size: int | tuple[int, int], rate: float, seed: int = 0, center_radius: float = 0.04,
                     decay: float = 3.0, origin: Origin = "center") -> torch.Tensor:
    """Two-dimensional variable-density random points.

    Exactly ``round(rate * H * W)`` points: all those within normalised distance
    ``center_radius`` of the zero frequency (up to the budget), the rest drawn without
    replacement with probability proportional to ``(1 - d)**decay``.

    Returns
    -------
    torch.Tensor
        Boolean mask of shape ``(H, W)``.
    """
    h, w, r, origin = _common_arguments(size, rate, origin)
    if center_radius < 0.0:
        raise ValueError(f"argument 'center_radius' must be >= 0, got {center_radius}")
    k = max(1, round(r * h * w))
    d = _distance_2d(h, w, origin).ravel()
    order = np.argsort(d, kind="stable")
    n_center = min(k, int((d <= center_radius).sum()))
    rng = np.random.default_rng(seed)
    chosen = _weighted_choice(np.clip(1.0 - d, 0.0, 1.0) ** decay + 1e-4, k, rng, order[:n_center])
    return torch.from_numpy(chosen.reshape(h, w))


def radial(
    size: int | tuple[int, int],
    rate: float,
    seed: int = 0,
    origin: Origin = "center",
) -> torch.Tensor:
    """Radial lines through the zero frequency at equally spaced angles.

    The number of lines is increased until the sampled fraction reaches ``rate``; the angles
    are equally spaced over [0, pi) with a random offset drawn from ``seed``. The actual rate
    is close to but not exactly ``rate``: read it with :func:`rate`.

    Returns
    -------
    torch.Tensor
        Boolean mask of shape ``(H, W)``.
    """
    h, w, target, origin = _common_arguments(size, rate, origin)
    rng = np.random.default_rng(seed)
    offset = rng.random() * math.pi
    cy, cx = (h // 2, w // 2) if origin == "center" else (0, 0)
    radius = math.hypot(h, w)
    t = np.arange(-radius, radius, 0.5)
    if origin == "corner":
        t = t[t >= 0]

    def draw(n_lines: int) -> np.ndarray:
        mask = np.zeros((h, w), dtype=bool)
        angles = offset + np.arange(n_lines) * math.pi / n_lines
        if origin == "corner":
            angles = offset / 2 + np.arange(n_lines) * (math.pi / 2) / n_lines
        ys = np.rint(cy + np.outer(np.sin(angles), t)).astype(np.int64)
        xs = np.rint(cx + np.outer(np.cos(angles), t)).astype(np.int64)
        ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        mask[ys[ok], xs[ok]] = True
        return mask

    lo, hi = 1, 4 * max(h, w)
    if draw(hi).mean() < target:
        return torch.from_numpy(draw(hi))
    while lo < hi:  # smallest number of lines reaching the target rate
        mid = (lo + hi) // 2
        if draw(mid).mean() >= target:
            hi = mid
        else:
            lo = mid + 1
    return torch.from_numpy(draw(lo))


def uniform_random(size: int | tuple[int, int], rate: float, seed: int = 0) -> torch.Tensor:
    """``round(rate * H * W)`` points drawn uniformly without replacement.

    Returns
    -------
    torch.Tensor
        Boolean mask of shape ``(H, W)``.
    """
    h, w, r, _ = _common_arguments(size, rate)
    k = max(1, round(r * h * w))
    rng = np.random.default_rng(seed)
    mask = np.zeros(h * w, dtype=bool)
    mask[rng.choice(h * w, size=k, replace=False)] = True
    return torch.from_numpy(mask.reshape(h, w))


def rate(mask: torch.Tensor) -> float:
    """The fraction of sampled coefficients of a mask."""
    m = check_mask(mask)
    return float(m.float().mean())


def check_mask(mask: object, name: str = "mask", ndim: int = 2) -> torch.Tensor:
    """Validate a sampling mask: a boolean (or 0/1) tensor of ``ndim`` dims with a sample.

    Raises ``TypeError``/``ValueError`` naming ``name`` otherwise. Returns a bool tensor.
    """
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"argument '{name}' must be a boolean torch.Tensor, got {type(mask).__name__}")
    if mask.ndim != ndim:
        raise ValueError(f"argument '{name}' must have {ndim} dimensions, got shape {tuple(mask.shape)}")
    if mask.numel() == 0:
        raise ValueError(f"argument '{name}' is empty (shape {tuple(mask.shape)})")
    if mask.dtype != torch.bool:
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"argument '{name}' must be boolean or hold only 0 and 1 (dtype {mask.dtype})")
        mask = mask != 0
    if not bool(mask.any()):
        raise ValueError(f"argument '{name}' samples nothing (all False); an empty mask has no data")
    return mask


MASKS = {
    "variable_density_lines": variable_density_lines,
    "variable_density": variable_density,
    "radial": radial,
    "uniform_random": uniform_random,
}
"""Mask generators by name (used by configs and ``stablerecon list``)."""


def cartesian_lines(
    size: int | tuple[int, int],
    rate: float,
    acs: int | None = None,
    seed: int = 0,
    axis: int = 0,
    pattern: Literal["random", "equispaced"] = "random",
    origin: Origin = "center",
) -> torch.Tensor:
    """Cartesian undersampling of whole phase-encode lines with a fully sampled calibration region.

    The masks of clinical (parallel-imaging) MRI: ``k = max(1, round(rate * n))`` of the ``n``
    rows (``axis=0``; columns for ``axis=1``) are sampled, so the achieved rate is within
    ``1 / (2 n)`` of ``rate``. They are

    * the ``acs`` lines nearest the zero frequency (the auto-calibration signal region, a
      contiguous block of rows ``n // 2 - acs // 2 .. n // 2 - acs // 2 + acs - 1`` for
      ``origin="center"``), all of them, and
    * ``k - acs`` outer lines among the others: drawn uniformly at random without replacement
      (``pattern="random"``, the fastMRI-style random mask) or evenly spaced over the remaining
      lines with a random offset (``pattern="equispaced"``, the regular GRAPPA/SENSE pattern).

    Parameters
    ----------
    size:
        Image size ``H`` (square) or ``(H, W)``.
    rate:
        Target fraction of lines, in ``(0, 1]``.
    acs:
        Number of calibration lines, ``0 <= acs <= round(rate * n)``; ``None`` (default) takes
        ``round(0.08 n)`` (at least 1), capped at the budget ``k``.
    seed:
        Seed of the outer lines.
    axis:
        0 samples whole rows (phase encodes along ``H``), 1 whole columns.
    pattern:
        ``"random"`` (default) or ``"equispaced"``.
    origin:
        ``"center"`` (centred DFT, default) or ``"corner"``, as for the other masks.

    Returns
    -------
    torch.Tensor
        Boolean mask of shape ``(H, W)``.

    Examples
    --------
    >>> mask = cartesian_lines(32, rate=0.25, acs=4, seed=0)
    >>> int(mask.all(dim=1).sum()), bool(mask[14:18].all())
    (8, True)
    """
    h, w, r, origin = _common_arguments(size, rate, origin)
    if axis not in (0, 1):
        raise ValueError(f"argument 'axis' must be 0 or 1, got {axis!r}")
    if pattern not in ("random", "equispaced"):
        raise ValueError(f"argument 'pattern' must be 'random' or 'equispaced', got {pattern!r}")
    n = h if axis == 0 else w
    k = max(1, round(r * n))
    if acs is None:
        acs = min(k, max(1, round(0.08 * n)))
    if isinstance(acs, bool) or not isinstance(acs, (int, np.integer)):
        raise TypeError(f"argument 'acs' must be an int (number of calibration lines), got {acs!r}")
    acs = int(acs)
    if not 0 <= acs <= n:
        raise ValueError(f"argument 'acs' must lie in [0, {n}] (the image has {n} lines along axis {axis}), "
                         f"got {acs}")
    if acs > k:
        raise ValueError(f"argument 'acs' ({acs} lines) exceeds the {k} lines that rate={r} allows "
                         f"on {n} lines; lower 'acs' or raise 'rate'")
    d = _distance_1d(n, origin)
    chosen = np.zeros(n, dtype=bool)
    chosen[np.argsort(d, kind="stable")[:acs]] = True
    outer = k - acs
    if outer > 0:
        free = np.flatnonzero(~chosen)
        rng = np.random.default_rng(seed)
        if pattern == "random":
            chosen[rng.choice(free, size=outer, replace=False)] = True
        else:  # steps of free.size / outer >= 1 never pick a line twice
            picks = np.floor((np.arange(outer) + rng.random()) * (free.size / outer)).astype(np.int64)
            chosen[free[picks]] = True
    return _lines_mask(h, w, chosen, axis)


MASKS["cartesian_lines"] = cartesian_lines
