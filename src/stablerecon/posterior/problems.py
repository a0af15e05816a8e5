r"""Inverse problems with a simulator, for training and testing posterior estimators.

Each problem draws ``x`` from its prior (:meth:`~Problem.sample_prior`), maps it to
observations with :meth:`~Problem.forward` (noise free) and :meth:`~Problem.simulate` (with
the observation noise), and, where the posterior is known in closed form, samples it exactly
(:meth:`~Problem.sample_posterior`) so that estimated posteriors can be measured against it.

- :class:`GaussianMixture`: the 8-mode Gaussian mixture of Ardizzone et al. (ICLR 2019,
  Sec. 4.1) whose observation is a (possibly shared) mode label, with the label maps ``all``,
  ``some`` and ``none``; the posterior is the mixture of the modes carrying the label.
- :class:`InverseKinematics`: the 4-DoF arm of the same paper (rail height and three joints,
  segments 0.5, 0.5, 1.0, prior ``N(0, diag(0.25, 0.5, 0.5, 0.5)^2)``), observed end point.
- :class:`LinearGaussian`: ``y = M x + e`` with Gaussian prior and noise; analytic posterior.
- :func:`rejection_abc`: rejection-sampling approximate Bayesian computation, the reference
  posterior of problems without a closed form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from ..validation import positive_int

__all__ = [
    "Problem", "GaussianMixture", "InverseKinematics", "LinearGaussian", "rejection_abc", "LABEL_MAPS",
    "check_rows",
]

Seed = int | torch.Generator | None


def _gen(seed: Seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def _count(n: object, name: str = "n") -> int:
    return positive_int(n, name)


def check_rows(value: object, dim: int, name: str, owner: str, finite: bool = False) -> torch.Tensor:
    """``value`` if it is a tensor ``(n, dim)`` (and, with ``finite``, free of NaN and Inf), else
    a ``ValueError`` naming the argument ``name``, prefixed by ``owner`` (the model or problem)."""
    if not isinstance(value, torch.Tensor) or value.ndim != 2 or value.shape[1] != dim:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{owner}: argument '{name}' must have shape (n, {dim}), got {got}")
    if finite and not torch.isfinite(value).all():
        raise ValueError(f"{owner}: argument '{name}' contains NaN or Inf values")
    return value


class Problem:
    """Base class: ``dim_x``, ``dim_y``, a prior, a forward model and observation noise."""

    dim_x: int
    dim_y: int
    name = "problem"

    def sample_prior(self, n: int, seed: Seed = None) -> torch.Tensor:
        """``n`` draws ``(n, dim_x)`` of the prior (float64)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The noise-free observation ``(n, dim_y)`` of ``x`` ``(n, dim_x)``."""
        raise NotImplementedError

    def simulate(self, x: torch.Tensor, seed: Seed = None) -> torch.Tensor:
        """A noisy observation of ``x`` (the forward model unless the problem has noise)."""
        return self.forward(x)

    def sample_joint(self, n: int, seed: Seed = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``: ``n`` prior draws and their simulated observations."""
        g = _gen(seed)
        x = self.sample_prior(n, g)
        return x, self.simulate(x, g)

    def sample_posterior(self, y: torch.Tensor, n: int, seed: Seed = None) -> torch.Tensor:
        """Exact posterior draws ``(len(y), n, dim_x)`` given observations ``y`` ``(N, dim_y)``,
        for problems whose posterior is known."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form posterior; use rejection_abc")

    def _check_x(self, x: object) -> torch.Tensor:
        return check_rows(x, self.dim_x, "x", self.name)

    def _check_y(self, y: object) -> torch.Tensor:
        return check_rows(y, self.dim_y, "y", self.name, finite=True)


LABEL_MAPS: dict[str, tuple[int, ...]] = {
    "all": (0, 1, 2, 3, 4, 5, 6, 7),
    "some": (0, 1, 2, 3, 4, 4, 4, 4),
    "none": (0, 0, 0, 0, 0, 0, 0, 0),
}
"""Mode -> label maps of :class:`GaussianMixture`: every mode its own label (``all``), four
modes with their own label and four sharing one (``some``), one label for all (``none``)."""


class GaussianMixture(Problem):
    r"""The 8-mode Gaussian mixture of Ardizzone et al. (ICLR 2019, Sec. 4.1).

    ``x`` in R^2 is drawn from 8 equally weighted isotropic Gaussians (std ``std``) whose means
    lie evenly on a circle of radius ``radius``; the observation ``y`` is the one-hot label of
    the drawn mode under ``labels`` (:data:`LABEL_MAPS`). The posterior of a label is the equal
    mixture of the modes carrying it, so exact posterior samples are available.
    """

    dim_x = 2
    name = "gaussian-mixture"

    def __init__(self, labels: Literal["all", "some", "none"] = "some", radius: float = 2.5,
                 std: float = 0.2) -> None:
        if labels not in LABEL_MAPS:
            raise ValueError(f"argument 'labels' must be one of {list(LABEL_MAPS)}, got {labels!r}")
        self.labels = labels
        self.mode_labels = torch.tensor(LABEL_MAPS[labels])
        self.dim_y = int(self.mode_labels.max()) + 1
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        self.means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
        self.std = float(std)

    def sample_modes(self, n: int, seed: Seed = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, modes)``: ``n`` draws and the index of the mode each came from."""
        g = _gen(seed)
        modes = torch.randint(0, 8, (_count(n),), generator=g)
        x = self.means[modes] + self.std * torch.randn(n, 2, generator=g, dtype=torch.float64)
        return x, modes

    def sample_prior(self, n: int, seed: Seed = None) -> torch.Tensor:
        return self.sample_modes(n, seed)[0]

    def mode_of(self, x: torch.Tensor) -> torch.Tensor:
        """The nearest mode of each ``x`` (the most probable one)."""
        return torch.cdist(self._check_x(x).double(), self.means).argmin(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.mode_labels[self.mode_of(x)], self.dim_y).double()

    def sample_joint(self, n: int, seed: Seed = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, modes = self.sample_modes(n, seed)
        return x, torch.nn.functional.one_hot(self.mode_labels[modes], self.dim_y).double()

    def sample_posterior(self, y: torch.Tensor, n: int, seed: Seed = None) -> torch.Tensor:
        y = self._check_y(y)
        g = _gen(seed)
        out = []
        for label in y.argmax(dim=1):
            modes = torch.nonzero(self.mode_labels == label).flatten()
            pick = modes[torch.randint(0, len(modes), (_count(n),), generator=g)]
            out.append(self.means[pick] + self.std * torch.randn(n, 2, generator=g, dtype=torch.float64))
        return torch.stack(out)


class InverseKinematics(Problem):
    r"""The 4-DoF arm of Ardizzone et al. (ICLR 2019, Sec. 4.2).

    ``x = (x_1, x_2, x_3, x_4)``: the arm starts at height ``x_1`` on a vertical rail at the
    origin and has three segments of lengths ``lengths`` at cumulative angles ``x_2``,
    ``x_2 + x_3``, ``x_2 + x_3 + x_4``; the observation is the end point

    .. math:: y = \Big(\sum_k l_k \cos \phi_k,\; x_1 + \sum_k l_k \sin \phi_k\Big),
              \qquad \phi_k = \sum_{j \le k} x_{j+1},

    with prior ``N(0, diag(sigmas)^2)``. The posterior is multi-modal and has no closed form:
    :func:`rejection_abc` gives the reference.
    """

    dim_x = 4
    dim_y = 2
    name = "inverse-kinematics"

    def __init__(self, lengths: Sequence[float] = (0.5, 0.5, 1.0),
                 sigmas: Sequence[float] = (0.25, 0.5, 0.5, 0.5)) -> None:
        self.lengths = torch.tensor(lengths, dtype=torch.float64)
        self.sigmas = torch.tensor(sigmas, dtype=torch.float64)
        if self.lengths.shape != (3,) or self.sigmas.shape != (4,) or (self.sigmas <= 0).any():
            raise ValueError("arguments 'lengths' (3 values) and 'sigmas' (4 positive values) are required")

    def sample_prior(self, n: int, seed: Seed = None) -> torch.Tensor:
        return torch.randn(_count(n), 4, generator=_gen(seed), dtype=torch.float64) * self.sigmas

    def joints(self, x: torch.Tensor) -> torch.Tensor:
        """Positions ``(n, 4, 2)`` of the rail point and the three segment ends (for plots)."""
        x = self._check_x(x)
        phi = torch.cumsum(x[:, 1:], dim=1)
        lengths = self.lengths.to(x)
        steps = torch.stack([lengths * phi.cos(), lengths * phi.sin()], dim=-1)
        start = torch.stack([torch.zeros_like(x[:, 0]), x[:, 0]], dim=-1).unsqueeze(1)
        return torch.cat([start, start + torch.cumsum(steps, dim=1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.joints(x)[:, -1]


class LinearGaussian(Problem):
    r"""``y = M x + e`` with ``x ~ N(0, prior_std^2 I)`` and ``e ~ N(0, noise_std^2 I)``.

    The posterior is Gaussian, ``N(C M^T y / s^2, C)`` with ``C = (I / p^2 + M^T M / s^2)^{-1}``:
    the reference for calibration. ``M`` defaults to a seeded random ``dim_y x dim_x`` matrix
    with entries ``N(0, 1/dim_x)``.
    """

    name = "linear-gaussian"

    def __init__(self, dim_x: int = 4, dim_y: int = 2, noise_std: float = 0.1, prior_std: float = 1.0,
                 matrix: torch.Tensor | None = None, seed: int = 0) -> None:
        self.dim_x, self.dim_y = _count(dim_x, "dim_x"), _count(dim_y, "dim_y")
        if not (noise_std > 0 and prior_std > 0):
            raise ValueError("arguments 'noise_std' and 'prior_std' must be positive")
        self.noise_std, self.prior_std = float(noise_std), float(prior_std)
        if matrix is None:
            g = torch.Generator().manual_seed(seed)
            matrix = torch.randn(self.dim_y, self.dim_x, generator=g, dtype=torch.float64)
            matrix = matrix / math.sqrt(self.dim_x)
        if tuple(matrix.shape) != (self.dim_y, self.dim_x):
            raise ValueError(f"argument 'matrix' must have shape ({self.dim_y}, {self.dim_x}), "
                             f"got {tuple(matrix.shape)}")
        self.matrix = matrix.double()
        precision = torch.eye(self.dim_x, dtype=torch.float64) / self.prior_std**2 \
            + self.matrix.T @ self.matrix / self.noise_std**2
        self.posterior_cov = torch.linalg.inv(precision)
        self._chol = torch.linalg.cholesky(self.posterior_cov)

    def sample_prior(self, n: int, seed: Seed = None) -> torch.Tensor:
        return self.prior_std * torch.randn(_count(n), self.dim_x, generator=_gen(seed), dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._check_x(x).double() @ self.matrix.T

    def simulate(self, x: torch.Tensor, seed: Seed = None) -> torch.Tensor:
        y = self.forward(x)
        return y + self.noise_std * torch.randn(y.shape, generator=_gen(seed), dtype=torch.float64)

    def posterior_mean(self, y: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``(N, dim_x)`` of each observation."""
        return self._check_y(y).double() @ (self.posterior_cov @ self.matrix.T / self.noise_std**2).T

    def sample_posterior(self, y: torch.Tensor, n: int, seed: Seed = None) -> torch.Tensor:
        mean = self.posterior_mean(y)
        eps = torch.randn(mean.shape[0], _count(n), self.dim_x, generator=_gen(seed), dtype=torch.float64)
        return mean.unsqueeze(1) + eps @ self._chol.T


def rejection_abc(problem: Problem, y: torch.Tensor, n: int = 1000, proposals: int = 1_000_000,
                  epsilon: float | None = None, chunk: int = 100_000,
                  seed: Seed = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rejection-sampling ABC: draw ``proposals`` prior samples, simulate them, and keep, for
    each observation ``y[i]``, the ``n`` whose simulations lie nearest to it (with ``epsilon``:
    only those within that distance, and an error if fewer than ``n`` are).

    Returns ``(samples, distances)``: ``(len(y), n, dim_x)`` and the acceptance distance of each
    sample ``(len(y), n)``. The approximation error shrinks with the acceptance distance, so
    report the largest one next to any comparison against ABC.
    """
    y = problem._check_y(y).double()
    n, proposals, chunk = _count(n), _count(proposals, "proposals"), _count(chunk, "chunk")
    if n > proposals:
        raise ValueError(f"argument 'n' ({n}) must not exceed 'proposals' ({proposals})")
    g = _gen(seed)
    best_d = torch.zeros(y.shape[0], 0, dtype=torch.float64)
    best_x = torch.zeros(y.shape[0], 0, problem.dim_x, dtype=torch.float64)
    done = 0
    while done < proposals:
        m = min(chunk, proposals - done)
        x = problem.sample_prior(m, g)
        d = torch.cdist(y, problem.simulate(x, g))  # (N, m)
        if epsilon is not None:
            d = torch.where(d <= epsilon, d, torch.full_like(d, math.inf))
        kept = best_d.shape[1]
        best_d, idx = torch.topk(torch.cat([best_d, d], dim=1), min(n, kept + m), dim=1, largest=False)
        if kept:
            where = idx.clamp(max=kept - 1).unsqueeze(-1).expand(-1, -1, problem.dim_x)
            old = torch.gather(best_x, 1, where)
        else:
            old = torch.zeros(*idx.shape, problem.dim_x, dtype=torch.float64)
        new = x[(idx - kept).clamp(min=0)]
        best_x = torch.where((idx < kept).unsqueeze(-1), old, new)
        done += m
    if epsilon is not None and not torch.isfinite(best_d).all():
        found = int(torch.isfinite(best_d).sum(dim=1).min())
        raise ValueError(f"rejection_abc: only {found} of {n} proposals within epsilon={epsilon}; "
                         "raise 'proposals' or 'epsilon'")
    return best_x, best_d
