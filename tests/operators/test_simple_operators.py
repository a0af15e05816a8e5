"""Blur, GaussianMatrix, Inpainting and Downsample against scipy / numpy / scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.measure
import torch

from stablerecon.operators import (
    Blur,
    Downsample,
    GaussianMatrix,
    Identity,
    Inpainting,
    box_kernel,
    gaussian_kernel,
    masks,
)


@pytest.mark.parametrize("kshape", [(3, 3), (5, 3), (7, 7)])
def test_blur_matches_scipy_wrap_convolution(kshape: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    kernel = torch.rand(kshape, generator=g, dtype=torch.float64)
    op = Blur(kernel, (20, 24))
    x = torch.rand(2, 1, 20, 24, generator=g, dtype=torch.float64)
    out = op.A(x)
    assert not out.is_complex()
    for b in range(2):
        ref = ndi.convolve(x[b, 0].numpy(), kernel.numpy(), mode="wrap")
        np.testing.assert_allclose(out[b, 0].numpy(), ref, atol=1e-12)


def test_blur_norm_and_tikhonov_dagger() -> None:
    op = Blur(gaussian_kernel(1.0), 16, dagger_eps=1e-8)
    assert op.norm() == pytest.approx(1.0)  # a normalised nonnegative kernel keeps the mean
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    # weak regularisation + well-conditioned kernel: dagger inverts
    op2 = Blur(torch.tensor([[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]]), 16, dagger_eps=1e-12)
    torch.testing.assert_close(op2.A_dagger(op2.A(x)), x)
    assert gaussian_kernel(2.0).sum().item() == pytest.approx(1.0)
    assert box_kernel(3).sum().item() == pytest.approx(1.0)


def test_blur_rejects_bad_kernels() -> None:
    with pytest.raises(ValueError, match="'kernel'.*larger"):
        Blur(torch.ones(9, 9), 8)
    with pytest.raises(ValueError, match="'kernel'.*NaN"):
        Blur(torch.tensor([[float("nan")]]), 8)
    with pytest.raises(ValueError, match="'kernel'.*2-D"):
        Blur(torch.ones(3), 8)
    with pytest.raises(ValueError, match="'sigma'"):
        gaussian_kernel(-1.0)


def test_gaussian_matrix_statistics_and_pinv() -> None:
    op = GaussianMatrix(100, (16, 16), seed=0)
    g = op.matrix.numpy()
    assert g.shape == (100, 256)
    assert g.mean() == pytest.approx(0.0, abs=3 / np.sqrt(g.size) / 10)
    assert g.var() == pytest.approx(1 / 100, rel=0.05)
    y = op.random_output(2, torch.float64, seed=0)
    x = op.A_dagger(y)
    ref = (np.linalg.pinv(g) @ y.numpy().reshape(2, 100).T).T
    np.testing.assert_allclose(x.numpy().reshape(2, -1), ref, atol=1e-10)
    # overdetermined: least squares
    tall = GaussianMatrix(300, (16, 16), seed=1)
    x0 = tall.random_input(1, torch.float64)
    torch.testing.assert_close(tall.A_dagger(tall.A(x0)), x0)
    # same seed, same matrix; different seed, different matrix
    assert torch.equal(GaussianMatrix(10, 16, seed=3).matrix, GaussianMatrix(10, 16, seed=3).matrix)
    assert not torch.equal(GaussianMatrix(10, 16, seed=3).matrix, GaussianMatrix(10, 16, seed=4).matrix)


def test_gaussian_matrix_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="'n'"):
        GaussianMatrix(10, 15)
    with pytest.raises(ValueError, match="'m'"):
        GaussianMatrix(0, 16)


def test_inpainting_keeps_observed_pixels() -> None:
    mask = masks.uniform_random(12, 0.4, seed=0)
    op = Inpainting(mask)
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    np.testing.assert_array_equal(op.A(x).numpy(), x.numpy()[..., mask.numpy()])
    filled = op.A_adjoint(op.A(x))
    np.testing.assert_array_equal(filled.numpy(), np.where(mask.numpy(), x.numpy(), 0.0))


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_downsample_box_matches_block_reduce(factor: int) -> None:
    op = Downsample(factor, (16, 8))
    x = torch.rand(2, 1, 16, 8, dtype=torch.float64)
    ref = skimage.measure.block_reduce(x.numpy(), (1, 1, factor, factor), np.mean)
    np.testing.assert_allclose(op.A(x).numpy(), ref, atol=1e-14)
    # nearest-neighbour upsampling is the exact pseudo-inverse: A A^+ = I
    y = op.A(x)
    torch.testing.assert_close(op.A(op.A_dagger(y)), y)


def test_downsample_decimation_and_errors() -> None:
    op = Downsample(2, 8, filter="none")
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    np.testing.assert_array_equal(op.A(x).numpy(), x.numpy()[..., ::2, ::2])
    with pytest.raises(ValueError, match="'factor'"):
        Downsample(3, 8)
    with pytest.raises(ValueError, match="'filter'"):
        Downsample(2, 8, filter="gauss")  # type: ignore[arg-type]


def test_identity_and_size_validation() -> None:
    x = torch.rand(1, 1, 5, 7)
    assert torch.equal(Identity((5, 7)).A(x), x)
    with pytest.raises(ValueError, match="'size'"):
        Identity(0)
    with pytest.raises(TypeError, match="'size'"):
        Identity(2.5)  # type: ignore[arg-type]
