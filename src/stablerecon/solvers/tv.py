r"""Total-variation regularised reconstruction by the Chambolle-Pock primal-dual algorithm.

.. math::

    \min_x \; E(x) = \tfrac12 \|A x - y\|_2^2 + \lambda \operatorname{TV}(x),

with the discrete total variation of Rudin, Osher & Fatemi (1992) on the forward-difference
gradient ``D`` of :class:`~stablerecon.sparsity.FiniteDifference`
(``D x`` of shape ``(B, C, 2, H, W)``):

- isotropic: ``TV(x) = sum_{c,i,j} sqrt(|(D_v x)_{c,i,j}|^2 + |(D_h x)_{c,i,j}|^2)`` (a group
  l1 norm of the pointwise gradient 2-vectors, channel by channel);
- anisotropic: ``TV(x) = ||D x||_1 = sum |D_v x| + |D_h x|``.

Chambolle-Pock (2011, Algorithm 1 with ``theta = 1``) is applied to
``min_x G(x) + F(K x)`` with ``K = [A; D]``, ``F(u, v) = F_1(u) + F_2(v)``,
``F_1(u) = 0.5 ||u - y||^2``, ``F_2(v) = lam ||v||_{1}`` (group or plain), and ``G = 0``
(``G`` = indicator of the real images when ``real=True``). With two dual variables ``p``
(measurement space) and ``q`` (gradient space), one iteration reads

.. math::

    p_{k+1} &= \operatorname{prox}_{\sigma F_1^*}(p_k + \sigma A \bar x_k)
             = \frac{p_k + \sigma (A \bar x_k - y)}{1 + \sigma}, \\
    q_{k+1} &= \operatorname{prox}_{\sigma F_2^*}(q_k + \sigma D \bar x_k)
             = P_{\{\|q\|_{\infty} \le \lambda\}}(q_k + \sigma D \bar x_k), \\
    x_{k+1} &= \operatorname{prox}_{\tau G}\bigl(x_k - \tau (A^* p_{k+1} + D^* q_{k+1})\bigr), \qquad
    \bar x_{k+1} = 2 x_{k+1} - x_k,

where the projection is onto the (group, for isotropic TV) l-infinity ball of radius ``lam``:
``q_g / max(1, |q_g| / lam)`` with ``|q_g|`` the Euclidean norm of the pointwise 2-vector
(isotropic) or the modulus of each entry (anisotropic), and ``prox_{tau G}`` is the identity
(complex images) or the real part (``real=True``). Convergence holds for
``tau sigma ||K||^2 <= 1``; we use the bound ``||K||^2 <= ||A||^2 + ||D||^2``
(``||[A; D] x||^2 = ||A x||^2 + ||D x||^2``). The ergodic average of the iterates has an
``O(1/k)`` bound on the partial primal-dual gap (Chambolle & Pock 2011, Thm. 1).

References
----------
L. I. Rudin, S. Osher, E. Fatemi, "Nonlinear total variation based noise removal algorithms",
Physica D 60:259-268, 1992.
A. Chambolle, T. Pock, "A first-order primal-dual algorithm for convex problems with
applications to imaging", J. Math. Imaging Vis. 40:120-145, 2011.
"""

from __future__ import annotations

import math

import torch

from ..operators.base import LinearOperator, check_tensor, real_dtype_of, skip_finite_checks
from ..sparsity import FiniteDifference
from ..validation import boolean
from . import _common as common
from ._common import SolverInfo

__all__ = ["primal_dual_tv", "tv_objective", "total_variation", "SolverInfo"]


def _check_flags(isotropic: object, ergodic: object, where: str) -> None:
    for name, value in (("isotropic", isotropic), ("ergodic", ergodic)):
        boolean(value, name, where=where)


def _finite_difference(op: LinearOperator, boundary: str, where: str) -> FiniteDifference:
    h, w = op.in_shape[1], op.in_shape[2]
    if h is None or w is None:
        raise ValueError(f"{where}: argument 'op' must have a fixed image size (H, W), "
                         f"got in_shape={op.in_shape}")
    try:
        return FiniteDifference((int(h), int(w)), boundary=boundary)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _tv_of_gradient(g: torch.Tensor, isotropic: bool) -> torch.Tensor:
    """TV from a gradient field ``(B, C, 2, H, W)``; shape ``(B,)``."""
    mod = torch.linalg.vector_norm(g, dim=2) if isotropic else g.abs()
    return mod.reshape(g.shape[0], -1).sum(dim=1)


def _project_dual(q: torch.Tensor, lam: torch.Tensor, isotropic: bool) -> torch.Tensor:
    """Projection onto ``{|q_g| <= lam}`` (groups: gradient 2-vectors, or single entries)."""
    # max(1, |q_g| / lam) = sqrt(max(1, |q_g|^2 / lam^2)): no square root at 0, so no NaN in
    # the gradient, and a plain sum over the short axis is faster than vector_norm(dim=2).
    sq = torch.view_as_real(q).square().sum(dim=-1) if q.is_complex() else q.square()
    if isotropic:
        sq = sq.sum(dim=2, keepdim=True)
    return q / torch.clamp_min(sq / (lam * lam), 1.0).sqrt()


