"""The record of one Deep Image Prior fit, :class:`DIPResult`: the reconstruction, the chosen
iteration, the loss, early-stopping score and (with the truth) PSNR curves, and a figure of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["DIPResult"]


@dataclass
class DIPResult:
    """The record of one Deep Image Prior fit (:meth:`~stablerecon.nets.dip.DeepImagePrior.fit`).

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
        otherwise): :func:`stablerecon.metrics.psnr` (complex images compared by magnitude, as
        in the audit) with data range 1 for a real truth and ``max |truth|`` for a complex one.
        Evaluation only: nothing in the fit uses them.
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
