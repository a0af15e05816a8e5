"""Convolutional sparse coding (CSC): the layer, the SDNet classifier, the denoiser, and the
test-time robustness study.

What lives here, one job per module:

- :mod:`~stablerecon.csc.layer`: :class:`CSCLayer`, the sparse code of its input in a learned
  convolutional dictionary by unrolled FISTA, whose ``lam`` can be changed at test time;
  :func:`csc_layers` lists the CSC layers of a model;
- :mod:`~stablerecon.csc.sdnet`: :class:`SDNet`, a small ResNet-style classifier whose first
  (or every 3x3) convolution is a CSC layer, and its plain-convolution baseline (``csc="none"``);
- :mod:`~stablerecon.csc.denoiser`: :class:`CSCDenoiser`, ``x -> D c(x)``, a reconstruction
  method inside ``stablerecon.nets.PostProcessing(..., residual=False)``;
- :mod:`stablerecon.csc.robust`: lam sweeps and residual statistics (:func:`lam_of`,
  :func:`noise_level`, :func:`residuals`, :func:`lam_sweep`), the residual-to-lam fit and the
  label-free choice (:class:`ResidualLamFit`, :func:`adaptive_predict`), PGD (:func:`pgd_linf`)
  and the study with its figure (:class:`RobustnessStudy`, :func:`robustness_study`).

Reference: Dai, Li, Tang, Yuan, Ma, "Revisiting sparse convolutional model for visual
recognition", NeurIPS 2022.

Imports: this package may import :mod:`stablerecon.contracts`, :mod:`stablerecon.validation`,
:mod:`stablerecon.operators`, :mod:`stablerecon.metrics` and :mod:`stablerecon.data` (the
corruptions of the study); never :mod:`stablerecon.nets`, :mod:`stablerecon.training`,
:mod:`stablerecon.audit` or :mod:`stablerecon.config`, which build on it.

>>> import torch
>>> from stablerecon.csc import CSCLayer
>>> code = CSCLayer(1, 4, kernel_size=3, lam=0.1, steps=5, seed=0)(torch.rand(1, 1, 8, 8))
>>> tuple(code.shape)
(1, 4, 8, 8)
"""

from . import robust
from .denoiser import CSCDenoiser
from .layer import CSCLayer, csc_layers
from .robust import (
    FIT_KINDS,
    STATISTICS,
    ResidualLamFit,
    RobustnessStudy,
    adaptive_predict,
    lam_of,
    lam_sweep,
    noise_level,
    pgd_linf,
    residuals,
    robustness_study,
)
from .sdnet import SDNet

__all__ = ["CSCLayer", "csc_layers", "SDNet", "CSCDenoiser", "robust",
           # the robustness study (stablerecon.csc.robust)
           "STATISTICS", "FIT_KINDS", "lam_of", "noise_level", "residuals", "lam_sweep", "ResidualLamFit",
           "adaptive_predict", "pgd_linf", "RobustnessStudy", "robustness_study"]
