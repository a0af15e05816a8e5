r"""Ground-truth-free early stopping for the Deep Image Prior: the variance rules ES-WMV
(:class:`WindowedVariance`) and ES-EMV (:class:`ExponentialVariance`) of Wang, Li, Zhuang, Chen,
Liang, Sun, "Early stopping for deep image prior", TMLR 2023, their base class
:class:`EarlyStopping`, and :func:`make_stopper`, which turns the ``early_stopping`` argument of
:class:`~stablerecon.nets.dip.DeepImagePrior` into a rule.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from ...validation import positive_float, positive_int

__all__ = ["EarlyStopping", "WindowedVariance", "ExponentialVariance", "make_stopper"]


class EarlyStopping:
    """Base class of ground-truth-free early-stopping rules for the Deep Image Prior.

    A rule sees the raw output ``x_t`` of every iteration through :meth:`update`, keeps a score
    per iteration (``values``, NaN while undefined), and tracks the iteration of the lowest score
    (``best_iteration``). It asks to stop (``stop``) after ``patience`` iterations without a new
    lowest score. :meth:`reset` starts afresh (one rule object can serve many fits)."""

    name = "early stopping"

    def __init__(self, patience: int) -> None:
        self.patience = positive_int(patience, "patience")
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
        self.window = positive_int(window, "window", 2)
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
        alpha = positive_float(alpha, "alpha")
        if alpha >= 1:
            raise ValueError(f"argument 'alpha' must be in (0, 1), got {alpha!r}")
        self.alpha = alpha
        self.warmup = round(2 / alpha) if warmup is None else positive_int(warmup, "warmup", 0)
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


def make_stopper(early_stopping: EarlyStopping | str | None) -> EarlyStopping | None:
    """A fresh rule from the argument ``early_stopping`` of
    :class:`~stablerecon.nets.dip.DeepImagePrior`: ``None`` (no rule), ``"wmv"``
    (:class:`WindowedVariance`), ``"emv"`` (:class:`ExponentialVariance`) or a copy of an
    :class:`EarlyStopping` instance (the template itself is never changed)."""
    if early_stopping is None or isinstance(early_stopping, EarlyStopping):
        return copy.deepcopy(early_stopping)
    if early_stopping == "wmv":
        return WindowedVariance()
    if early_stopping == "emv":
        return ExponentialVariance()
    raise ValueError(f"argument 'early_stopping' must be None, 'wmv', 'emv' or an EarlyStopping, "
                     f"got {early_stopping!r}")
