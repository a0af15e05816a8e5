r"""The Deep Image Prior: an untrained generator fitted to one measurement.

Ulyanov, Vedaldi, Lempitsky, "Deep Image Prior", CVPR 2018 (IJCV 2020). A convolutional
generator ``G_theta`` with a fixed random input ``z`` is fitted to a single measurement ``y``,

.. math:: \theta^* \in \arg\min_\theta \| A\, G_\theta(z) - y \|_2^2, \qquad \hat x = G_{\theta^*}(z),

and the architecture itself is the prior: natural images are fitted long before noise (the
"noise impedance" of the paper's Fig. 2), so the fit must be *stopped early*. This module has

- the generators: :class:`SkipNet` (the paper's ``skip`` encoder-decoder), :class:`DeepDecoder`
  (Heckel & Hand, ICLR 2019) and :class:`ConvDecoder` (Darestani & Heckel, 2021, for MRI);
- :class:`DeepImagePrior`, a reconstruction method ``forward(y, op) -> x_hat`` for any operator
  of the library, with the paper's input perturbation and exponential moving average (EMA) of
  the outputs, and a guard that restores the last good weights when the loss jumps;
- automatic early stopping without the ground truth: :class:`WindowedVariance` (ES-WMV) and
  :class:`ExponentialVariance` (ES-EMV) of Wang, Li, Zhuang, Chen, Liang, Sun, "Early stopping
  for deep image prior", TMLR 2023;
- :class:`DIPResult`: the chosen iteration, the loss, variance and (for evaluation, when the
  truth is given) PSNR curves, and the oracle-best iteration.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..operators.base import LinearOperator, all_finite, skip_finite_checks
from ._operator import resolve_operator
from .unet import _check_positive_int, channels_to_complex

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

Output = Literal["sigmoid", "linear"]
Upsample = Literal["bilinear", "nearest"]


def _positive_float(value: object, name: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"argument '{name}' must be a finite number {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _channel_list(value: int | Sequence[int], depth: int, name: str, minimum: int) -> tuple[int, ...]:
    single = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    values = (value,) * depth if single else value
    try:
        values = tuple(values)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"argument '{name}' must be an int or a sequence of {depth} ints, "
                         f"got {value!r}") from None
    if len(values) != depth:
        raise ValueError(f"argument '{name}' must have one entry per level ({depth}), got {len(values)}")
    for v in values:
        _check_positive_int(v, name, minimum)
    return tuple(int(v) for v in values)


def _check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"argument '{name}' must be one of {list(choices)}, got {value!r}")
    return str(value)


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
        self.in_channels = _check_positive_int(in_channels, "in_channels")
        self.out_channels = _check_positive_int(out_channels, "out_channels")
        self.depth = _check_positive_int(depth, "depth")
        down = _channel_list(channels_down, depth, "channels_down", 1)
        up = _channel_list(channels_up, depth, "channels_up", 1)
        skip = _channel_list(channels_skip, depth, "channels_skip", 0)
        kernel = _check_positive_int(kernel_size, "kernel_size")
        if kernel % 2 == 0:
            raise ValueError(f"argument 'kernel_size' must be odd, got {kernel}")
        _check_choice(upsample, "upsample", ("bilinear", "nearest"))
        self.output = _check_choice(output, "output", ("sigmoid", "linear"))
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
    convolution to ``out_channels``."""

    def __init__(self, out_channels: int, channels: int, upsamplings: int, output: Output, kernel: int,
                 conv_first: bool) -> None:
        super().__init__()
        self.out_channels = _check_positive_int(out_channels, "out_channels")
        self.channels = _check_positive_int(channels, "channels")
        self.upsamplings = _check_positive_int(upsamplings, "upsamplings", 0)
        self.output = _check_choice(output, "output", ("sigmoid", "linear"))
        c = self.channels
        layers: list[nn.Module] = []
        for _ in range(self.upsamplings):
            conv, up = _conv(c, c, kernel, bias=False), nn.Upsample(scale_factor=2, mode="bilinear")
            layers += [conv, up] if conv_first else [up, conv]
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

    ``upsamplings`` times: 1x1 convolution, bilinear upsampling by 2, ReLU, batch norm; then a
    1x1 convolution, ReLU, batch norm and a 1x1 convolution to ``out_channels`` (sigmoid or
    linear output). The code has ``channels`` channels at ``H / 2**upsamplings``.

    Shapes: ``(1, channels, H / 2^u, W / 2^u) -> (1, out_channels, H, W)``.

    Examples
    --------
    >>> net = DeepDecoder(out_channels=1, channels=16, upsamplings=3)
    >>> net(torch.rand(1, *net.latent_shape(32, 32))).shape
    torch.Size([1, 1, 32, 32])
    """

    def __init__(self, out_channels: int = 1, channels: int = 64, upsamplings: int = 5,
                 output: Output = "sigmoid") -> None:
        super().__init__(out_channels, channels, upsamplings, output, kernel=1, conv_first=True)


class ConvDecoder(_Decoder):
    r"""The ConvDecoder (Darestani & Heckel, "Accelerated MRI with un-trained neural networks",
    IEEE TCI 2021): the Deep Decoder with 3x3 convolutions, the untrained generator that works
    best for accelerated MRI.

    ``upsamplings`` times: bilinear upsampling by 2, 3x3 convolution, ReLU, batch norm; then a
    3x3 convolution, ReLU, batch norm and a 1x1 convolution to ``out_channels``. The output is
    linear by default (complex MRI images are ``out_channels = 2`` real channels).

    Examples
    --------
    >>> net = ConvDecoder(out_channels=2, channels=16, upsamplings=3)
    >>> net(torch.rand(1, *net.latent_shape(32, 32))).shape
    torch.Size([1, 2, 32, 32])
    """

    def __init__(self, out_channels: int = 1, channels: int = 64, upsamplings: int = 4,
                 output: Output = "linear") -> None:
        super().__init__(out_channels, channels, upsamplings, output, kernel=3, conv_first=False)


# ----------------------------------------------------------------------------- early stopping


class EarlyStopping:
    """Base class of ground-truth-free early-stopping rules for the Deep Image Prior.

    A rule sees the raw output ``x_t`` of every iteration through :meth:`update`, keeps a score
    per iteration (``values``, NaN while undefined), and tracks the iteration of the lowest score
    (``best_iteration``). It asks to stop (``stop``) after ``patience`` iterations without a new
    lowest score. :meth:`reset` starts afresh (one rule object can serve many fits)."""

    name = "early stopping"

    def __init__(self, patience: int) -> None:
        self.patience = _check_positive_int(patience, "patience")
        self.reset()

    def reset(self) -> None:
        """Forget all iterations seen."""
        self.values: list[float] = []
        self.best_iteration: int | None = None
        self.best_value = math.inf
        self.stop = False

    def score(self, x: torch.Tensor) -> float:
        """The score of the newest output ``x`` (NaN while the rule cannot score yet)."""
        raise NotImplementedError

    def replay(self, values: Sequence[float]) -> tuple[int | None, int | None]:
        """What the rule would choose from recorded scores ``values`` (e.g. the ``variances``
        of a fit run with a patience longer than the schedule): ``(chosen iteration, iteration
        at which it stops)``, the second ``None`` if it would not stop. Does not change the rule."""
        best, best_value = None, math.inf
        for t, value in enumerate(values):
            if math.isfinite(value) and value < best_value:
                best, best_value = t, value
            elif best is not None and t - best >= self.patience:
                return best, t
        return best, None

    def update(self, iteration: int, x: torch.Tensor) -> bool:
        """Record the output ``x`` of ``iteration``; return whether it is the new best."""
        value = self.score(x.detach())
        self.values.append(value)
        improved = math.isfinite(value) and value < self.best_value
        if improved:
            self.best_value, self.best_iteration = value, iteration
        elif self.best_iteration is not None and iteration - self.best_iteration >= self.patience:
            self.stop = True
        return improved


class WindowedVariance(EarlyStopping):
    r"""ES-WMV: the windowed moving variance of the outputs (Wang et al., TMLR 2023, Alg. 1).

    With the last ``window`` outputs ``x_{t-W+1}, ..., x_t`` and their mean ``m_t``,

    .. math:: \mathrm{VAR}(t) = \frac{1}{W} \sum_{w=0}^{W-1} \frac{\| x_{t-w} - m_t \|_2^2}{n},

    (``n`` pixels). The variance follows the PSNR curve upside down: it falls while the
    generator learns the image, is lowest near the PSNR peak, and rises as the noise is fitted.
    The chosen iteration is the one of the lowest variance, declared after ``patience``
    iterations without a lower one. The paper uses ``W = 100`` and ``P = 1000`` for
    2000-iteration-scale fits.
    """

    name = "ES-WMV"

    def __init__(self, window: int = 100, patience: int = 300) -> None:
        self.window = _check_positive_int(window, "window", 2)
        self._buffer: torch.Tensor | None = None
        super().__init__(patience)

    def reset(self) -> None:
        super().reset()
        self._buffer, self._seen = None, 0

    def score(self, x: torch.Tensor) -> float:
        flat = x.reshape(-1)
        if flat.is_complex():
            flat = torch.view_as_real(flat).reshape(-1)
        if self._buffer is None:
            self._buffer = flat.new_zeros((self.window, flat.numel()), dtype=torch.float64)
        self._buffer[self._seen % self.window] = flat
        self._seen += 1
        if self._seen < self.window:
            return math.nan
        return float(self._buffer.var(dim=0, unbiased=False).mean())


class ExponentialVariance(EarlyStopping):
    r"""ES-EMV: the exponential moving variance of the outputs (Wang et al., TMLR 2023, Sec. 3.3),
    a memory-free variant of :class:`WindowedVariance`:

    .. math:: \delta_t = x_t - m_{t-1},\quad m_t = m_{t-1} + \alpha \delta_t, \quad
              v_t = (1 - \alpha)\,(v_{t-1} + \alpha \|\delta_t\|_2^2 / n).

    Scores start after ``warmup`` iterations (default ``round(2 / alpha)``), when the moving
    averages have forgotten their start.
    """

    name = "ES-EMV"

    def __init__(self, alpha: float = 0.05, patience: int = 300, warmup: int | None = None) -> None:
        alpha = _positive_float(alpha, "alpha")
        if alpha >= 1:
            raise ValueError(f"argument 'alpha' must be in (0, 1), got {alpha!r}")
        self.alpha = alpha
        self.warmup = round(2 / alpha) if warmup is None else _check_positive_int(warmup, "warmup", 0)
        super().__init__(patience)

    def reset(self) -> None:
        super().reset()
        self._mean: torch.Tensor | None = None
        self._var = 0.0
        self._seen = 0

    def score(self, x: torch.Tensor) -> float:
        flat = x.reshape(-1).to(torch.complex128 if x.is_complex() else torch.float64)
        self._seen += 1
        if self._mean is None:
            self._mean = flat.clone()
            return math.nan
        delta = flat - self._mean
        self._mean += self.alpha * delta
        self._var = (1 - self.alpha) * (self._var + self.alpha * float(delta.abs().pow(2).mean()))
        return self._var if self._seen > self.warmup else math.nan


def _make_stopper(early_stopping: EarlyStopping | str | None) -> EarlyStopping | None:
    if early_stopping is None or isinstance(early_stopping, EarlyStopping):
        return copy.deepcopy(early_stopping)
    if early_stopping == "wmv":
        return WindowedVariance()
    if early_stopping == "emv":
        return ExponentialVariance()
    raise ValueError(f"argument 'early_stopping' must be None, 'wmv', 'emv' or an EarlyStopping, "
                     f"got {early_stopping!r}")


# ----------------------------------------------------------------------------- the fit


@dataclass
class DIPResult:
    """The record of one Deep Image Prior fit (:meth:`DeepImagePrior.fit`).

    Attributes
    ----------
    image:
        The reconstruction ``(1, C, H, W)``: the EMA output (raw if ``ema`` is None) at
        ``stop_iteration``.
    raw, ema:
        The raw and EMA outputs at ``stop_iteration`` (``ema`` None without averaging).
    final_raw, final_ema:
        The outputs at the last iteration run.
    stop_iteration:
        Iteration (0-based) of ``image``: the early-stopping choice, or the last iteration.
    iterations_run:
        Iterations actually run (fewer than ``steps`` when the rule stopped the fit).
    stopped_early:
        Whether the early-stopping rule ended the fit.
    rule:
        Name of the early-stopping rule (``None`` without one).
    losses:
        Data-fit loss ``mean |A G(z) - y|^2`` per iteration (NaN at a restored iteration).
    variances:
        The rule's score per iteration (NaN while undefined), empty without a rule.
    psnr, psnr_ema:
        PSNR (dB) of the raw and EMA outputs per iteration, when ``truth`` was given (empty
        otherwise). Evaluation only: nothing in the fit uses them.
    restores:
        Iterations at which the divergence guard restored the last good weights.
    seconds:
        Wall time of the fit.
    observed:
        Scores per iteration of the ``observers`` rules, by rule name.
    """

    image: torch.Tensor
    raw: torch.Tensor
    ema: torch.Tensor | None
    final_raw: torch.Tensor
    final_ema: torch.Tensor | None
    stop_iteration: int
    iterations_run: int
    stopped_early: bool
    rule: str | None
    losses: np.ndarray
    variances: np.ndarray
    psnr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    psnr_ema: np.ndarray = field(default_factory=lambda: np.zeros(0))
    restores: list[int] = field(default_factory=list)
    seconds: float = 0.0
    observed: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def psnr_curve(self) -> np.ndarray:
        """The PSNR curve of the kind of output returned (EMA if averaged, else raw)."""
        return self.psnr_ema if self.ema is not None and self.psnr_ema.size else self.psnr

    @property
    def oracle_iteration(self) -> int | None:
        """Iteration of the highest PSNR of the returned kind of output (needs the truth)."""
        curve = self.psnr_curve
        if not curve.size or not np.isfinite(curve).any():
            return None
        return int(np.nanargmax(curve))

    @property
    def oracle_psnr(self) -> float | None:
        """The highest PSNR (dB) of the returned kind of output (needs the truth)."""
        i = self.oracle_iteration
        return None if i is None else float(self.psnr_curve[i])

    @property
    def stop_psnr(self) -> float | None:
        """PSNR (dB) of ``image`` (needs the truth)."""
        curve = self.psnr_curve
        return float(curve[self.stop_iteration]) if curve.size else None

    def figure(self, title: str | None = None) -> Any:
        """A matplotlib figure of the fit: loss, the rule's score and (with the truth) the PSNR
        curves, with the chosen and the oracle iterations marked."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        panels = 3 if self.psnr.size else 2
        fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.2), constrained_layout=True)
        steps = np.arange(self.losses.size)
        axes[0].semilogy(steps, self.losses, lw=0.8)
        axes[0].set(xlabel="iteration", ylabel="data-fit loss", title="loss")
        if self.variances.size:
            axes[1].semilogy(np.arange(self.variances.size), self.variances, lw=0.8)
        axes[1].set(xlabel="iteration", ylabel="score", title=self.rule or "no early stopping")
        if self.psnr.size:
            axes[2].plot(steps, self.psnr, lw=0.6, alpha=0.6, label="raw")
            if self.psnr_ema.size:
                axes[2].plot(steps, self.psnr_ema, lw=1.0, label="EMA")
            axes[2].set(xlabel="iteration", ylabel="PSNR (dB)", title="PSNR (evaluation only)")
            if self.oracle_iteration is not None:
                axes[2].axvline(self.oracle_iteration, color="tab:green", ls=":", label="oracle")
            axes[2].legend(fontsize=8)
        for ax in axes[1:]:
            ax.axvline(self.stop_iteration, color="tab:red", ls="--", lw=1)
        if title:
            fig.suptitle(title)
        return fig


