"""U-Net, and the post-processing reconstruction network built on it (FBPConvNet)."""

from __future__ import annotations

import torch
from torch import nn

from ..contracts import Operator, apply_dagger, check_operator
from ..validation import boolean, positive_int
from ._operator import resolve_operator

__all__ = ["UNet", "PostProcessing", "complex_to_channels", "channels_to_complex"]


def complex_to_channels(z: torch.Tensor) -> torch.Tensor:
    """Stack real and imaginary parts as channels: ``(B, C, H, W)`` complex -> ``(B, 2C, H, W)``
    real (the ``C`` real parts first). Real input gets zero imaginary channels."""
    if not z.is_complex():
        return torch.cat((z, torch.zeros_like(z)), dim=1)
    return torch.cat((z.real, z.imag), dim=1)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`complex_to_channels`: ``(B, 2C, H, W)`` real -> ``(B, C, H, W)`` complex."""
    if x.shape[1] % 2:
        raise ValueError(f"argument 'x' must have an even number of channels, got shape {tuple(x.shape)}")
    c = x.shape[1] // 2
    return torch.complex(x[:, :c], x[:, c:])



class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = []
        for c in (cin, cout):
            layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(nn.Module):
    r"""The U-Net of Ronneberger et al. (MICCAI 2015) as used by FBPConvNet (Jin et al. 2017).

    ``depth`` times: two 3x3 convolutions (+ batch norm) + ReLU, then 2x2 max-pooling with the
    channels doubled; a bottleneck; then the mirror path with 2x2 transposed convolutions and
    skip connections by concatenation; a final 1x1 convolution. The final convolution starts
    at zero, so a residual network built on it (:class:`PostProcessing`, ``ItNet``) starts as
    the identity and training only has to learn the correction.

    Shapes: ``(B, in_channels, H, W)`` real -> ``(B, out_channels, H, W)`` real, with ``H`` and
    ``W`` divisible by ``2 ** depth``. Complex images enter as 2 channels (real, imaginary;
    :func:`complex_to_channels`).

    Parameters
    ----------
    in_channels, out_channels:
        Channels of input and output (1 for real images, 2 for complex ones).
    depth:
        Number of down-sampling steps (default 4).
    width:
        Channels at the finest scale (default 32); ``width * 2**depth`` at the bottleneck.
    batch_norm:
        Batch normalisation after every convolution (default ``True``).

    Examples
    --------
    >>> import torch
    >>> net = UNet(in_channels=2, out_channels=1, depth=3, width=8)
    >>> net(torch.rand(4, 2, 32, 32)).shape
    torch.Size([4, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, depth: int = 4, width: int = 32,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.depth = positive_int(depth, "depth", 0)
        self.width = positive_int(width, "width")
        self.batch_norm = bool(batch_norm)
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for c in chans[:-1]:
            self.down.append(_DoubleConv(cin, c, batch_norm))
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _DoubleConv(cin, chans[-1], batch_norm)
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for c_low, c in zip(chans[:0:-1], chans[-2::-1], strict=True):
            self.upsample.append(nn.ConvTranspose2d(c_low, c, 2, stride=2))
            self.up.append(_DoubleConv(2 * c, c, batch_norm))
        self.head = nn.Conv2d(chans[0], out_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (``2 ** depth``)."""
        return 2**self.depth

    def check_input(self, x: object, name: str = "x") -> torch.Tensor:
        """Validate an input ``(B, in_channels, H, W)`` real tensor with ``H, W`` multiples of
        :attr:`multiple`."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"UNet: argument '{name}' must be a torch.Tensor, got {type(x).__name__}")
        if x.is_complex() or not x.is_floating_point():
            raise TypeError(f"UNet: argument '{name}' must be a real floating tensor, got {x.dtype}")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet: argument '{name}' must have shape (B, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"UNet: image sides must be multiples of 2**depth = {self.multiple}, "
                             f"got {h}x{w} for argument '{name}'")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, H, W)`` to ``(B, out_channels, H, W)``."""
        x = self.check_input(x)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for upsample, block, skip in zip(self.upsample, self.up, reversed(skips), strict=True):
            x = block(torch.cat((upsample(x), skip), dim=1))
        return self.head(x)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, depth={self.depth}, "
                f"width={self.width}, batch_norm={self.batch_norm}")


def net_input(z: torch.Tensor, in_channels: int, name: str) -> torch.Tensor:
    """Present an image ``z`` ``(B, C, H, W)`` to a network with ``in_channels`` channels:
    ``2C`` stacks real and imaginary parts, ``C`` takes the real part."""
    c = z.shape[1]
    if in_channels == 2 * c:
        return complex_to_channels(z)
    if in_channels == c:
        return z.real if z.is_complex() else z
    raise ValueError(f"{name}: the network takes {in_channels} channels but the image has {c} "
                     f"(expected {c} for the real part or {2 * c} for real and imaginary parts)")


class PostProcessing(nn.Module):
    r"""Post-processing network: ``x_hat = A_dagger(y) + net(A_dagger(y))`` (residual, default)
    or ``x_hat = net(A_dagger(y))`` (``residual=False``).

    The FBPConvNet scheme (Jin, McCann, Froustey, Unser, IEEE TIP 2017): a cheap inverse
    (zero-filled adjoint for subsampled Fourier, filtered back-projection for Radon) followed
    by a residual U-Net that removes its artefacts. If the network takes twice the image's
    channels, the (complex) ``A_dagger(y)`` enters as real and imaginary channels, if it takes
    as many, its real part. If the network returns the image's channels, the output is real
    (the residual is added to the real part), and if it returns twice as many, complex. With
    ``residual=False`` the network's output is the reconstruction itself (e.g. a denoiser such
    as :class:`~stablerecon.csc.CSCDenoiser`, which already returns an image).

    Parameters
    ----------
    net:
        Image-to-image network with ``in_channels`` / ``out_channels`` attributes
        (e.g. :class:`UNet`).
    op:
        Default forward operator, used when ``forward`` is called without one.
    residual:
        Add ``A_dagger(y)`` to the network's output (default ``True``); ``False`` returns the
        network's output ``(B, C, H, W)`` (real) or ``(B, 2C, H, W)`` (as complex) unchanged.

    Examples
    --------
    >>> import torch
    >>> from stablerecon.operators import SubsampledFourier, masks
    >>> op = SubsampledFourier(masks.variable_density(32, rate=0.25, seed=0))
    >>> method = PostProcessing(UNet(in_channels=2, out_channels=1, depth=2, width=8), op)
    >>> x = torch.rand(1, 1, 32, 32)
    >>> bool(torch.allclose(method(op.A(x)), op.A_dagger(op.A(x)).real))  # untrained: the identity
    True
    >>> direct = PostProcessing(UNet(in_channels=1, out_channels=1, depth=2, width=8), op, residual=False)
    >>> bool((direct(op.A(x)) == 0).all())  # untrained U-Net outputs zero, and nothing is added
    True
    """

    differentiable = True
    name = "U-Net post-processing"

    def __init__(self, net: nn.Module, op: Operator | None = None, residual: bool = True) -> None:
        super().__init__()
        self.residual = boolean(residual, "residual", where="PostProcessing")
        for attr in ("in_channels", "out_channels"):
            if not isinstance(getattr(net, attr, None), int):
                raise TypeError(f"PostProcessing: argument 'net' must have an integer '{attr}' attribute")
        if op is not None:
            check_operator(op, where="PostProcessing")
        self.net = net
        self.op = op

    def forward(self, y: torch.Tensor, op: Operator | None = None) -> torch.Tensor:
        """Reconstruct ``x_hat`` ``(B, C, H, W)`` from measurements ``y``."""
        op = resolve_operator(op, self.op, "PostProcessing")
        z = apply_dagger(op, y)
        c = z.shape[1]
        inp = net_input(z, self.net.in_channels, "PostProcessing")
        out = self.net(inp)
        if out.shape[1] == 2 * c:
            out = channels_to_complex(out)
        elif out.shape[1] == c:
            z = z.real if z.is_complex() else z
        else:
            raise ValueError(f"PostProcessing: the network returns {out.shape[1]} channels; expected {c} "
                             f"(real image) or {2 * c} (complex image)")
        return z + out if self.residual else out
