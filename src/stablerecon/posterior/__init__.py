"""Posterior estimation and its diagnostics.

- :mod:`~stablerecon.posterior.mmd`: maximum mean discrepancy with inverse multiquadric kernels.
- :mod:`~stablerecon.posterior.calibration`: calibration error, SBC, ``Err_post``,
  ``Err_resim`` and MAP estimates from posterior samples.
- :mod:`~stablerecon.posterior.problems`: simulators (8-mode mixture, inverse kinematics,
  linear-Gaussian) and rejection ABC.
- :mod:`~stablerecon.posterior.inn`: affine coupling blocks and invertible networks;
  :class:`INN` trained bidirectionally with MMD losses (:func:`train_inn`);
  :class:`ConditionalINN` (:mod:`~stablerecon.posterior.cinn`), trained by maximum likelihood.
"""

from . import calibration, cinn, inn, mmd, problems, training
from .calibration import (
    CalibrationResult,
    calibration_curve,
    calibration_error,
    map_estimate,
    posterior_error,
    resimulation_error,
    sbc_ranks,
    sbc_test,
)
from .cinn import ConditionalINN
from .inn import INN, AffineCoupling, InvertibleNetwork
from .mmd import inverse_multiquadric
from .problems import GaussianMixture, InverseKinematics, LinearGaussian, rejection_abc
from .training import LossWeights, train_inn

__all__ = [
    "calibration",
    "cinn",
    "inn",
    "mmd",
    "problems",
    "training",
    "INN",
    "LossWeights",
    "train_inn",
    "ConditionalINN",
    "AffineCoupling",
    "InvertibleNetwork",
    "GaussianMixture",
    "InverseKinematics",
    "LinearGaussian",
    "rejection_abc",
    "inverse_multiquadric",
    "CalibrationResult",
    "calibration_curve",
    "calibration_error",
    "sbc_ranks",
    "sbc_test",
    "posterior_error",
    "resimulation_error",
    "map_estimate",
]
