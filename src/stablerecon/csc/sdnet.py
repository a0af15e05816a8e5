"""SDNet: a small ResNet-style image classifier whose convolutions are CSC layers.

:class:`SDNet` (Dai, Li, Tang, Yuan, Ma, "Revisiting sparse convolutional model for visual
recognition", NeurIPS 2022) puts a :class:`~stablerecon.csc.CSCLayer` in place of its stem
(``csc="first"``) or of every 3x3 convolution (``"all"``); ``csc="none"`` is the
plain-convolution baseline with the same shapes. The first CSC layer's ``lam`` can be turned
at test time (:mod:`stablerecon.csc.robust`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import choice, positive_int
from .layer import CSCLayer

__all__ = ["SDNet"]

# where SDNet puts CSC layers: the stem, every 3x3 convolution, or nowhere
_PLACEMENTS = ("first", "all", "none")


class _Block(nn.Module):
    """ResNet basic block ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

    def __init__(self, cin: int, cout: int, stride: int,
                 conv: Callable[[int, int, int], nn.Module]) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv(cout, cout, 1), nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SDNet(nn.Module):
    """A small ResNet-style classifier with CSC layers (SDNet; Dai et al., NeurIPS 2022).

    ``stem (kernel_size) -> BN -> ReLU -> block(width) -> block(2 width, stride 2) -> global average
    pool -> linear``. With ``csc="first"`` the stem is a :class:`~stablerecon.csc.CSCLayer`
    (``lam``, ``steps``), with ``"all"`` every 3x3 convolution is one (the 1x1 shortcut
    projection stays a convolution), with ``"none"`` all are plain convolutions: the baseline
    with the same shapes.

    Parameters
    ----------
    in_channels, num_classes:
        Image channels and classes.
    width:
        Channels of the stem and the first block (the second has ``2 width``).
    csc:
        ``"first"``, ``"all"`` or ``"none"``.
    lam, steps:
        Sparsity weight and FISTA steps of the CSC layers.
    kernel_size:
        Odd size of the stem's kernels (atoms); larger atoms make a less redundant dictionary,
        whose residual then measures the noise it cannot explain.
    seed:
        Seeds the initial weights.

    ``forward(x)`` takes images ``(B, in_channels, H, W)`` and returns logits ``(B, num_classes)``;
    ``forward(x, return_residual=True)`` also returns the first CSC layer's per-pixel residual ``(B,)``.
    Inputs are first standardised, ``(x - input_mean) / input_std`` (buffers, set from the
    training images by :func:`~stablerecon.training.train_classifier`), as in SDNet, so that
    ``lam`` is in units of the data's standard deviation.

    Examples
    --------
    >>> net = SDNet(in_channels=1, num_classes=10, width=8, csc="first", lam=0.1, steps=3).eval()
    >>> logits, residual = net(torch.rand(4, 1, 8, 8), return_residual=True)
    >>> tuple(logits.shape), tuple(residual.shape), net.first_csc.lam
    ((4, 10), (4,), 0.1)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32, csc: str = "first",
                 lam: float = 0.1, steps: int = 5, kernel_size: int = 3, seed: int = 0) -> None:
        super().__init__()
        where = "SDNet"
        csc = choice(csc, "csc", _PLACEMENTS, where=where)
        in_channels = positive_int(in_channels, "in_channels", where=where)
        num_classes = positive_int(num_classes, "num_classes", where=where)
        width = positive_int(width, "width", where=where)
        kernel_size = positive_int(kernel_size, "kernel_size", where=where)
        if kernel_size % 2 == 0:
            raise ValueError(f"SDNet: argument 'kernel_size' must be odd, got {kernel_size}")
        self.csc, self.in_channels, self.num_classes = csc, in_channels, num_classes
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)

            def conv(cin: int, cout: int, stride: int, use_csc: bool, k: int = 3) -> nn.Module:
                if use_csc:
                    return CSCLayer(cin, cout, k, stride, lam=lam, steps=steps)
                return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)

            every = csc == "all"
            self.stem = conv(in_channels, width, 1, csc != "none", kernel_size)
            self.bn = nn.BatchNorm2d(width)
            self.block1 = _Block(width, width, 1, lambda a, b, s: conv(a, b, s, every))
            self.block2 = _Block(width, 2 * width, 2, lambda a, b, s: conv(a, b, s, every))
            self.fc = nn.Linear(2 * width, num_classes)
        self.register_buffer("input_mean", torch.zeros(()))
        self.register_buffer("input_std", torch.ones(()))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - input_mean) / input_std``, the input the stem sees."""
        return (x - self.input_mean) / self.input_std

    @property
    def first_csc(self) -> CSCLayer:
        """The first CSC layer (the one whose ``lam`` the test-time tuning turns)."""
        if not isinstance(self.stem, CSCLayer):
            raise ValueError("SDNet: this network has no CSC layer (csc='none')")
        return self.stem

    def forward(self, x: torch.Tensor, return_residual: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, num_classes)`` of images ``x`` ``(B, in_channels, H, W)``; with
        ``return_residual`` also the first CSC layer's residual ``||x - D c||^2 / numel`` ``(B,)``
        on the normalised input."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"SDNet: argument 'x' must have shape (B, {self.in_channels}, H, W), got {got}")
        residual = None
        x = self.normalise(x)
        if isinstance(self.stem, CSCLayer):
            h, residual = self.stem(x, return_residual=True)
        else:
            if return_residual:
                raise ValueError("SDNet: return_residual needs a CSC layer (csc='none' has none)")
            h = self.stem(x)
        h = self.block2(self.block1(F.relu(self.bn(h))))
        logits = self.fc(h.mean(dim=(2, 3)))
        return (logits, residual) if return_residual else logits
