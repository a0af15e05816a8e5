r"""The untrained generators of the Deep Image Prior: :class:`SkipNet` (Ulyanov et al., CVPR
2018), :class:`DeepDecoder` (Heckel & Hand, ICLR 2019) and :class:`ConvDecoder` (Darestani &
Heckel, IEEE TCI 2021), with their private building blocks.

Each maps a fixed code ``z`` to an image and has ``latent_shape(H, W)``, the shape ``(C, h, w)``
of the code for an ``H x W`` image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...validation import choice, int_sequence, positive_int

__all__ = ["SkipNet", "DeepDecoder", "ConvDecoder"]

Output = Literal["sigmoid", "linear"]
Upsample = Literal["bilinear", "nearest"]
OUTPUTS = ("sigmoid", "linear")


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = True) -> nn.Module:
    """Convolution with reflection padding (keeps the size at stride 1, halves it at stride 2)."""
    pad = (kernel - 1) // 2
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=0, bias=bias)
    return nn.Sequential(nn.ReflectionPad2d(pad), conv) if pad else conv


def _output_layer(output: str) -> nn.Module:
    return nn.Sigmoid() if output == "sigmoid" else nn.Identity()


class _SkipLevel(nn.Module):
    """One scale of :class:`SkipNet`: skip branch, downsampling branch (with the deeper levels),
    upsampling and the merge convolutions."""

    def __init__(self, cin: int, down: int, up: int, skip: int, deeper: nn.Module | None, deeper_out: int,
                 kernel: int, upsample: str) -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.skip = (nn.Sequential(_conv(cin, skip, 1), nn.BatchNorm2d(skip), act()) if skip else None)
        self.down = nn.Sequential(_conv(cin, down, kernel, stride=2), nn.BatchNorm2d(down), act(),
                                  _conv(down, down, kernel), nn.BatchNorm2d(down), act())
        self.deeper = deeper
        self.upsample = upsample
        merged = skip + deeper_out
        self.merge = nn.Sequential(nn.BatchNorm2d(merged), _conv(merged, up, kernel), nn.BatchNorm2d(up),
                                   act(), _conv(up, up, 1), nn.BatchNorm2d(up), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.down(x)
        if self.deeper is not None:
            d = self.deeper(d)
        kwargs = {"align_corners": False} if self.upsample == "bilinear" else {}
        d = F.interpolate(d, size=x.shape[-2:], mode=self.upsample, **kwargs)
        h = d if self.skip is None else torch.cat((self.skip(x), d), dim=1)
        return self.merge(h)


class SkipNet(nn.Module):
    r"""The ``skip`` encoder-decoder of the Deep Image Prior (Ulyanov et al., CVPR 2018,
    supplementary Fig. 1).

    Per level ``i`` (of ``depth``): a stride-2 3x3 convolution to ``channels_down[i]`` + batch
    norm + LeakyReLU(0.2) and a 3x3 convolution (+ BN + LeakyReLU); the deeper levels; upsampling
    by 2 (``"bilinear"`` or ``"nearest"``); concatenation with a 1x1 skip branch of
    ``channels_skip[i]`` channels (none if 0); batch norm, a 3x3 convolution to
    ``channels_up[i]`` and a 1x1 convolution (each + BN + LeakyReLU). A final 1x1 convolution
    gives ``out_channels``, through a sigmoid (``output="sigmoid"``, images in ``[0, 1]``) or
    not (``"linear"``, for complex or unbounded data). All convolutions pad by reflection.

    The paper's denoising network is ``depth=5``, 128 channels everywhere and 4 skip channels
    (:meth:`paper`); the default here is the same layout with 64 channels, about 4x cheaper on
    a CPU and as good on ``128 x 128`` images.

    Shapes: ``(1, in_channels, H, W) -> (1, out_channels, H, W)``; any ``H, W`` (levels whose
    size is odd are upsampled back to the skip branch's size).

    Parameters
    ----------
    in_channels, out_channels:
        Channels of the input code ``z`` and of the image.
    depth:
        Number of scales.
    channels_down, channels_up, channels_skip:
        Channels per level (an int for all levels); ``channels_skip`` may be 0.
    kernel_size:
        Size of the 3x3 convolutions (odd).
    upsample:
        ``"bilinear"`` (default) or ``"nearest"``.
    output:
        ``"sigmoid"`` (default) or ``"linear"``.

    Examples
    --------
    >>> net = SkipNet(out_channels=1, depth=3, channels_down=8, channels_up=8, channels_skip=2)
    >>> net(torch.rand(1, 32, 40, 40)).shape
    torch.Size([1, 1, 40, 40])
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 1, depth: int = 5,
                 channels_down: int | Sequence[int] = 64, channels_up: int | Sequence[int] = 64,
                 channels_skip: int | Sequence[int] = 4, kernel_size: int = 3,
                 upsample: Upsample = "bilinear", output: Output = "sigmoid") -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.depth = positive_int(depth, "depth")
        down = int_sequence(channels_down, depth, "channels_down", 1)
        up = int_sequence(channels_up, depth, "channels_up", 1)
        skip = int_sequence(channels_skip, depth, "channels_skip", 0)
        kernel = positive_int(kernel_size, "kernel_size")
        if kernel % 2 == 0:
            raise ValueError(f"argument 'kernel_size' must be odd, got {kernel}")
        choice(upsample, "upsample", ("bilinear", "nearest"))
        self.output = choice(output, "output", OUTPUTS)
        deeper: nn.Module | None = None
        deeper_out = 0
        for i in reversed(range(depth)):
            cin = self.in_channels if i == 0 else down[i - 1]
            level_deeper_out = down[i] if deeper is None else deeper_out
            deeper = _SkipLevel(cin, down[i], up[i], skip[i], deeper, level_deeper_out, kernel, upsample)
            deeper_out = up[i]
        self.body = deeper
        self.head = nn.Sequential(nn.Conv2d(up[0], self.out_channels, 1), _output_layer(output))

    @classmethod
    def paper(cls, out_channels: int = 1, output: Output = "sigmoid") -> SkipNet:
        """The paper's denoising / inpainting network: 5 levels of 128 channels, 4 skip channels."""
        return cls(32, out_channels, 5, 128, 128, 4, output=output)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape ``(C, h, w)`` of the input code for an image of ``height x width`` (both must
        exceed ``2 ** depth``, so that the coarsest level is at least 2 pixels wide)."""
        if min(height, width) <= 2**self.depth:
            raise ValueError(f"SkipNet: the image size {(height, width)} is too small for depth "
                             f"{self.depth}; both sides must exceed 2 ** depth = {2**self.depth}")
        return (self.in_channels, int(height), int(width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map the code ``z`` ``(B, in_channels, H, W)`` to an image ``(B, out_channels, H, W)``."""
        return self.head(self.body(z))


