"""Posterior estimation and its diagnostics.

- :mod:`~stablerecon.posterior.mmd`: maximum mean discrepancy with inverse multiquadric kernels.
- :mod:`~stablerecon.posterior.calibration`: calibration error, SBC, ``Err_post``,
  ``Err_resim`` and MAP estimates from posterior samples.
"""

from . import calibration, mmd
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
from .mmd import inverse_multiquadric

__all__ = [
    "calibration",
    "mmd",
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
