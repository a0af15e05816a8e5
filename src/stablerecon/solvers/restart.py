r"""The FIRENET restart scheme: restarted, rescaled primal-dual blocks.

One block runs ``p`` Chambolle-Pock steps (:func:`~stablerecon.solvers.primal_dual.cp_steps`)
from a dual variable reset to zero and outputs the ergodic average of its ``p`` iterates.
Between blocks the problem is rescaled: with ``eps_0 = ||y||_2`` and

.. math::

    \epsilon_k = e^{-1} (\delta + \epsilon_{k-1}), \qquad
    \alpha_k = \frac{2 \|A\|}{\epsilon_k\, p}, \qquad
    c_k = \mathrm{CP}_p(\alpha_k y,\; \alpha_k c_{k-1}) / \alpha_k .

The objective ``lam ||c||_{1,w} + ||B c - y||`` is 1-homogeneous in ``(c, y)``, so block ``k``
is Chambolle-Pock on the original problem with steps ``tau / alpha_k`` and
``sigma * alpha_k``: the primal step shrinks geometrically. Under a sharpness condition on the
problem (e.g. robust null space property of ``A`` on sparse vectors), every restart divides the
error bound by ``e`` until it reaches a floor set by the noise and the distance of the image to
sparse vectors, which ``delta`` should estimate: accuracy ``eps`` in ``O(|log eps|)`` blocks.

References
----------
Colbrook, Antun, Hansen, "The difficulty of computing stable and accurate neural networks: On
the barriers of deep learning and Smale's 18th problem", PNAS 119 (2022), and Colbrook,
"WARPd: A linearly convergent first-order primal-dual algorithm for inverse problems with
approximate sharpness conditions", SIAM J. Imaging Sci. 15 (2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..operators.base import LinearOperator, skip_finite_checks
from ..validation import positive_float, positive_int
from ._common import linear_operator
from .primal_dual import SqrtLassoProblem, cp_steps, step_sizes

__all__ = ["restarted_primal_dual", "level_weights", "level_sparsities", "pivotal_lam", "PIVOTAL_KAPPA"]

#: The factor ``kappa`` of :func:`pivotal_lam`, chosen on validation images (see that function).
PIVOTAL_KAPPA = 0.2


def level_weights(sparsities: Sequence[float] | torch.Tensor) -> list[float]:
    """FIRENET's level weights ``w_j = sqrt(s / s_j)`` from per-level sparsities ``s_j``.

    ``s = sum_j s_j``. Levels with ``s_j = 0`` get the weight of the sparsest non-empty level
    (they hold no signal, so a large weight is right; an infinite one would be unstable).
    """
    s = np.asarray([float(v) for v in sparsities], dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"argument 'sparsities' must be a non-empty sequence, got {sparsities!r}")
    if not np.isfinite(s).all() or (s < 0).any() or s.sum() <= 0:
        raise ValueError(f"argument 'sparsities' must be finite, >= 0, with a positive sum: {s.tolist()}")
    positive = s > 0
    w = np.empty_like(s)
    w[positive] = np.sqrt(s.sum() / s[positive])
    w[~positive] = w[positive].max()
    return w.tolist()


def pivotal_lam(num_coefficients: int, kappa: float = PIVOTAL_KAPPA) -> float:
    r"""The square-root LASSO weight ``lam = kappa * sqrt(2 ln N / N)`` for ``N`` coefficients.

    At a minimiser of ``lam ||c||_1 + ||B c - y||_2`` with residual ``r = y - B c`` the optimality
    condition reads ``||B^* r||_inf <= lam ||r||_2``: the weight bounds the correlation of the
    *normalised* residual with every column, so it does not depend on the noise level (the
    square-root LASSO is pivotal: Belloni, Chernozhukov, Wang, Biometrika 98, 2011; Adcock,
    Hansen, *Compressive Imaging*, CUP 2021, on the SR-LASSO's noise-independent parameter). For
    ``B = A W^*`` with orthonormal rows (subsampled unitary Fourier or Walsh-Hadamard sampling
    and an orthonormal wavelet ``W``) and white noise ``e``, ``B^* e`` spreads ``||e||_2`` over
    ``N`` coefficients and its largest entry is about ``||e||_2 sqrt(2 ln N / N)``: ``kappa = 1``
    is the universal threshold of Donoho and Johnstone (Biometrika 81, 1994) in this pivotal
    form, which removes all the noise and much of an image that is compressible rather than
    sparse. Smaller ``kappa`` keeps more detail; the default ``kappa = 0.2`` was chosen by
    ``benchmarks/firenet_natural.py`` on six validation photographs (camera, astronaut, clock,
    cell, grass, text; 15% and 25% variable-density Fourier sampling, 2% noise, 128 x 128),
    where the best ``kappa`` is 0.15-0.2 at 64, 128 and 256 pixels (so ``lam`` follows
    ``sqrt(2 ln N / N)``) and at 1%, 2% and 5% noise (0.15 at 1%, 0.2 at 5%).

    Parameters
    ----------
    num_coefficients:
        ``N``, the number of sparse coefficients (pixels ``H * W`` for an orthonormal wavelet).
    kappa:
        Factor ``> 0`` of the universal threshold.

    Examples
    --------
    >>> round(pivotal_lam(128 * 128), 5)
    0.00688
    """
    n = positive_int(num_coefficients, "num_coefficients", minimum=2)
    kappa = positive_float(kappa, "kappa")
    return kappa * math.sqrt(2.0 * math.log(n) / n)


def level_sparsities(coefficients: torch.Tensor, level_index: torch.Tensor,
                     fraction: float = 0.99) -> list[int]:
    """Per-level sparsities ``s_j`` of the best approximation keeping ``fraction`` of the energy.

    ``coefficients`` ``(..., N)`` (e.g. the wavelet coefficients of a typical image, averaged
    over a batch by energy); ``level_index`` ``(N,)`` gives each coefficient's level.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"argument 'fraction' must lie in (0, 1], got {fraction}")
    energy = coefficients.detach().abs().pow(2).reshape(-1, coefficients.shape[-1]).sum(0)
    order = torch.argsort(energy, descending=True)
    cumulative = torch.cumsum(energy[order], 0)
    keep = int(torch.searchsorted(cumulative, fraction * cumulative[-1]).item()) + 1
    chosen = level_index.cpu()[order[:keep].cpu()]
    levels = int(level_index.max()) + 1
    return torch.bincount(chosen, minlength=levels).tolist()


def restarted_primal_dual(
    y: torch.Tensor,
    op: LinearOperator,
    sparsifier: LinearOperator,
    lam: float,
    weights: Sequence[float] | torch.Tensor | None = None,
    restarts: int = 12,
    inner: int = 8,
    delta: float = 0.0,
    x0: torch.Tensor | None = None,
    tau: float | None = None,
    sigma: float | None = None,
    real: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    r"""FIRENET's restarted primal-dual iterations for the weighted square-root LASSO.

    ``restarts`` blocks of ``inner`` Chambolle-Pock steps (``restarts * inner`` layers), see the
    module docstring. Differentiable end to end.

    Parameters
    ----------
    y:
        Measurements ``(B, *op.out_shape)``.
    op, sparsifier, lam, weights, real:
        The problem ``min_c lam ||c||_{1,w} + ||A W^* c - y||_2``, see
        :class:`~stablerecon.solvers.primal_dual.SqrtLassoProblem` (``op``: any object with
        ``A`` and ``A_adjoint``, its shapes inferred from ``y`` if it declares none).
    restarts:
        Number of blocks ``n >= 1`` (default 12).
    inner:
        Chambolle-Pock steps per block ``p >= 1`` (default 8; see :class:`~stablerecon.nets.FIRENet`
        for how ``p`` and ``lam`` interact).
    delta:
        Error floor estimate ``delta >= 0`` (same units as ``||y||``): the rescaling stops
        shrinking at ``eps -> delta / (e - 1)``. ``0`` suits exact, noiseless data; with noise,
        a value near the noise norm avoids needlessly tiny steps.
    x0:
        Warm start image ``(B, C, H, W)`` (e.g. another network's output); default zero.
    tau, sigma:
        Base step sizes, default ``1 / ||A||``; ``tau sigma ||A||^2 <= 1`` is required.
    callback:
        Called as ``callback(k, x_k)`` with the image after each block ``k = 1..restarts``
        (e.g. to record error-versus-layers curves).
    progress:
        Show a tqdm progress bar over the blocks.

    Returns
    -------
    Tensor ``(B, C, H, W)``: the image ``W^* c_n``.
    """
    op = linear_operator(op, "op", "restarted_primal_dual", y)
    problem = SqrtLassoProblem(op, sparsifier, lam, weights, real)
    y = problem.check_measurements(y)
    restarts = positive_int(restarts, "restarts")
    inner = positive_int(inner, "inner")
    delta = positive_float(delta, "delta", allow_zero=True)
    norm = op.norm()
    tau, sigma = step_sizes(op, tau, sigma)
    c = problem.initial_coefficients(y, x0)
    rdt = c.real.dtype if c.is_complex() else c.dtype
    eps = torch.linalg.vector_norm(y.detach().flatten(1), dim=1).to(rdt)
    floor = eps * 1e-12 + torch.finfo(rdt).tiny  # keeps alpha finite when delta = 0
    with skip_finite_checks():
        for k in tqdm(range(1, restarts + 1), desc="FIRENET", disable=not progress, leave=False):
            eps = torch.maximum((delta + eps) / math.e, floor)
            alpha = 2.0 * norm / (eps * inner)
            z = torch.zeros_like(y)
            _, _, c = cp_steps(problem, y, c, z, inner, tau / alpha, sigma * alpha)
            if callback is not None:
                callback(k, problem.image(c))
    return problem.image(c)
