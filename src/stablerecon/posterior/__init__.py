"""Posterior estimation and its diagnostics.

- :mod:`~stablerecon.posterior.mmd`: maximum mean discrepancy with inverse multiquadric kernels.
- :mod:`~stablerecon.posterior.calibration`: calibration error, SBC, ``Err_post``,
  ``Err_resim`` and MAP estimates from posterior samples.
- :mod:`~stablerecon.posterior.problems`: simulators (8-mode mixture, inverse kinematics,
  linear-Gaussian) and rejection ABC.
- :mod:`~stablerecon.posterior.inn`: affine coupling blocks and invertible networks;
  :class:`INN` trained bidirectionally with MMD losses (:func:`train_inn`);
  :class:`ConditionalINN` (:mod:`~stablerecon.posterior.cinn`), trained by maximum likelihood.
- :mod:`~stablerecon.posterior.baseline`: a point-estimate network with dropout sampling.
- :mod:`~stablerecon.posterior.digits`: 8 x 8 digits measured by a Gaussian matrix or an
  inpainting mask, the imaging problem; :class:`PosteriorMean`
  (:mod:`~stablerecon.posterior.reconstruct`) makes any sampler a reconstruction method.
- :mod:`~stablerecon.posterior.plots`: corner plots, mode scatter, SBC histograms, arm figures.

It may import :mod:`stablerecon.contracts`, :mod:`stablerecon.validation`, the operators,
metrics, data and solvers; never nets, training, audit, configs or the CLI.
"""

from . import baseline, calibration, cinn, digits, inn, mmd, plots, problems, reconstruct, training
from .baseline import DropoutRegressor
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
from .digits import DigitsProblem, image_figure
from .inn import INN, AffineCoupling, InvertibleNetwork
from .mmd import inverse_multiquadric
from .plots import arm_figure, corner_plot, sbc_histogram, scatter_modes
from .problems import GaussianMixture, InverseKinematics, LinearGaussian, rejection_abc
from .reconstruct import PosteriorMean
from .training import TRAINING_WIDTHS, LossWeights, train_inn

__all__ = [
    "calibration",
    "cinn",
    "inn",
    "mmd",
    "problems",
    "training",
    "baseline",
    "digits",
    "plots",
    "reconstruct",
    "DropoutRegressor",
    "DigitsProblem",
    "image_figure",
    "PosteriorMean",
    "arm_figure",
    "corner_plot",
    "sbc_histogram",
    "scatter_modes",
    "INN",
    "LossWeights",
    "TRAINING_WIDTHS",
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
