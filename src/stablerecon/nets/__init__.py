"""Reconstruction networks obeying ``forward(y, op) -> x_hat``.

- :class:`FIRENet`: restarted primal-dual iterations unrolled into a provably stable network.
- :class:`UNet`: the U-Net image-to-image network.
- :class:`PostProcessing`: ``A_dagger(y) + net(A_dagger(y))`` (FBPConvNet).
- :class:`ItNet`: unrolled U-Net and data-consistency steps.
- :class:`DeepImagePrior`: an untrained generator (:class:`SkipNet`, :class:`DeepDecoder`,
  :class:`ConvDecoder`) fitted to each measurement, with automatic early stopping
  (:mod:`stablerecon.nets.dip`).
"""

from . import dip
from .dip import ConvDecoder, DeepDecoder, DeepImagePrior, SkipNet
from .firenet import FIRENet
from .unet import PostProcessing, UNet, channels_to_complex, complex_to_channels
from .unrolled import ItNet
from .zero_filled import ZeroFilled

__all__ = ["ZeroFilled", "FIRENet", "UNet", "PostProcessing", "ItNet", "complex_to_channels", "channels_to_complex",
           "DeepImagePrior", "SkipNet", "DeepDecoder", "ConvDecoder", "dip"]
