"""Tests of the orthonormal periodised wavelet transform against PyWavelets and linear algebra."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pywt
import torch

from stablerecon.sparsity import Wavelet, orthogonal_wavelets

# Every wavelet the FIRENET experiments may use, with (size, levels) choices that include
# non-square images and coarse bands shorter than the filter (wrap-around).
WAVELETS = ["haar", "db2", "db3", "db4", "db6", "db8", "sym2", "sym4", "sym6", "sym8", "coif2"]
CASES = [(32, 3), ((16, 24), 3), (64, 5), (8, 3)]


def pywt_flat(x: np.ndarray, name: str, levels: int) -> np.ndarray:
    """Independent reference: PyWavelets' periodised DWT, flattened in the documented order
    ``[cA_L, cH_L, cV_L, cD_L, ..., cH_1, cV_1, cD_1]`` (each band row-major)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "level too high" warnings at wrap-around sizes
        coeffs = pywt.wavedec2(x, name, mode="periodization", level=levels, axes=(-2, -1))
    lead = x.shape[:-2]
    pieces = [coeffs[0].reshape(*lead, -1)]
    for triple in coeffs[1:]:
        pieces.extend(band.reshape(*lead, -1) for band in triple)
    return np.concatenate(pieces, axis=-1)


def randn(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype.is_complex:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        return torch.complex(torch.randn(shape, generator=g, dtype=real),
                             torch.randn(shape, generator=g, dtype=real))
    return torch.randn(shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("name", WAVELETS)
@pytest.mark.parametrize("size,levels", CASES)
def test_matches_pywavelets_periodization(name: str, size, levels: int) -> None:
    W = Wavelet(name, levels=levels, size=size, channels=2)
    x = randn((3, 2, *W.size), torch.float64)
    ref = pywt_flat(x.numpy(), name, levels)
    np.testing.assert_allclose(W.A(x).numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", WAVELETS)
@pytest.mark.parametrize("size,levels", CASES)
def test_perfect_reconstruction_and_isometry_float32(name: str, size, levels: int) -> None:
    W = Wavelet(name, levels=levels, size=size)
    x = randn((4, 1, *W.size), torch.float32, seed=1)
    c = W.A(x)
    assert c.dtype == torch.float32 and c.shape == (4, 1, W.size[0] * W.size[1])
    assert float((W.A_adjoint(c) - x).abs().max()) < 1e-5
    assert torch.equal(W.A_dagger(c), W.A_adjoint(c))
    norms_x = torch.linalg.vector_norm(x.flatten(1), dim=1)
    norms_c = torch.linalg.vector_norm(c.flatten(1), dim=1)
    torch.testing.assert_close(norms_c, norms_x, rtol=1e-5, atol=0)


def test_synthesis_matches_pywavelets_waverec2() -> None:
    W = Wavelet("db4", levels=3, size=32)
    c = randn((2, 1, 32 * 32), torch.float64, seed=3)
    bands = W.split(c)
    coeffs = [bands[0].numpy()] + [tuple(t.numpy() for t in triple) for triple in bands[1:]]
    ref = pywt.waverec2(coeffs, "db4", mode="periodization", axes=(-2, -1))
    np.testing.assert_allclose(W.A_adjoint(c).numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["haar", "db2", "db4", "sym8"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12),
                                       (torch.complex64, 1e-5), (torch.complex128, 1e-12)])
def test_dot_test(name: str, dtype: torch.dtype, tol: float) -> None:
    W = Wavelet(name, levels=3, size=(32, 16))
    assert W.adjointness_error(dtype=dtype, batch=3) < tol


def test_complex_is_real_and_imaginary_parts() -> None:
    W = Wavelet("db3", levels=2, size=16)
    z = randn((2, 3, 16, 16), torch.complex128)
    c = W.A(z)
    assert c.dtype == torch.complex128
    torch.testing.assert_close(c.real, W.A(z.real), rtol=0, atol=1e-14)
    torch.testing.assert_close(c.imag, W.A(z.imag), rtol=0, atol=1e-14)
    torch.testing.assert_close(W.A_adjoint(c), z, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["haar", "db2", "db4", "sym4", "coif1", "db8"])
def test_dense_matrix_is_orthogonal(name: str) -> None:
    W = Wavelet(name, levels=3, size=16)
    M = W.to_matrix(dtype=torch.float64)
    assert M.shape == (256, 256)
    eye = torch.eye(256, dtype=torch.float64)
    assert float((M.T @ M - eye).abs().max()) < 1e-10
    assert float((M @ M.T - eye).abs().max()) < 1e-10
    assert W.norm() == 1.0
    # the adjoint is the transpose: synthesis of the unit coefficient vectors
    with torch.no_grad():
        S = W._adjoint(eye.reshape(256, 1, 256)).reshape(256, 256).T
    assert float((S - M.T).abs().max()) < 1e-12


def test_batched_equals_itemwise_and_channels_independent() -> None:
    W = Wavelet("db2", levels=3, size=32)
    x = randn((3, 2, 32, 32), torch.float64)
    c = W.A(x)
    for b in range(3):
        for ch in range(2):
            single = W.A(x[b : b + 1, ch : ch + 1])
            torch.testing.assert_close(c[b : b + 1, ch : ch + 1], single, rtol=0, atol=1e-14)


def test_level_bookkeeping_matches_pywavelets_structure() -> None:
    W = Wavelet("db2", levels=3, size=(32, 16))
    # periodised band shapes do not depend on the filter (haar avoids pywt's "too high" warning)
    coeffs = pywt.wavedec2(np.zeros((32, 16)), "haar", mode="periodization", level=3)
    sizes = [coeffs[0].size] + [3 * triple[0].size for triple in coeffs[1:]]
    assert W.level_sizes == sizes
    assert sum(W.level_sizes) == 32 * 16
    assert W.level_index.dtype == torch.long and W.level_index.shape == (512,)
    expected = np.repeat(np.arange(4), sizes)
    np.testing.assert_array_equal(W.level_index.numpy(), expected)
    for j, sl in enumerate(W.level_slices):
        assert bool((W.level_index[sl] == j).all())
    # split/join round trip with pywt's band shapes
    c = randn((2, 1, 512), torch.float64)
    bands = W.split(c)
    assert bands[0].shape == (2, 1, *coeffs[0].shape)
    for triple, ref in zip(bands[1:], coeffs[1:], strict=True):
        assert [t.shape[-2:] for t in triple] == [r.shape for r in ref]
    torch.testing.assert_close(W.join(bands), c, rtol=0, atol=0)


def test_level_index_energy_localisation() -> None:
    W = Wavelet("db4", levels=3, size=32)
    # a constant image lives entirely in the approximation band (level 0)
    c = W.A(torch.full((1, 1, 32, 32), 2.0, dtype=torch.float64))
    assert float(c[..., W.level_index != 0].abs().max()) < 1e-12
    torch.testing.assert_close(c.square().sum(), torch.tensor(4.0 * 1024, dtype=torch.float64))
    # a coefficient vector supported on level j synthesises pywt's image of that band alone
    # (PyWavelets warns that level 3 is "too high" for db4 at 32: harmless for periodization)
    for j in range(W.levels + 1):
        e = torch.zeros(1, 1, 1024, dtype=torch.float64)
        e[..., W.level_slices[j]] = randn((W.level_sizes[j],), torch.float64, seed=j)
        bands = W.split(e)
        coeffs = [bands[0][0, 0].numpy()] + [tuple(t[0, 0].numpy() for t in tr)
                                             for tr in bands[1:]]
        nonzero = [k for k, band in enumerate(coeffs)
                   if np.any(np.asarray(band) != 0)]
        assert nonzero == [j]
        img = pywt.waverec2(coeffs, "db4", mode="periodization")
        np.testing.assert_allclose(W.A_adjoint(e)[0, 0].numpy(), img, atol=1e-12)
    # the finest haar detail level sees a pixel checkerboard, nothing else does
    H = Wavelet("haar", levels=4, size=16)
    checker = (-1.0) ** (torch.arange(16)[:, None] + torch.arange(16)[None, :])
    c = H.A(checker.to(torch.float64).reshape(1, 1, 16, 16))
    assert float(c[..., H.level_index != H.levels].abs().max()) < 1e-12


def test_expand_level_weights() -> None:
    W = Wavelet("haar", levels=2, size=8)
    w = W.expand_level_weights([0.0, 1.0, 2.0])
    assert w.shape == (64,)
    np.testing.assert_array_equal(w.numpy(), np.repeat([0.0, 1.0, 2.0], [4, 12, 48]))
    # batched weights and autograd
    wt = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], requires_grad=True)
    out = W.expand_level_weights(wt)
    assert out.shape == (2, 64)
    out.sum().backward()
    torch.testing.assert_close(wt.grad, torch.tensor([[4.0, 12.0, 48.0]] * 2))
    with pytest.raises(ValueError, match="weights"):
        W.expand_level_weights([1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        W.expand_level_weights([1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        W.expand_level_weights([1.0, float("nan"), 1.0])


def test_gradcheck_tiny() -> None:
    W = Wavelet("db3", levels=2, size=(4, 8))  # the filter wraps around the 1 x 2 band
    x = randn((2, 1, 4, 8), torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(W.A, (x,))
    c = randn((2, 1, 32), torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(W.A_adjoint, (c,))
    z = randn((1, 1, 4, 8), torch.complex128).requires_grad_()
    assert torch.autograd.gradcheck(W.A, (z,), fast_mode=True)
    # the gradient of 0.5 ||W x||^2 is W^* W x = x
    y = randn((1, 1, 4, 8), torch.float64).requires_grad_()
    (0.5 * W.A(y).square().sum()).backward()
    torch.testing.assert_close(y.grad, y.detach(), rtol=0, atol=1e-12)


def test_levels_none_picks_maximum_useful_level() -> None:
    assert Wavelet("haar", size=128).levels == pywt.dwtn_max_level((128, 128), "haar") == 7
    assert Wavelet("db4", size=128).levels == pywt.dwtn_max_level((128, 128), "db4") == 4
    assert Wavelet("haar", size=(48, 80)).levels == 4  # capped by 48 = 16 * 3
    assert Wavelet("db8", size=8).levels == 1  # pywt says 0; at least one level


def test_float32_filters_not_degraded_by_module_dtype_casts() -> None:
    W = Wavelet("db4", levels=2, size=16).float()
    assert W.adjointness_error(dtype=torch.float64) < 1e-12
    x = randn((1, 1, 16, 16), torch.float64)
    assert float((W.A_adjoint(W.A(x)) - x).abs().max()) < 1e-12


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'name'.*non-orthogonal 'bior2.2'"):
        Wavelet("bior2.2", levels=2, size=16)
    with pytest.raises(ValueError, match="'name'.*dmey"):
        Wavelet("dmey", levels=1, size=16)
    with pytest.raises(ValueError, match="'name'"):
        Wavelet("not-a-wavelet", levels=1, size=16)
    with pytest.raises(ValueError, match="'size'.*divisible by 2\\*\\*levels = 8"):
        Wavelet("haar", levels=3, size=(16, 20))
    with pytest.raises(ValueError, match="'size'.*even"):
        Wavelet("haar", size=15)
    with pytest.raises(ValueError, match="'levels'"):
        Wavelet("haar", levels=0, size=16)
    with pytest.raises(TypeError, match="'levels'"):
        Wavelet("haar", levels=2.0, size=16)  # type: ignore[arg-type]
    W = Wavelet("haar", levels=2, size=16)
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="'x'.*NaN"):
        W.A(x)
    with pytest.raises(ValueError, match="'x'.*shape"):
        W.A(torch.zeros(1, 1, 16, 8))
    with pytest.raises(ValueError, match="'y'.*shape"):
        W.A_adjoint(torch.zeros(1, 1, 100))


def test_supported_wavelet_list() -> None:
    names = orthogonal_wavelets()
    for name in ["haar", "db2", "db8", "sym2", "sym8", "coif1", "coif5"]:
        assert name in names
    assert "dmey" not in names and not any(n.startswith(("bior", "rbio")) for n in names)


def test_haar_matches_ptwt() -> None:
    """For Haar, ptwt's periodic padding coincides with periodisation: an independent check."""
    import ptwt
    import pywt

    x = torch.randn(2, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = ptwt.wavedec2(x[:, 0], pywt.Wavelet("haar"), level=3, mode="periodic")
    flat = torch.cat([ref[0].flatten(1)] + [t.flatten(1) for band in ref[1:] for t in band], dim=1)
    ours = Wavelet("haar", levels=3, size=32).A(x)[:, 0]
    torch.testing.assert_close(ours, flat)
