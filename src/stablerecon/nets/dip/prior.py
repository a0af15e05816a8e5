r"""The Deep Image Prior as a reconstruction method, :class:`DeepImagePrior`: a generator fitted
to one measurement with Adam, input perturbation, an exponential moving average of the outputs,
a divergence guard and automatic early stopping (Ulyanov, Vedaldi, Lempitsky, CVPR 2018).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ...contracts import Operator
from ...metrics import psnr
from ...operators.base import all_finite, skip_finite_checks
from ...validation import choice, positive_float, positive_int
from .._operator import resolve_operator
from ..unet import channels_to_complex
from .generators import SkipNet
from .result import DIPResult
from .stopping import EarlyStopping, ExponentialVariance, make_stopper

__all__ = ["DeepImagePrior"]


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
        Default operator, used when ``forward`` is called without one. Any
        :class:`~stablerecon.contracts.Operator` (``A`` and ``A_adjoint``; nothing else is used).

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
                 progress: bool = True, op: Operator | None = None) -> None:
        super().__init__()
        if generator is not None and not isinstance(generator, nn.Module):
            raise TypeError(f"argument 'generator' must be a torch.nn.Module, got {type(generator).__name__}")
        self.steps = positive_int(steps, "steps")
        self.lr = positive_float(lr, "lr")
        self.input_noise_std = positive_float(input_noise_std, "input_noise_std", allow_zero=True)
        if ema is not None:
            ema = positive_float(ema, "ema", allow_zero=True)
            if ema >= 1:
                raise ValueError(f"argument 'ema' must be in [0, 1) or None, got {ema!r}")
        self.ema = ema
        self._stopper = make_stopper(early_stopping)
        self.input_channels = positive_int(input_channels, "input_channels")
        self.input_scale = positive_float(input_scale, "input_scale")
        self.complex_image = bool(complex_image)
        self.divergence_factor = positive_float(divergence_factor, "divergence_factor")
        if self.divergence_factor <= 1:
            raise ValueError(f"argument 'divergence_factor' must be > 1, got {divergence_factor!r}")
        self.backup_every = positive_int(backup_every, "backup_every")
        self.monitor = choice(monitor, "monitor", ("raw", "clean", "ema"))
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

    def forward(self, y: torch.Tensor, op: Operator | None = None) -> torch.Tensor:
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

    def fit(self, y: torch.Tensor, op: Operator | None = None, truth: torch.Tensor | None = None,
            steps: int | None = None, observers: Sequence[EarlyStopping] = ()) -> DIPResult:
        """Fit the generator to one measurement ``y`` ``(1, ...)`` and return the record.

        ``truth`` ``(1, C, H, W)`` (optional) is used only to record the PSNR curves for
        evaluation, by :func:`stablerecon.metrics.psnr` as the audit does (complex images
        compared by magnitude) with data range 1 for real images and ``max |truth|`` for complex
        ones. ``steps``
        overrides the fixed schedule for this fit. ``observers``: more early-stopping rules that
        watch the same outputs without stopping the fit (to compare rules on one fit); their
        scores are in ``result.observed``.
        """
        op = resolve_operator(op, self.op, "DeepImagePrior")
        y = self._check_y(y).detach()
        if y.shape[0] != 1:
            raise ValueError(f"DeepImagePrior.fit: argument 'y' must hold one measurement (1, ...), "
                             f"got batch {y.shape[0]}; call the method itself for a batch")
        steps = self.steps if steps is None else positive_int(steps, "steps")
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
        stopper = make_stopper(self._stopper)
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
    """PSNR (dB) of one output against the truth, as the audit measures it
    (:func:`stablerecon.metrics.psnr`: complex images by magnitude) with data range ``peak``."""
    return float(psnr(x, truth, data_range=peak)[0])
