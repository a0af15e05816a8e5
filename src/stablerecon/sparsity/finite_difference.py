"""The discrete gradient of total variation as a linear operator.

Total variation (L. I. Rudin, S. Osher, E. Fatemi, "Nonlinear total variation based noise removal
algorithms", *Physica D* 60, 1992) penalises ``||D x||`` for the forward-difference gradient
``D x = (D_v x, D_h x)``. With the discretisation of A. Chambolle ("An algorithm for total
variation minimization and applications", *J. Math. Imaging Vis.* 20, 2004):

.. math::

    (D_v x)_{i,j} = x_{i+1,j} - x_{i,j}, \\qquad (D_h x)_{i,j} = x_{i,j+1} - x_{i,j},

where at the last row/column the difference is ``0`` (``boundary="neumann"``) or wraps around,
``x_{H,j} = x_{0,j}`` (``boundary="periodic"``). The adjoint is the negative discrete divergence,
``D^* p = -div p``.

Norm: ``D^* D`` is the (Neumann or periodic) 5-point Laplacian, the Kronecker sum of the two 1-D
Laplacians, whose largest eigenvalues are ``4 sin^2(pi (n-1) / (2n))`` (Neumann) and
``4 sin^2(pi floor(n/2) / n)`` (periodic) for a side of ``n`` pixels. Hence
``||D||^2 = lambda_max(H) + lambda_max(W) <= 8`` (equality for periodic even sizes), and
:meth:`FiniteDifference.norm` returns this closed form.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from ..operators.base import LinearOperator
from ..operators.tensors import as_hw

__all__ = ["FiniteDifference"]

Boundary = Literal["neumann", "periodic"]


def _lambda_max(n: int, boundary: Boundary) -> float:
    """Largest eigenvalue of ``d^T d`` for the 1-D forward difference ``d`` on ``n`` samples."""
    if boundary == "neumann":
        return 4.0 * math.sin(math.pi * (n - 1) / (2 * n)) ** 2
    return 4.0 * math.sin(math.pi * (n // 2) / n) ** 2


class FiniteDifference(LinearOperator):
    """Forward-difference image gradient ``D: (B, C, H, W) -> (B, C, 2, H, W)``.

    Index ``0`` of the third output axis is the vertical difference (along ``H``), index ``1``
    the horizontal one (along ``W``). Real and complex images are accepted (``D`` has real
    entries, so complex images are differentiated in their real and imaginary parts).

    The isotropic TV of ``x`` is ``sum_{c,i,j} |(D x)_{c,:,i,j}|_2``
    (see :func:`stablerecon.sparsity.group_soft_threshold` for its proximal map) and the
    anisotropic TV is ``||D x||_1``.

    Parameters
    ----------
    size:
        Image size ``H`` (square) or ``(H, W)``.
    channels:
        Number of channels, or ``None`` to accept any.
    boundary:
        ``"neumann"`` (default; zero difference at the last row/column, the TV of
        Rudin-Osher-Fatemi and Chambolle 2004) or ``"periodic"`` (circular differences, ``D``
        diagonalised by the 2-D DFT).

    Notes
    -----
    ``||D||_2^2 <= 8``; :meth:`norm` returns the exact value in closed form (see the module
    docstring), which the primal-dual step sizes ``tau * sigma * ||D||^2 < 1`` need.

    Examples
    --------
    >>> import torch
    >>> D = FiniteDifference(4)
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> D.A(x)[0, 0, :, 0]          # vertical and horizontal differences of the first row
    tensor([[4., 4., 4., 4.],
            [1., 1., 1., 0.]])
    """

    adjoint_backward = True

    def __init__(
        self,
        size: int | tuple[int, int],
        channels: int | None = None,
        boundary: Boundary = "neumann",
    ) -> None:
        h, w = as_hw(size, "size")
        if boundary not in ("neumann", "periodic"):
            raise ValueError(
                f"argument 'boundary' must be 'neumann' or 'periodic', got {boundary!r}"
            )
        if channels is not None and (
            isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0
        ):
            raise ValueError(
                f"argument 'channels' must be a positive int or None, got {channels!r}"
            )
        super().__init__((channels, h, w), (channels, 2, h, w))
        self.in_kind = "any"
        self.out_complex = False
        self.size = (h, w)
        self.channels = channels
        self.boundary: Boundary = boundary

    def extra_repr(self) -> str:
        return f"boundary={self.boundary!r}, " + super().extra_repr()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.boundary == "periodic":
            dv = torch.roll(x, shifts=-1, dims=-2) - x
            dh = torch.roll(x, shifts=-1, dims=-1) - x
        else:
            # Differences of the interior, then a zero last row / column.
            dv = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
            dh = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
        return torch.stack([dv, dh], dim=-3)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        pv, ph = y[..., 0, :, :], y[..., 1, :, :]
        if self.boundary == "periodic":
            out_v = torch.roll(pv, shifts=1, dims=-2) - pv
            return out_v + (torch.roll(ph, shifts=1, dims=-1) - ph)
        # -div p with the Neumann convention: the last row/column of p is ignored (D never
        # writes it), i.e. (D_v^* p)_i = p_{i-1} - p_i with p_{-1} = p_{H-1} = 0.
        pv = pv[..., :-1, :]
        ph = ph[..., :, :-1]
        out_v = F.pad(pv, (0, 0, 1, 0)) - F.pad(pv, (0, 0, 0, 1))
        out_h = F.pad(ph, (1, 0)) - F.pad(ph, (0, 1))
        return out_v + out_h

    def _exact_norm(self) -> float:
        h, w = self.size
        return math.sqrt(_lambda_max(h, self.boundary) + _lambda_max(w, self.boundary))
