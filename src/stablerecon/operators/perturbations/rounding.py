r"""``rounding``: the operator's matrix given to ``K`` digits (inexact input)."""

from __future__ import annotations

import math

import torch

from ..base import LinearOperator
from ..tensors import real_dtype_of
from .family import PerturbationFamily, PerturbedOperator, check_budget, flat_sizes

__all__ = ["Rounding", "RoundedMatrix", "round_digits"]

_MAX_DENSE = 1 << 14


def round_digits(matrix: torch.Tensor, digits: int, base: int = 10) -> torch.Tensor:
    """Entries rounded to ``digits`` digits after the point in ``base`` (10 or 2), half to even.

    The arithmetic is NumPy's ``np.round(a, digits)``: ``rint(a * base**digits) / base**digits``
    for ``digits >= 0`` and ``rint(a / base**-digits) * base**-digits`` otherwise (real and
    imaginary parts separately). In base 2 the result is exact: the entries to ``digits`` bits.
    """
    if matrix.is_complex():
        return torch.complex(round_digits(matrix.real, digits, base), round_digits(matrix.imag, digits, base))
    if digits >= 0:
        factor = float(base) ** digits
        return torch.round(matrix * factor) / factor
    factor = float(base) ** (-digits)
    return torch.round(matrix / factor) * factor


