"""SubsampledWalshHadamard against scipy's Hadamard matrix in sequency order."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from stablerecon.operators import SubsampledWalshHadamard, fwht, masks
from stablerecon.operators.hadamard import sequency_permutation


def walsh_matrix(n: int) -> np.ndarray:
    """Orthonormal Walsh matrix: Hadamard rows sorted by their number of sign changes."""
    h = scipy.linalg.hadamard(n).astype(np.float64)
    changes = (np.diff(np.sign(h), axis=1) != 0).sum(axis=1)
    return h[np.argsort(changes)] / np.sqrt(n)


@pytest.mark.parametrize("n", [2, 8, 32])
def test_sequency_order(n: int) -> None:
    h = scipy.linalg.hadamard(n)
    changes = (np.diff(h[sequency_permutation(n).numpy()], axis=1) != 0).sum(axis=1)
    np.testing.assert_array_equal(changes, np.arange(n))


@pytest.mark.parametrize("n", [1, 4, 64, 128, 512])
def test_fwht_matches_scipy(n: int) -> None:
    x = torch.randn(3, n, dtype=torch.float64)
    ref = x.numpy() @ scipy.linalg.hadamard(n).T / np.sqrt(n)
    np.testing.assert_allclose(fwht(x).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 16), (8, 32)])
def test_matches_dense_walsh_transform(shape: tuple[int, int]) -> None:
    mask = masks.variable_density(shape, 0.4, seed=0, origin="corner")
    op = SubsampledWalshHadamard(mask)
    x = torch.randn(2, 1, *shape, dtype=torch.float64)
    full = walsh_matrix(shape[0]) @ x.numpy() @ walsh_matrix(shape[1]).T
    np.testing.assert_allclose(op.A(x).numpy(), full[..., mask.numpy()], atol=1e-12)
    xc = torch.complex(x, -x)
    np.testing.assert_allclose(op.A(xc).numpy(), (1 - 1j) * full[..., mask.numpy()], atol=1e-12)


def test_full_mask_inverts() -> None:
    op = SubsampledWalshHadamard(torch.ones(16, 16, dtype=torch.bool))
    x = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(op.A_dagger(op.A(x)), x)


def test_rejects_non_power_of_two() -> None:
    with pytest.raises(ValueError, match="'mask'.*power-of-two"):
        SubsampledWalshHadamard(torch.ones(12, 16, dtype=torch.bool))
