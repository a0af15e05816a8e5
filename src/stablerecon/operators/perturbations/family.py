r"""The interface every family of operator perturbations honours.

A *family* is built from a nominal operator ``A`` and maps a parameter tensor ``theta`` of a
declared shape to a perturbed operator ``A_E = family(theta)`` (a :class:`PerturbedOperator`,
itself a :class:`~stablerecon.operators.LinearOperator` with an exact adjoint). The size of a
perturbation is ``family.distance(theta) = ||A_E - A||_2``, exactly or as stated by
``family.distance_kind``; budgets are relative, ``||A_E - A|| <= r ||A||``.

This is the inexact-input setting of Colbrook, Antun, Hansen, "The difficulty of computing
stable and accurate neural networks", PNAS 119 (2022): a reconstruction method is given an
approximation ``A_E`` of ``A`` and should not depend too much on which one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch

from ..base import LinearOperator
from ..tensors import REAL_DTYPES, inner_product

__all__ = [
    "DistanceKind",
    "PerturbationFamily",
    "PerturbedOperator",
    "check_budget",
    "require_operator",
    "flat_sizes",
    "spectral_norm_estimate",
]

DistanceKind = Literal["exact", "upper_bound", "estimate"]
"""How ``distance`` relates to ``||A_E - A||_2``: equal to it (to rounding), an upper bound of
it, or an estimate (power iteration: a lower estimate that converges to it)."""


def require_operator(op: object, classes: tuple[type, ...], family: str) -> LinearOperator:
    """``op`` if it is an instance of one of ``classes``; a ``TypeError`` naming 'op' otherwise."""
    if not isinstance(op, classes):
        names = " or ".join(c.__name__ for c in classes)
        raise TypeError(f"perturbation family {family!r}: argument 'op' must be a {names}, "
                        f"got {type(op).__name__}")
    return op  # type: ignore[return-value]


def check_budget(r: object, name: str = "r") -> float:
    """A relative budget: a finite number ``>= 0``; ``ValueError``/``TypeError`` naming it."""
    if isinstance(r, torch.Tensor) and r.numel() == 1:
        r = float(r)
    if isinstance(r, bool) or not isinstance(r, (int, float)):
        raise TypeError(f"argument '{name}' must be a number, got {type(r).__name__}")
    if not (math.isfinite(r) and r >= 0):
        raise ValueError(f"argument '{name}' must be a finite number >= 0, got {r}")
    return float(r)


def flat_sizes(op: LinearOperator, family: str) -> tuple[bool, int, int]:
    """How a dense perturbation acts on ``op``'s tensors: ``(channelwise, n, m)``.

    With any number of channels (``in_shape[0] is None``) the perturbation acts on each channel
    alike, from the ``n = prod(in_shape[1:])`` entries of a channel to ``m = prod(out_shape[1:])``;
    otherwise on the whole flattened image, ``n = prod(in_shape)`` to ``m = prod(out_shape)``.
    """
    channelwise = op.in_shape[0] is None
    if channelwise != (op.out_shape[0] is None):
        raise TypeError(f"perturbation family {family!r}: argument 'op' has a channel dimension "
                        f"on one side only (in_shape={op.in_shape}, out_shape={op.out_shape})")
    ins, outs = (op.in_shape[1:], op.out_shape[1:]) if channelwise else (op.in_shape, op.out_shape)
    if any(s is None for s in (*ins, *outs)):
        raise TypeError(f"perturbation family {family!r}: argument 'op' must have fixed sizes "
                        f"besides channels, got in_shape={op.in_shape}, out_shape={op.out_shape}")
    return channelwise, math.prod(ins), math.prod(outs)


def spectral_norm_estimate(
    apply: Callable[[torch.Tensor], torch.Tensor],
    apply_adjoint: Callable[[torch.Tensor], torch.Tensor],
    example: torch.Tensor,
    max_iter: int = 5000,
    tol: float = 1e-13,
    seed: int = 0,
) -> float:
    """``||D||_2`` by power iteration on ``D^* D`` from a seeded start shaped like ``example``.

    Stops when the Rayleigh quotient changes by at most ``tol`` relatively (or after
    ``max_iter`` steps). The Rayleigh quotient never exceeds ``||D||^2``: the result is a lower
    estimate that converges to the norm.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(example.shape, generator=g, dtype=torch.float64).to(example)
    if example.is_complex():
        x = x + 1j * torch.randn(example.shape, generator=g, dtype=torch.float64).to(example)
    with torch.no_grad():
        x = x / torch.linalg.vector_norm(x)
        value = 0.0
        for _ in range(max_iter):
            z = apply_adjoint(apply(x))
            new = float(inner_product(x, z).real.sum())
            zn = float(torch.linalg.vector_norm(z))
            if zn == 0.0:
                return 0.0
            x = z / zn
            done = abs(new - value) <= tol * abs(new)
            value = new
            if done:
                break
    return math.sqrt(max(value, 0.0))


