r"""The conditional INN (cINN): a posterior ``p(x | y)`` trained by maximum likelihood.

Ardizzone, Lüth, Kruse, Rother, Köthe, "Guided image generation with conditional invertible
neural networks", 2019: an invertible map ``z = f(x; y)`` conditioned on the observation is
trained so that ``z ~ N(0, I)``,

.. math:: \mathcal L = E_{(x, y)} \Big[ \tfrac12 \|f(x; y)\|^2 - \log |\det J_f(x; y)| \Big],

the negative log-likelihood of ``x`` under the change of variables; sampling ``z ~ N(0, I)``
and inverting gives posterior samples. Inputs are standardised with the training data's
moments (kept as buffers).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .inn import InvertibleNetwork, register_moments
from .problems import Problem, check_rows
from .training import batches, optimise

__all__ = ["ConditionalINN"]


class ConditionalINN(nn.Module):
    """Conditional invertible network for posterior sampling.

    Parameters
    ----------
    dim_x, dim_y:
        Dimensions of the unknown and of the observation.
    blocks, hidden, layers, clamp:
        Affine coupling blocks, width and depth of their sub-networks, soft clamp of the scales.
    permutation:
        ``"fixed"`` random permutations or ``"learned"`` invertible linear mixings between the
        blocks (:class:`~stablerecon.posterior.inn.LearnedPermutation`).
    seed:
        Seeds the initial weights and the permutations.
    """

    def __init__(self, dim_x: int, dim_y: int, blocks: int = 8, hidden: int = 128, layers: int = 2,
                 clamp: float = 2.0, seed: int = 0, permutation: str = "fixed") -> None:
        super().__init__()
        if dim_x < 2:
            raise ValueError(f"argument 'dim_x' must be >= 2, got {dim_x}")
        self.dim_x, self.dim_y = int(dim_x), int(dim_y)
        self.flow = InvertibleNetwork(dim_x, dim_y, blocks, hidden, layers, clamp, seed, permutation)
        register_moments(self, dim_x, dim_y)

    def _check_y(self, y: object) -> torch.Tensor:
        return check_rows(y, self.dim_y, "y", "ConditionalINN", finite=True).to(self.x_mean.dtype)

    def _cond(self, y: torch.Tensor) -> torch.Tensor:
        return (self._check_y(y) - self.y_mean) / self.y_std

    def log_prob(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``log q(x | y)`` ``(N,)`` of ``x`` ``(N, dim_x)`` given ``y`` ``(N, dim_y)``."""
        z, logdet = self.flow((x.to(self.x_mean.dtype) - self.x_mean) / self.x_std, self._cond(y))
        gauss = -0.5 * z.pow(2).sum(1) - 0.5 * self.dim_x * math.log(2 * math.pi)
        return gauss + logdet - self.x_std.log().sum()

    @torch.no_grad()
    def sample(self, y: torch.Tensor, n: int, seed: int | None = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` posterior samples per observation: ``(N, n, dim_x)``. ``temperature`` scales
        ``z`` (1: the trained posterior)."""
        c = self._cond(y)
        g = torch.Generator(device=c.device)
        g.manual_seed(seed) if seed is not None else g.seed()
        big_c = c.repeat_interleave(n, dim=0)
        z = temperature * torch.randn(big_c.shape[0], self.dim_x, generator=g, device=c.device, dtype=c.dtype)
        x = self.flow.inverse(z, big_c) * self.x_std + self.x_mean
        return x.reshape(c.shape[0], n, self.dim_x)

    def fit(self, problem: Problem | None = None, data: tuple[torch.Tensor, torch.Tensor] | None = None,
            steps: int = 5000, batch: int = 512, lr: float = 1e-3, weight_decay: float = 1e-5,
            clip: float = 10.0, seed: int = 0, progress: bool = True,
            callback: Callable[[int, float], None] | None = None) -> list[float]:
        """Train by maximum likelihood on fresh simulations of ``problem`` (a new batch every
        step) or on fixed pairs ``data = (x, y)``; Adam with a cosine schedule and gradient
        clipping. Returns the loss per step. Raises ``RuntimeError`` (leaving the weights of
        the last finite step) if the loss turns non-finite."""
        sample, _ = batches(self, problem, data, steps, batch, seed)

        def loss_of(step: int) -> torch.Tensor:
            x, y = sample()
            return -self.log_prob(x, y).mean()

        return optimise(self.flow, loss_of, steps, lr, "ConditionalINN.fit", weight_decay=weight_decay,
                        clip=clip, progress=progress, callback=callback)
