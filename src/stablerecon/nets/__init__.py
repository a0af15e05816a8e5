"""Reconstruction networks obeying ``forward(y, op) -> x_hat``.

- :class:`FIRENet`: restarted primal-dual iterations unrolled into a provably stable network;
  :func:`firenet_bound` bounds its output change under inexact input ``(y + e, A + E)``,
  :func:`worst_case_inexact` / :func:`random_inexact` measure it for any method.
- :class:`UNet`: the U-Net image-to-image network.
- :class:`PostProcessing`: ``A_dagger(y) + net(A_dagger(y))`` (FBPConvNet).
- :class:`ItNet`: unrolled U-Net and data-consistency steps.
- :class:`DeepImagePrior`: an untrained generator (:class:`SkipNet`, :class:`DeepDecoder`,
  :class:`ConvDecoder`) fitted to each measurement, with automatic early stopping
  (:mod:`stablerecon.nets.dip`).
- :class:`LISTA`: learned ISTA taking ``(y, A)`` (Gregor, LeCun 2010), for vector problems.
- :class:`ZeroFilled`: the operator's cheap inverse ``A_dagger(y)`` as a method.

Every network is an ``nn.Module`` callable as ``method(y, op)``
(:class:`stablerecon.contracts.Reconstructor`). This package may import
:mod:`stablerecon.contracts`, :mod:`stablerecon.validation`, the operators, sparsity, metrics,
data and solvers; never training, audit, configs or the CLI (convolutional sparse coding lives
in :mod:`stablerecon.csc`, posteriors in :mod:`stablerecon.posterior`).
"""

from . import dip
from .dip import ConvDecoder, DeepDecoder, DeepImagePrior, SkipNet
from .firenet import FIRENet
from .firenet_stability import FirenetBound, InexactChange, firenet_bound, random_inexact, worst_case_inexact
from .lista import LISTA
from .unet import PostProcessing, UNet, channels_to_complex, complex_to_channels
from .unrolled import ItNet
from .zero_filled import ZeroFilled

__all__ = ["ZeroFilled", "LISTA", "FIRENet", "firenet_bound", "FirenetBound", "InexactChange",
           "random_inexact", "worst_case_inexact", "UNet", "PostProcessing", "ItNet", "complex_to_channels",
           "channels_to_complex", "DeepImagePrior", "SkipNet", "DeepDecoder", "ConvDecoder", "dip"]