def total_variation(x: torch.Tensor, isotropic: bool = True, boundary: str = "neumann") -> torch.Tensor:
    r"""The discrete total variation ``TV(x)`` of images ``(B, C, H, W)``, shape ``(B,)``.

    Isotropic: ``sum_{c,i,j} |(D x)_{c,:,i,j}|_2``; anisotropic: ``||D x||_1``, with ``D`` the
    forward differences of :class:`~stablerecon.sparsity.FiniteDifference` (``boundary``
    ``"neumann"`` or ``"periodic"``). Complex images contribute moduli. Differentiable.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(1, 1, 4, 4); x[..., 2:] = 1.0   # a vertical edge of height 4
    >>> total_variation(x)
    tensor([4.])
    """
    where = "total_variation"
    x = check_tensor(x, "x", (None, None, None), "any", where=where)
    _check_flags(isotropic, False, where)
    d = FiniteDifference((x.shape[-2], x.shape[-1]), boundary=boundary)  # type: ignore[arg-type]
    return _tv_of_gradient(d.A(x), isotropic)


def tv_objective(
    x: torch.Tensor,
    y: torch.Tensor,
    op: LinearOperator,
    lam: float | torch.Tensor,
    isotropic: bool = True,
    boundary: str = "neumann",
) -> torch.Tensor:
    r"""The TV objective ``0.5 ||A x - y||_2^2 + lam TV(x)`` per batch item, shape ``(B,)``.

    Parameters as in :func:`primal_dual_tv`; ``x`` is an image ``(B, C, H, W)`` (real or
    complex). Differentiable.
    """
    where = "tv_objective"
    op = common.check_linear_operator(op, "op", where, y)
    x = check_tensor(x, "x", op.in_shape, "any", where=where)
    y = check_tensor(y, "y", op.out_shape, "any", where=where)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: arguments 'x' and 'y' have batch sizes {x.shape[0]} and {y.shape[0]}")
    _check_flags(isotropic, False, where)
    lam_t = common.check_lam(lam, x.shape[0], real_dtype_of(x.dtype), x.device, where)
    d = _finite_difference(op, boundary, where)
    return common.data_term(op.A(x), y) + lam_t * _tv_of_gradient(d.A(x), isotropic)


def _step_sizes(tau: object, sigma: object, k2: float, where: str) -> tuple[float, float]:
    for name, value in (("tau", tau), ("sigma", sigma)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where}: argument '{name}' must be a positive number or None, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{where}: argument '{name}' must be positive and finite, got {value}")
    if tau is None and sigma is None:
        tau = sigma = 1.0 / math.sqrt(k2)
    elif tau is None:
        tau = 1.0 / (float(sigma) * k2)  # type: ignore[arg-type]
    elif sigma is None:
        sigma = 1.0 / (float(tau) * k2)
    tau, sigma = float(tau), float(sigma)  # type: ignore[arg-type]
    if tau * sigma * k2 > 1.0 + 1e-9:
        raise ValueError(
            f"{where}: step sizes must satisfy tau * sigma * ||K||^2 <= 1 with the bound "
            f"||K||^2 <= ||A||^2 + ||D||^2 = {k2:.6g}; got tau={tau:g}, sigma={sigma:g}, "
            f"tau * sigma * ||K||^2 = {tau * sigma * k2:.6g}"
        )
    return tau, sigma


