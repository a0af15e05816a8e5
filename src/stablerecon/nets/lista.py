r"""LISTA: learned iterative soft-thresholding, unrolled ISTA with learned weights and thresholds."""

from __future__ import annotations

import torch
from torch import nn

from ..validation import positive_float, positive_int

__all__ = ["LISTA", "soft_threshold"]


def soft_threshold(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``sign(x) max(|x| - theta, 0)`` entrywise (``theta >= 0``, broadcast)."""
    return torch.sign(x) * torch.clamp(x.abs() - theta, min=0.0)


class LISTA(nn.Module):
    r"""LISTA (Gregor, LeCun, ICML 2010) in the coupled form that takes ``(y, A)`` as input.

    Layer ``k = 0, ..., L-1`` maps ``x_k`` ``(B, N)`` to

    .. math::

        x_{k+1} = \operatorname{soft}\Bigl(x_k + \tfrac{1}{\|A\|} G_k^T (y - A x_k),\;
        \tfrac{\max(t_k, 0)}{\|A\|}\Bigr), \qquad x_0 = 0,

    with learned matrices ``G_k`` ``(M, N)`` and thresholds ``t_k``; ``A`` ``(M, N)`` is given
    with each call (or the default of the constructor) and ``||A||`` is its spectral norm (not
    differentiated). The scaling by ``||A||`` keeps the learned values of order one whatever the
    scale of ``A``. Initialised at ``G_k = A_0 / ||A_0||`` and ``t_k = lam / ||A_0||`` (``A_0``:
    the constructor's matrix), every layer is one ISTA step ``x <- soft(x + A^T (y - A x) / L,
    lam / L)``, ``L = ||A||^2``, for ``min_x 1/2 ||A x - y||^2 + lam ||x||_1``: the untrained
    network *is* ``L`` iterations of ISTA (Daubechies, Defrise, De Mol, 2004), and training
    moves it from there. This is the architecture of the inexact-input experiment of Colbrook,
    Antun, Hansen (PNAS 2022) (there ``A`` enters as ``A / (10 ||A||)``); the residual form
    ``x + W (y - A x)`` is LISTA's with ``W_e = W`` and ``S = I - W A`` tied (Chen et al.,
    NeurIPS 2018, "LISTA-CP").

    Parameters
    ----------
    matrix:
        Default ``A`` ``(M, N)`` (a buffer, not a weight; not saved with the weights).
    layers:
        Depth ``L >= 1``.
    lam:
        ISTA weight for the initial thresholds.
    dtype:
        Dtype of the weights (default float64: the inexact-input experiment needs 10^-6).

    Shapes: ``forward(y (B, M), op (M, N) | None) -> x (B, N)``.

    Examples
    --------
    >>> import torch
    >>> a = torch.eye(3, dtype=torch.float64)
    >>> net = LISTA(a, layers=2, lam=0.0)
    >>> net(torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)).tolist()  # identity A: x = y
    [[1.0, -2.0, 0.5]]
    """

    differentiable = True

    def __init__(self, matrix: torch.Tensor, layers: int = 10, lam: float = 0.0,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if not isinstance(matrix, torch.Tensor) or matrix.ndim != 2 or matrix.is_complex():
            raise TypeError(f"argument 'matrix' must be a real 2-d tensor (M, N), got "
                            f"{type(matrix).__name__} {tuple(getattr(matrix, 'shape', ()))}")
        self.layers = positive_int(layers, "layers")
        lam = positive_float(lam, "lam", allow_zero=True)
        a = matrix.detach().to(dtype)
        self.register_buffer("matrix", a, persistent=False)
        norm = float(torch.linalg.matrix_norm(a, ord=2))
        self.G = nn.Parameter((a / norm).unsqueeze(0).repeat(self.layers, 1, 1))
        self.t = nn.Parameter(torch.full((self.layers,), lam / norm, dtype=dtype))

    def forward(self, y: torch.Tensor, op: torch.Tensor | None = None) -> torch.Tensor:
        """``x_L`` ``(B, N)`` from ``y`` ``(B, M)`` and ``A`` = ``op`` ``(M, N)`` (default: the
        constructor's matrix)."""
        a = self.matrix if op is None else op
        if not isinstance(a, torch.Tensor) or a.ndim != 2 or tuple(a.shape) != tuple(self.G.shape[1:]):
            raise ValueError(f"argument 'op' must be a matrix of shape {tuple(self.G.shape[1:])}, got "
                             f"{tuple(getattr(a, 'shape', ()))}")
        if y.ndim != 2 or y.shape[1] != a.shape[0]:
            raise ValueError(f"argument 'y' must have shape (B, {a.shape[0]}), got {tuple(y.shape)}")
        a = a.to(self.G.dtype)
        y = y.to(self.G.dtype)
        norm = torch.linalg.matrix_norm(a.detach(), ord=2)
        x = torch.zeros(y.shape[0], a.shape[1], dtype=self.G.dtype, device=y.device)
        for k in range(self.layers):
            residual = y - x @ a.T
            x = soft_threshold(x + residual @ self.G[k] / norm, torch.relu(self.t[k]) / norm)
        return x

    def extra_repr(self) -> str:
        return f"layers={self.layers}, M={self.G.shape[1]}, N={self.G.shape[2]}"