def _apply(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x @ m`` with a real ``m`` acting on complex ``x`` part by part."""
    if x.is_complex() and not m.is_complex():
        m = m.to(device=x.device, dtype=real_dtype_of(x.dtype))
        return torch.complex(x.real @ m, x.imag @ m)
    if m.is_complex():
        m = m.to(device=x.device, dtype=torch.complex128 if x.dtype in (torch.float64, torch.complex128)
                 else torch.complex64)
        return x.to(m.dtype) @ m
    return x @ m.to(device=x.device, dtype=x.dtype)


class RoundedMatrix(PerturbedOperator):
    """The dense operator of a rounded matrix (built by :class:`Rounding`), with the shapes and
    kinds of the nominal operator; ``A_dagger`` is the Moore-Penrose pseudo-inverse of the
    rounded matrix (computed once, on first use)."""

    def __init__(self, nominal: LinearOperator, theta: torch.Tensor, matrix: torch.Tensor,
                 channelwise: bool) -> None:
        super().__init__(nominal, theta, Rounding.name)
        self.matrix, self.channelwise = matrix, channelwise
        self._pinv: torch.Tensor | None = None

    def _map(self, t: torch.Tensor, m: torch.Tensor, shape: tuple, to_image: bool) -> torch.Tensor:
        lead = t.shape[:2] if self.channelwise else t.shape[:1]
        out = _apply(t.reshape(*lead, -1), m)
        if to_image and self.in_kind == "real" and out.is_complex():
            out = out.real  # adjoint for the real inner product of a real domain
        return out.reshape(*lead, *(shape[1:] if self.channelwise else shape))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._map(x, self.matrix.T, self.out_shape, to_image=False)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._map(y, self.matrix.conj(), self.in_shape, to_image=True)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        if self._pinv is None:
            self._pinv = torch.linalg.pinv(self.matrix)
        return self._map(y, self._pinv.T, self.in_shape, to_image=True)


class Rounding(PerturbationFamily):
    r"""``rounding``: every entry of the operator's matrix given to ``K`` digits.

    The matrix is the operator's ``matrix`` attribute when it has one of the right shape (e.g.
    :class:`~stablerecon.operators.GaussianMatrix`), else the dense matrix of a small operator
    (``op.to_matrix``, at most ``2^14`` pixels). ``theta = K`` (a 0-d tensor holding an integer,
    shape ``()``) is the number of digits after the point in ``base`` 10 (default) or 2;
    rounding is half to even, NumPy's ``np.round(matrix, K)`` (:func:`round_digits`), real and
    imaginary parts separately. Each entry then moves by at most ``base^-K / 2``.

    Base 2 gives the inexact-input model of Colbrook, Antun, Hansen (PNAS 2022): the matrix known
    to ``K`` bits, ``|A_K - A|`` entrywise at most ``2^-(K+1)``. (Their experiments build ``A_n``
    with ``||A_n - A|| <= 2^-n`` analytically rather than by rounding.)

    Discrete (``continuous = False``). ``distance`` is exact: the spectral norm of the dense
    difference (an SVD, cached per ``K``). :meth:`scale` and :meth:`random` return the smallest
    ``K`` (the coarsest rounding) within the budget, and :meth:`project` the smallest ``K' >= K``
    within it; ``random`` ignores its generator (rounding is deterministic).
    """

    name = "rounding"
    continuous = False
    distance_kind = "exact"

    def __init__(self, op: LinearOperator, base: int = 10) -> None:
        if not isinstance(op, LinearOperator):
            raise TypeError(f"perturbation family {self.name!r}: argument 'op' must be a LinearOperator, "
                            f"got {type(op).__name__}")
        if base not in (2, 10):
            raise ValueError(f"argument 'base' must be 2 or 10, got {base!r}")
        self.channelwise, n, m = flat_sizes(op, self.name)
        matrix = getattr(op, "matrix", None)
        if isinstance(matrix, torch.Tensor) and matrix.ndim == 2:
            per_channel = (math.prod(op.out_shape[1:]), math.prod(op.in_shape[1:]))  # type: ignore[arg-type]
            if tuple(matrix.shape) == per_channel:
                self.channelwise = True  # GaussianMatrix: the same matrix on every channel
            elif tuple(matrix.shape) != (m, n):
                raise TypeError(f"perturbation family {self.name!r}: argument 'op' has a matrix of shape "
                                f"{tuple(matrix.shape)}, expected {per_channel} or {(m, n)}")
            matrix = matrix.detach()
        else:
            if n > _MAX_DENSE:
                raise TypeError(f"perturbation family {self.name!r}: argument 'op' has no 'matrix' and "
                                f"is too large to densify ({n} > {_MAX_DENSE} entries per image)")
            matrix = op.to_matrix(torch.float64)  # real unit vectors: complex only if A is
        self.matrix = matrix.to(torch.complex128 if matrix.is_complex() else torch.float64)
        self.base = base
        self._cache: dict[int, float] = {}
        super().__init__(op, ())

    def _check_values(self, theta: torch.Tensor) -> None:
        if float(theta) != round(float(theta)) or abs(float(theta)) > 300:
            raise ValueError(f"perturbation family {self.name!r}: argument 'theta' must hold an integer "
                             f"number of digits in [-300, 300], got {float(theta)}")

    def nominal_theta(self) -> torch.Tensor:
        """No finite ``K`` gives the nominal matrix in general: the finest useful rounding,
        ``K = max_digits()``, whose distance is at the level of float64 round-off."""
        return torch.tensor(float(self.max_digits()), dtype=torch.float64)

    def rounded(self, digits: int) -> torch.Tensor:
        """The matrix rounded to ``digits`` digits."""
        return round_digits(self.matrix, int(digits), self.base)

    def _build(self, theta: torch.Tensor) -> RoundedMatrix:
        return RoundedMatrix(self.op, theta, self.rounded(int(theta)), self.channelwise)

    def _distance(self, theta: torch.Tensor) -> torch.Tensor:
        k = int(theta)
        if k not in self._cache:
            diff = self.rounded(k) - self.matrix
            self._cache[k] = float(torch.linalg.matrix_norm(diff, ord=2))
        return torch.tensor(self._cache[k], dtype=torch.float64, device=theta.device)

    def min_digits(self) -> int:
        """A ``K`` at which every entry rounds to zero (the coarsest meaningful rounding)."""
        peak = float(self.matrix.abs().max())
        return -math.ceil(math.log(max(peak, 1e-300), self.base)) - 1

    def max_digits(self) -> int:
        """A ``K`` beyond which rounding changes the entries at float64 round-off only."""
        peak = float(self.matrix.abs().max())
        return math.ceil(53 * math.log(2, self.base) - math.log(max(peak, 1e-300), self.base)) + 1

    def _first_within(self, start: int, target: float) -> torch.Tensor:
        for k in range(start, self.max_digits() + 1):
            theta = torch.tensor(float(k), dtype=torch.float64)
            if float(self._distance(theta)) <= target:
                return theta
        raise ValueError(f"perturbation family {self.name!r}: no number of digits reaches the budget "
                         f"argument 'r' (target distance {target:.3g})")

    def scale(self, theta: torch.Tensor, r: float) -> torch.Tensor:
        """The smallest ``K`` with ``distance(K) <= r ||A||`` (``theta`` only validated)."""
        self.check_theta(theta)
        return self._first_within(self.min_digits(), self.budget(r))

    def project(self, theta: torch.Tensor, r: float) -> torch.Tensor:
        """``K`` if within the budget, else the smallest ``K' > K`` that is."""
        theta = self.check_theta(theta)
        return self._first_within(int(theta), self.budget(r))

    def random(self, r: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Deterministic: the same as :meth:`scale`."""
        check_budget(r)
        return self._first_within(self.min_digits(), self.budget(r))