def primal_dual_tv(
    y: torch.Tensor,
    op: LinearOperator,
    lam: float | torch.Tensor,
    x0: torch.Tensor | None = None,
    max_iter: int = 500,
    tol: float = 1e-6,
    tau: float | None = None,
    sigma: float | None = None,
    isotropic: bool = True,
    boundary: str = "neumann",
    ergodic: bool = False,
    real: bool = True,
    return_info: bool = False,
    progress: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, SolverInfo]:
    r"""Solve ``min_x 0.5 ||A x - y||^2 + lam TV(x)`` by Chambolle-Pock on ``K = [A; D]``.

    See the module docstring for the iteration.

    Parameters
    ----------
    y:
        Measurements ``(B, *op.out_shape)``, real or complex.
    op:
        Forward operator ``A`` on images ``(B, C, H, W)`` of a fixed size ``(H, W)``
        (:class:`~stablerecon.operators.Identity` for ROF denoising); any object with ``A``
        and ``A_adjoint`` is adapted (:func:`~stablerecon.operators.as_linear_operator`,
        shapes inferred from ``y``).
    lam:
        Regularisation weight ``lambda > 0``: a number or a real tensor of shape ``()`` or
        ``(B,)``. For denoising (``op`` the identity) it equals the ``weight`` of
        :func:`skimage.restoration.denoise_tv_chambolle`.
    x0:
        Initial image ``(B, C, H, W)`` (default zero); real when ``real=True``.
    max_iter:
        Maximal number of iterations (``>= 1``).
    tol:
        Stop when ``||x_{k+1} - x_k|| / max(||x_k||, tiny) < tol`` for every batch item, measured
        on the last iterate also when ``ergodic=True``.
    tau, sigma:
        Primal and dual step sizes. Default ``tau = sigma = 1 / sqrt(||A||^2 + ||D||^2)``; if
        only one is given the other is ``1 / (given * (||A||^2 + ||D||^2))``. Must satisfy
        ``tau sigma (||A||^2 + ||D||^2) <= 1``.
    isotropic:
        Isotropic (default) or anisotropic TV.
    boundary:
        ``"neumann"`` (default) or ``"periodic"`` finite differences.
    ergodic:
        Return the average ``(x_1 + ... + x_k) / k`` of the primal iterates (the estimate the
        ``O(1/k)`` theory bounds) instead of the last iterate ``x_k``.
    real:
        Constrain the image to be real (``prox_G`` = real part); ``False`` for complex images.
    return_info:
        Also return a :class:`~stablerecon.solvers.SolverInfo` (objective of the returned
        estimate per iteration, which costs one extra ``A`` and ``D`` per iteration).
    progress:
        Show a tqdm progress bar.

    Returns
    -------
    The image ``(B, C, H, W)`` (real dtype of ``y`` when ``real=True``, else complex), and the
    info when ``return_info=True``. Differentiable with respect to ``y`` and a tensor ``lam``.

    Raises
    ------
    TypeError, ValueError
        For invalid arguments (named in the message), including step sizes with
        ``tau * sigma * ||K||^2 > 1``.

    Examples
    --------
    >>> import torch
    >>> from stablerecon.operators import Identity
    >>> x = torch.zeros(1, 1, 32, 32); x[..., 8:24, 8:24] = 1.0
    >>> y = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    >>> x_hat = primal_dual_tv(y, Identity(32), lam=0.1, max_iter=300)
    >>> bool(torch.linalg.vector_norm(x_hat - x) < torch.linalg.vector_norm(y - x))
    True
    """
    where = "primal_dual_tv"
    op = common.check_linear_operator(op, "op", where, y)
    y = check_tensor(y, "y", op.out_shape, "any", where=where)
    max_iter, tol = common.check_iterations(max_iter, tol, where)
    dtype, rdtype = common.working_dtypes(y, op, real, where)
    _check_flags(isotropic, ergodic, where)
    batch, device = y.shape[0], y.device
    lam_t = common.check_lam(lam, batch, rdtype, device, where)
    diff = _finite_difference(op, boundary, where)
    norm_a = float(op.norm())
    if not math.isfinite(norm_a):
        raise ValueError(f"{where}: the operator norm ||A|| of {op.name} is not finite ({norm_a})")
    k2 = norm_a**2 + float(diff.norm()) ** 2
    tau, sigma = _step_sizes(tau, sigma, k2, where)
    bar = common.progress_range(max_iter, progress, where)

    with skip_finite_checks():
        shape = op.A_adjoint(y).shape
        if x0 is None:
            x = torch.zeros(shape, dtype=dtype, device=device)
        else:
            x = common.check_x0(x0, shape, dtype, real, where)
        ax = op.A(x)
        p = torch.zeros(ax.shape, dtype=torch.promote_types(ax.dtype, y.dtype), device=device)
        q = torch.zeros_like(diff.A(x))
        lam_q = lam_t.reshape(-1, 1, 1, 1, 1) if lam_t.ndim == 1 else lam_t
        lam_b = lam_t.reshape(-1)
        x_bar = x
        total = torch.zeros_like(x) if ergodic else None
        history: list[torch.Tensor] = []
        rel = torch.full((batch,), math.inf, dtype=rdtype, device=device)
        converged, iterations = False, 0
        for k in bar:
            p = (p + sigma * (op.A(x_bar) - y)) / (1.0 + sigma)
            q = _project_dual(q + sigma * diff.A(x_bar), lam_q, isotropic)
            g = op.A_adjoint(p)
            if real and g.is_complex():
                g = g.real
            x_new = x - tau * (g.to(dtype) + diff.A_adjoint(q))
            x_bar = 2.0 * x_new - x
            rel = common.relative_change(x_new, x)
            x, iterations = x_new, k + 1
            if total is not None:
                total = total + x
            if return_info:
                with torch.no_grad():
                    est = total / iterations if total is not None else x
                    obj = common.data_term(op.A(est), y) + lam_b * _tv_of_gradient(diff.A(est), isotropic)
                    history.append(obj.to(torch.float64))
            if progress and k % 10 == 0:
                bar.set_postfix(rel_change=f"{float(rel.max()):.2e}")
            if bool((rel < tol).all()):
                converged = True
                break
        out = total / iterations if total is not None else x

    if not return_info:
        return out
    info = SolverInfo.from_history(history, batch, iterations, rel, converged,
                                   extras={"tau": tau, "sigma": sigma, "norm_K_squared_bound": k2,
                                           "dual_data": p.detach(), "dual_tv": q.detach()})
    return out, info