class DeepImagePrior(nn.Module):
    r"""The Deep Image Prior as a reconstruction method ``forward(y, op) -> x_hat``.

    For each measurement, a fresh copy of ``generator`` (same initial weights every time) is
    fitted with Adam to ``y`` from a fixed random code ``z ~ U(0, input_scale)``:

    .. math:: \min_\theta \frac{1}{m} \| A\, G_\theta(z + \sigma_p \varepsilon_t) - y \|_2^2,
              \qquad \varepsilon_t \sim \mathcal N(0, I) \text{ fresh at every step},

    (Ulyanov et al., CVPR 2018; ``sigma_p = input_noise_std``, the paper's ``reg_noise_std``).
    For inpainting (:class:`~stablerecon.operators.Inpainting`) ``A`` keeps only the observed
    pixels, so only they enter the loss. The returned image is the exponential moving average
    ``bar x_t = ema * bar x_{t-1} + (1 - ema) x_t`` of the outputs (``ema=None``: the raw
    output) at the iteration chosen by ``early_stopping`` (ES-WMV by default), or at the last
    of ``steps`` iterations without a rule.

    The variance rules are made for noisy data (denoising, where the PSNR peaks and falls). On
    problems with little noise whose PSNR keeps rising slowly (MRI, CT) they stop too early:
    use ``early_stopping=None`` and a fixed schedule there (``benchmarks/dip.py`` measures both).

    A divergence guard keeps a copy of the weights and optimiser state every ``backup_every``
    iterations; when the loss is not finite or exceeds ``divergence_factor`` times the loss at
    that copy, the copy is restored (the paper's code does the same on a 5 dB drop).

    The method is fitted afresh for every call: it is *not* differentiable with respect to
    ``y`` in any useful sense (``differentiable = False``), so the stability audit attacks it
    with its gradient-free search. A call costs ``steps`` generator passes per image; use
    :meth:`cheap` (fewer steps, a smaller generator) inside audits.

    Parameters
    ----------
    generator:
        The untrained network, ``None`` for :class:`SkipNet` (64 channels, 5 levels) with the
        image's channels. Any module mapping a code to an image; if it has
        ``latent_shape(H, W)`` that gives the code's shape, otherwise ``(input_channels, H, W)``.
    steps:
        The fixed schedule: most iterations per fit.
    lr:
        Adam learning rate.
    input_noise_std:
        ``sigma_p``, the std of the perturbation of ``z`` at every step (0: none).
    ema:
        Weight of the exponential moving average of the outputs in ``[0, 1)``; ``None``: none.
    early_stopping:
        ``"wmv"`` (default, :class:`WindowedVariance`), ``"emv"`` (:class:`ExponentialVariance`),
        an :class:`EarlyStopping` instance, or ``None`` to run all ``steps``.
    input_channels, input_scale:
        Channels (for generators without ``latent_shape``) and range of the code ``z``.
    complex_image:
        Reconstruct a complex image: the generator gives ``2C`` real channels (real parts
        first), e.g. for MRI with phase. Default: a real image.
    divergence_factor, backup_every:
        The divergence guard (see above).
    monitor:
        What the early-stopping rule watches: ``"clean"`` (default) the output ``G(z)`` at the
        unperturbed code (one extra forward pass per iteration), ``"raw"`` the output of the
        training step (at the perturbed code), ``"ema"`` the averaged output. With input
        perturbation the raw outputs' variance mostly measures the perturbation, which shrinks
        as the fit goes on, so the variance keeps falling past the PSNR peak; the clean output's
        variance measures the drift of the fit itself, lowest near the peak.
    seed:
        Seeds the default generator's initial weights, the code ``z`` and the perturbations.
    progress:
        Show a tqdm bar with the loss per fit.
    op:
        Default operator, used when ``forward`` is called without one.

    Examples
    --------
    >>> from stablerecon.operators import Identity
    >>> x = torch.rand(1, 1, 32, 32)
    >>> dip = DeepImagePrior(SkipNet(depth=3, channels_down=8, channels_up=8), steps=20, progress=False)
    >>> dip(x + 0.1 * torch.randn(1, 1, 32, 32), Identity(32)).shape
    torch.Size([1, 1, 32, 32])
    """

    differentiable = False
    name = "Deep Image Prior"

    def __init__(self, generator: nn.Module | None = None, steps: int = 3000, lr: float = 0.01,
                 input_noise_std: float = 1 / 30, ema: float | None = 0.99,
                 early_stopping: EarlyStopping | str | None = "wmv", input_channels: int = 32,
                 input_scale: float = 0.1, complex_image: bool = False, divergence_factor: float = 5.0,
                 backup_every: int = 20, monitor: Literal["raw", "clean", "ema"] = "clean", seed: int = 0,
                 progress: bool = True, op: LinearOperator | None = None) -> None:
        super().__init__()
        if generator is not None and not isinstance(generator, nn.Module):
            raise TypeError(f"argument 'generator' must be a torch.nn.Module, got {type(generator).__name__}")
        self.steps = _check_positive_int(steps, "steps")
        self.lr = _positive_float(lr, "lr")
        self.input_noise_std = _positive_float(input_noise_std, "input_noise_std", allow_zero=True)
        if ema is not None:
            ema = _positive_float(ema, "ema", allow_zero=True)
            if ema >= 1:
                raise ValueError(f"argument 'ema' must be in [0, 1) or None, got {ema!r}")
        self.ema = ema
        self._stopper = _make_stopper(early_stopping)
        self.input_channels = _check_positive_int(input_channels, "input_channels")
        self.input_scale = _positive_float(input_scale, "input_scale")
        self.complex_image = bool(complex_image)
        self.divergence_factor = _positive_float(divergence_factor, "divergence_factor")
        if self.divergence_factor <= 1:
            raise ValueError(f"argument 'divergence_factor' must be > 1, got {divergence_factor!r}")
        self.backup_every = _check_positive_int(backup_every, "backup_every")
        self.monitor = _check_choice(monitor, "monitor", ("raw", "clean", "ema"))
        self.seed = int(seed)
        self.progress = bool(progress)
        self.generator = generator
        self.op = op

    @classmethod
    def cheap(cls, steps: int = 300, **kwargs: Any) -> DeepImagePrior:
        """A fast configuration for audits: a 4-level :class:`SkipNet` of 32 channels and
        ``steps`` iterations (default 300) with ES-EMV (patience 100)."""
        kwargs.setdefault("generator", SkipNet(depth=4, channels_down=32, channels_up=32))
        kwargs.setdefault("early_stopping", ExponentialVariance(patience=100))
        kwargs.setdefault("progress", False)
        return cls(steps=steps, **kwargs)

    @property
    def early_stopping(self) -> EarlyStopping | None:
        """The early-stopping rule (a template: each fit uses a fresh copy)."""
        return self._stopper

    def _generator_for(self, channels: int) -> nn.Module:
        if self.generator is not None:
            return self.generator
        out = 2 * channels if self.complex_image else channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            # Built once, so every fit starts from the same weights.
            self.generator = SkipNet(self.input_channels, out)
        return self.generator

    def _as_image(self, out: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if self.complex_image:
            out = channels_to_complex(out)
        if tuple(out.shape) != shape:
            kind = "complex" if self.complex_image else "real"
            raise ValueError(f"DeepImagePrior: argument 'generator' gives {tuple(out.shape)} "
                             f"({'2C real channels as ' if self.complex_image else ''}{kind}), "
                             f"but the image is {shape}")
        return out

    def forward(self, y: torch.Tensor, op: LinearOperator | None = None) -> torch.Tensor:
        """Reconstruct ``(B, C, H, W)`` from measurements ``y`` ``(B, ...)``: one fit per sample."""
        self._check_y(y)
        return torch.cat([self.fit(y[b : b + 1], op).image for b in range(y.shape[0])], dim=0)

    @staticmethod
    def _check_y(y: object) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"DeepImagePrior: argument 'y' must be a torch.Tensor, got {type(y).__name__}")
        if y.ndim < 2 or y.shape[0] == 0:
            raise ValueError(f"DeepImagePrior: argument 'y' must be batched (B, ...) with B >= 1, "
                             f"got shape {tuple(y.shape)}")
        if not (y.is_floating_point() or y.is_complex()):
            raise TypeError(f"DeepImagePrior: argument 'y' must be a floating or complex tensor, "
                            f"got {y.dtype}")
        if not all_finite(y):
            raise ValueError("DeepImagePrior: argument 'y' contains NaN or Inf values")
        return y

    def fit(self, y: torch.Tensor, op: LinearOperator | None = None, truth: torch.Tensor | None = None,
            steps: int | None = None, observers: Sequence[EarlyStopping] = ()) -> DIPResult:
        """Fit the generator to one measurement ``y`` ``(1, ...)`` and return the record.

        ``truth`` ``(1, C, H, W)`` (optional) is used only to record the PSNR curves for
        evaluation (data range 1 for real images, the truth's for complex ones). ``steps``
        overrides the fixed schedule for this fit. ``observers``: more early-stopping rules that
        watch the same outputs without stopping the fit (to compare rules on one fit); their
        scores are in ``result.observed``.
        """
        op = resolve_operator(op, self.op, "DeepImagePrior")
        y = self._check_y(y).detach()
        if y.shape[0] != 1:
            raise ValueError(f"DeepImagePrior.fit: argument 'y' must hold one measurement (1, ...), "
                             f"got batch {y.shape[0]}; call the method itself for a batch")
        steps = self.steps if steps is None else _check_positive_int(steps, "steps")
        with torch.no_grad():
            x0 = op.A_adjoint(y)
            ax0 = op.A(x0.real if (x0.is_complex() and not self.complex_image) else x0)
        if tuple(ax0.shape) != tuple(y.shape):
            raise ValueError(f"DeepImagePrior: argument 'op' maps images to measurements of shape "
                             f"{tuple(ax0.shape)}, but argument 'y' has shape {tuple(y.shape)}")
        shape = tuple(x0.shape)
        real_dtype = x0.real.dtype if x0.is_complex() else x0.dtype
        if truth is not None:
            if not isinstance(truth, torch.Tensor) or tuple(truth.shape) != shape:
                got = tuple(truth.shape) if isinstance(truth, torch.Tensor) else type(truth).__name__
                raise ValueError(f"DeepImagePrior.fit: argument 'truth' must have shape {shape}, got {got}")
            truth = truth.detach().to(device=y.device)
            peak = float(truth.abs().max()) if truth.is_complex() else 1.0

        template = self._generator_for(shape[1])
        net = copy.deepcopy(template).to(device=y.device, dtype=real_dtype).train()
        for p in net.parameters():
            p.requires_grad_(True)
        gen = torch.Generator(device=y.device).manual_seed(self.seed)
        latent = (template.latent_shape(*shape[-2:]) if hasattr(template, "latent_shape")
                  else (self.input_channels, *shape[-2:]))
        z = torch.rand((1, *latent), generator=gen, device=y.device, dtype=real_dtype) * self.input_scale
        optimiser = torch.optim.Adam(net.parameters(), lr=self.lr)
        stopper = _make_stopper(self._stopper)
        if stopper is not None:
            stopper.reset()
        for rule in observers:
            if not isinstance(rule, EarlyStopping):
                raise TypeError(f"argument 'observers' must hold EarlyStopping rules, "
                                f"got {type(rule).__name__}")
            rule.reset()

        losses = np.full(steps, np.nan)
        psnr_raw, psnr_ema = [], []
        restores: list[int] = []
        ema_x: torch.Tensor | None = None
        best_raw = best_ema = raw = None
        backup = (copy.deepcopy(net.state_dict()), copy.deepcopy(optimiser.state_dict()), math.inf)
        start = time.perf_counter()
        bar = tqdm(total=steps, desc="DIP", leave=False, disable=not self.progress, dynamic_ncols=True)
        iteration = -1
        with torch.enable_grad(), skip_finite_checks():
            for iteration in range(steps):
                code = z
                if self.input_noise_std > 0:
                    noise = torch.randn(z.shape, generator=gen, device=y.device, dtype=real_dtype)
                    code = z + self.input_noise_std * noise
                x = self._as_image(net(code), shape)
                loss = (op.A(x) - y).abs().pow(2).mean()
                value = float(loss.detach())
                restored = not math.isfinite(value) or value > self.divergence_factor * backup[2]
                if restored:
                    if raw is None:
                        raise RuntimeError("DeepImagePrior: the loss of the first iteration is not finite")
                    net.load_state_dict(backup[0])
                    optimiser.load_state_dict(backup[1])
                    restores.append(iteration)
                else:
                    if iteration % self.backup_every == 0:
                        backup = (copy.deepcopy(net.state_dict()), copy.deepcopy(optimiser.state_dict()),
                                  value)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    losses[iteration] = value
                    raw = x.detach()
                    if self.ema is not None:
                        ema_x = (raw.clone() if ema_x is None
                                 else ema_x.mul_(self.ema).add_(raw, alpha=1 - self.ema))
                assert raw is not None
                if truth is not None:
                    psnr_raw.append(_psnr(raw, truth, peak))
                    if ema_x is not None:
                        psnr_ema.append(_psnr(ema_x, truth, peak))
                if stopper is not None or observers:
                    if self.monitor == "clean":
                        with torch.no_grad():
                            watched = self._as_image(net(z), shape)
                    else:
                        watched = ema_x if self.monitor == "ema" and ema_x is not None else raw
                for rule in observers:
                    rule.update(iteration, watched)
                if stopper is not None and stopper.update(iteration, watched):
                    best_raw = raw.clone()
                    best_ema = None if ema_x is None else ema_x.clone()
                if iteration % 10 == 0:
                    bar.set_postfix(loss=f"{value:.3g}", refresh=False)
                bar.update(1)
                if stopper is not None and stopper.stop:
                    break
        bar.close()
        assert raw is not None  # at least one iteration ran and the first cannot be restored
        run = iteration + 1
        if stopper is not None and stopper.best_iteration is not None:
            stop_at, out_raw, out_ema = stopper.best_iteration, best_raw, best_ema
        else:
            stop_at, out_raw, out_ema = run - 1, raw, ema_x
        assert out_raw is not None
        return DIPResult(
            image=out_ema if out_ema is not None else out_raw,
            raw=out_raw, ema=out_ema, final_raw=raw, final_ema=ema_x,
            stop_iteration=int(stop_at), iterations_run=run,
            stopped_early=bool(stopper is not None and stopper.stop),
            rule=None if stopper is None else stopper.name,
            losses=losses[:run],
            variances=np.asarray(stopper.values if stopper is not None else [], dtype=float),
            psnr=np.asarray(psnr_raw, dtype=float), psnr_ema=np.asarray(psnr_ema, dtype=float),
            restores=restores, seconds=time.perf_counter() - start,
            observed={rule.name: np.asarray(rule.values, dtype=float) for rule in observers},
        )

    def extra_repr(self) -> str:
        rule = None if self._stopper is None else self._stopper.name
        return f"steps={self.steps}, lr={self.lr:g}, input_noise_std={self.input_noise_std:.3g}, " \
               f"ema={self.ema}, early_stopping={rule}"


def _psnr(x: torch.Tensor, truth: torch.Tensor, peak: float) -> float:
    mse = float((x - truth).abs().pow(2).mean())
    return 10 * math.log10(peak**2 / mse) if mse > 0 else math.inf
