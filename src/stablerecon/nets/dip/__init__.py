r"""The Deep Image Prior: an untrained generator fitted to one measurement.

Ulyanov, Vedaldi, Lempitsky, "Deep Image Prior", CVPR 2018 (IJCV 2020). A convolutional
generator ``G_theta`` with a fixed random input ``z`` is fitted to a single measurement ``y``,

.. math:: \theta^* \in \arg\min_\theta \| A\, G_\theta(z) - y \|_2^2, \qquad \hat x = G_{\theta^*}(z),

and the architecture itself is the prior: natural images are fitted long before noise (the
"noise impedance" of the paper's Fig. 2), so the fit must be *stopped early*.

What lives where
----------------
- :mod:`.generators`: the generators :class:`SkipNet` (the paper's ``skip`` encoder-decoder),
  :class:`DeepDecoder` (Heckel & Hand, ICLR 2019) and :class:`ConvDecoder` (Darestani & Heckel,
  2021, for MRI), with their private building blocks;
- :mod:`.stopping`: automatic early stopping without the ground truth, :class:`WindowedVariance`
  (ES-WMV) and :class:`ExponentialVariance` (ES-EMV) of Wang, Li, Zhuang, Chen, Liang, Sun,
  "Early stopping for deep image prior", TMLR 2023, their base :class:`EarlyStopping` and the
  factory :func:`~.stopping.make_stopper`;
- :mod:`.result`: :class:`DIPResult`, the chosen iteration, the loss, variance and (for
  evaluation, when the truth is given) PSNR curves, and the oracle-best iteration;
- :mod:`.prior`: :class:`DeepImagePrior`, a reconstruction method ``forward(y, op) -> x_hat``
  for any :class:`~stablerecon.contracts.Operator`, with the paper's input perturbation and
  exponential moving average (EMA) of the outputs, and a guard that restores the last good
  weights when the loss jumps.

Imports: this package may import :mod:`stablerecon.contracts`, :mod:`stablerecon.validation`,
:mod:`stablerecon.operators`, :mod:`stablerecon.metrics` and, inside ``nets``, the helpers of
:mod:`stablerecon.nets.unet` and :mod:`stablerecon.nets._operator`; nothing above ``nets``
(audit, methods, report, cli).
"""

from __future__ import annotations

from .generators import ConvDecoder, DeepDecoder, SkipNet
from .prior import DeepImagePrior
from .result import DIPResult
from .stopping import EarlyStopping, ExponentialVariance, WindowedVariance

__all__ = [
    "SkipNet",
    "DeepDecoder",
    "ConvDecoder",
    "EarlyStopping",
    "WindowedVariance",
    "ExponentialVariance",
    "DIPResult",
    "DeepImagePrior",
]
