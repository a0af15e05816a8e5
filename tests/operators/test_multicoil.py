"""SubsampledMultiCoilFourier (SENSE) against dense matrices built from the DFT formula, and the
Cartesian line masks of parallel imaging (``masks.cartesian_lines``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stablerecon.operators import (
    SubsampledFourier,
    SubsampledMultiCoilFourier,
    birdcage_maps,
    masks,
    rss,
)
from stablerecon.operators import multicoil as multicoil_module


def centered_dft_matrix(n: int) -> np.ndarray:
    """``F[k, j] = exp(-2 pi i (k - n//2)(j - n//2) / n) / sqrt(n)``: the unitary centred DFT."""
    k = np.arange(n) - n // 2
    return np.exp(-2j * np.pi * np.outer(k, k) / n) / np.sqrt(n)


def dense_sense(mask: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Rows ``P_Omega F diag(S_c)`` stacked coil after coil; images flattened row-major."""
    h, w = mask.shape
    rows = np.kron(centered_dft_matrix(h), centered_dft_matrix(w))[mask.ravel()]
    return np.vstack([rows * s.ravel()[None, :] for s in maps])


def random_maps(n_coils: int, shape: tuple[int, int], seed: int, complex_: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    maps = rng.standard_normal((n_coils, *shape))
    return maps + 1j * rng.standard_normal(maps.shape) if complex_ else maps


def random_image(batch: int, shape: tuple[int, int], seed: int, complex_: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, *shape))
    return x + 1j * rng.standard_normal(x.shape) if complex_ else x


def test_dense_reference_is_the_numpy_centred_fft() -> None:
    x = random_image(1, (6, 5), 0, True)[0, 0]
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
    got = (np.kron(centered_dft_matrix(6), centered_dft_matrix(5)) @ x.ravel()).reshape(6, 5)
    np.testing.assert_allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (12, 10), (9, 7)])
@pytest.mark.parametrize("complex_input", [False, True])
@pytest.mark.parametrize("complex_maps", [True, False])
@pytest.mark.parametrize("sampling", ["random", "rows", "columns"])
def test_forward_and_adjoint_match_dense_matrix(shape: tuple[int, int], complex_input: bool,
                                                complex_maps: bool, sampling: str) -> None:
    if sampling == "random":
        mask = masks.uniform_random(shape, 0.4, seed=1)
    else:
        mask = masks.cartesian_lines(shape, 0.4, acs=2, seed=1, axis=0 if sampling == "rows" else 1)
    maps = random_maps(3, shape, seed=2, complex_=complex_maps)
    op = SubsampledMultiCoilFourier(mask, torch.from_numpy(maps))
    mat = dense_sense(mask.numpy(), maps)
    m = int(mask.sum())
    assert op.in_shape == (1, *shape) and op.out_shape == (3, m)
    x = random_image(2, shape, seed=3, complex_=complex_input)
    y = op.A(torch.from_numpy(x))
    assert y.shape == (2, 3, m) and y.dtype == torch.complex128
    np.testing.assert_allclose(y.numpy(), (x.reshape(2, -1) @ mat.T).reshape(2, 3, m), atol=1e-12)
    rng = np.random.default_rng(4)
    w = rng.standard_normal((2, 3, m)) + 1j * rng.standard_normal((2, 3, m))
    adj = op.A_adjoint(torch.from_numpy(w))
    assert adj.shape == (2, 1, *shape)
    np.testing.assert_allclose(adj.numpy(), (w.reshape(2, -1) @ mat.conj()).reshape(2, 1, *shape), atol=1e-12)


def test_float32_input_gives_complex64_close_to_dense() -> None:
    mask = masks.cartesian_lines((12, 10), 0.5, acs=2, seed=0)
    maps = birdcage_maps(3, (12, 10))
    op = SubsampledMultiCoilFourier(mask, maps)
    x = random_image(2, (12, 10), 0, False)
    y = op.A(torch.from_numpy(x).float())
    assert y.dtype == torch.complex64
    ref = x.reshape(2, -1) @ dense_sense(mask.numpy(), maps.numpy().astype(np.complex128)).T
    np.testing.assert_allclose(y.numpy().reshape(2, -1), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dot_product_test(seed: int) -> None:
    op = SubsampledMultiCoilFourier(masks.variable_density(16, 0.3, seed=seed), birdcage_maps(4, 16))
    assert op.adjointness_error(torch.float64, seed=seed) <= 1e-10
    assert op.adjointness_error(torch.complex128, seed=seed) <= 1e-10
    assert op.adjointness_error(torch.complex64, seed=seed) <= 1e-5


def test_cg_sense_matches_dense_regularised_normal_equations() -> None:
    shape, eps = (8, 8), 1e-2
    mask = masks.uniform_random(shape, 0.4, seed=5)
    maps = random_maps(3, shape, seed=6)
    op = SubsampledMultiCoilFourier(mask, torch.from_numpy(maps), eps=eps, cg_iter=300, cg_tol=1e-13)
    mat = dense_sense(mask.numpy(), maps)
    rng = np.random.default_rng(7)
    y = rng.standard_normal((2, 3, int(mask.sum()))) + 1j * rng.standard_normal((2, 3, int(mask.sum())))
    normal = mat.conj().T @ mat + eps * np.eye(mat.shape[1])
    ref = np.linalg.solve(normal, mat.conj().T @ y.reshape(2, -1).T).T.reshape(2, 1, *shape)
    np.testing.assert_allclose(op.A_dagger(torch.from_numpy(y)).numpy(), ref, rtol=1e-8, atol=1e-9)


def test_cg_sense_without_regularisation_is_the_least_squares_solution() -> None:
    shape = (8, 8)
    mask = masks.uniform_random(shape, 0.6, seed=8)
    maps = random_maps(3, shape, seed=9)
    mat = dense_sense(mask.numpy(), maps)
    assert np.linalg.cond(mat) < 1e3  # a well-posed instance (checked, not assumed)
    op = SubsampledMultiCoilFourier(mask, torch.from_numpy(maps))
    rng = np.random.default_rng(10)
    y = rng.standard_normal((1, 3, int(mask.sum()))) + 1j * rng.standard_normal((1, 3, int(mask.sum())))
    ref = np.linalg.lstsq(mat, y.ravel(), rcond=None)[0].reshape(1, 1, *shape)
    got = op.cg_sense(torch.from_numpy(y), max_iter=300, tol=1e-14, eps=0.0)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-8, atol=1e-9)


def test_default_dagger_on_full_sampling_with_normalised_maps() -> None:
    """A^* A = I there, so CG-SENSE returns x / (1 + eps) after one step."""
    maps = birdcage_maps(5, 12, dtype=torch.complex128)
    op = SubsampledMultiCoilFourier(torch.ones(12, 12, dtype=torch.bool), maps, eps=0.5)
    x = op.random_input(2, torch.complex128, seed=0)
    torch.testing.assert_close(op.A_dagger(op.A(x)), x / 1.5)
    assert op.A_dagger(torch.zeros(1, 5, 144, dtype=torch.complex128)).abs().max() == 0


def test_sense_reconstruction_of_undersampled_lines() -> None:
    """Behaviour: 8 coils resolve a 3-fold line undersampling that the zero-filled image aliases."""
    n = 32
    yy, xx = np.mgrid[:n, :n] - n / 2
    x = (np.hypot(yy / 12, xx / 9) < 1) * (1.0 + 0.5 * np.cos(xx / 3)) + 0.3 * np.exp(-(xx**2 + yy**2) / 20)
    mask = masks.cartesian_lines(n, 0.5, acs=8, seed=0, pattern="equispaced")
    maps = birdcage_maps(8, n, radius=1.5, dtype=torch.complex128)
    op = SubsampledMultiCoilFourier(mask, maps, eps=1e-9, cg_iter=60, cg_tol=1e-10)
    xt = torch.from_numpy(x).reshape(1, 1, n, n)
    y = op.A(xt)
    err = float(torch.linalg.vector_norm(op.A_dagger(y) - xt) / torch.linalg.vector_norm(xt))
    zero_filled = op.A_adjoint(y)
    err_zf = float(torch.linalg.vector_norm(zero_filled - xt) / torch.linalg.vector_norm(xt))
    assert err < 1e-6 and err_zf > 0.1


def test_single_all_ones_coil_is_subsampled_fourier() -> None:
    mask = masks.variable_density((12, 10), 0.3, seed=0)
    single = SubsampledFourier(mask)
    for maps in (torch.ones(1, 12, 10), torch.ones(1, 12, 10, dtype=torch.complex64)):
        op = SubsampledMultiCoilFourier(mask, maps)
        for dtype in (torch.float64, torch.complex128):
            x = op.random_input(2, dtype, seed=1)
            torch.testing.assert_close(op.A(x), single.A(x), rtol=1e-12, atol=1e-12)
            y = op.random_output(2, dtype, seed=2)
            torch.testing.assert_close(op.A_adjoint(y), single.A_adjoint(y), rtol=1e-12, atol=1e-12)


def test_gradcheck_forward_adjoint_and_dagger() -> None:
    mask = masks.uniform_random((4, 4), 0.5, seed=0)
    op = SubsampledMultiCoilFourier(mask, torch.from_numpy(random_maps(2, (4, 4), seed=1)), eps=0.1,
                                    cg_iter=3, cg_tol=0.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64, generator=g, requires_grad=True)
    xc = torch.randn(2, 1, 4, 4, dtype=torch.complex128, generator=g, requires_grad=True)
    y = torch.randn(2, 2, 8, dtype=torch.complex128, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.A, (xc,))
    assert torch.autograd.gradgradcheck(op.A, (xc,))
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    assert torch.autograd.gradcheck(op.A_dagger, (y,))
    assert torch.autograd.gradcheck(lambda t: rss(op.expand(t)), (xc,))


def test_norm_closed_form_and_power_iteration_match_singular_values() -> None:
    full = torch.ones(6, 6, dtype=torch.bool)
    maps = random_maps(2, (6, 6), seed=3)
    op = SubsampledMultiCoilFourier(full, torch.from_numpy(maps))
    sigma = np.linalg.svd(dense_sense(full.numpy(), maps), compute_uv=False)[0]
    assert op._exact_norm() == pytest.approx(sigma, rel=1e-12)
    normalised = SubsampledMultiCoilFourier(full, birdcage_maps(3, 6, dtype=torch.complex128))
    assert normalised.norm() == pytest.approx(1.0, abs=1e-12)
    mask = masks.uniform_random((6, 6), 0.4, seed=4)
    sub = SubsampledMultiCoilFourier(mask, torch.from_numpy(maps))
    assert sub._exact_norm() is None
    sigma = np.linalg.svd(dense_sense(mask.numpy(), maps), compute_uv=False)[0]
    assert sub.norm() == pytest.approx(sigma, rel=1e-3)


def test_coil_helpers_against_numpy() -> None:
    shape = (8, 6)
    mask = masks.uniform_random(shape, 0.5, seed=0)
    maps = birdcage_maps(3, shape, dtype=torch.complex128)
    op = SubsampledMultiCoilFourier(mask, maps)
    x = random_image(2, shape, 1, False)
    # rss of the coil images S_c x of a real image with normalised maps is |x|
    torch.testing.assert_close(rss(op.expand(torch.from_numpy(x))), torch.from_numpy(np.abs(x)))
    torch.testing.assert_close(op.combine(op.expand(torch.from_numpy(x))).real, torch.from_numpy(x))
    y = op.A(torch.from_numpy(x)).numpy()
    k = np.zeros((2, 3, *shape), dtype=complex)
    k[..., mask.numpy()] = y
    axes = (-2, -1)
    zero_filled = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=axes), norm="ortho"), axes=axes)
    np.testing.assert_allclose(op.kspace(torch.from_numpy(y)).numpy(), k, atol=1e-12)
    np.testing.assert_allclose(op.coil_images(torch.from_numpy(y)).numpy(), zero_filled, atol=1e-12)
    np.testing.assert_allclose(rss(torch.from_numpy(zero_filled)).numpy(),
                               np.sqrt((np.abs(zero_filled) ** 2).sum(axis=1, keepdims=True)), atol=1e-12)
    assert rss(torch.from_numpy(zero_filled), keepdim=False).shape == (2, *shape)


def test_batch_items_are_independent_and_module_to_keeps_precision() -> None:
    mask = masks.uniform_random((8, 8), 0.4, seed=1)
    maps = random_maps(3, (8, 8), seed=2)
    op = SubsampledMultiCoilFourier(mask, torch.from_numpy(maps)).to(torch.float32)
    assert op.maps.dtype == torch.complex128  # the complex master buffer survives Module.to
    x = random_image(3, (8, 8), 3, True)
    y = op.A(torch.from_numpy(x))
    ref = (x.reshape(3, -1) @ dense_sense(mask.numpy(), maps).T).reshape(y.shape)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)
    for b in range(3):
        torch.testing.assert_close(op.A(torch.from_numpy(x[b : b + 1]))[0], y[b])
    assert "coils=3" in repr(op) and op.coils == 3 and op.rate == pytest.approx(float(mask.float().mean()))


@pytest.mark.parametrize("complex_maps", [True, False])
@pytest.mark.parametrize("budget", [1, 2 * 3 * 64])
def test_batches_run_in_groups_of_items_match_dense(monkeypatch: pytest.MonkeyPatch, complex_maps: bool,
                                                   budget: int) -> None:
    # budget 1: one item per pass; 2 * 3 * 64: two items (3 coils of 8 x 8) per pass, 5 = 2 + 2 + 1
    monkeypatch.setattr(multicoil_module, "COIL_CHUNK_ELEMENTS", budget)
    mask = masks.cartesian_lines((8, 8), 0.5, acs=2, seed=1)
    maps = random_maps(3, (8, 8), seed=2, complex_=complex_maps)
    op = SubsampledMultiCoilFourier(mask, torch.from_numpy(maps))
    mat = dense_sense(mask.numpy(), maps)
    x = random_image(5, (8, 8), 3, True)
    y = op.A(torch.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), (x.reshape(5, -1) @ mat.T).reshape(y.shape), atol=1e-12)
    w = np.random.default_rng(4).standard_normal(y.shape) + 0j
    adj = op.A_adjoint(torch.from_numpy(w))
    np.testing.assert_allclose(adj.numpy(), (w.reshape(5, -1) @ mat.conj()).reshape(adj.shape), atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    op = SubsampledMultiCoilFourier(masks.cartesian_lines(16, 0.5, seed=0), birdcage_maps(4, 16))
    x = op.random_input(2, torch.float32, seed=0)
    y = op.A(x)
    op_gpu = op.to("cuda")
    torch.testing.assert_close(op_gpu.A(x.cuda()).cpu(), y, rtol=1e-5, atol=1e-5)
    x_gpu = op_gpu.A_dagger(y.cuda()).cpu()
    torch.testing.assert_close(x_gpu, op.to("cpu").A_dagger(y), rtol=1e-4, atol=1e-4)


def test_rejects_bad_arguments() -> None:
    mask = masks.uniform_random(8, 0.5, seed=0)
    maps = birdcage_maps(2, 8)
    with pytest.raises(ValueError, match="'maps'.*shape"):
        SubsampledMultiCoilFourier(mask, maps[0])
    with pytest.raises(ValueError, match="'maps'.*match 'mask'"):
        SubsampledMultiCoilFourier(mask, birdcage_maps(2, 9))
    bad = maps.clone()
    bad[0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="'maps'.*NaN"):
        SubsampledMultiCoilFourier(mask, bad)
    with pytest.raises(ValueError, match="'maps'.*all zero"):
        SubsampledMultiCoilFourier(mask, torch.zeros(2, 8, 8))
    with pytest.raises(TypeError, match="'maps'.*dtype"):
        SubsampledMultiCoilFourier(mask, torch.ones(2, 8, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match="'maps'"):
        SubsampledMultiCoilFourier(mask, [[[1.0]]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'mask'.*samples nothing"):
        SubsampledMultiCoilFourier(torch.zeros(8, 8, dtype=torch.bool), maps)
    for kwargs, name in (({"eps": -1.0}, "eps"), ({"cg_iter": 0}, "cg_iter"),
                         ({"cg_tol": math.nan}, "cg_tol")):
        with pytest.raises(ValueError, match=f"'{name}'"):
            SubsampledMultiCoilFourier(mask, maps, **kwargs)
    op = SubsampledMultiCoilFourier(mask, maps)
    with pytest.raises(ValueError, match="'x'"):
        op.A(torch.zeros(1, 2, 8, 8))  # two image channels
    with pytest.raises(ValueError, match="'y'"):
        op.A_adjoint(torch.zeros(1, 3, 32, dtype=torch.complex64))  # three coils
    with pytest.raises(ValueError, match="'y'.*NaN"):
        op.A_dagger(torch.full((1, 2, 32), math.nan))
    with pytest.raises(ValueError, match="'max_iter'"):
        op.cg_sense(torch.zeros(1, 2, 32), max_iter=0)
    with pytest.raises(ValueError, match="'coil_images'"):
        op.combine(torch.zeros(1, 3, 8, 8))
    with pytest.raises(TypeError, match="'coil_images'"):
        rss(np.ones((1, 2, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'dim'"):
        rss(torch.ones(1, 2, 3), dim=3)


# ----------------------------------------------------------------------------- cartesian_lines
def _lines(mask: torch.Tensor, axis: int) -> np.ndarray:
    m = mask.numpy()
    full, empty = m.all(axis=1 - axis), ~m.any(axis=1 - axis)
    assert np.all(full | empty), "every line must be sampled completely or not at all"
    return np.flatnonzero(full)


@pytest.mark.parametrize("size", [32, (24, 20), (17, 15)])
@pytest.mark.parametrize("target", [0.1, 0.25, 0.33, 0.5, 1.0])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("pattern", ["random", "equispaced"])
def test_cartesian_lines_rate_lines_and_calibration(size: int | tuple[int, int], target: float, axis: int,
                                                    pattern: str) -> None:
    h, w = (size, size) if isinstance(size, int) else size
    n = (h, w)[axis]
    acs = min(3, max(1, round(target * n)))
    mask = masks.cartesian_lines(size, target, acs=acs, seed=4, axis=axis, pattern=pattern)
    assert mask.shape == (h, w) and mask.dtype == torch.bool
    lines = _lines(mask, axis)
    assert abs(lines.size / n - target) <= 1 / n
    assert set(range(n // 2 - acs // 2, n // 2 - acs // 2 + acs)) <= set(lines.tolist())
    assert masks.cartesian_lines(size, target, acs=acs, seed=4, axis=axis, pattern=pattern).equal(mask)


def test_cartesian_lines_seed_default_acs_and_equispacing() -> None:
    a = masks.cartesian_lines(64, 0.25, seed=1)
    assert not a.equal(masks.cartesian_lines(64, 0.25, seed=2))
    lines = _lines(a, 0)
    assert set(range(32 - 5 // 2, 32 - 5 // 2 + 5)) <= set(lines.tolist())  # round(0.08 * 64) = 5 ACS lines
    eq = _lines(masks.cartesian_lines(64, 0.25, acs=4, seed=3, pattern="equispaced"), 0)
    free = [i for i in range(64) if not 30 <= i <= 33]  # the lines outside the ACS block
    outer = np.array([free.index(i) for i in eq if i in free])
    assert outer.size == 12 and np.diff(outer).max() - np.diff(outer).min() <= 1  # step 60 / 12 = 5
    corner = _lines(masks.cartesian_lines(16, 0.25, acs=2, origin="corner"), 0)
    assert {0, 1} <= set(corner.tolist())


def test_cartesian_lines_rejects_bad_arguments() -> None:
    for bad_rate in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="'rate'"):
            masks.cartesian_lines(32, bad_rate)
    with pytest.raises(ValueError, match="'acs'.*\\[0, 32\\]"):
        masks.cartesian_lines(32, 1.0, acs=33)
    with pytest.raises(ValueError, match="'acs'.*exceeds"):
        masks.cartesian_lines(32, 0.25, acs=9)
    with pytest.raises(ValueError, match="'acs'"):
        masks.cartesian_lines(32, 0.25, acs=-1)
    with pytest.raises(TypeError, match="'acs'"):
        masks.cartesian_lines(32, 0.25, acs=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'axis'"):
        masks.cartesian_lines(32, 0.25, axis=2)
    with pytest.raises(ValueError, match="'pattern'"):
        masks.cartesian_lines(32, 0.25, pattern="poisson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'size'"):
        masks.cartesian_lines(0, 0.25)
