r"""``additive``: a low-rank additive perturbation ``A_E = A + U V^H`` of any operator."""

from __future__ import annotations

import torch

from ..base import LinearOperator
from ..tensors import complex_dtype_of, real_dtype_of
from .family import PerturbationFamily, PerturbedOperator, flat_sizes, require_operator

__all__ = ["AdditiveLowRank", "LowRankPerturbed"]


def _as(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` in the precision of ``like`` (complex stays complex, real stays real)."""
    dtype = complex_dtype_of(like.dtype) if t.is_complex() else real_dtype_of(like.dtype)
    return t.to(device=like.device, dtype=dtype)


def _matmul(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x @ m`` with the dtypes reconciled (a real factor acts on complex ``x`` part by part)."""
    m = _as(m, x)
    if x.is_complex() and not m.is_complex():
        return torch.complex(x.real @ m, x.imag @ m)
    if m.is_complex() and not x.is_complex():
        x = x.to(m.dtype)
    return x @ m


class LowRankPerturbed(PerturbedOperator):
    """``A_E = A + U V^H`` (built by :class:`AdditiveLowRank`); ``A_dagger`` is the nominal
    operator's ``A_dagger`` (a rank-``k`` update of it is not computed)."""

    def __init__(self, nominal: LinearOperator, theta: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                 channelwise: bool) -> None:
        super().__init__(nominal, theta, AdditiveLowRank.name)
        self.u, self.v, self.channelwise = u, v, channelwise

    def _flat(self, t: torch.Tensor) -> torch.Tensor:
        return t.flatten(2) if self.channelwise else t.flatten(1)

    def _unflat(self, t: torch.Tensor, like: torch.Tensor, shape: tuple) -> torch.Tensor:
        if self.channelwise:
            return t.reshape(*like.shape[:2], *shape[1:])
        return t.reshape(like.shape[0], *shape)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        # E x = U (V^H x): the flattened rows of x times conj(V), then times U^T
        ex = _matmul(_matmul(self._flat(x), self.v.conj()), self.u.T)
        return self.nominal._forward(x) + self._unflat(ex, x, self.out_shape)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        ety = _matmul(_matmul(self._flat(y), self.u.conj()), self.v.T)
        if self.in_kind == "real" and ety.is_complex():
            ety = ety.real  # adjoint for the real inner product of a real domain
        return self.nominal._adjoint(y) + self._unflat(ety, y, self.in_shape)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self.nominal._dagger(y)


class AdditiveLowRank(PerturbationFamily):
    r"""``additive``: ``A_E = A + E`` with ``E = U V^H`` of rank at most ``k``, for any operator.

    ``E`` maps the ``n`` entries of one channel of the image to the ``m`` entries of one channel of
    the measurement (row-major flattening), channel by channel, when the operator accepts any
    number of channels; otherwise the whole flattened image to the whole measurement (see
    :func:`~stablerecon.operators.perturbations.family.flat_sizes`). ``E`` is complex when the
    measurements are (``op.out_complex``), else real, so real images keep real measurements.

    ``theta`` packs the factors: shape ``(m + n, k)`` (real ``E``) or ``(m + n, k, 2)`` (complex
    ``E``, real and imaginary parts last); rows ``:m`` are ``U``, rows ``m:`` are ``V``
    (:meth:`factors`, :meth:`pack`). ``distance`` is exact: with ``U = Q_U R_U`` and
    ``V = Q_V R_V`` (reduced QR), ``||E||_2 = ||R_U R_V^H||_2``, the largest singular value of a
    ``k x k`` matrix; it is differentiable in ``theta`` (where that singular value is simple).
    ``E(t theta) = t^2 E(theta)``: rescaling is closed form (``homogeneity = 2``), and
    :meth:`project` rescales radially (``distance`` is not a norm of ``theta``).

    Parameters
    ----------
    op:
        Any :class:`~stablerecon.operators.LinearOperator` with fixed sizes besides channels.
    rank:
        ``k >= 1``.
    """

    name = "additive"
    continuous = True
    distance_kind = "exact"
    homogeneity = 2

    def __init__(self, op: LinearOperator, rank: int = 1) -> None:
        require_operator(op, (LinearOperator,), self.name)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"argument 'rank' must be a positive int, got {rank!r}")
        self.channelwise, self.n, self.m = flat_sizes(op, self.name)
        self.rank = rank
        self.complex = bool(op.out_complex)
        super().__init__(op, (self.m + self.n, rank, 2) if self.complex else (self.m + self.n, rank))

    def factors(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(U, V)`` of shapes ``(m, k)`` and ``(n, k)`` from a checked ``theta``."""
        z = torch.view_as_complex(theta.contiguous()) if self.complex else theta
        return z[: self.m], z[self.m :]

    def pack(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The ``theta`` of the factors ``U`` ``(m, k)`` and ``V`` ``(n, k)``."""
        z = torch.cat((u, v), dim=0)
        if self.complex:
            z = torch.view_as_real(z.to(torch.complex128))
        return z.to(torch.float64)

    def _build(self, theta: torch.Tensor) -> LowRankPerturbed:
        u, v = self.factors(theta)
        return LowRankPerturbed(self.op, theta, u, v, self.channelwise)

    def _distance(self, theta: torch.Tensor) -> torch.Tensor:
        u, v = self.factors(theta)
        r_u = torch.linalg.qr(u).R
        r_v = torch.linalg.qr(v).R
        return torch.linalg.svdvals(r_u @ r_v.conj().T)[0]
