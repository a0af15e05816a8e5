r"""The inexact-input construction of Colbrook, Antun, Hansen (PNAS 2022): two square-root LASSO
problems whose inputs are ``2^-n`` apart and whose solutions are ``~3 * 10^-K`` apart.

The problem is ``Xi(A, y) = argmin_x lam ||x||_1 + ||A x - y||_2`` with ``x`` of length
``N = N1 + N2`` and ``y`` of length ``M = 1 + N2``. For an index ``j`` in ``1..N1`` (1-based, as
in the paper) and input precision ``n`` the matrix is, before an orthonormal DCT-II ``D`` mixes
its rows,

.. math::

    A_j = \begin{pmatrix} a_j^T & 0 \\ 0 & \|a_j\|_2 I_{N_2} \end{pmatrix}, \qquad
    a_j = c\,\mathbf{1}_{N_1} + 2^{-n-1} e_j, \qquad c = \tfrac{\sqrt 2}{3} 10^K,

and the data are ``y = D (1, ||a|| t)`` for a tail ``t`` (``s``-sparse, entries ``N(0, 1) /
||a||``; zero for test inputs). Its unique minimiser (for ``lam`` small enough, see
:func:`kkt_certificate`) is ``x_j = (e_j / (c + 2^-n-1), t)``: the first row is fitted exactly
by the largest entry of ``a_j``. Hence, for ``j != j'``,

- ``||A_j - A_j'||_2 = sqrt(2) 2^(-n-1) <= 2^-n`` and the ``y`` are equal: to any precision ``n``
  the two inputs are indistinguishable;
- ``||x_j - x_j'||_2 = sqrt(2) / (c + 2^-n-1) ~ 3 * 10^-K``, so any method handed the input of
  ``j`` errs by at least ``||x_j - x_j'|| / 2 ~ 1.5 * 10^-K > 10^-K`` for one of the two
  problems (:func:`floor`): ``K`` correct digits are out of reach.

This is the construction of the paper's numerical example (the reference code builds it the
same way, analytically, with ``N1 = 2``, ``N2 = 20``, ``s = 5``, ``lam = 1``); the code here is
our own.

References
----------
Colbrook, Antun, Hansen, "The difficulty of computing stable and accurate neural networks: On
the barriers of deep learning and Smale's 18th problem", PNAS 119 (2022), Theorem 1 and Table 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["InexactInputProblem", "dct_matrix", "kkt_certificate"]


def dct_matrix(size: int) -> np.ndarray:
    """The orthonormal DCT-II matrix ``(size, size)`` (``D D^T = I``), float64."""
    k = np.arange(size)[:, None]
    i = np.arange(size)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d


@dataclass(frozen=True)
class InexactInputProblem:
    """The class ``Omega_K`` at input precision ``n`` (see the module docstring).

    Parameters
    ----------
    K:
        Digits the construction denies: solutions of indistinguishable inputs are
        ``~3 * 10^-K`` apart.
    n:
        Input precision: the matrices of different ``j`` are within ``2^-n``.
    N1, N2, sparsity, lam:
        Sizes (``x`` has ``N1 + N2`` entries, ``y`` has ``1 + N2``), tail sparsity ``s`` and the
        square-root LASSO weight (paper: 2, 20, 5, 1).
    dct:
        Mix the rows with an orthonormal DCT-II (paper: yes; it makes ``A`` dense and changes
        neither the minimiser nor any distance).
    """

    K: int
    n: int
    N1: int = 2
    N2: int = 20
    sparsity: int = 5
    lam: float = 1.0
    dct: bool = True

    @property
    def c(self) -> float:
        """The base entry ``sqrt(2) 10^K / 3`` of the first row."""
        return math.sqrt(2.0) * 10.0**self.K / 3.0

    @property
    def bump(self) -> float:
        """``2^-(n+1)``, added to entry ``j`` of the first row."""
        return 2.0 ** (-self.n - 1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N) = (1 + N2, N1 + N2)``."""
        return 1 + self.N2, self.N1 + self.N2

    def _row_norm(self) -> float:
        return math.sqrt((self.N1 - 1) * self.c**2 + (self.c + self.bump) ** 2)

    def _mix(self) -> np.ndarray:
        m = self.shape[0]
        return dct_matrix(m) if self.dct else np.eye(m)

    def matrix(self, j: int) -> torch.Tensor:
        """``A_j`` ``(M, N)`` float64 (``j`` in ``1..N1``)."""
        if not 1 <= j <= self.N1:
            raise ValueError(f"argument 'j' must lie in 1..{self.N1}, got {j}")
        m, n = self.shape
        a = np.zeros((m, n))
        a[0, : self.N1] = self.c
        a[0, j - 1] += self.bump
        a[1:, self.N1:] = self._row_norm() * np.eye(self.N2)
        return torch.from_numpy(self._mix() @ a)

    def solution(self, j: int, tail: torch.Tensor | None = None) -> torch.Tensor:
        """The minimiser ``x_j`` ``(B, N)`` for tails ``(B, N2)`` (default one zero tail)."""
        tail = torch.zeros(1, self.N2, dtype=torch.float64) if tail is None else tail
        x = torch.zeros(tail.shape[0], self.shape[1], dtype=torch.float64)
        x[:, j - 1] = 1.0 / (self.c + self.bump)
        x[:, self.N1:] = tail
        return x

    def measurements(self, tail: torch.Tensor) -> torch.Tensor:
        """``y = D (1, ||a|| t)`` ``(B, M)`` for tails ``t`` ``(B, N2)``."""
        head = torch.ones(tail.shape[0], 1, dtype=torch.float64)
        y = torch.cat((head, self._row_norm() * tail), dim=1)
        return y @ torch.from_numpy(self._mix()).T

    def tails(self, count: int, seed: int) -> torch.Tensor:
        """``count`` random ``s``-sparse tails ``(count, N2)``: support uniform, entries
        ``N(0, 1) / ||a||``; a pure function of ``seed``."""
        g = torch.Generator().manual_seed(int(seed))
        values = torch.randn(count, self.sparsity, generator=g, dtype=torch.float64) / self._row_norm()
        support = torch.argsort(torch.rand(count, self.N2, generator=g, dtype=torch.float64), dim=1)
        tail = torch.zeros(count, self.N2, dtype=torch.float64)
        tail.scatter_(1, support[:, : self.sparsity], values)
        return tail

    def samples(self, j: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` training pairs ``(x, y)`` of problem ``j``: ``x`` ``(count, N)``, ``y``
        ``(count, M)``, float64, a pure function of ``seed``."""
        tail = self.tails(count, seed)
        return self.solution(j, tail), self.measurements(tail)

    def gap(self) -> float:
        """``||x_1 - x_2||_2 = sqrt(2) / (c + 2^-n-1)`` (closed form)."""
        return math.sqrt(2.0) / (self.c + self.bump)

    def floor(self) -> float:
        """Half the gap: any output for the shared input misses one of the two solutions by at
        least this much (triangle inequality)."""
        return self.gap() / 2.0

    def input_distance(self) -> float:
        """``||A_1 - A_2||_2 = sqrt(2) 2^-(n+1)`` (closed form; the ``y`` are equal)."""
        return math.sqrt(2.0) * self.bump


def kkt_certificate(problem: InexactInputProblem, j: int, tail: torch.Tensor) -> float:
    """The norm of a dual certificate proving that ``x_j`` minimises the square-root LASSO.

    At a zero residual, ``x`` is a minimiser iff some ``v`` with ``||v|| <= 1`` has
    ``-A^T v / lam`` in the subdifferential of ``||x||_1``; the certificate used here (before
    the DCT) is ``v_0 = -lam / (c + 2^-n-1)`` and ``v_i = -lam sign(t_i) / ||a||`` on the tail's
    support, which matches every entry of ``A^T v`` on the support and stays strictly inside
    the bound off it. Returns ``||v||_2``: the claim holds (uniquely) when it is ``< 1``.
    ``tail``: one tail ``(N2,)``.
    """
    lam, big = problem.lam, problem.c + problem.bump
    v = np.zeros(problem.shape[0])
    v[0] = -lam / big
    v[1:] = -lam * np.sign(tail.numpy()) / problem._row_norm()
    return float(np.linalg.norm(v))