class _Decoder(nn.Module):
    """Shared part of :class:`DeepDecoder` and :class:`ConvDecoder`: a small code upsampled by 2
    per layer. Each layer is a ``kernel x kernel`` convolution and a bilinear upsampling (in that
    order if ``conv_first``), ReLU and batch norm; then a convolution, ReLU, batch norm and a 1x1
    convolution to ``out_channels``. Subclasses set ``kernel`` and ``conv_first``."""

    kernel: int = 1
    conv_first: bool = True

    def __init__(self, out_channels: int = 1, channels: int = 64, upsamplings: int = 5,
                 output: Output = "sigmoid") -> None:
        super().__init__()
        self.out_channels = positive_int(out_channels, "out_channels")
        self.channels = positive_int(channels, "channels")
        self.upsamplings = positive_int(upsamplings, "upsamplings", 0)
        self.output = choice(output, "output", OUTPUTS)
        c, kernel = self.channels, self.kernel
        layers: list[nn.Module] = []
        for _ in range(self.upsamplings):
            conv, up = _conv(c, c, kernel, bias=False), nn.Upsample(scale_factor=2, mode="bilinear")
            layers += [conv, up] if self.conv_first else [up, conv]
            layers += [nn.ReLU(inplace=True), nn.BatchNorm2d(c)]
        layers += [_conv(c, c, kernel, bias=False), nn.ReLU(inplace=True), nn.BatchNorm2d(c),
                   nn.Conv2d(c, self.out_channels, 1, bias=False), _output_layer(output)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map the code ``z`` to an image ``2 ** upsamplings`` times larger."""
        return self.body(z)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape ``(C, h, w)`` of the input code for an image of ``height x width``; both must be
        divisible by ``2 ** upsamplings``."""
        f = 2**self.upsamplings
        if height % f or width % f:
            raise ValueError(f"{type(self).__name__}: the image size {(height, width)} must be divisible by "
                             f"2 ** upsamplings = {f}")
        return (self.channels, height // f, width // f)


class DeepDecoder(_Decoder):
    r"""The Deep Decoder (Heckel & Hand, "Deep Decoder: concise image representations from
    untrained non-convolutional networks", ICLR 2019): an under-parameterised generator of 1x1
    convolutions, bilinear upsampling, ReLU and channel normalisation.

    ``upsamplings`` times (default 5): 1x1 convolution, bilinear upsampling by 2, ReLU, batch
    norm; then a 1x1 convolution, ReLU, batch norm and a 1x1 convolution to ``out_channels``
    (``output="sigmoid"`` by default, or ``"linear"``). The code has ``channels`` channels
    (default 64) at ``H / 2**upsamplings``.

    Shapes: ``(1, channels, H / 2^u, W / 2^u) -> (1, out_channels, H, W)``.

    Examples
    --------
    >>> DeepDecoder(channels=16, upsamplings=3).latent_shape(32, 32)
    (16, 4, 4)
    """

    kernel = 1
    conv_first = True


class ConvDecoder(_Decoder):
    r"""The ConvDecoder (Darestani & Heckel, "Accelerated MRI with un-trained neural networks",
    IEEE TCI 2021): the Deep Decoder with 3x3 convolutions, the untrained generator that works
    best for accelerated MRI.

    ``upsamplings`` times (default 4): bilinear upsampling by 2, 3x3 convolution, ReLU, batch
    norm; then a 3x3 convolution, ReLU, batch norm and a 1x1 convolution to ``out_channels``.
    The output is linear by default (complex MRI images are ``out_channels = 2`` real channels).

    Shapes: ``(1, channels, H / 2^u, W / 2^u) -> (1, out_channels, H, W)``.

    Examples
    --------
    >>> net = ConvDecoder(out_channels=2, channels=16, upsamplings=3)
    >>> net(torch.rand(1, *net.latent_shape(32, 32))).shape
    torch.Size([1, 2, 32, 32])
    """

    kernel = 3
    conv_first = False

    def __init__(self, out_channels: int = 1, channels: int = 64, upsamplings: int = 4,
                 output: Output = "linear") -> None:
        super().__init__(out_channels, channels, upsamplings, output)
