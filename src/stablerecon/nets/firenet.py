"""FIRENET: the provably stable network of restarted primal-dual iterations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..contracts import Operator, capabilities
from ..operators.base import LinearOperator
from ..solvers._common import linear_operator
from ..solvers.reconstructor import optional_linear_operator
from ..solvers.restart import pivotal_lam, restarted_primal_dual
from ..sparsity import Wavelet
from ..validation import positive_float, positive_int
from ._operator import resolve_operator

__all__ = ["FIRENet", "firenet_sparsifier"]

#: FIRENET's default wavelet family (chosen on validation images, see ``FIRENet``).
DEFAULT_WAVELET = "db4"

_WAVELETS: dict[tuple[int, int], Wavelet] = {}


def firenet_sparsifier(op: LinearOperator) -> Wavelet:
    """FIRENET's default sparsifier: orthonormal Daubechies-4 wavelets (``db4``, 8 taps) of the
    deepest useful level on the images of ``op`` (cached per size)."""
    if op.in_shape is None or len(op.in_shape) < 2 or op.in_shape[-1] is None or op.in_shape[-2] is None:
        raise ValueError(f"{op.name} has no fixed image size: pass a 'sparsifier' explicitly")
    size = (int(op.in_shape[-2]), int(op.in_shape[-1]))
    if size not in _WAVELETS:
        _WAVELETS[size] = Wavelet(DEFAULT_WAVELET, size=size)
    return _WAVELETS[size]


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
        Orthonormal sparsifying transform; default: Daubechies-4 wavelets (``db4``) of the
        deepest useful level at the operator's image size (:func:`firenet_sparsifier`).
    lam:
        Square-root LASSO weight (scale-free); default ``None``: the noise-independent rule
        ``lam = 0.2 sqrt(2 ln N / N)`` of :func:`~stablerecon.solvers.pivotal_lam` with ``N``
        the number of coefficients (``6.9e-3`` at 128 x 128, ``1.27e-2`` at 64 x 64), computed
        from the operator of each call (:meth:`lam_for`).
    weights:
        Per-level weights (see :func:`~stablerecon.solvers.level_weights`), per-coefficient
        weights ``(N,)``, or ``None`` (uniform).
    restarts, inner:
        ``n`` blocks of ``p`` steps: ``n * p`` layers (default 7 x 6 = 42).
    delta:
        Error-floor estimate in measurement units (default 0: exact data).
    tau, sigma:
        Base primal/dual steps (default ``1 / ||A||``).
    real:
        Reconstruct a real image (default); ``False`` for complex images.

    The defaults
    ------------
    Chosen by ``benchmarks/firenet_natural.py`` (variable-density Fourier sampling at 15% and
    25%, 2% noise, 128 x 128) on six validation photographs only (camera, astronaut, clock,
    cell, grass, text), with no ground truth in the rule itself: ``lam`` follows the square-root
    LASSO's pivotal choice, a multiple of the universal threshold ``sqrt(2 ln N / N)`` of the
    noise seen through ``B^* = W A^*`` (Belloni, Chernozhukov, Wang 2011; Adcock, Hansen,
    *Compressive Imaging*, CUP 2021), independent of the noise level and of the sampling rate.
    On the validation images db4 gained +2.0 dB over zero-filling on average (db2 +1.4, sym4
    +1.9, db8 +1.7, Haar +0.2); the best fixed ``lam`` followed ``sqrt(2 ln N / N)`` from 64
    to 256 pixels, and ``kappa = 0.2`` was best or within 0.2 dB of the best at 1%, 2% and 5%
    noise. On eight held-out photographs (moon, coins, brick, cat, coffee, rocket, page,
    immunohistochemistry) the new defaults gain +2.3 dB (15%) and +1.0 dB (25%) over
    zero-filling, where the old ones (Haar, ``lam = 2e-3``, 12 x 8 layers) gained +1.2 and
    -0.4 dB; an oracle choosing ``lam`` per image against the truth adds only 0.1-0.25 dB. TV
    (``SparseReconstructor("tv")``) is still 1.1-1.3 dB better on these photographs and 6.6-8.5 dB
    better on piecewise-constant phantoms, where Haar suits FIRENET better than db4 (old
    defaults 0.6-1.2 dB above the new ones on Shepp-Logan and ellipses).

    ``p = 6`` steps per restart keeps the steps from shrinking faster than the error for the
    rule's ``lam`` at 64-256 pixels (exactly Haar-sparse images, noiseless, Haar sparsifier:
    relative error 1e-5 in 54-66 layers, 1e-7 in 78-90), and on the noisy photographs FIRENET
    is within 0.1 dB of its limit after 24-30 layers: the default 42 layers cost 0.8 times the
    old 96 Haar layers per forward pass at 128 x 128 (0.65 times forward + backward, as in the
    audit's worst-case search). Pass ``restarts=11`` (1e-5) or ``15`` (1e-7) for exact data.

    Stability in ``(y, A)``
    -----------------------
    FIRENET takes the operator as an input, ``x_hat = Phi(y, A)``, so "stable" means: given
    inexact input ``(y + e, A + E)`` with ``||e|| <= r ||y||`` and ``||E|| <= r ||A||``
    (Colbrook, Antun, Hansen, PNAS 2022), the output moves by ``O(r)``.
    :func:`~stablerecon.nets.firenet_bound` proves a bound on
    ``||Phi(y + e, A + E) - Phi(y, A)||`` for this implementation (its data-dependent step
    schedule included); at the default steps (``tau sigma ||A||^2 = 1``) it is exponential in
    the layers (slopes 1.2e17 per unit ``||e||`` and 5.3e18 per unit ``||E||`` at 7 x 6 layers,
    128 x 128) and so equals its absolute cap, about ``12 ||Phi(y, A)||``: rigorous but vacuous.
    With ``tau sigma ||A||^2 < 1`` a second bound through the Chambolle-Pock metric has slopes
    near 1e3 and 5e4. Measured (``benchmarks/firenet_inexact.py``: 25% Fourier at 128 x 128,
    held-out ellipses, 1% noise, rank-1 ``additive`` E, 10 steps of gradient ascent over
    ``(e, E)``): the output changes by at most ``5.1 r ||Phi||`` with the defaults and
    ``2.6 r ||Phi||`` with ``tau = sigma = 0.5 / ||A||``, about ``1.0 r ||Phi||`` at random,
    proportionally to ``r`` from 1e-4 to 5e-2; the shipped U-Net (3.9 r), ItNet (8.5 r) and TV
    (7.4 r) lie in the same range there.

    Choosing ``lam`` and ``p`` by hand
    ----------------------------------
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

    Accuracy costs some stability, and fewer steps per restart buy some back: on 2%-noisy
    Shepp-Logan at 128 pixels (25% Fourier), the worst-case amplification
    ``||Phi(y + e) - Phi(y)|| / ||e||`` found by 12 steps of gradient ascent with
    ``||e|| <= 5% ||y||`` is about 2.5 with the defaults (relative error 0.218; 2.45 and 0.369
    at 64 pixels), 3.2 with the old defaults (0.185; 2.8 and 0.367 at 64) and 1.9 with
    ``lam = 1e-2, p = 5`` (0.24, stalled above the floor); the zero-filled adjoint has exactly 1.

    Examples
    --------
    >>> import torch, stablerecon as sr
    >>> op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(32, 0.3, seed=0))
    >>> x = torch.zeros(1, 1, 32, 32); x[..., 8:24, 8:24] = 1.0  # exactly Haar-sparse
    >>> net = FIRENet(op, sr.sparsity.Wavelet("haar", size=32))   # default lam, 7 x 6 layers
    >>> x_hat = net(op.A(x), op)
    >>> bool(torch.linalg.norm(x_hat - x) < 1e-3 * torch.linalg.norm(x))
    True
    """

    differentiable = True

    def __init__(
        self,
        op: Operator | None = None,
        sparsifier: LinearOperator | None = None,
        lam: float | None = None,
        weights: Sequence[float] | torch.Tensor | None = None,
        restarts: int = 7,
        inner: int = 6,
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
        self._lam: float | None = None
        self.lam = lam
        self.weights = weights
        self.restarts = positive_int(restarts, "restarts")
        self.inner = positive_int(inner, "inner")
        self.delta = positive_float(delta, "delta", allow_zero=True)
        self.tau = tau
        self.sigma = sigma
        self.real = real

    @property
    def lam(self) -> float:
        """The square-root LASSO weight: the one given, else :func:`~stablerecon.solvers.pivotal_lam`
        for the default operator's image size (``ValueError`` if neither is known: then use
        :meth:`lam_for` with the operator of the call)."""
        if self._lam is not None:
            return self._lam
        if self.op is None:
            raise ValueError("FIRENet.lam follows the operator's image size and this network has no "
                             "default operator: use lam_for(op), or pass 'lam' explicitly")
        return self.lam_for(self.op)

    @lam.setter
    def lam(self, value: float | None) -> None:
        self._lam = None if value is None else positive_float(value, "lam")

    @property
    def lam_given(self) -> bool:
        """Whether ``lam`` was given explicitly (else it follows the image size)."""
        return self._lam is not None

    def lam_for(self, op: Operator) -> float:
        """The weight used with ``op``: the given ``lam``, else ``pivotal_lam(N)`` with ``N`` the
        number of coefficients of the sparsifier on ``op``'s images (``H * W`` for wavelets)."""
        if self._lam is not None:
            return self._lam
        if not isinstance(op, LinearOperator):
            op = linear_operator(op, "op", "FIRENet")
        shape = getattr(self._sparsifier_for(op), "out_shape", None)
        n = shape[-1] if shape else None
        if n is None:
            raise ValueError("FIRENet: the sparsifier declares no number of coefficients; pass 'lam'")
        return pivotal_lam(int(n))

    @property
    def layers(self) -> int:
        """Number of primal-dual layers ``restarts * inner``."""
        return self.restarts * self.inner

    def _sparsifier_for(self, op: LinearOperator) -> LinearOperator:
        return self.sparsifier if self.sparsifier is not None else firenet_sparsifier(op)

    def forward(self, y: torch.Tensor, op: Operator | None = None,
                x0: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruct ``x_hat`` ``(B, C, H, W)`` from measurements ``y`` (``op``: default the
        constructor's); ``x0`` warm-starts the iterations."""
        op = linear_operator(resolve_operator(op, self.op, "FIRENet"), "op", "FIRENet", y)
        return restarted_primal_dual(
            y, op, self._sparsifier_for(op), self.lam_for(op), weights=self.weights,
            restarts=self.restarts, inner=self.inner, delta=self.delta, x0=x0,
            tau=self.tau, sigma=self.sigma, real=self.real,
        )

    def extra_repr(self) -> str:
        lam = f"{self._lam:g}" if self._lam is not None else "pivotal"
        return (f"lam={lam}, restarts={self.restarts}, inner={self.inner}, "
                f"delta={self.delta:g}, layers={self.layers}")
