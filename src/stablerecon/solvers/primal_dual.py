r"""Chambolle-Pock primal-dual iterations for the weighted square-root LASSO.

.. math::

    \min_c \; \lambda \|c\|_{1,w} + \|A W^* c - y\|_2, \qquad
    \|c\|_{1,w} = \sum_i w_i |c_i|,

with ``A`` a forward operator and ``W`` an orthonormal sparsifying transform (so that the
image is ``x = W^* c``). Writing ``B = A W^*`` and dualising the data term
(``||r||_2 = max_{||z||_2 <= 1} Re<z, r>``), one Chambolle-Pock step is

.. math::

    c_{k+1} = \operatorname{soft}\bigl(c_k - \tau B^* z_k,\; \tau \lambda w\bigr), \qquad
    z_{k+1} = P_{\{\|z\|_2 \le 1\}}\bigl(z_k + \sigma (B(2 c_{k+1} - c_k) - y)\bigr),

convergent for ``tau * sigma * ||B||^2 <= 1``; the ergodic average of ``c_1..c_k`` has an
``O(1/k)`` bound on the primal-dual gap. Soft-thresholding and the l2-ball projection are the
only non-linearities, which makes the unrolled iterations a network (FIRENET,
:mod:`stablerecon.nets.firenet`).

References
----------
Chambolle, Pock, "A first-order primal-dual algorithm for convex problems with applications to
imaging", J. Math. Imaging Vis. 40 (2011). Belloni, Chernozhukov, Wang, "Square-root lasso",
Biometrika 98 (2011). Colbrook, Antun, Hansen, "The difficulty of computing stable and accurate
neural networks", PNAS 119 (2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..operators.base import LinearOperator, check_tensor, skip_finite_checks
from ..sparsity import project_l2_ball, soft_threshold
from ..validation import boolean, positive_float
from ._common import SolverInfo, check_iterations, linear_operator, progress_range, relative_change

__all__ = [
    "SqrtLassoProblem",
    "primal_dual",
    "sqrt_lasso_objective",
    "cp_steps",
    "step_sizes",
]


def step_sizes(op: LinearOperator, tau: float | None, sigma: float | None) -> tuple[float, float]:
    """Validated Chambolle-Pock steps (default ``1 / ||A||`` each); ``tau sigma ||A||^2 <= 1``."""
    norm = op.norm()
    tau = positive_float(tau, "tau") if tau is not None else 1.0 / norm
    sigma = positive_float(sigma, "sigma") if sigma is not None else 1.0 / norm
    if tau * sigma * norm**2 > 1.0 + 1e-6:
        raise ValueError(
            f"step sizes must satisfy tau * sigma * ||A||^2 <= 1, got tau={tau:g}, sigma={sigma:g}, "
            f"||A||={norm:g} (product {tau * sigma * norm**2:g})"
        )
    return tau, sigma


class SqrtLassoProblem:
    """A validated weighted square-root LASSO instance ``(A, W, lam, w)`` and its maps.

    Parameters
    ----------
    op:
        Forward operator ``A`` on images ``(B, C, H, W)``: a
        :class:`~stablerecon.operators.LinearOperator`, or any object with ``A`` and
        ``A_adjoint`` that declares ``in_shape``/``out_shape`` (others are adapted with example
        measurements by :func:`primal_dual`, see :func:`~stablerecon.operators.as_linear_operator`).
    sparsifier:
        Orthonormal transform ``W`` on the same images (e.g. :class:`~stablerecon.sparsity.Wavelet`),
        mapping to coefficients ``(B, C, N)``.
    lam:
        Regularisation weight ``lambda > 0``.
    weights:
        ``None`` (all ones), per-level weights (a sequence of length ``levels + 1``, see
        :func:`~stablerecon.solvers.level_weights`) or per-coefficient weights (a tensor of
        shape ``(N,)``), all non-negative.
    real:
        Constrain the image to be real (``c`` real; the adjoint keeps the real part). Use it for
        real images measured by complex operators such as :class:`SubsampledFourier`.
    """

    def __init__(self, op: LinearOperator, sparsifier: LinearOperator, lam: float,
                 weights: Sequence[float] | torch.Tensor | None = None, real: bool = True) -> None:
        op = linear_operator(op, "op", "SqrtLassoProblem")
        if not isinstance(sparsifier, LinearOperator):
            raise TypeError(
                f"argument 'sparsifier' must be a LinearOperator, got {type(sparsifier).__name__}"
            )
        if tuple(sparsifier.in_shape[-2:]) != tuple(op.in_shape[-2:]):
            raise ValueError(
                f"argument 'sparsifier' acts on images of size {tuple(sparsifier.in_shape[-2:])} "
                f"but 'op' on images of size {tuple(op.in_shape[-2:])}"
            )
        if op.in_kind == "real" and not real:
            raise ValueError(f"argument 'real' must be True for {op.name}, which accepts only real images")
        self.op = op
        self.sparsifier = sparsifier
        self.lam = positive_float(lam, "lam")
        self.real = bool(real)
        n = int(sparsifier.out_shape[-1])
        if weights is None:
            w = torch.ones(n, dtype=torch.float64)
        elif isinstance(weights, torch.Tensor) and weights.ndim == 1 and weights.shape[0] == n:
            w = weights.detach().to(torch.float64).cpu()
        else:
            expand = getattr(sparsifier, "expand_level_weights", None)
            if expand is None:
                raise ValueError(
                    f"argument 'weights' must be a tensor of shape ({n},) for {sparsifier.name}"
                )
            w = expand(weights, dtype=torch.float64).cpu()
        if w.shape != (n,):
            raise ValueError(f"argument 'weights' must give {n} coefficient weights, got {tuple(w.shape)}")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("argument 'weights' must be finite and non-negative")
        self.weights = w
        self._cache: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def thresholds(self, like: torch.Tensor) -> torch.Tensor:
        """``lam * w`` with the real dtype and device of ``like`` (cached)."""
        dtype = like.real.dtype if like.is_complex() else like.dtype
        key = (dtype, like.device)
        if key not in self._cache:
            self._cache[key] = (self.lam * self.weights).to(dtype=dtype, device=like.device)
        return self._cache[key]

    def B(self, c: torch.Tensor) -> torch.Tensor:
        """``A W^* c``: coefficients ``(B, C, N)`` -> measurements."""
        return self.op.A(self.sparsifier.A_adjoint(c))

    def B_adjoint(self, z: torch.Tensor) -> torch.Tensor:
        """``W A^* z`` (real part of the image first when ``real``)."""
        x = self.op.A_adjoint(z)
        if self.real and x.is_complex():
            x = x.real
        return self.sparsifier.A(x)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """``W x`` of an image (real part kept when ``real``)."""
        if self.real and x.is_complex():
            x = x.real
        return self.sparsifier.A(x)

    def image(self, c: torch.Tensor) -> torch.Tensor:
        """``W^* c``."""
        return self.sparsifier.A_adjoint(c)

    def objective(self, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``lam ||c||_{1,w} + ||B c - y||_2`` per batch item, shape ``(B,)``."""
        t = self.thresholds(c)
        reg = (t * c.abs()).flatten(1).sum(1)
        res = torch.linalg.vector_norm((self.B(c) - y).flatten(1), dim=1)
        return reg + res

    def initial_coefficients(self, y: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        if x0 is None:
            # Channels: the operator's when fixed (multi-coil: 1 image channel, C coil channels
            # of y), else those of y (channel-wise operators).
            in_channels = self.op.in_shape[0] if self.op.in_shape else None
            channels = y.shape[1] if in_channels is None else in_channels
            shape = (y.shape[0], *(channels if s is None else s for s in self.sparsifier.out_shape))
            dtype = y.real.dtype if (self.real or self.op.in_kind == "real") else y.dtype
            if self.real and y.is_complex():
                dtype = y.real.dtype
            return torch.zeros(shape, dtype=dtype, device=y.device)
        check_tensor(x0, "x0", self.op.in_shape, self.op.in_kind, where="initial guess")
        if x0.shape[0] != y.shape[0]:
            raise ValueError(f"argument 'x0' has batch {x0.shape[0]} but 'y' has batch {y.shape[0]}")
        return self.coefficients(x0)

    def check_measurements(self, y: object) -> torch.Tensor:
        return check_tensor(y, "y", self.op.out_shape, self.op.out_kind if not self.op.out_complex
                            else "any", where="measurements")


def cp_steps(problem: SqrtLassoProblem, y: torch.Tensor, c: torch.Tensor, z: torch.Tensor,
             steps: int, tau: float | torch.Tensor, sigma: float | torch.Tensor,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``steps`` Chambolle-Pock iterations from ``(c, z)``.

    ``tau`` and ``sigma`` are scalars or per-batch tensors ``(B,)``. Returns the last primal
    iterate, the last dual iterate and the ergodic average of the primal iterates
    ``c_1..c_steps`` (``c_0`` excluded).
    """
    view_c = (-1,) + (1,) * (c.ndim - 1)
    view_z = (-1,) + (1,) * (y.ndim - 1)
    tau_c = tau.reshape(view_c) if isinstance(tau, torch.Tensor) else tau
    sigma_z = sigma.reshape(view_z) if isinstance(sigma, torch.Tensor) else sigma
    thresh = problem.thresholds(c)
    total = torch.zeros_like(c)
    for _ in range(steps):
        c_new = soft_threshold(c - tau_c * problem.B_adjoint(z), tau_c * thresh)
        z = project_l2_ball(z + sigma_z * (problem.B(2 * c_new - c) - y), 1.0)
        c = c_new
        total = total + c
    return c, z, total / steps


def sqrt_lasso_objective(x: torch.Tensor, y: torch.Tensor, op: LinearOperator,
                         sparsifier: LinearOperator, lam: float,
                         weights: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """``lam ||W x||_{1,w} + ||A x - y||_2`` per batch item, shape ``(B,)``."""
    op = linear_operator(op, "op", "sqrt_lasso_objective", y)
    problem = SqrtLassoProblem(op, sparsifier, lam, weights, real=not x.is_complex())
    return problem.objective(problem.coefficients(x), y)


def primal_dual(
    y: torch.Tensor,
    op: LinearOperator,
    sparsifier: LinearOperator,
    lam: float,
    weights: Sequence[float] | torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
    max_iter: int = 1000,
    tol: float = 0.0,
    tau: float | None = None,
    sigma: float | None = None,
    ergodic: bool = True,
    real: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    return_info: bool = False,
    progress: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, SolverInfo]:
    r"""Plain (unrestarted) Chambolle-Pock for the weighted square-root LASSO.

    Solves ``min_c lam ||c||_{1,w} + ||A W^* c - y||_2`` and returns the image ``W^* c``.

    Parameters
    ----------
    y:
        Measurements ``(B, *op.out_shape)``.
    op, sparsifier, lam, weights, real:
        The problem, see :class:`SqrtLassoProblem` (``op``: any object with ``A`` and
        ``A_adjoint``, its shapes inferred from ``y`` if it declares none). ``lam`` is
        scale-free: the objective is 1-homogeneous in ``(c, y)``, so the same ``lam`` suits any
        scaling of the data.
    x0:
        Initial image ``(B, C, H, W)`` (default zero).
    max_iter:
        Maximal number of primal-dual steps (``>= 1``).
    tol:
        Stop when the relative change of the last primal iterate,
        ``||c_{k+1} - c_k|| / max(||c_k||, tiny)``, is below ``tol`` for every batch item
        (default ``0``: run exactly ``max_iter`` steps).
    tau, sigma:
        Step sizes; default ``1 / ||A||`` each. Must satisfy ``tau sigma ||A||^2 <= 1``
        (``W`` orthonormal, so ``||A W^*|| = ||A||``).
    ergodic:
        Return the ergodic average of the iterates ``c_1..c_k`` (the iterate the ``O(1/k)``
        gap bound is about) instead of the last one. The last iterate usually reaches a given
        error in far fewer steps; FIRENET's restarts make the ergodic average fast.
    callback:
        Called as ``callback(k, x_k)`` after step ``k = 1, 2, ...`` with the current estimate
        (the ergodic average when ``ergodic``), e.g. to record error curves.
    return_info:
        Also return a :class:`~stablerecon.solvers.SolverInfo` (objective of the returned
        estimate per step, costing one extra ``B`` per step; last relative change; whether
        ``tol`` was met; ``extras`` with ``tau``, ``sigma`` and the final dual variable ``z``).
    progress:
        Show a tqdm progress bar.

    Returns
    -------
    Tensor ``(B, C, H, W)`` (and the info when asked). Differentiable with respect to ``y``.

    Examples
    --------
    >>> import torch, stablerecon as sr
    >>> op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(32, 0.4, seed=0))
    >>> x = torch.zeros(1, 1, 32, 32, dtype=torch.float64); x[..., 8:24, 8:24] = 1.0
    >>> wav = sr.sparsity.Wavelet("haar", size=32)
    >>> x_hat = primal_dual(op.A(x), op, wav, lam=1e-2, max_iter=500, ergodic=False)
    >>> bool(torch.linalg.vector_norm(x_hat - x) < 1e-3 * torch.linalg.vector_norm(x))
    True
    """
    where = "primal_dual"
    op = linear_operator(op, "op", where, y)
    problem = SqrtLassoProblem(op, sparsifier, lam, weights, real)
    y = problem.check_measurements(y)
    max_iter, tol = check_iterations(max_iter, tol, where)
    ergodic = boolean(ergodic, "ergodic", where=where)
    tau, sigma = step_sizes(op, tau, sigma)
    c = problem.initial_coefficients(y, x0)
    z = torch.zeros_like(y)
    batch = y.shape[0]
    rdt = c.real.dtype if c.is_complex() else c.dtype
    history: list[torch.Tensor] = []
    rel = torch.full((batch,), math.inf, dtype=rdt, device=y.device)
    converged, iterations = False, 0
    total = torch.zeros_like(c)
    bar = progress_range(max_iter, progress, where)
    with skip_finite_checks():
        for k in bar:
            c_new, z, _ = cp_steps(problem, y, c, z, 1, tau, sigma)
            rel = relative_change(c_new, c)
            c, iterations = c_new, k + 1
            total = total + c
            estimate = total / iterations if ergodic else c
            if return_info:
                with torch.no_grad():
                    history.append(problem.objective(estimate, y).detach().to(torch.float64))
            if callback is not None:
                callback(iterations, problem.image(estimate))
            if progress and k % 10 == 0:
                bar.set_postfix(rel_change=f"{float(rel.max()):.2e}")
            if bool((rel < tol).all()):
                converged = True
                break
        x = problem.image(total / iterations if ergodic else c)
    if not return_info:
        return x
    info = SolverInfo.from_history(history, batch, iterations, rel, converged,
                                   extras={"tau": tau, "sigma": sigma, "dual": z.detach()})
    return x, info
