r"""Bidirectional training of the :class:`~stablerecon.posterior.inn.INN` (Ardizzone et al.,
ICLR 2019, Sec. 3.3).

Per batch of pairs ``(x, y)`` (``y`` standardised, ``x`` standardised and zero-padded):

- ``L_y``: squared error of the forward output's ``y`` part against ``y`` and of its padding
  part against zero (the supervised forward fit);
- ``L_z``: MMD between the joint ``[z, y_pred.detach()]`` of the forward outputs and
  ``[N(0, I), y]``, so that ``z`` is standard normal and independent of ``y``;
- ``L_x``: MMD between ``x`` and the inverse ``f^{-1}(y, z ~ N(0, I))``, the posterior
  samples, ramped in over ``ramp`` of the steps (it is noisy while the forward fit is poor);
- reconstruction: the inverse of the (slightly perturbed) forward output returns ``x``;
- ``L_ml`` (weight ``likelihood``, off by default): the exact negative log-likelihood of the
  padded ``x`` given ``y`` under the flow with the Gaussian base ``N(y, y_noise^2)`` on the
  ``y`` outputs, ``N(0, I)`` on ``z`` and ``N(0, pad_noise^2)`` on the padding,

  .. math:: \tfrac12 \big(\|\hat y - y\|^2 / \sigma_y^2 + \|z\|^2
            + \|\hat p\|^2 / \sigma_p^2\big) - \log |\det J|,

  per output dimension: a maximum-likelihood form of ``L_y + L_z`` (not in the paper). Its
  minimiser is the model whose conditional ``q(x | y)`` (sampled by
  :meth:`~stablerecon.posterior.inn.INN.sample` with the training noise) is the posterior;
  the MMD terms alone leave ``z`` heavy-tailed or too narrow on the 8-mode problem.

Default weights are the paper's toy settings (``L_y`` 3, ``L_z`` 300, ``L_x`` 400) with a unit
reconstruction weight; MMDs use the inverse multiquadric kernels of
:mod:`~stablerecon.posterior.mmd`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .inn import INN
from .mmd import mmd
from .problems import Problem

__all__ = ["LossWeights", "TRAINING_WIDTHS", "train_inn", "check_step", "optimise"]

TRAINING_WIDTHS: tuple[float, ...] = (0.2, 0.5, 0.9, 1.3, 3.0, 10.0)
"""Kernel widths of ``L_z`` and ``L_x``: the default ones plus two wide kernels. With the
default widths alone the latent ``z`` of the 8-mode INN ran away in the first 1000 steps (std
50-100 with exactly zero padding) and the MMD, whose gradient fades far from the normal
samples, never pulled it back; with the wide kernels it stays near unit scale."""


@dataclass(frozen=True)
class LossWeights:
    """Weights of the INN losses (0 switches one off, e.g. for the ablation). The defaults are
    the paper's (``likelihood`` off); see the module docstring for each term."""

    y: float = 3.0
    z: float = 300.0
    x: float = 400.0
    reconstruction: float = 1.0
    likelihood: float = 0.0


def batches(model: nn.Module, problem: Problem | None, data: tuple[torch.Tensor, torch.Tensor] | None,
            steps: int, batch: int, seed: int) -> tuple[Callable[[], tuple[torch.Tensor, torch.Tensor]],
                                                        torch.Generator]:
    """The batch source of a training run, shared by :func:`train_inn` and
    :meth:`~stablerecon.posterior.cinn.ConditionalINN.fit`: validates the arguments, sets the
    model's standardisation buffers (``x_mean``, ``x_std``, ``y_mean``, ``y_std``) from ``data``
    or from 20000 simulations of ``problem``, and returns ``(sample, generator)`` where
    ``sample()`` draws ``batch`` pairs (a fresh simulation, or a random subset of ``data``)."""
    if (problem is None) == (data is None):
        raise ValueError("pass exactly one of 'problem' and 'data'")
    if steps < 1 or batch < 2:
        raise ValueError(f"arguments 'steps' >= 1 and 'batch' >= 2 are required, got {steps}, {batch}")
    g = torch.Generator().manual_seed(seed)
    dtype = model.x_mean.dtype
    dim_x, dim_y = model.dim_x, model.dim_y
    if data is not None:
        x_all, y_all = (t.to(dtype) for t in data)
        if x_all.ndim != 2 or x_all.shape[1] != dim_x or y_all.shape != (x_all.shape[0], dim_y):
            raise ValueError(f"argument 'data' must be (x (N, {dim_x}), y (N, {dim_y})), "
                             f"got {tuple(x_all.shape)}, {tuple(y_all.shape)}")
        if not (torch.isfinite(x_all).all() and torch.isfinite(y_all).all()):
            raise ValueError("argument 'data' contains NaN or Inf values")

        def sample() -> tuple[torch.Tensor, torch.Tensor]:
            i = torch.randint(0, x_all.shape[0], (batch,), generator=g)
            return x_all[i], y_all[i]

        ref_x, ref_y = x_all, y_all
    else:
        def sample() -> tuple[torch.Tensor, torch.Tensor]:
            x, y = problem.sample_joint(batch, g)
            return x.to(dtype), y.to(dtype)

        ref_x, ref_y = (t.to(dtype) for t in problem.sample_joint(20_000, g))
    with torch.no_grad():
        model.x_mean.copy_(ref_x.mean(0))
        model.x_std.copy_(ref_x.std(0).clamp_min(1e-6))
        model.y_mean.copy_(ref_y.mean(0))
        model.y_std.copy_(ref_y.std(0).clamp_min(1e-6))
    return sample, g


