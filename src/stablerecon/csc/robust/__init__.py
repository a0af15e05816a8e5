r"""Test-time robustness of SDNet: turning the first CSC layer's ``lam`` to the noise.

SDNet's CSC layer solves ``min_{c >= 0} lam ||c||_1 + 1/2 ||x - D c||^2``; noise that the
dictionary does not explain is left in the residual ``r = x - D c``, and a larger ``lam`` leaves
more of it out of the code. Dai et al. (NeurIPS 2022, Sec. 4.3) sweep ``lam`` on corrupted test
sets, see the best ``lam`` rise with the noise, and fit the best ``lam`` as a function of the
layer's reconstruction residual, a statistic that needs no labels. This subpackage does the same:

- :mod:`~stablerecon.csc.robust.sweep`: :func:`lam_of` (set ``lam`` in a ``with`` block),
  :func:`lam_sweep` (per-sample correctness for every ``lam`` of a grid), :func:`residuals` (a
  per-sample statistic of the first CSC layer's residual, either its ``"noise"`` level,
  :func:`noise_level`, the default, or its mean square ``"energy"``);
- :mod:`~stablerecon.csc.robust.fit`: :class:`ResidualLamFit`, least squares
  ``lam = a + b log(statistic)`` from (typical statistic at a probe ``lam``, best ``lam``) pairs
  of several corrupted sets, with its ``R^2``; :func:`adaptive_predict`, labels with ``lam``
  chosen per sample from the fit (no labels used);
- :mod:`~stablerecon.csc.robust.pgd`: :func:`pgd_linf`, an ``l_inf`` PGD attack through the
  full unrolled network (Madry et al. 2018);
- :mod:`~stablerecon.csc.robust.study`: :func:`robustness_study`, all of it for a corruption x
  severity grid, fit on a validation split and measured on a test split, with the conv
  baseline beside it; :class:`RobustnessStudy`, its results and figure.

Which statistic of the residual? Its mean square (``"energy"``) mixes two things: the image
content that the ``l1`` penalty shrinks away, which is smooth and scales with the image, and
the noise that the dictionary leaves out, which is white. Per set the mean square still
follows the noise (the paper fits one line per noise type), but per sample the content term
dominates: on the digits it varies from image to image as much as the set means vary with
the noise, and the clipped Gaussian noise even lowers it (dark backgrounds lose contrast).
The ``"noise"`` statistic keeps only the white part: the robust standard deviation
``median |Laplacian r| / (0.6745 sqrt(20))`` of the residual's 5-point Laplacian, which is
zero on linear ramps and equals ``sigma`` on white Gaussian noise of standard deviation
``sigma`` (the median-absolute-deviation rule of Donoho & Johnstone 1994 on a Laplacian
high-pass, as in Immerkaer's noise estimate, 1996). It predicts the best ``lam`` per sample
and across noise types, so one pooled fit serves every noise and the choice needs neither the
label nor the corruption type (``benchmarks/csc.py`` measures both statistics side by side).
"""

from .fit import ResidualLamFit, adaptive_predict
from .pgd import pgd_linf
from .study import FIT_KINDS, RobustnessStudy, robustness_study
from .sweep import STATISTICS, lam_of, lam_sweep, noise_level, residuals

__all__ = [
    "STATISTICS",
    "FIT_KINDS",
    "lam_of",
    "noise_level",
    "residuals",
    "lam_sweep",
    "ResidualLamFit",
    "adaptive_predict",
    "pgd_linf",
    "RobustnessStudy",
    "robustness_study",
]
