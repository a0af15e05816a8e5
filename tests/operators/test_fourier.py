"""SubsampledFourier against numpy's FFT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stablerecon.operators import SubsampledFourier, centered_fft2, centered_ifft2, masks


def numpy_centered_fft(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


@pytest.mark.parametrize("shape", [(32, 32), (15, 17), (16, 9)])
@pytest.mark.parametrize("complex_input", [False, True])
def test_matches_numpy_centered_dft(shape: tuple[int, int], complex_input: bool) -> None:
    mask = masks.uniform_random(shape, 0.3, seed=1)
    op = SubsampledFourier(mask)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, *shape))
    if complex_input:
        x = x + 1j * rng.standard_normal(x.shape)
    y = op.A(torch.from_numpy(x))
    ref = numpy_centered_fft(x)[..., mask.numpy()]
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)
    # zero-filled adjoint == inverse DFT of the zero-filled k-space
    k = np.zeros_like(numpy_centered_fft(x))
    k[..., mask.numpy()] = ref
    adj = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(op.A_adjoint(y).numpy(), adj, atol=1e-12)
    np.testing.assert_allclose(op.kspace(y).numpy(), k, atol=1e-12)


def test_full_mask_is_unitary_and_dagger_inverts() -> None:
    op = SubsampledFourier(torch.ones(16, 16, dtype=torch.bool))
    x = op.random_input(2, torch.complex128, seed=0)
    torch.testing.assert_close(op.A_dagger(op.A(x)), x)
    torch.testing.assert_close(torch.linalg.vector_norm(op.A(x)), torch.linalg.vector_norm(x))


def test_pseudo_inverse_property() -> None:
    op = SubsampledFourier(masks.variable_density(16, 0.25, seed=3))
    y = op.random_output(2, torch.float64, seed=2)
    torch.testing.assert_close(op.A(op.A_dagger(y)), y)  # A A^+ = I on the range


def test_centered_helpers_roundtrip() -> None:
    x = torch.randn(1, 1, 12, 10, dtype=torch.complex128)
    torch.testing.assert_close(centered_ifft2(centered_fft2(x)), x)
    np.testing.assert_allclose(centered_fft2(x).numpy(), numpy_centered_fft(x.numpy()), atol=1e-12)


def test_dc_coefficient_is_at_the_centre() -> None:
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[4, 4] = True
    op = SubsampledFourier(mask)
    y = op.A(torch.ones(1, 1, 8, 8, dtype=torch.float64))
    assert y.shape == (1, 1, 1)
    assert y[0, 0, 0].real == pytest.approx(8.0)  # sum / sqrt(64)


def test_rate_reported() -> None:
    mask = masks.variable_density(32, 0.25, seed=0)
    assert SubsampledFourier(mask).rate == pytest.approx(0.25, abs=1 / 1024)
