r"""FIRENET's stability in its inputs ``(y, A)``: a rigorous bound and measured changes.

A FIRENET (:class:`~stablerecon.nets.FIRENet`) takes the measurements *and* the operator,
``x_hat = Phi(y, A)``. Given inexact input ``(y + e, A + E)`` (Colbrook, Antun, Hansen, "The
difficulty of computing stable and accurate neural networks: On the barriers of deep learning
and Smale's 18th problem", PNAS 119 (2022): ``||e|| <= r ||y||``, ``||E|| <= r ||A||``), this
module states how far the output can move, :func:`firenet_bound`, and measures how far it does
move, :func:`random_inexact` and :func:`worst_case_inexact` (projected gradient ascent over
``(e, theta)`` through the network by autograd, ``A + E = family(theta)`` a family of
:mod:`stablerecon.operators.perturbations`).

The paper's stability guarantee is, as we read it, an *accuracy* statement: under the robust
null space property in levels (constants of ``A`` and the sparsity levels), every input of the
class gives an output close to the image, up to the noise, the distance to sparse images, the
input perturbation and a term ``O(e^{-n})`` in the number of restarts, hence nearby inputs give
nearby outputs. Those constants are not computable for a given subsampled Fourier operator, so
:func:`firenet_bound` proves an assumption-free bound for *this* implementation instead (see
its docstring): a per-layer Lipschitz recursion, rigorous for every input but exponentially
loose in the number of layers at the default steps (``tau sigma ||A||^2 = 1``), where it is the
absolute cap at every budget of practice, vacuous as a stability statement; and, for shorter
steps (``tau sigma ||A||^2 < 1``), a recursion in the Chambolle-Pock metric whose slope is
polynomial-size (``~1e3`` per unit ``||e||`` at ``tau = sigma = 0.5 / ||A||``, 7 x 6 layers at 128 x 128),
still far above the measured change. The measured change is what shows stability
(``benchmarks/firenet_inexact.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..contracts import Reconstructor
from ..operators.base import LinearOperator
from ..operators.perturbations import PerturbationFamily
from ..solvers.primal_dual import SqrtLassoProblem
from ..validation import positive_float, positive_int
from .firenet import FIRENet

__all__ = ["firenet_bound", "FirenetBound", "InexactChange", "random_inexact", "worst_case_inexact"]


@dataclass(frozen=True)
class FirenetBound:
    """The bound of :func:`firenet_bound` at one ``(||e||, ||E||)``, with its two regimes.

    ``bound`` (the guarantee) is the least of: the Euclidean recursion ``min``-combined along
    the layers from ``linear`` (the Lipschitz recursion without the dual-difference cap,
    exponential in the layers) and ``cap`` (the absolute bound, independent of ``e`` and
    ``E``); and ``metric``, the recursion in the Chambolle-Pock metric, finite only for steps
    with ``tau sigma ||A||^2 < 1`` (``inf`` at the default steps). ``slope_y`` and ``slope_A``
    are the slopes of the uncapped bounds as the perturbation tends to zero:
    ``bound <= slope_y ||e|| + slope_A ||E|| + o(.)``.
    """

    bound: float
    linear: float
    metric: float
    cap: float
    slope_y: float
    slope_A: float
    layers: int


def _eps_schedule(eps0: float, restarts: int, delta: float, tiny: float) -> list[float]:
    """``eps_1..eps_n`` of :func:`~stablerecon.solvers.restarted_primal_dual` (monotone in
    ``eps0``, ``delta`` and ``tiny``)."""
    floor, eps, out = eps0 * 1e-12 + tiny, eps0, []
    for _ in range(restarts):
        eps = max((delta + eps) / math.e, floor)
        out.append(eps)
    return out


def _recursion(p: int, blocks: list[dict], e: float, E: float, y_norm: float, lam_w: float,
               c0: float, capped: bool) -> float:
    """Run the per-layer recursion of :func:`firenet_bound` over the blocks (see there)."""
    d_c, c_nom = 0.0, c0
    for b in blocks:
        d_z, diffs, norms = 0.0, [], []
        c_prev = c_nom
        for _ in range(p):
            step_c = b["a"] * d_z + b["T"] * E + b["dtau"] * (b["nA"] + lam_w)
            if capped:
                step_c = min(step_c, b["tau"] * b["nA"] + b["a"] + b["dtau"] * lam_w)
            d_new = d_c + step_c
            c_new = c_prev + b["tau"] * b["nA"]
            v_norm = 2 * c_new + c_prev
            d_z = d_z + b["b"] * (2 * d_new + d_c) + b["S"] * (E * v_norm + e) \
                + b["dsigma"] * (b["nA"] * v_norm + y_norm)
            if capped:
                d_z = min(d_z, 2.0)
            d_c, c_prev = d_new, c_new
            diffs.append(d_c)
            norms.append(c_new)
        d_c, c_nom = sum(diffs) / p, max(norms)
    return d_c


def firenet_bound(net: FIRENet, op: LinearOperator, y_norm: float, e_norm: float, E_norm: float = 0.0,
                  *, perturbed_norm: float | None = None, channels: int = 1, x0_norm: float = 0.0,
                  norm_slack: float = 1e-3, dtype: torch.dtype = torch.float32) -> FirenetBound:
    r"""A rigorous bound on ``||Phi(y + e, A + E) - Phi(y, A)||_2`` for a FIRENET ``Phi``.

    ``Phi = net`` with its ``lam`` (``net.lam_for(op)``), weights, sparsifier ``W``
    (orthonormal, as FIRENET's default wavelets), ``restarts`` ``n``,
    ``inner`` ``p``, ``delta`` and base steps (``tau = sigma = 1 / ||A||`` unless given), as
    computed by :func:`~stablerecon.solvers.restarted_primal_dual`, *including* its
    data-dependent schedule: ``eps_0 = ||y||``, ``eps_k = max((delta + eps_{k-1}) / e, 1e-12
    eps_0 + tiny)``, block steps ``tau_k = tau eps_k p / (2 ||A||)`` and
    ``sigma_k = 2 sigma ||A|| / (eps_k p)``, which move when ``y`` and ``A`` do.

    **Statement.** For one batch item, ``||e|| = e_norm < ||y|| = y_norm`` and
    ``||E|| = E_norm < ||A||``, ``||Phi(y + e, A + E) - Phi(y, A)|| <= D_n``, where ``D_n`` is
    the output of the recursion below (``bound``). Constants: ``a_k = T_k ||A~||`` and
    ``b_k = S_k ||A~||`` with ``T_k``, ``S_k`` the largest perturbed steps of block ``k``
    (``||A~|| <= ||A|| + ||E||``; ``a_k b_k <= 1`` with equality at the default steps),
    ``dtau_k``, ``dsigma_k`` the largest step changes over ``||y~|| in [||y|| - ||e||, ||y||
    + ||e||]`` and the norm the network computes for ``A + E`` (``perturbed_norm`` if given,
    else anywhere in ``[||A|| - ||E||, ||A|| + ||E||]`` widened by ``norm_slack``; exactly
    ``op.norm()`` when ``E = 0``), ``lw = lam ||w||_2 sqrt(C)`` the norm of the
    thresholds, ``C_j`` a priori bounds of the nominal coefficient norms (``C_0 = ||x0||``,
    ``C_{j+1} = C_j + tau_k ||A||``). Per layer (``dc``, ``dz``: primal and dual differences;
    each block restarts from ``dz = 0`` and returns the mean of its ``p`` values of ``dc``):

    .. math::

        dc' &= dc + \min\bigl(a_k dz + T_k \|E\| + d\tau_k (\|A\| + lw),\;
               \tau_k \|A\| + a_k + d\tau_k\, lw\bigr), \\
        dz' &= \min\bigl(2,\; dz + b_k (2 dc' + dc) + S_k (\|E\| (2C' + C) + \|e\|)
               + d\sigma_k (\|A\| (2C' + C) + \|y\|)\bigr).

    **Proof.** A layer is ``c' = soft(c - tau B^* z, tau lam w)``,
    ``z' = P(z + sigma (B (2c' - c) - y))`` with ``B = A W^*`` (``||B|| <= ||A||``; the real part
    taken in ``B^*`` is a contraction). Soft-thresholding is 1-Lipschitz in its argument and in
    its threshold (``||soft(u, s w) - soft(v, t w)|| <= ||u - v|| + |s - t| lam ||w||``) and
    ``P``, the projection onto the unit ball, is 1-Lipschitz with both duals in the ball, so
    ``dz <= 2``. Write ``tau B^* z - tau~ B~^* z~ = tau~ B~^*(z - z~) + tau~ (B - B~)^* z +
    (tau - tau~) B^* z`` and ``sigma (B v - y) - sigma~ (B~ v~ - y~) = sigma~ B~ (v - v~) +
    sigma~ (B - B~) v + (sigma - sigma~)(B v - y) + sigma~ (y~ - y)`` with ``v = 2c' - c``, use
    ``||z|| <= 1``, ``||soft(u)|| <= ||u||`` (hence ``||c_j|| <= C_j``) and the triangle
    inequality: that is the recursion (the second argument of the first ``min`` bounds
    ``||tau B^* z|| + ||tau~ B~^* z~||`` directly). Averages of differences are at most the
    mean difference, restarts reset both duals to 0, and ``W^*`` is an isometry. QED.

    **Second bound, for steps with** ``theta = tau sigma ||A||^2 < 1`` (``FIRENet(tau=..,
    sigma=..)``; ``metric = inf`` at the default ``theta = 1``). A layer of block ``k`` is
    ``T_k u = (M_k + K)^{-1} M_k u`` for ``u = (c, z)``, ``K = (dG + B^* z, dF^* - B c)``
    maximal monotone and ``M_k = [[I / tau_k, -B^*], [-B, I / sigma_k]]``, with
    ``(1 - sqrt(theta)) N_k <= M_k <= (1 + sqrt(theta)) N_k``, ``N_k = diag(I / tau_k,
    I / sigma_k)``; so ``T_k`` is nonexpansive in ``||.||_{M_k}`` (Chambolle, Pock, J. Math.
    Imaging Vis. 40, 2011; He, Yuan, SIAM J. Imaging Sci. 5, 2012). With the perturbed layer
    ``T~_k`` from the same point, ``||u' - u~'||_M <= ||u - u~||_M + ||T_k u~ - T~_k u~||_M``
    and the last term is at most ``sqrt(1 + sqrt(theta)) (dc^2 / tau_k + dz^2 / sigma_k)^{1/2}``
    with ``dc = tau_k ||E|| + dtau_k (||A~|| + lw)``, ``dz = min(2, 2 sigma_k ||A|| dc +
    sigma_k (||E|| V~ + ||e||) + dsigma_k (||A~|| V~ + ||y|| + ||e||))``, ``V~ = 2 C~' + C~``
    from a priori bounds ``C~_{j+1} = C~_j + a_k`` of the perturbed coefficients (the same
    expansions as above, at one point). A block starts at ``||du||_M = dc_in / sqrt(tau_k)``
    (duals equal) and ``dc_j <= (tau_k / (1 - sqrt(theta)))^{1/2} ||du_j||_M``: a difference
    entering a block leaves it multiplied by at most ``(1 - sqrt(theta))^{-1/2}``, not
    ``(4^p - 1) / (3 p)``. ``bound`` is the least of the two. QED.

    **How loose.** At the default steps the uncapped recursion multiplies ``(dc, a dz)`` by a
    matrix with spectral radius 4 per layer (``[[1, 1], [3, 3]]``): a difference entering a
    block leaves it multiplied by ``(4^p - 1) / (3 p)`` (228 for ``p = 6``, 2730 for ``p = 8``), so ``linear``
    grows like ``228^n`` (slopes ``~1e17`` for the default 7 x 6 layers, ``~1e41`` for 12 x 8), and the
    bound is in the regime of the cap, about ``p (p + 1) ||y|| / (2 (e - 1) ||A||)`` (21
    ``||y|| / ||A||`` for ``p = 8``), for any perturbation of practical size: a rigorous but
    vacuous statement. The measured worst case (:func:`worst_case_inexact`) is the informative
    number; a bound that certifies a small Lipschitz constant would need the firm
    nonexpansiveness of Chambolle-Pock in the metric of ``[[I / tau, -B^*], [-B, I / sigma]]``,
    which degenerates exactly at ``tau sigma ||A||^2 = 1``. For one block of two layers
    (``p = 2``: ``Phi = W^* soft(W Re A^* y / (e ||A||^2), lam ||y|| w / (e ||A||^2)) / 2``)
    the bound is 12.6 times the exact worst case (y only, 16 x 16; tested: at most 20).

    Parameters
    ----------
    net:
        The :class:`~stablerecon.nets.FIRENet` (warm start ``x0``: pass ``x0_norm``).
    op:
        The nominal operator ``A`` (``op.norm()`` is what the network uses).
    y_norm, e_norm, E_norm:
        ``||y||``, ``||e||`` and ``||E||_2`` for one batch item (all ``>= 0``).
    channels:
        Image channels ``C`` (the thresholds act on ``C`` copies of the coefficients).
    x0_norm:
        ``||x0||`` of a warm start shared by both calls (default 0: cold start).
    perturbed_norm:
        The value ``(A + E).norm()`` the network will use, if known (removes the step-size
        uncertainty of the operator norm; otherwise it is bounded through ``||E||``).
    norm_slack:
        Relative error allowed to power-iteration norm estimates: ``op.norm()`` may be below
        ``||A||`` by this fraction (also widens the range of an unknown ``perturbed_norm``).
    dtype:
        Real dtype of the computation (sets ``tiny`` in the schedule's floor).

    Returns
    -------
    :class:`FirenetBound`; ``bound = inf`` when ``||e|| >= ||y||`` or ``||E|| >= ||A||``.
    """
    if not isinstance(net, FIRENet):
        raise TypeError(f"argument 'net' must be a FIRENet, got {type(net).__name__}")
    if not isinstance(op, LinearOperator):
        raise TypeError(f"argument 'op' must be a LinearOperator, got {type(op).__name__}")
    y_norm = positive_float(y_norm, "y_norm")
    e_norm = positive_float(e_norm, "e_norm", allow_zero=True)
    E_norm = positive_float(E_norm, "E_norm", allow_zero=True)
    x0_norm = positive_float(x0_norm, "x0_norm", allow_zero=True)
    norm_slack = positive_float(norm_slack, "norm_slack", allow_zero=True)
    channels = positive_int(channels, "channels")
    lam = net.lam_for(op)
    problem = SqrtLassoProblem(op, net._sparsifier_for(op), lam, net.weights, net.real)
    lam_w = lam * float(torch.linalg.vector_norm(problem.weights)) * math.sqrt(channels)
    p, n = net.inner, net.restarts
    nA = op.norm()
    slope = _slopes(net, nA, y_norm, lam_w, x0_norm, norm_slack, dtype)
    if perturbed_norm is not None:
        perturbed_norm = positive_float(perturbed_norm, "perturbed_norm")
        n_range = (perturbed_norm, perturbed_norm)
    elif E_norm == 0.0:
        n_range = (nA, nA)
    else:
        n_range = ((nA - E_norm) * (1 - norm_slack), (nA + E_norm) * (1 + norm_slack))
    if e_norm >= y_norm or n_range[0] <= 0.0:
        return FirenetBound(math.inf, math.inf, math.inf, math.inf, *slope, n * p)
    blocks = _blocks(net, nA, y_norm, e_norm, E_norm, n_range, norm_slack, dtype)
    capped = _recursion(p, blocks, e_norm, E_norm, y_norm, lam_w, x0_norm, True)
    linear = _recursion(p, blocks, e_norm, E_norm, y_norm, lam_w, x0_norm, False)
    theta = _theta(net, nA, norm_slack)
    metric = _metric_recursion(p, blocks, e_norm, E_norm, y_norm, lam_w, x0_norm, theta)
    cap = _cap(p, blocks, lam_w)
    return FirenetBound(min(capped, linear, metric), linear, metric, cap, *slope, n * p)


def _theta(net: FIRENet, nA: float, slack: float) -> float:
    """``tau sigma ||A||^2`` of the nominal steps (with the true norm up to ``slack``)."""
    tau = net.tau if net.tau is not None else 1.0 / nA
    sigma = net.sigma if net.sigma is not None else 1.0 / nA
    return tau * sigma * (nA * (1 + slack)) ** 2


def _metric_recursion(p: int, blocks: list[dict], e: float, E: float, y_norm: float, lam_w: float,
                      c0: float, theta: float) -> float:
    """The bound through the metric ``M_k`` (``theta < 1``; ``inf`` otherwise), see
    :func:`firenet_bound`."""
    if theta >= 1.0:
        return math.inf
    root = math.sqrt(theta)
    d_c, c_pert = 0.0, c0
    for b in blocks:
        tau, sigma = b["tau"], b["sigma"]
        dist, c_prev, diffs = d_c / math.sqrt(tau), c_pert, []
        for _ in range(p):
            c_new = c_prev + b["a"]
            v = 2 * c_new + c_prev
            dc = tau * E + b["dtau"] * (b["nAp"] + lam_w)
            dz = min(2.0, 2 * sigma * b["nA"] * dc + sigma * (E * v + e)
                     + b["dsigma"] * (b["nAp"] * v + y_norm + e))
            dist += math.sqrt(1 + root) * math.sqrt(dc**2 / tau + dz**2 / sigma)
            diffs.append(math.sqrt(tau / (1 - root)) * dist)
            c_prev = c_new
        d_c, c_pert = sum(diffs) / p, c_prev
    return d_c


def _blocks(net: FIRENet, nA: float, y_norm: float, e: float, E: float,
            n_range: tuple[float, float], slack: float, dtype: torch.dtype) -> list[dict]:
    """Per-block constants of the recursion (nominal steps, perturbed ranges)."""
    p, n, delta = net.inner, net.restarts, net.delta
    tiny_lo, tiny_hi = torch.finfo(torch.float64).tiny, torch.finfo(torch.float32).tiny
    tiny = torch.finfo(dtype).tiny
    nom = _eps_schedule(y_norm, n, delta, tiny)
    lo = _eps_schedule(y_norm - e, n, delta, tiny_lo)
    hi = _eps_schedule(y_norm + e, n, delta, tiny_hi)
    n_lo, n_hi = n_range
    n_true = nA * (1 + slack)               # the true ||A|| (the estimate is from below)
    n_true_pert = n_true + E                # ||A + E||

    def steps(eps: float, norm: float) -> tuple[float, float]:
        tau0 = net.tau if net.tau is not None else 1.0 / norm
        sigma0 = net.sigma if net.sigma is not None else 1.0 / norm
        return tau0 * eps * p / (2 * norm), sigma0 * 2 * norm / (eps * p)

    blocks = []
    for k in range(n):
        tau, sigma = steps(nom[k], nA)
        corners = [steps(ek, nk) for ek in (lo[k], hi[k]) for nk in (n_lo, n_hi)]
        taus, sigmas = [c[0] for c in corners], [c[1] for c in corners]
        blocks.append({
            "tau": tau, "sigma": sigma, "nA": n_true, "nAp": n_true_pert, "T": max(taus), "S": max(sigmas),
            "a": max(taus) * n_true_pert, "b": max(sigmas) * n_true_pert,
            "dtau": max(abs(tau - t) for t in taus), "dsigma": max(abs(sigma - s) for s in sigmas),
        })
    return blocks


def _cap(p: int, blocks: list[dict], lam_w: float) -> float:
    """The absolute part alone: ``sum_k (p + 1) / 2 * (tau_k ||A|| + a_k + dtau_k lw)`` (each
    block's mean of a linearly growing sequence), the value of the capped recursion when the
    dual difference saturates at once."""
    return sum((p + 1) / 2 * (b["tau"] * b["nA"] + b["a"] + b["dtau"] * lam_w) for b in blocks)


def _slopes(net: FIRENet, nA: float, y_norm: float, lam_w: float, x0_norm: float, slack: float,
            dtype: torch.dtype) -> tuple[float, float]:
    """Slopes of the uncapped recursion at zero perturbation (finite differences at ``1e-9``)."""
    t = 1e-9
    out = []
    for e, E in ((t * y_norm, 0.0), (0.0, t * nA)):
        blocks = _blocks(net, nA, y_norm, e, E, (nA - E, nA + E), 0.0, dtype)
        linear = _recursion(net.inner, blocks, e, E, y_norm, lam_w, x0_norm, False)
        metric = _metric_recursion(net.inner, blocks, e, E, y_norm, lam_w, x0_norm, _theta(net, nA, slack))
        out.append(min(linear, metric) / (e + E))
    return out[0], out[1]


@dataclass
class InexactChange:
    """Output change ``||Phi(y + e, A_E) - Phi(y, A)||`` found for one budget pair.

    ``change`` (absolute, l2 over the item), ``reference`` ``||Phi(y, A)||``, the perturbation
    ``e`` and ``theta`` (``None`` when ``A`` was not perturbed) that gave it, their sizes
    ``e_norm`` and ``E_norm`` (``family.distance``), and ``history`` (change per ascent step).
    """

    change: float
    reference: float
    e: torch.Tensor
    theta: torch.Tensor | None
    e_norm: float
    E_norm: float
    history: list[float]


def _check_inputs(method: object, y: object, family: object, r_y: object, r_A: object,
                  ) -> tuple[torch.Tensor, float, float]:
    if not callable(method):
        raise TypeError(f"argument 'method' must be callable as method(y, op), got {type(method).__name__}")
    if not isinstance(y, torch.Tensor) or y.ndim < 2 or y.shape[0] != 1:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"argument 'y' must be a tensor with one batch item (1, ...), got {got}")
    r_y = positive_float(r_y, "r_y", allow_zero=True)
    r_A = positive_float(r_A, "r_A", allow_zero=True)
    if r_A > 0 and not isinstance(family, PerturbationFamily):
        raise TypeError(f"argument 'family' must be a PerturbationFamily when r_A > 0, got "
                        f"{type(family).__name__}")
    if r_A > 0 and not family.continuous:
        raise ValueError(f"argument 'family' must be continuous (gradient ascent), got {family.name!r}")
    if r_y == 0 and r_A == 0:
        raise ValueError("arguments 'r_y' and 'r_A' must not both be 0")
    return y.detach(), r_y, r_A


def _sphere_like(y: torch.Tensor, radius: float, generator: torch.Generator) -> torch.Tensor:
    e = torch.randn(y.shape, generator=generator, dtype=torch.float64)
    if y.is_complex():
        e = torch.complex(e, torch.randn(y.shape, generator=generator, dtype=torch.float64))
    e = e.to(y.dtype)
    return e * (radius / torch.linalg.vector_norm(e).clamp_min(1e-300))


def _change(method: Reconstructor, y: torch.Tensor, e: torch.Tensor, op: LinearOperator,
            ref: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(method(y + e, op) - ref)


def random_inexact(method: Reconstructor, y: torch.Tensor, op: LinearOperator,
                   family: PerturbationFamily | None = None, r_y: float = 0.0, r_A: float = 0.0,
                   draws: int = 3, seed: int = 0) -> InexactChange:
    """Largest change over ``draws`` random ``(e, theta)`` with ``||e|| = r_y ||y||`` (Gaussian
    direction) and ``||A_E - A|| = r_A ||A||`` (``family.random``); ``y`` holds one item."""
    y, r_y, r_A = _check_inputs(method, y, family, r_y, r_A)
    draws = positive_int(draws, "draws")
    g = torch.Generator().manual_seed(seed)
    radius = r_y * float(torch.linalg.vector_norm(y))
    with torch.no_grad():
        ref = method(y, op)
        best: InexactChange | None = None
        history = []
        for _ in range(draws):
            e = _sphere_like(y, radius, g)
            theta = family.random(r_A, g) if r_A > 0 else None
            op_e = family(theta) if theta is not None else op
            change = float(_change(method, y, e, op_e, ref))
            history.append(change)
            if best is None or change > best.change:
                E = float(family.distance(theta)) if theta is not None else 0.0
                best = InexactChange(change, float(torch.linalg.vector_norm(ref)), e, theta,
                                     radius, E, history)
    assert best is not None
    return best


def worst_case_inexact(method: Reconstructor, y: torch.Tensor, op: LinearOperator,
                       family: PerturbationFamily | None = None, r_y: float = 0.0, r_A: float = 0.0,
                       steps: int = 10, step: float = 0.5, seed: int = 0) -> InexactChange:
    r"""Worst ``(e, theta)`` found by projected gradient ascent on ``||Phi(y + e, A_E) - Phi(y, A)||``.

    Starts from a random pair on the spheres ``||e|| = r_y ||y||``, ``||A_E - A|| = r_A ||A||``;
    each step moves ``e`` by ``step * r_y ||y||`` and ``theta`` by ``step * ||theta||`` along
    the normalised gradients (autograd through ``method`` and ``family(theta)``), projects back
    (``e`` onto the ball, ``theta`` by ``family.project``), and halves ``step`` when the change
    did not grow. Returns the best pair seen. ``method`` must be differentiable.
    """
    y, r_y, r_A = _check_inputs(method, y, family, r_y, r_A)
    steps = positive_int(steps, "steps")
    step = positive_float(step, "step")
    g = torch.Generator().manual_seed(seed)
    norm_y = float(torch.linalg.vector_norm(y))
    radius = r_y * norm_y
    with torch.no_grad():
        ref = method(y, op)
    e = _sphere_like(y, radius, g) if r_y > 0 else torch.zeros_like(y)
    theta = family.random(r_A, g) if r_A > 0 else None
    best: InexactChange | None = None
    history: list[float] = []
    for _ in range(steps + 1):
        e.requires_grad_(r_y > 0)
        if theta is not None:
            theta.requires_grad_(True)
        op_e = family(theta) if theta is not None else op
        change = _change(method, y, e, op_e, ref)
        value = float(change.detach())
        if best is not None and value <= best.change:
            step *= 0.5
        history.append(value)
        if best is None or value > best.change:
            E = float(family.distance(theta.detach())) if theta is not None else 0.0
            best = InexactChange(value, float(torch.linalg.vector_norm(ref)), e.detach().clone(),
                                 None if theta is None else theta.detach().clone(), radius, E, history)
        inputs = [t for t in (e, theta) if t is not None and t.requires_grad]
        grads = torch.autograd.grad(change, inputs, allow_unused=True)
        with torch.no_grad():
            if r_y > 0 and grads[0] is not None:
                g_e = grads[0]
                e = e + step * radius * g_e / torch.linalg.vector_norm(g_e).clamp_min(1e-300)
                e = e * torch.clamp(radius / torch.linalg.vector_norm(e).clamp_min(1e-300), max=1.0)
            if theta is not None:
                g_t = grads[-1]
                if g_t is not None and float(torch.linalg.vector_norm(g_t)) > 0:
                    size = torch.linalg.vector_norm(theta)
                    theta = family.project(theta + step * size * g_t / torch.linalg.vector_norm(g_t), r_A)
        e, theta = e.detach(), None if theta is None else theta.detach()
    assert best is not None
    best.history = history
    return best
