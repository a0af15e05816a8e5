"""``l_inf`` projected gradient attacks on classifiers, through every unrolled CSC step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...validation import positive_float, positive_int
from ._common import check_data, eval_mode

__all__ = ["pgd_linf"]


def pgd_linf(model: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int = 10, alpha: float | None = None,
             seed: int = 0) -> Tensor:
    r"""``l_inf`` projected gradient ascent on the cross-entropy (Madry et al., "Towards deep
    learning models resistant to adversarial attacks", ICLR 2018), with gradients through
    every unrolled FISTA step of the CSC layers.

    Starting from a uniform random point of the ball, ``steps`` times
    ``x_adv <- clip_[0, 1](proj_{||. - x||_inf <= eps}(x_adv + alpha sign(grad)))``.

    Parameters
    ----------
    model:
        A classifier, images ``(N, C, H, W)`` to logits ``(N, K)``; run in eval mode (its mode
        is restored afterwards).
    x, y:
        Images ``(N, C, H, W)`` with values in ``[0, 1]`` and their labels ``(N,)``.
    eps:
        Radius of the ``l_inf`` ball (>= 0, in pixel units).
    steps:
        Gradient steps (>= 1).
    alpha:
        Step size (default ``2.5 eps / steps``).
    seed:
        Seeds the random start.

    Returns
    -------
    Tensor
        ``x_adv`` ``(N, C, H, W)`` with ``||x_adv - x||_inf <= eps`` and values in ``[0, 1]``.
    """
    check_data(x, y)
    eps = positive_float(eps, "eps", allow_zero=True)
    steps = positive_int(steps, "steps")
    alpha = 2.5 * eps / steps if alpha is None else float(alpha)
    g = torch.Generator(device=x.device).manual_seed(seed)
    with eval_mode(model):
        delta = (torch.rand(x.shape, generator=g, dtype=x.dtype, device=x.device) * 2 - 1) * eps
        x_adv = (x + delta).clamp(0, 1).detach()
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1).detach()
    return x_adv
