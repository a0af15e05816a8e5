r"""A point-estimate network with dropout sampling: the baseline the INNs are measured against.

Ardizzone et al. (ICLR 2019, Sec. 4) compare invertible networks with a feed-forward network
that regresses ``x`` from ``y`` by mean squared error and draws "samples" by keeping dropout
on at test time, Monte-Carlo dropout (Gal & Ghahramani, "Dropout as a Bayesian approximation:
representing model uncertainty in deep learning", ICML 2016):

.. math:: \hat\theta = \arg\min_\theta E_{(x, y)} \|g_\theta(y) - x\|^2, \qquad
          x^{(s)} = g_{\hat\theta}(y; m^{(s)}),\; m^{(s)} \text{ random dropout masks}.

The minimiser of the squared error is the posterior mean ``E[x | y]``, so :meth:`predict`
estimates it. The dropout spread, however, reflects only the uncertainty about the weights
(which shrinks with more training data), not the ambiguity of the inverse problem: on a
problem whose posterior is wide, the samples are far too narrow and their calibration error
is large. :meth:`DropoutRegressor.sample` has the signature of the INNs' ``sample`` so the
same diagnostics (:mod:`~stablerecon.posterior.calibration`) apply to both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..validation import positive_int
from .inn import register_moments
from .problems import Problem, check_rows
from .training import batches, optimise

__all__ = ["DropoutRegressor"]

CHUNK = 65536
"""Rows (observation-sample pairs) evaluated at once by :meth:`DropoutRegressor.sample`."""


class DropoutRegressor(nn.Module):
    """A multilayer perceptron ``y -> x`` trained by mean squared error, sampled by MC dropout.

    ``layers`` hidden layers of width ``hidden`` with ReLU, each followed by dropout of rate
    ``p`` (so dropout acts before every weight layer after the first, as in Gal & Ghahramani);
    inputs and outputs are standardised with the training data's moments (buffers, set by
    :func:`~stablerecon.posterior.training.batches`). Dropout masks are drawn from a seeded
    generator, so training and sampling are reproducible.

    Parameters
    ----------
    dim_x, dim_y:
        Dimensions of the unknown and of the observation.
    hidden, layers:
        Width and number of hidden layers.
    p:
        Dropout rate in ``[0, 1)``, used in training and in :meth:`sample`.
    seed:
        Seeds the initial weights.

    Examples
    --------
    >>> model = DropoutRegressor(dim_x=2, dim_y=1, hidden=16, layers=2)
    >>> model.sample(torch.zeros(3, 1), n=5, seed=0).shape
    torch.Size([3, 5, 2])
    >>> model.predict(torch.zeros(3, 1)).shape
    torch.Size([3, 2])
    """

    def __init__(self, dim_x: int, dim_y: int, hidden: int = 256, layers: int = 3, p: float = 0.1,
                 seed: int = 0) -> None:
        super().__init__()
        for name, value in (("dim_x", dim_x), ("dim_y", dim_y), ("hidden", hidden), ("layers", layers)):
            positive_int(value, name)
        if not 0 <= p < 1:
            raise ValueError(f"argument 'p' must be in [0, 1), got {p!r}")
        self.dim_x, self.dim_y, self.p = int(dim_x), int(dim_y), float(p)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            widths = [self.dim_y] + [int(hidden)] * int(layers)
            self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
            self.out = nn.Linear(int(hidden), self.dim_x)
        register_moments(self, self.dim_x, self.dim_y)

    def _check_y(self, y: object) -> torch.Tensor:
        return check_rows(y, self.dim_y, "y", "DropoutRegressor", finite=True).to(self.x_mean.dtype)

    def _net(self, ys: torch.Tensor, dropout: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Standardised ``x`` of standardised ``y``; with ``dropout``, fresh masks per row."""
        h = ys
        for layer in self.hidden:
            h = torch.relu(layer(h))
            if dropout and self.p > 0:
                keep = torch.rand(h.shape, generator=generator, dtype=h.dtype, device=h.device) >= self.p
                h = h * keep / (1 - self.p)
        return self.out(h)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """The point estimate ``x`` ``(N, dim_x)`` of ``y`` ``(N, dim_y)`` (dropout off; differentiable)."""
        ys = (self._check_y(y) - self.y_mean) / self.y_std
        return self._net(ys, False, None) * self.x_std + self.x_mean

    @torch.no_grad()
    def predict(self, y: torch.Tensor) -> torch.Tensor:
        """The estimate of the posterior mean ``E[x | y]``: ``(N, dim_x)`` for ``y`` ``(N, dim_y)``,
        dropout off."""
        return self.forward(y)

    @torch.no_grad()
    def sample(self, y: torch.Tensor, n: int, seed: int | None = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` Monte-Carlo dropout samples per observation ``y`` ``(N, dim_y)``: ``(N, n, dim_x)``.

        Each sample is the network's output under its own random dropout masks. ``temperature``
        scales the samples' deviation from the dropout-off prediction (1: plain MC dropout, 0:
        ``n`` copies of :meth:`predict`). The rows are evaluated in chunks of :data:`CHUNK` to
        bound the memory; the same ``seed`` gives the same samples.
        """
        ys = (self._check_y(y) - self.y_mean) / self.y_std
        n = positive_int(n, "n", where="DropoutRegressor")
        if not (np.isfinite(temperature) and temperature >= 0):
            raise ValueError("DropoutRegressor: argument 'temperature' must be finite and >= 0, "
                             f"got {temperature}")
        g = torch.Generator(device=ys.device)
        g.manual_seed(seed) if seed is not None else g.seed()
        rows = ys.repeat_interleave(int(n), dim=0)
        out = torch.cat([self._net(part, True, g) for part in rows.split(CHUNK)])
        if temperature != 1.0:
            center = self._net(ys, False, None).repeat_interleave(int(n), dim=0)
            out = center + temperature * (out - center)
        x = out * self.x_std + self.x_mean
        return x.reshape(ys.shape[0], int(n), self.dim_x)

    def fit(self, problem: Problem | None = None, data: tuple[torch.Tensor, torch.Tensor] | None = None,
            steps: int = 5000, batch: int = 512, lr: float = 1e-3, weight_decay: float = 1e-5,
            clip: float = 10.0, seed: int = 0, progress: bool = True,
            callback: Callable[[int, float], None] | None = None) -> list[float]:
        """Train by mean squared error (in standardised units of ``x``) with dropout on, on fresh
        simulations of ``problem`` (a new batch every step) or on fixed pairs ``data = (x, y)``
        (``(N, dim_x)``, ``(N, dim_y)``); Adam with a cosine schedule and gradient clipping.
        ``weight_decay`` is the L2 penalty that, with dropout, makes the network an approximate
        variational posterior over weights in Gal & Ghahramani's reading. Returns the loss per
        step. Raises ``RuntimeError`` (leaving the weights of the last finite step) if the loss
        turns non-finite."""
        sample, g = batches(self, problem, data, steps, batch, seed)

        def loss_of(step: int) -> torch.Tensor:
            x, y = sample()
            ys = (y - self.y_mean) / self.y_std
            xs = (x - self.x_mean) / self.x_std
            return (self._net(ys, True, g) - xs).pow(2).mean()

        return optimise(self, loss_of, steps, lr, "DropoutRegressor.fit", weight_decay=weight_decay,
                        clip=clip, progress=progress, callback=callback)
