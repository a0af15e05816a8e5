"""FIRENET: the provably stable network of restarted primal-dual iterations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..contracts import Operator, capabilities
from ..operators.base import LinearOperator
from ..solvers._common import linear_operator
from ..solvers.reconstructor import default_sparsifier, optional_linear_operator
from ..solvers.restart import restarted_primal_dual
from ..validation import positive_float, positive_int
from ._operator import resolve_operator

__all__ = ["FIRENet"]


class FIRENet(nn.Module):
    r"""FIRENET (Colbrook, Antun, Hansen, PNAS 2022): ``n x p`` restarted primal-dual layers.

    Each layer is one Chambolle-Pock step for the weighted square-root LASSO
    ``min_c lam ||c||_{1,w} + ||A W^* c - y||_2`` (soft-thresholding and the projection onto the
    unit l2 ball are its non-linearities); the layers are grouped into ``restarts`` blocks of
    ``inner`` steps with the rescaling of :func:`~stablerecon.solvers.restarted_primal_dual`.
    Under the robust null space property in levels, the output reaches accuracy ``eps`` (above
    a floor set by the noise and the distance to sparse images) with ``O(|log eps|)`` layers,
    and it is stable: small perturbations of ``y`` move the output proportionally.

    The network has no trained weights; it is an ``nn.Module`` so that it composes with other
    networks (e.g. as a data-consistent refinement after a U-Net via ``x0``) and autograd runs
    through every layer (``differentiable = True``, used by the stability audit).

    Parameters
    ----------
    op:
        Default forward operator (``forward`` also accepts one per call): a
        :class:`~stablerecon.operators.LinearOperator` or any object with ``A`` and
        ``A_adjoint``, adapted at call time (shapes inferred from ``y`` unless it declares
        them, ``||A||`` by power iteration unless it has ``norm()``; see
        :func:`~stablerecon.operators.as_linear_operator`).
    sparsifier:
        Orthonormal sparsifying transform; default: Haar wavelets of maximal depth at the
        operator's image size.
    lam:
        Square-root LASSO weight (scale-free; default ``2e-3``).
    weights:
        Per-level weights (see :func:`~stablerecon.solvers.level_weights`), per-coefficient
        weights ``(N,)``, or ``None`` (uniform).
    restarts, inner:
        ``n`` blocks of ``p`` steps: ``n * p`` layers (default 12 x 8 = 96).
    delta:
        Error-floor estimate in measurement units (default 0: exact data).
    tau, sigma:
        Base primal/dual steps (default ``1 / ||A||``).
    real:
        Reconstruct a real image (default); ``False`` for complex images.

    Choosing ``lam`` and ``p``
    -------------------------
    Each block divides an error bound by ``e`` only if ``p`` steps suffice for the problem's
    sharpness, which worsens as ``lam`` shrinks; and ``lam`` must stay below the level at
    which the square-root LASSO minimiser itself is biased away from the image. Outside the
    window the restarts *stall*: the primal steps shrink geometrically while the error stops
    falling, and the output freezes above the floor. Measured by
    ``benchmarks/firenet_parameters.py`` (25% Fourier or Walsh-Hadamard sampling, Haar):

    - exactly sparse, noiseless (error 1e-5 reached): ``p = 2, 3`` always stall; ``p = 5``
      works for ``2e-3 <= lam <= 1e-2`` and stalls for ``lam = 1e-3`` (Fourier, 64-128) and
      ``lam >= 3e-2``; ``p = 8-10`` widens the window down to ``lam = 1e-3`` at the cost of
      more layers per decade (8 instead of 5-6).
    - natural images with 2% noise (within 10% of the minimiser's error): ``p = 5`` stalls
      on Shepp-Logan at 128 for every ``lam``; ``p = 8-10`` with ``lam`` in ``[1e-3, 3e-3]``
      gets there in 16-20 layers; ``lam >= 5e-3`` needs 30-40 layers.

    The defaults (``lam = 2e-3``, ``p = 8``) sit inside the sparse window for subsampled
    Fourier and Walsh-Hadamard at 64-256 pixels (1e-5 in 64-72 layers), and reach the noisy
    floor in 16 layers for all three test images under Fourier sampling at 128 pixels (24 for
    Shepp-Logan under Walsh-Hadamard). Known limit: Shepp-Logan under 25% Fourier sampling at
    64 and 256 pixels is far enough from Haar-sparse that FIRENET plateaus 15-25% above the
    minimiser's error for every ``lam``, ``p`` and ``delta`` tried (the minimiser itself is
    reached by a long plain Chambolle-Pock run).

    Accuracy costs some stability: on 2%-noisy Shepp-Logan at 128 pixels (25% Fourier), the
    worst-case amplification ``||Phi(y + e) - Phi(y)|| / ||e||`` found by gradient ascent with
    ``||e|| <= 5% ||y||`` is about 3.2 with the defaults (relative error 0.185) and 1.9 with
    ``lam = 1e-2, p = 5`` (relative error 0.24, stalled above the floor); the zero-filled
    adjoint has exactly 1.

    Examples
    --------
    >>> import torch, stablerecon as sr
    >>> op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(32, 0.3, seed=0))
    >>> net = FIRENet(op, restarts=4)
    >>> x = torch.zeros(1, 1, 32, 32); x[..., 8:24, 8:24] = 1.0
    >>> x_hat = net(op.A(x), op)
    >>> bool(torch.linalg.norm(x_hat - x) < 0.1 * torch.linalg.norm(x))
    True
    """

    differentiable = True

    def __init__(
        self,
        op: Operator | None = None,
        sparsifier: LinearOperator | None = None,
        lam: float = 2e-3,
        weights: Sequence[float] | torch.Tensor | None = None,
        restarts: int = 12,
        inner: int = 8,
        delta: float = 0.0,
        tau: float | None = None,
        sigma: float | None = None,
        real: bool = True,
    ) -> None:
        super().__init__()
        self.op = optional_linear_operator(op, "op")
        self.sparsifier = optional_linear_operator(sparsifier, "sparsifier")
        # a foreign operator's image size is known here only if it declares it
        op_shape = op.in_shape if isinstance(op, LinearOperator) else capabilities(op).in_shape
        sparse_shape = (sparsifier.in_shape if isinstance(sparsifier, LinearOperator)
                        else capabilities(sparsifier).in_shape)
        if op_shape is not None and sparse_shape is not None and \
                tuple(sparse_shape[-2:]) != tuple(op_shape[-2:]):
            raise ValueError(f"argument 'sparsifier' acts on images of size "
                             f"{tuple(sparse_shape[-2:])} but 'op' on images of size "
                             f"{tuple(op_shape[-2:])}")
        self.lam = positive_float(lam, "lam")
        self.weights = weights
        self.restarts = positive_int(restarts, "restarts")
        self.inner = positive_int(inner, "inner")
        self.delta = positive_float(delta, "delta", allow_zero=True)
        self.tau = tau
        self.sigma = sigma
        self.real = real

    @property
    def layers(self) -> int:
        """Number of primal-dual layers ``restarts * inner``."""
        return self.restarts * self.inner

    def _sparsifier_for(self, op: LinearOperator) -> LinearOperator:
        return self.sparsifier if self.sparsifier is not None else default_sparsifier(op)

    def forward(self, y: torch.Tensor, op: Operator | None = None,
                x0: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruct ``x_hat`` ``(B, C, H, W)`` from measurements ``y`` (``op``: default the
        constructor's); ``x0`` warm-starts the iterations."""
        op = linear_operator(resolve_operator(op, self.op, "FIRENet"), "op", "FIRENet", y)
        return restarted_primal_dual(
            y, op, self._sparsifier_for(op), self.lam, weights=self.weights,
            restarts=self.restarts, inner=self.inner, delta=self.delta, x0=x0,
            tau=self.tau, sigma=self.sigma, real=self.real,
        )

    def extra_repr(self) -> str:
        return (f"lam={self.lam:g}, restarts={self.restarts}, inner={self.inner}, "
                f"delta={self.delta:g}, layers={self.layers}")