def _finite(t: torch.Tensor, what: str, step: int) -> None:
    if not torch.isfinite(t).all():
        raise RuntimeError(f"train_inn: the {what} became non-finite at step {step}; lower 'lr' "
                           "(the weights of the last finite step are kept)")


def check_step(module: nn.Module, clip: float, name: str, step: int) -> None:
    """Clip the gradients of ``module`` to norm ``clip``; raise ``RuntimeError`` (before the
    optimiser step, so the weights stay finite) when the gradient norm is NaN or Inf."""
    norm = nn.utils.clip_grad_norm_(module.parameters(), clip)
    if not torch.isfinite(norm):
        raise RuntimeError(f"{name}: the gradient became {float(norm)} at step {step}; lower 'lr' "
                           "(the weights of the last finite step are kept)")


Losses = torch.Tensor | dict[str, torch.Tensor]


def optimise(module: nn.Module, loss_fn: Callable[[int], Losses], steps: int, lr: float, name: str,
             weight_decay: float = 1e-5, clip: float = 10.0, progress: bool = True,
             callback: Callable[[int, float | dict[str, float]], None] | None = None) -> list:
    """The training driver shared by the posterior models: Adam (``lr``, ``weight_decay``) on
    ``module``'s parameters with a cosine schedule over ``steps``, gradient clipping at norm
    ``clip`` and a tqdm bar labelled ``name``.

    ``loss_fn(step)`` returns the loss, or a dictionary of named losses whose sum is minimised.
    Returns the history: the loss per step (a float), or per step the dictionary of floats with
    ``"total"`` added. A non-finite loss or gradient raises ``RuntimeError`` naming ``name`` and
    the step, before the optimiser step, so the weights of the last finite step are kept.
    ``callback(step, record)`` runs after every step. The module is left in eval mode.
    """
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history: list = []
    module.train()
    bar = tqdm(range(steps), desc=name, disable=not progress, leave=False)
    try:
        for step in bar:
            out = loss_fn(step)
            if isinstance(out, dict):
                total = sum(out.values())
                record: float | dict[str, float] = {k: float(v.detach()) for k, v in out.items()}
                value = float(total.detach())
                record["total"] = value
            else:
                total, value = out, float(out.detach())
                record = value
            if not np.isfinite(value):
                raise RuntimeError(f"{name}: the loss became {value} at step {step}; lower 'lr' "
                                   "(the weights of the last finite step are kept)")
            opt.zero_grad(set_to_none=True)
            total.backward()
            check_step(module, clip, name, step)
            opt.step()
            sched.step()
            history.append(record)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            if callback is not None:
                callback(step, record)
    finally:
        module.eval()
    return history