class PerturbedOperator(LinearOperator):
    """A perturbed operator ``A_E = family(theta)``: same shapes and kinds as ``nominal``.

    Attributes ``nominal`` (the operator ``A``), ``theta`` (the parameter it was built from, with
    its autograd graph) and ``family`` (the family's registry name). Subclasses implement
    ``_forward``/``_adjoint`` as exact adjoints of each other; ``A_dagger`` is the subclass's (see
    each family).
    """

    def __init__(self, nominal: LinearOperator, theta: torch.Tensor, family: str) -> None:
        super().__init__(nominal.in_shape, nominal.out_shape)
        self.in_kind = nominal.in_kind
        self.out_complex = nominal.out_complex
        self.nominal = nominal
        self.theta = theta
        self.family = family

    @property
    def name(self) -> str:
        return f"{self.nominal.name}[{self.family}]"

    def _probe_device(self) -> torch.device:
        return self.theta.device


class PerturbationFamily:
    r"""Base class of the perturbation families of a nominal operator ``A`` (``self.op``).

    Class attributes a family declares:

    - ``name``: its registry name;
    - ``continuous``: ``A_E`` depends continuously (and differentiably, by autograd through
      ``A_E.A`` and ``A_E.A_adjoint``) on ``theta``; discrete families are searched over
      their finite set of values;
    - ``distance_kind``: ``"exact"``, ``"upper_bound"`` or ``"estimate"`` (see
      :data:`DistanceKind`); ``exact_distance`` is ``distance_kind == "exact"``;
    - ``homogeneity``: ``h`` when ``distance(t theta) = t^h distance(theta)`` for ``t >= 0``
      (rescaling is then closed form), else ``None`` (rescaling bisects along the ray).

    Instances have ``theta_shape`` and ``theta_dtype`` (float64: operators keep their constants
    in double precision; float32 ``theta`` is accepted and promoted).
    """

    name: ClassVar[str] = ""
    continuous: ClassVar[bool] = True
    distance_kind: ClassVar[DistanceKind] = "exact"
    homogeneity: ClassVar[int | None] = None

    def __init__(self, op: LinearOperator, theta_shape: tuple[int, ...]) -> None:
        self.op = op
        self.theta_shape = tuple(int(s) for s in theta_shape)
        self.theta_dtype = torch.float64

    # ------------------------------------------------------------------ to implement
    def _build(self, theta: torch.Tensor) -> PerturbedOperator:  # pragma: no cover - abstract
        raise NotImplementedError

    def _distance(self, theta: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_values(self, theta: torch.Tensor) -> None:
        """Family-specific value checks of a finite ``theta`` (e.g. 0/1 entries)."""

    def _random_direction(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(self.theta_shape, generator=generator, dtype=self.theta_dtype)

    # ------------------------------------------------------------------ public API
    @property
    def exact_distance(self) -> bool:
        """Whether ``distance`` is ``||A_E - A||_2`` itself (to rounding)."""
        return self.distance_kind == "exact"

    def nominal_theta(self) -> torch.Tensor:
        """The ``theta`` with ``family(theta) == A`` (zeros unless the family says otherwise)."""
        return torch.zeros(self.theta_shape, dtype=self.theta_dtype, device=self.op._probe_device())

    def check_theta(self, theta: object) -> torch.Tensor:
        """``theta`` validated (a real tensor of shape ``theta_shape``, finite), as float64.

        Raises ``TypeError``/``ValueError`` naming 'theta'. The result keeps the autograd graph.
        """
        where = f"perturbation family {self.name!r}"
        if not isinstance(theta, torch.Tensor):
            raise TypeError(f"{where}: argument 'theta' must be a torch.Tensor, got {type(theta).__name__}")
        if theta.dtype not in REAL_DTYPES:
            raise TypeError(f"{where}: argument 'theta' must be real (float32/float64), got {theta.dtype}")
        if tuple(theta.shape) != self.theta_shape:
            raise ValueError(f"{where}: argument 'theta' must have shape {self.theta_shape}, "
                             f"got {tuple(theta.shape)}")
        if not bool(torch.isfinite(theta.detach()).all()):
            raise ValueError(f"{where}: argument 'theta' contains NaN or Inf values")
        theta = theta.to(self.theta_dtype)
        self._check_values(theta.detach())
        return theta

    def __call__(self, theta: torch.Tensor) -> PerturbedOperator:
        """The perturbed operator ``A_E`` for ``theta``."""
        return self._build(self.check_theta(theta))

    perturb = __call__

    def distance(self, theta: torch.Tensor) -> torch.Tensor:
        """``||A_E - A||_2`` as a 0-d float64 tensor (exact, a bound or an estimate: see
        ``distance_kind``); differentiable in ``theta`` where the family says so."""
        return self._distance(self.check_theta(theta))

    def relative_distance(self, theta: torch.Tensor) -> float:
        """``||A_E - A|| / ||A||``, the quantity budgets ``r`` bound."""
        return float(self.distance(theta)) / self.op.norm()

    def budget(self, r: float) -> float:
        """The absolute distance ``r ||A||`` of the relative budget ``r``."""
        return check_budget(r) * self.op.norm()

    def scale(self, theta: torch.Tensor, r: float) -> torch.Tensor:
        """``t theta`` (``t >= 0``) with ``distance(t theta) = r ||A||``: a direction put on the
        sphere of relative radius ``r`` (closed form for homogeneous families, else bisection
        along the ray to 1e-12 relative). ``ValueError`` naming 'theta' for a zero direction,
        naming 'r' if the ray never reaches the budget."""
        theta = self.check_theta(theta)
        target = self.budget(r)
        with torch.no_grad():
            d = float(self._distance(theta.detach()))
            if target == 0.0:
                return theta * 0.0
            if d == 0.0:
                raise ValueError(f"perturbation family {self.name!r}: argument 'theta' has distance 0 "
                                 "and cannot be rescaled to a positive budget")
            if self.homogeneity is not None:
                return theta * (target / d) ** (1.0 / self.homogeneity)
            t = self._ray_root(theta.detach(), target, d)
        return theta * t

    def _ray_root(self, theta: torch.Tensor, target: float, d1: float) -> float:
        """Bisection for ``t`` with ``distance(t theta) = target`` (distance(0) = 0)."""

        def f(t: float) -> float:
            return float(self._distance(theta * t))

        lo, hi = 0.0, target / d1
        f_hi = f(hi)
        for _ in range(64):
            if f_hi >= target:
                break
            lo, hi = hi, 2.0 * hi
            f_hi = f(hi)
        else:
            raise ValueError(f"perturbation family {self.name!r}: the budget argument 'r' is not "
                             f"reached along theta (distance at most {f_hi:.3g} < {target:.3g})")
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            f_mid = f(mid)
            if abs(f_mid - target) <= 1e-12 * target or hi - lo <= 1e-15 * hi:
                return mid
            if f_mid < target:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def project(self, theta: torch.Tensor, r: float) -> torch.Tensor:
        """A point of ``{theta : distance(theta) <= r ||A||}``: ``theta`` itself when inside,
        else ``theta`` moved radially onto the boundary (:meth:`scale`). Discrete families
        override this with the exact projection onto their feasible set."""
        theta = self.check_theta(theta)
        if float(self._distance(theta.detach())) <= self.budget(r):
            return theta
        return self.scale(theta, r)

    def random(self, r: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random ``theta`` with ``distance(theta) = r ||A||``: a seeded Gaussian direction
        (the family's distribution) put on the sphere by :meth:`scale`."""
        check_budget(r)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        direction = self._random_direction(g).to(self.op._probe_device())
        return self.scale(direction, r)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(op={self.op.name}, theta_shape={self.theta_shape}, "
                f"continuous={self.continuous}, distance={self.distance_kind})")
