"""stablerecon: imaging inverse problems with stability measured next to accuracy.

Submodules are imported on first use (``import stablerecon as sr; sr.operators...``):

- :mod:`stablerecon.operators` forward models ``y = A x`` (Fourier/MRI, Walsh-Hadamard, Radon/CT,
  Gaussian compressed sensing, blur, inpainting, downsampling) and noise models;
- :mod:`stablerecon.sparsity` wavelets and finite differences as operators, proximal maps;
- :mod:`stablerecon.metrics` PSNR, SSIM, NMSE, relative error;
- :mod:`stablerecon.data` shipped images, phantoms, detail insertion, corruptions;
- :mod:`stablerecon.solvers` FISTA, Chambolle-Pock (square-root LASSO, TV), the FIRENET restarts;
- :mod:`stablerecon.nets` FIRENET, U-Net, post-processing and unrolled (ItNet) networks, the
  Deep Image Prior;
- :mod:`stablerecon.posterior` invertible networks for posteriors, problems with simulators,
  calibration diagnostics;
- :mod:`stablerecon.config` validated configs; :mod:`stablerecon.training` training, checkpoints,
  shipped weights (``training.pretrained(name)``);
- :mod:`stablerecon.audit` the stability tests and the suite ``audit.run``; :mod:`stablerecon.report`
  its figures and HTML report; :mod:`stablerecon.methods` / :mod:`stablerecon.runner` methods
  and audits from configs (``stablerecon audit``, ``stablerecon demo``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = ("operators", "sparsity", "metrics", "data", "solvers", "nets", "posterior", "config",
               "training", "audit", "report", "methods", "runner")

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
