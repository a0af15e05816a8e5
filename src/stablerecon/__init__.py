"""stablerecon: imaging inverse problems with stability measured next to accuracy.

Submodules are imported on first use (``import stablerecon as sr; sr.operators...``), listed
from the bottom of the import graph up (each part imports only parts above it in this list):

- :mod:`stablerecon.contracts` the ``Operator`` and ``Reconstructor`` protocols, capability
  detection, ``STABILITY_THRESHOLD``; :mod:`stablerecon.validation` argument checks;
  :mod:`stablerecon.config_base` the config machinery; :mod:`stablerecon.registry` the
  extension-point tables, :mod:`stablerecon.targets` the user's own code named in configs;
- :mod:`stablerecon.interop` DeepInverse physics and models in both directions (optional extra
  ``stablerecon[deepinv]``);
- :mod:`stablerecon.operators` forward models ``y = A x`` (Fourier/MRI, Walsh-Hadamard, Radon/CT,
  Gaussian compressed sensing, blur, inpainting, downsampling), noise models, the operator
  kinds of configs; :mod:`stablerecon.metrics` PSNR, SSIM, NMSE, relative error;
- :mod:`stablerecon.sparsity` wavelets and finite differences as operators, proximal maps;
  :mod:`stablerecon.data` shipped images, phantoms, detail insertion, corruptions;
- :mod:`stablerecon.solvers` FISTA, Chambolle-Pock (square-root LASSO, TV), the FIRENET restarts;
- :mod:`stablerecon.nets` FIRENET, U-Net, post-processing and unrolled (ItNet) networks, the
  Deep Image Prior; :mod:`stablerecon.csc` convolutional sparse coding layers, SDNet and the
  robustness study; :mod:`stablerecon.posterior` invertible networks for posteriors, problems
  with simulators, calibration diagnostics;
- :mod:`stablerecon.training` training, checkpoints, shipped weights
  (``training.pretrained(name)``); :mod:`stablerecon.report` the audit's figures and HTML report;
- :mod:`stablerecon.audit` the stability tests, their registry ``TESTS`` and the suite
  ``audit.run``;
- :mod:`stablerecon.recipes` methods and images from config descriptions (the method kinds);
  :mod:`stablerecon.config` every YAML config; :mod:`stablerecon.runner` audits from configs
  (``stablerecon audit``, ``stablerecon demo``); ``stablerecon.cli`` the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_SUBMODULES = ("contracts", "validation", "interop", "operators", "sparsity", "metrics", "data", "solvers",
               "nets", "csc", "posterior", "training", "audit", "report", "config", "recipes", "registry",
               "targets", "runner")

__all__ = ["__version__", *_SUBMODULES]

if TYPE_CHECKING:  # pragma: no cover
    from . import data, metrics, operators, sparsity  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'stablerecon' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