def train_inn(model: INN, problem: Problem | None = None,
              data: tuple[torch.Tensor, torch.Tensor] | None = None, steps: int = 5000, batch: int = 500,
              lr: float = 1e-3, weights: LossWeights = LossWeights(), ramp: float = 0.2,
              x_start: float = 0.0, y_noise: float = 0.05, pad_noise: float = 0.05, clip: float = 10.0,
              widths: Sequence[float] = TRAINING_WIDTHS, seed: int = 0, progress: bool = True,
              callback: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Train ``model`` on fresh simulations of ``problem`` or on fixed pairs ``data``.

    Adam (``lr``) with a cosine schedule and gradient clipping. ``y_noise`` and ``pad_noise``
    perturb ``y`` and the padding (in standardised units) as in the paper. ``L_x`` is off for
    the first ``x_start`` of the steps (the paper's toy code trains the forward direction first,
    then adds the backward MMD) and then ramped in over ``ramp`` of the steps. Both MMDs use
    inverse multiquadric kernels of ``widths`` (:data:`TRAINING_WIDTHS`). ``pad_noise = 0``
    pads ``x`` with exact zeros: with noisy padding the paper's losses can take ``z`` from
    the padding noise (measured: ``z`` collapsed to std 0.04 at zero padding). Returns the
    losses per step (``L_y``, ``L_z``, ``L_x``, ``rec``, ``total``). Raises ``RuntimeError``
    when the loss turns non-finite (the step is not applied).
    """
    if not 0 <= ramp <= 1:
        raise ValueError(f"argument 'ramp' must be in [0, 1], got {ramp}")
    if not 0 <= x_start < 1:
        raise ValueError(f"argument 'x_start' must be in [0, 1), got {x_start}")
    if not (y_noise >= 0 and pad_noise >= 0):
        raise ValueError(f"arguments 'y_noise' and 'pad_noise' must be >= 0, got {y_noise}, {pad_noise}")
    if weights.likelihood and not (y_noise > 0 and pad_noise > 0):
        raise ValueError("arguments 'y_noise' and 'pad_noise' must be positive with the likelihood term "
                         f"(its base densities), got {y_noise}, {pad_noise}")
    sample, g = batches(model, problem, data, steps, batch, seed)
    dtype = model.x_mean.dtype
    # the likelihood term models the observation and padding noise as part of q(x | y), so its
    # samples draw them; the paper's losses are sampled with clean y and zero padding
    model.y_noise.fill_(y_noise if weights.likelihood else 0.0)
    model.pad_noise.fill_(pad_noise if weights.likelihood else 0.0)
    ramp_steps, first_x = max(1, int(ramp * steps)), int(x_start * steps)

    def losses_of(step: int) -> dict[str, torch.Tensor]:
        x, y = sample()
        ys = (y - model.y_mean) / model.y_std
        ys_noisy = ys + y_noise * torch.randn(ys.shape, generator=g, dtype=dtype)
        x_pad = model.pad_x(x, pad_noise, g)
        out, logdet = model.flow(x_pad)
        _finite(out, "forward output", step)
        y_hat, z_hat, pad_hat = model.split(out)
        losses = {}
        losses["L_y"] = weights.y * ((y_hat - ys_noisy).pow(2).mean() + pad_hat.pow(2).sum(1).mean() / max(
            1, out.shape[1]))
        zero = out.new_zeros(())
        if weights.z:
            normal = torch.randn(z_hat.shape, generator=g, dtype=dtype)
            losses["L_z"] = weights.z * mmd(torch.cat([z_hat, y_hat.detach()], 1), torch.cat([normal, ys], 1),
                                             widths)
        else:
            losses["L_z"] = zero
        if weights.likelihood:
            nll = 0.5 * (z_hat.pow(2).sum(1) + (y_hat - ys).pow(2).sum(1) / y_noise**2
                         + pad_hat.pow(2).sum(1) / pad_noise**2) - logdet
            losses["L_ml"] = weights.likelihood * nll.mean() / out.shape[1]
        if weights.x and step >= first_x:
            z_rand = torch.randn(x.shape[0], model.dim_z, generator=g, dtype=dtype)
            x_rev = model.inverse_of(ys_noisy, z_rand, pad_noise, g)
            _finite(x_rev, "inverse output", step)
            ramped = weights.x * min(1.0, (step + 1 - first_x) / ramp_steps)
            losses["L_x"] = ramped * mmd(x_rev, x_pad[:, : model.dim_x], widths)
        else:
            losses["L_x"] = zero
        if weights.reconstruction:
            perturbed = out + 0.01 * torch.randn(out.shape, generator=g, dtype=dtype)
            losses["rec"] = weights.reconstruction * (model.flow.inverse(perturbed) - x_pad).pow(2).mean()
        else:
            losses["rec"] = zero
        return losses

    return optimise(model.flow, losses_of, steps, lr, "train_inn", clip=clip, progress=progress,
                    callback=callback)
