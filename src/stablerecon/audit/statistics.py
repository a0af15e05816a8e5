"""Statistics over the images of a dataset audit: the median of a per-image score and its
bootstrap confidence interval.

A verdict drawn from a test set is stated with its uncertainty ("amplification 4.2 [3.9, 4.6]
over 100 images"): :func:`median_ci` resamples the images with replacement (the percentile
bootstrap, Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13) and returns
the median with the ``level`` interval of the resampled medians. The resampling is seeded, so
the same scores give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MedianCI", "median_ci"]


@dataclass(frozen=True)
class MedianCI:
    """The median of ``n`` finite per-image scores and its bootstrap interval
    ``[low, high]`` at confidence ``level`` (``low == high == median`` for one image)."""

    median: float
    low: float
    high: float
    n: int
    level: float

    def text(self, digits: int = 3) -> str:
        """``"4.2 [3.9, 4.6] over 100 images"`` (``"4.2 on 1 image"`` for one)."""
        if self.n == 1:
            return f"{self.median:.{digits}g} on 1 image"
        low, high = f"{self.low:.{digits}g}", f"{self.high:.{digits}g}"
        return f"{self.median:.{digits}g} [{low}, {high}] over {self.n} images"


def median_ci(values: Sequence[float | None], *, level: float = 0.95, resamples: int = 2000,
              seed: int = 0) -> MedianCI | None:
    """Median of ``values`` and its percentile-bootstrap interval.

    Parameters
    ----------
    values:
        One score per image; ``None`` and NaN are left out (e.g. an amplification that is
        undefined on an image); ``+-inf`` (the PSNR of an exact reconstruction) is kept.
    level:
        Confidence level of the interval, in ``(0, 1)``.
    resamples:
        Bootstrap resamples (each draws ``n`` images with replacement).
    seed:
        Seed of the resampling.

    Returns
    -------
    MedianCI or None
        ``None`` when every value is ``None`` or NaN.
    """
    if not 0 < level < 1:
        raise ValueError(f"argument 'level' must lie in (0, 1), got {level!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"argument 'resamples' must be an integer >= 1, got {resamples!r}")
    finite = np.asarray([float(v) for v in values if v is not None and not math.isnan(float(v))],
                        dtype=np.float64)
    n = finite.size
    if n == 0:
        return None
    median = float(np.median(finite))
    if n == 1:
        return MedianCI(median, median, median, 1, level)
    rng = np.random.default_rng(seed)
    draws = finite[rng.integers(0, n, size=(resamples, n))]
    medians = np.median(draws, axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha], method="nearest")
    return MedianCI(median, float(low), float(high), n, level)
