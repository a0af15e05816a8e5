"""Sparsifying transforms as linear operators and the proximal maps of sparse regularisers.

- :class:`Wavelet`: orthonormal periodised 2-D discrete wavelet transform (analysis ``W``,
  synthesis ``W^*``), flat coefficients with per-level bookkeeping for weighted l1 norms;
- :class:`FiniteDifference`: the discrete gradient ``D`` of total variation (Neumann or periodic);
- :func:`soft_threshold`: prox of ``t ||.||_1`` (real and complex, per-coefficient weights);
- :func:`group_soft_threshold`: prox of a mixed l2-l1 norm, e.g. isotropic TV on ``D x``;
- :func:`project_l2_ball`: Euclidean projection onto ``{||x - c||_2 <= r}`` per batch item.

Modules: :mod:`~stablerecon.sparsity.wavelet`, :mod:`~stablerecon.sparsity.finite_difference`
(transforms, subclasses of :class:`stablerecon.operators.LinearOperator`) and
:mod:`~stablerecon.sparsity.prox` (proximal maps and projections).

Imports: besides :mod:`stablerecon.operators` (the operator base class and tensor checks), this
package may import nothing of stablerecon but :mod:`stablerecon.contracts`,
:mod:`stablerecon.validation` and :mod:`stablerecon.files`.
"""

from __future__ import annotations

from .finite_difference import FiniteDifference
from .prox import group_soft_threshold, project_l2_ball, soft_threshold
from .wavelet import Wavelet, orthogonal_wavelets

__all__ = [
    "Wavelet",
    "orthogonal_wavelets",
    "FiniteDifference",
    "soft_threshold",
    "group_soft_threshold",
    "project_l2_ball",
]
