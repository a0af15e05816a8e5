"""Reconstruction methods and images from their config descriptions (audit configs, demo).

:func:`build_method` turns a :class:`~stablerecon.config.MethodSpec` into a callable
``method(y, op) -> x_hat``; :func:`build_images` turns the image names of an
:class:`~stablerecon.config.AuditConfig` into a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .config import MethodSpec
from .operators.base import LinearOperator

__all__ = ["ZeroFilled", "build_method", "build_images"]


class ZeroFilled(nn.Module):
    """The cheap inverse alone: ``x_hat = A_dagger(y)`` (real part for real images); for
    subsampled unitary operators the zero-filled reconstruction."""

    differentiable = True
    name = "zero-filled"

    def forward(self, y: torch.Tensor, op: LinearOperator) -> torch.Tensor:
        """Reconstruct ``(B, C, H, W)`` from measurements ``y``."""
        x = op.A_dagger(y)
        return x.real if x.is_complex() else x


def build_method(spec: MethodSpec, op: LinearOperator) -> nn.Module:
    """The method ``spec`` describes, for operator ``op`` (in eval mode)."""
    from .nets import DeepImagePrior, FIRENet
    from .solvers import SparseReconstructor
    from .training import load, pretrained

    if spec.kind == "zero_filled":
        return ZeroFilled()
    if spec.kind in ("fista", "tv", "primal_dual"):
        return SparseReconstructor(spec.kind, op, lam=spec.lam, max_iter=spec.max_iter)
    if spec.kind == "firenet":
        kwargs = {k: getattr(spec, k) for k in ("lam", "restarts", "inner") if getattr(spec, k) is not None}
        return FIRENet(op, **kwargs)
    if spec.kind == "dip":
        return DeepImagePrior.cheap(**({"steps": spec.steps} if spec.steps is not None else {}))
    if spec.kind == "pretrained":
        return pretrained(spec.weights, op).eval()
    return load(spec.weights, op).eval()


def build_images(names: Sequence[str], size: int) -> dict[str, torch.Tensor]:
    """Images ``(1, 1, size, size)`` in ``[0, 1]`` by name: shipped images, ``shepp_logan``,
    ``ellipses:SEED``."""
    from . import data

    out: dict[str, torch.Tensor] = {}
    for name in names:
        base, _, seed = name.partition(":")
        if base == "shepp_logan":
            out[name] = data.shepp_logan(size)
        elif base == "ellipses":
            out[name] = data.ellipses(1, size, seed=int(seed or 0))
        else:
            out[name] = data.image(base, size=size)
    return out
