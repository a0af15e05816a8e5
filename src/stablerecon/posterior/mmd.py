r"""Maximum mean discrepancy with inverse multiquadric kernels.

Ardizzone, Kruse, Wirkert, Rahner, Pellegrini, Klessen, Maier-Hein, Rother, Köthe, "Analyzing
inverse problems with invertible neural networks", ICLR 2019, train the latent and input
distributions of an INN by the MMD (Gretton et al., JMLR 2012) with a sum of inverse
multiquadric kernels at several widths, whose heavy tails keep gradients alive far from the
data:

.. math:: k(a, b) = \sum_h \frac{h^2}{h^2 + \|a - b\|_2^2}, \qquad
          \mathrm{MMD}^2(P, Q) = E\,k(a, a') + E\,k(b, b') - 2 E\,k(a, b).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["DEFAULT_WIDTHS", "inverse_multiquadric", "mmd"]

DEFAULT_WIDTHS: tuple[float, ...] = (0.2, 0.5, 0.9, 1.3)
"""Kernel widths ``h`` used by default (the multi-scale choice of the paper's toy code)."""


def _check_samples(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"argument '{name}' must be a torch.Tensor, got {type(value).__name__}")
    if value.ndim != 2 or value.shape[0] < 2:
        raise ValueError(f"argument '{name}' must be samples (N, D) with N >= 2, "
                         f"got shape {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"argument '{name}' contains NaN or Inf values")
    return value


def inverse_multiquadric(a: torch.Tensor, b: torch.Tensor,
                         widths: Sequence[float] = DEFAULT_WIDTHS) -> torch.Tensor:
    r"""Kernel matrix ``K[i, j] = sum_h h^2 / (h^2 + ||a_i - b_j||^2)``, shape ``(N, M)`` for
    samples ``a`` ``(N, D)`` and ``b`` ``(M, D)``."""
    if not widths or any(not (w > 0) for w in widths):
        raise ValueError(f"argument 'widths' must be positive numbers, got {list(widths)!r}")
    d2 = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)
    return sum(h * h / (h * h + d2) for h in widths)  # type: ignore[return-value]


def mmd(a: torch.Tensor, b: torch.Tensor, widths: Sequence[float] = DEFAULT_WIDTHS,
        unbiased: bool = True) -> torch.Tensor:
    r"""Squared MMD between the samples ``a`` ``(N, D)`` and ``b`` ``(M, D)`` (differentiable).

    ``unbiased=True`` (default) leaves the diagonal out of the within-sample means (Gretton et
    al., Eq. 3): zero in expectation when both samples come from one distribution, and may be
    slightly negative. ``unbiased=False`` is the biased (V-statistic) estimate, always >= 0.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> same = mmd(torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g))
        >>> shifted = mmd(torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g) + 1)
        >>> bool(abs(same) < 0.01 < shifted)
        True
    """
    a, b = _check_samples(a, "a"), _check_samples(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"arguments 'a' and 'b' must have the same dimension, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    kaa, kbb, kab = (inverse_multiquadric(p, q, widths) for p, q in ((a, a), (b, b), (a, b)))
    n, m = a.shape[0], b.shape[0]
    if unbiased:
        term_a = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
        term_b = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    else:
        term_a, term_b = kaa.mean(), kbb.mean()
    return term_a + term_b - 2 * kab.mean()
