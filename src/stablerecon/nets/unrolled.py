"""Unrolled reconstruction networks: ItNet (U-Net and data-consistency steps, alternated)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..contracts import Operator, apply_dagger
from ..validation import choice, positive_float, positive_int
from ._operator import resolve_operator
from .unet import channels_to_complex, complex_to_channels

__all__ = ["ItNet"]


def _squared_norm(op: Operator) -> float:
    """``||A||^2`` from the operator's (cached) ``norm()``; 1 when it has none."""
    norm = getattr(op, "norm", None)
    return float(norm()) ** 2 if callable(norm) else 1.0


class ItNet(nn.Module):
    r"""Unrolled iterative network ``ItNet`` (Genzel, Macdonald, März, "Solving inverse problems
    with deep neural networks: robustness included?", IEEE TPAMI 2022; the network of the
    "troublesome kernel" experiments, Gottschling et al., SIAM Review 2025).

    Starting from ``x_0 = A_dagger(y)``, each of ``iterations`` steps applies a residual
    network and then a gradient step on the data fidelity:

    .. math::

        x \leftarrow x + \mathrm{net}_i(x), \qquad
        x \leftarrow x - \frac{\eta}{\|A\|^2}\, A^*(A x - y).

    With ``shared=True`` one network is used at every step, otherwise each step has its own copy
    (initialised identically). ``eta`` (default 1, exact data consistency for a subsampled
    unitary ``A``) is learned when ``learn_eta=True`` (kept positive through its logarithm); the
    step is divided by ``||A||^2`` (``op.norm()``, cached by the operator; 1 for operators
    without ``norm``), so that the same ``eta`` suits operators of any scale (CT, multi-coil).
    With ``consistency="dagger"`` the step is preconditioned by the operator's pseudo-inverse,
    ``x <- x - eta A_dagger(A x - y)`` (gridding with density compensation for non-Cartesian
    MRI, FBP for CT, CG-SENSE for multi-coil MRI): for operators whose ``A^* A`` is badly
    conditioned (radial sampling measures the k-space centre once per spoke) a plain gradient
    step cannot be large and stable at once, while ``A_dagger A`` is close to a projection.

    Complex images (MRI) are carried as real and imaginary channels when the network takes
    twice the image's channels; otherwise the iterate is real. ``real_output`` returns the real
    part of the final iterate.

    Parameters
    ----------
    net:
        Image-to-image network with ``in_channels == out_channels`` (e.g. a U-Net).
    iterations:
        Number of unrolled steps ``k >= 1``.
    shared:
        One network for all steps (``True``) or a copy per step (``False``, default).
    eta, learn_eta:
        Data-consistency step size and whether to learn it.
    consistency:
        ``"adjoint"`` (default: the gradient step ``eta A^*(A x - y) / ||A||^2``) or
        ``"dagger"`` (``eta A_dagger(A x - y)``).
    op:
        Default forward operator, used when ``forward`` is called without one.
    real_output:
        Return a real image (default ``True``).

    Examples
    --------
    >>> import torch
    >>> from stablerecon.nets import UNet
    >>> from stablerecon.operators import SubsampledFourier, masks
    >>> op = SubsampledFourier(masks.variable_density(32, rate=0.25, seed=0))
    >>> method = ItNet(UNet(2, 2, depth=2, width=8), iterations=3, op=op)
    >>> method(op.A(torch.rand(2, 1, 32, 32))).shape
    torch.Size([2, 1, 32, 32])
    """

    differentiable = True
    name = "ItNet"

    def __init__(self, net: nn.Module, iterations: int = 3, shared: bool = False, eta: float = 1.0,
                 learn_eta: bool = True, op: Operator | None = None, real_output: bool = True,
                 consistency: str = "adjoint") -> None:
        super().__init__()
        cin, cout = getattr(net, "in_channels", None), getattr(net, "out_channels", None)
        if not isinstance(cin, int) or cin != cout:
            raise ValueError(f"ItNet: argument 'net' must map a number of channels to itself, "
                             f"got in_channels={cin!r}, out_channels={cout!r}")
        self.iterations = positive_int(iterations, "iterations", where="ItNet")
        eta = positive_float(eta, "eta", where="ItNet")
        self.consistency = choice(consistency, "consistency", ("adjoint", "dagger"), where="ItNet")
        self.shared = bool(shared)
        self.channels = cin
        self.real_output = bool(real_output)
        count = 1 if shared else self.iterations
        self.nets = nn.ModuleList([net] + [copy.deepcopy(net) for _ in range(count - 1)])
        log_eta = torch.tensor(math.log(eta), dtype=torch.float64).float()
        if learn_eta:
            self.log_eta = nn.Parameter(log_eta)
        else:
            self.register_buffer("log_eta", log_eta)
        self.op = op

    @property
    def eta(self) -> float:
        """Current data-consistency step size."""
        return float(self.log_eta.detach().exp())

    def forward(self, y: torch.Tensor, op: Operator | None = None) -> torch.Tensor:
        """Reconstruct ``x_hat`` ``(B, C, H, W)`` from measurements ``y``."""
        op = resolve_operator(op, self.op, "ItNet")
        x = apply_dagger(op, y)
        c = x.shape[1]
        if self.channels == 2 * c:
            as_net, from_net = complex_to_channels, channels_to_complex
        elif self.channels == c:
            x = x.real if x.is_complex() else x
            as_net, from_net = (lambda t: t), (lambda t: t)
        else:
            raise ValueError(f"ItNet: the network takes {self.channels} channels but the image has {c} "
                             f"(expected {c} for real images or {2 * c} for complex ones)")
        dagger = self.consistency == "dagger"
        eta = self.log_eta.exp() if dagger else self.log_eta.exp() / _squared_norm(op)
        for i in range(self.iterations):
            net = self.nets[0 if self.shared else i]
            h = as_net(x)
            x = from_net(h + net(h))
            residual = op.A(x) - y
            step = apply_dagger(op, residual) if dagger else op.A_adjoint(residual)
            x = x - eta * (step if x.is_complex() else step.real)
        if self.real_output and x.is_complex():
            return x.real
        return x

    def extra_repr(self) -> str:
        return (f"iterations={self.iterations}, shared={self.shared}, eta={self.eta:.4g}, "
                f"consistency={self.consistency!r}")
