"""Kernel splits, the troublesome-kernel quantities, detail recovery and the sampling sweep,
checked against dense matrices and the triangle inequality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stablerecon as sr
from stablerecon.audit import batch_norm, detail_test, kernel_split, kernel_test, sampling_sweep

N = 32


@pytest.fixture(scope="module")
def op() -> sr.operators.SubsampledFourier:
    return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(N, 0.25, seed=0))


def zero_filled(y: torch.Tensor, op: object) -> torch.Tensor:
    return op.A_dagger(y).real


def disk(radius: float = 3.0, contrast: float = 1.0) -> torch.Tensor:
    yy, xx = np.mgrid[:N, :N]
    d = ((yy - 12) ** 2 + (xx - 18) ** 2 <= radius**2).astype(np.float64) * contrast
    return torch.from_numpy(d)[None, None]


def test_kernel_part_of_a_real_detail_is_the_real_nullspace_projection(op) -> None:  # type: ignore[no-untyped-def]
    """z0 is the orthogonal projection of d onto ker A within real images: compared with the
    projection computed from the dense real matrix [Re M; Im M] by an SVD."""
    d = disk()
    split = kernel_split(d, op)
    m = op.to_matrix(torch.complex128)
    real = torch.cat((m.real, m.imag)).numpy()
    _, s, vt = np.linalg.svd(real)
    rank = int((s > 1e-10 * s[0]).sum())
    row = vt[:rank]
    v = d.flatten().numpy()
    expected = v - row.T @ (row @ v)
    assert np.allclose(split.z0.flatten().numpy(), expected, atol=1e-8)
    assert float(split.kernel_ratio[0]) < 1e-6
    assert split.z0.dtype == torch.float64


@pytest.mark.parametrize("ratio", [0.1, 0.05])
def test_near_kernel_detail_has_the_requested_ratio(op, ratio: float) -> None:  # type: ignore[no-untyped-def]
    split = kernel_split(disk(), op, ratio=ratio)
    assert float(split.ratio[0]) == pytest.approx(ratio, rel=1e-6)
    assert float(batch_norm(op.A(split.z))[0] / batch_norm(split.z)[0]) == pytest.approx(ratio, rel=1e-6)
    with pytest.raises(ValueError, match="ratio"):
        kernel_split(disk(), op, ratio=1.5)


def test_kernel_identity_and_bound_for_several_methods(op) -> None:  # type: ignore[no-untyped-def]
    """With z0 exactly in ker A every method satisfies ||f(Ax) - x|| + ||f(A(x+z0)) - x - z0||
    >= ||z0|| (triangle inequality); the reported bound is (||z|| - 2 delta) / ||A z||."""
    x = sr.data.ellipses(2, N, seed=3).double()
    z0 = kernel_split(disk().expand(2, 1, N, N).clone(), op).z0
    methods = {"zero-filled": zero_filled, "TV": sr.solvers.SparseReconstructor("tv", op, max_iter=100),
               "FIRENET": sr.nets.FIRENet(op, restarts=3)}
    for name, method in methods.items():
        result = kernel_test(method, x, op, z0)
        assert torch.all(result.identity_gap >= -1e-6), name
        delta = torch.maximum(result.error_x, result.error_xz)
        expected = (batch_norm(z0) - 2 * delta) / batch_norm(op.A(z0))
        assert torch.allclose(result.bound, expected)
    # the zero-filled adjoint is linear and A^* A z0 = 0: it sees nothing of z0
    zf = kernel_test(zero_filled, x, op, z0, x_other=sr.data.ellipses(2, N, seed=9).double())
    assert torch.allclose(zf.error_xz, batch_norm(zero_filled(op.A(x), op) - x - z0))
    # ... up to rounding: the change is ~1e-15 ||z0|| (so its direction, the cosine, is noise)
    moved = zero_filled(op.A(x + z0), op) - zero_filled(op.A(x), op)
    assert float((batch_norm(moved) / batch_norm(z0)).max()) < 1e-12


def test_detail_recovery_of_linear_methods(op) -> None:  # type: ignore[no-untyped-def]
    """For the identity method under the identity operator all of the detail comes through;
    for the zero-filled adjoint the fraction is <A^*A D, D>_mask / ||D||^2 (dense matrix)."""
    x = sr.data.ellipses(2, N, seed=1)
    ident = sr.operators.Identity(N)
    full = detail_test(lambda y, op: y, x, ident, contrast=30 / 255, position=(16, 16), size=7)
    assert torch.allclose(full.recovered, torch.ones(2), atol=1e-6)
    part = detail_test(zero_filled, x.double(), op, contrast=30 / 255, position=(16, 16), size=7)
    mask = part.mask.flatten().numpy()
    x_d, _ = sr.data.insert_detail(x.double(), contrast=30 / 255, position=(16, 16), size=7)
    delta = (x_d - x.double())[0, 0].flatten().numpy()
    m = op.to_matrix(torch.complex128).numpy()
    seen = (m.conj().T @ (m @ delta)).real
    expected = float((seen * delta * mask).sum() / (delta * delta * mask).sum())
    assert float(part.recovered[0]) == pytest.approx(expected, rel=1e-6)
    assert 0 < expected < 1
    with pytest.raises(ValueError, match="contrast"):
        detail_test(zero_filled, x, op, contrast=0.0)


def test_sampling_sweep_of_zero_filling_matches_numpy() -> None:
    x = sr.data.ellipses(2, N, seed=5)
    rates = [0.1, 0.25, 0.5, 1.0]

    def make(rate: float) -> sr.operators.SubsampledFourier:
        return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(N, rate, seed=0))

    result = sampling_sweep(zero_filled, x, make, rates)
    from skimage.metrics import peak_signal_noise_ratio

    for i, rate in enumerate(rates):
        mask = make(rate).mask.numpy()
        img = x[0, 0].double().numpy()
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img), norm="ortho")) * mask
        rec = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho")).real
        if rate < 1.0:
            expected = peak_signal_noise_ratio(img, rec, data_range=1.0)
            assert float(result.psnr[i, 0]) == pytest.approx(expected, abs=1e-2)
    assert float(result.nmse[-1].max()) < 1e-10  # full sampling: exact
    with pytest.raises(ValueError, match="rates"):
        sampling_sweep(zero_filled, x, make, [0.0])
