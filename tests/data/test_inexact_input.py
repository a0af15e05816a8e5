"""The inexact-input construction (Colbrook, Antun, Hansen 2022) against its closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from stablerecon.data.inexact_input import InexactInputProblem, dct_matrix, kkt_certificate


def test_dct_matrix_is_scipys_orthonormal_dct() -> None:
    np.testing.assert_allclose(dct_matrix(21), scipy.fft.dct(np.eye(21), axis=0, norm="ortho"), atol=1e-14)


@pytest.mark.parametrize(("K", "n"), [(1, 10), (3, 20), (6, 30)])
def test_inputs_close_solutions_apart(K: int, n: int) -> None:
    p = InexactInputProblem(K=K, n=n)
    a1, a2 = p.matrix(1).numpy(), p.matrix(2).numpy()
    distance = np.linalg.norm(a1 - a2, 2)
    # entries of size ~c carry float64 round-off ~ulp(c): at K = 6, n = 30 the bump is only 8 ulps
    assert distance == pytest.approx(p.input_distance(), abs=np.spacing(2 * p.c))
    assert p.input_distance() == pytest.approx(np.sqrt(2) * 2.0 ** (-n - 1), rel=1e-15)
    assert distance <= 2.0**-n
    x1, x2 = p.solution(1).numpy(), p.solution(2).numpy()
    assert np.linalg.norm(x1 - x2) == pytest.approx(p.gap(), rel=1e-12)
    assert 2 * 10.0**-K < p.gap() < 4 * 10.0**-K
    assert p.floor() > 10.0**-K  # no output is within 10^-K of both


@pytest.mark.parametrize("K", [1, 3, 6])
def test_solution_is_the_sqrt_lasso_minimiser(K: int) -> None:
    """Zero residual and a dual certificate of norm < 1 with A^T v = -lam sign(x) on the support
    (checked here from the matrix, independently of how the certificate was built)."""
    p = InexactInputProblem(K=K, n=20)
    x, y = p.samples(2, 3, seed=4)
    a = p.matrix(2).numpy()
    np.testing.assert_allclose(x.numpy() @ a.T, y.numpy(), atol=1e-12 * max(1.0, np.abs(y.numpy()).max()))
    d = dct_matrix(p.shape[0])
    for i in range(3):
        xi = x[i].numpy()
        v0 = np.zeros(p.shape[0])
        v0[0] = -p.lam / (p.c + p.bump)
        v0[1:] = -p.lam * np.sign(xi[p.N1:]) / np.linalg.norm(a[:, p.N1])  # ||a|| is the tail column norm
        v = d @ v0
        assert np.linalg.norm(v) == pytest.approx(kkt_certificate(p, 2, x[i, p.N1:]), rel=1e-9)
        assert np.linalg.norm(v) < 1
        g = -a.T @ v / p.lam
        support = xi != 0
        np.testing.assert_allclose(g[support], np.sign(xi[support]), atol=1e-9)
        assert np.abs(g[~support]).max() < 1 - 1e-12


def test_samples_are_pure_functions_of_the_seed() -> None:
    p = InexactInputProblem(K=2, n=10)
    a, b = p.samples(2, 5, seed=7), p.samples(2, 5, seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert ((a[0][:, p.N1:] != 0).sum(1) == p.sparsity).all()
    with pytest.raises(ValueError, match="'j'"):
        p.matrix(3)
