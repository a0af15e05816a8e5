"""NonCartesianFourier (non-Cartesian MRI through a NUFFT) against the dense non-uniform DFT built by
direct summation, the Cartesian SubsampledFourier, single-coil stacks, and dense least squares."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stablerecon.operators import SubsampledFourier, birdcage_maps, masks
from stablerecon.operators import trajectories as T
from stablerecon.operators.nufft import (
    BACKENDS,
    NonCartesianFourier,
    check_dcf,
    density_compensation,
    nudft_matrix,
)

#: Relative distance to the true NUDFT each backend guarantees here (measured: ~1e-12 for
#: FINUFFT at eps=1e-12, ~5e-5 for torchkbnufft's 6x6 Kaiser-Bessel table interpolation).
NUDFT_TOL = {"finufft": 1e-10, "torchkbnufft": 2e-4}


def dense_nudft(traj: np.ndarray, h: int, w: int) -> np.ndarray:
    """``E[k, n] = exp(-i omega_k . (n - (h//2, w//2))) / sqrt(h w)``, pixels row-major."""
    rows = np.arange(h) - h // 2
    cols = np.arange(w) - w // 2
    phase = traj[0][:, None, None] * rows[None, :, None] + traj[1][:, None, None] * cols[None, None, :]
    return np.exp(-1j * phase).reshape(traj.shape[1], h * w) / np.sqrt(h * w)


def dense_sense(traj: np.ndarray, maps: np.ndarray) -> np.ndarray:
    e = dense_nudft(traj, *maps.shape[-2:])
    return np.vstack([e * s.ravel()[None, :] for s in maps])


def random_maps(n_coils: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_coils, *shape)) + 1j * rng.standard_normal((n_coils, *shape))


def cartesian_traj(mask: torch.Tensor) -> torch.Tensor:
    """The frequencies ``2 pi (k - c) / (H, W)`` of the sampled positions, in ``mask.nonzero()`` order."""
    h, w = mask.shape
    pos = mask.nonzero().double()
    return torch.stack((2 * math.pi * (pos[:, 0] - h // 2) / h, 2 * math.pi * (pos[:, 1] - w // 2) / w))


def phantom(n: int) -> torch.Tensor:
    """A smooth image: two anisotropic Gaussians, the second off centre."""
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float64) - n // 2,
                            torch.arange(n, dtype=torch.float64) - n // 2, indexing="ij")
    s = n / 8
    x = torch.exp(-((yy / (1.5 * s)) ** 2 + (xx / s) ** 2))
    x = x + 0.5 * torch.exp(-(((yy - s) / (0.6 * s)) ** 2 + ((xx + s) / (0.8 * s)) ** 2))
    return x.reshape(1, 1, n, n)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


CASES = {
    "radial": (lambda: T.radial(16, 8), (16, 16)),
    "spiral": (lambda: T.spiral(16, 4), (16, 16)),
    "golden-rect": (lambda: T.radial(12, 7, samples=19, golden=True), (12, 10)),
}


def test_dense_reference_is_the_centred_dft_on_cartesian_frequencies() -> None:
    h, w = 6, 5
    traj = cartesian_traj(torch.ones(h, w, dtype=torch.bool)).numpy()
    x = np.random.default_rng(0).standard_normal((h, w))
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
    np.testing.assert_allclose(dense_nudft(traj, h, w) @ x.ravel(), ref.ravel(), atol=1e-12)
    np.testing.assert_allclose(nudft_matrix(torch.from_numpy(traj), (h, w)).numpy(), dense_nudft(traj, h, w),
                               atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("coils", [0, 3])
def test_matches_dense_nudft_and_is_its_exact_transpose(backend: str, case: str, coils: int) -> None:
    make, (h, w) = CASES[case]
    traj = make()
    k = traj.shape[1]
    maps = random_maps(coils, (h, w), seed=1) if coils else None
    op = NonCartesianFourier(traj, (h, w), maps=None if maps is None else torch.from_numpy(maps),
                             dcf=torch.ones(k), backend=backend)
    dense = dense_sense(traj.numpy(), maps) if coils else dense_nudft(traj.numpy(), h, w)
    matrix = op.to_matrix().numpy()
    assert matrix.shape == dense.shape == (max(coils, 1) * k, h * w)
    tol = NUDFT_TOL[backend]
    assert np.linalg.norm(matrix - dense) / np.linalg.norm(dense) < tol
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, h, w)) + 1j * rng.standard_normal((2, 1, h, w))
    y = op.A(torch.from_numpy(x))
    assert y.shape == (2, max(coils, 1), k) and y.dtype == torch.complex128
    ref = (x.reshape(2, -1) @ dense.T).reshape(y.shape)
    assert np.linalg.norm(y.numpy() - ref) / np.linalg.norm(ref) < tol
    v = rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)
    adj = op.A_adjoint(torch.from_numpy(v)).numpy()
    ref_adj = (v.reshape(2, -1) @ dense.conj()).reshape(2, 1, h, w)
    assert np.linalg.norm(adj - ref_adj) / np.linalg.norm(ref_adj) < tol
    # The adjoint is the conjugate transpose of the operator as computed, to rounding.
    np.testing.assert_allclose(adj, (v.reshape(2, -1) @ matrix.conj()).reshape(2, 1, h, w), rtol=1e-12,
                               atol=1e-12 * np.abs(adj).max())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_dot_product_test(backend: str, seed: int) -> None:
    for maps in (None, birdcage_maps(4, 16)):
        op = NonCartesianFourier(T.spiral(16, 4), 16, maps=maps, dcf=torch.ones(412), backend=backend)
        assert op.adjointness_error(torch.float32, seed=seed) < 1e-5
        assert op.adjointness_error(torch.complex64, seed=seed) < 1e-5
        assert op.adjointness_error(torch.float64, seed=seed) < 1e-12
        assert op.adjointness_error(torch.complex128, seed=seed) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(16, 16), (15, 13)])
def test_cartesian_trajectory_is_subsampled_fourier(backend: str, shape: tuple[int, int]) -> None:
    """On the Cartesian frequencies the operator is the centred unitary DFT of SubsampledFourier."""
    mask = masks.variable_density(shape, 0.3, seed=0)
    cartesian = SubsampledFourier(mask)
    op = NonCartesianFourier(cartesian_traj(mask), shape, dcf=torch.ones(int(mask.sum())), backend=backend)
    tol = NUDFT_TOL[backend]
    for dtype in (torch.float64, torch.complex128):
        x = op.random_input(2, dtype, seed=1)
        assert rel_err(op.A(x), cartesian.A(x)) < tol
        y = op.random_output(2, torch.float64, seed=2)
        assert rel_err(op.A_adjoint(y), cartesian.A_adjoint(y)) < tol
    # Fully sampled with unit weights: gridding is the exact inverse.
    full = torch.ones(shape, dtype=torch.bool)
    op = NonCartesianFourier(cartesian_traj(full), shape, dcf=torch.ones(full.numel()), backend=backend)
    x = op.random_input(1, torch.complex128, seed=3)
    assert rel_err(op.A_dagger(op.A(x)), x) < tol


def test_float32_input_gives_complex64_close_to_double() -> None:
    op = NonCartesianFourier(T.radial(16, 8), 16, maps=birdcage_maps(3, 16), dcf=torch.ones(256))
    x = op.random_input(2, torch.float64, seed=0)
    y32 = op.A(x.float())
    assert y32.dtype == torch.complex64
    assert rel_err(y32.to(torch.complex128), op.A(x)) < 1e-5
    y = op.random_output(2, torch.float64, seed=1)
    assert op.A_adjoint(y.to(torch.complex64)).dtype == torch.complex64
    assert rel_err(op.A_adjoint(y.to(torch.complex64)).to(torch.complex128), op.A_adjoint(y)) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_multicoil_is_the_stack_of_single_coil_operators(backend: str) -> None:
    traj, n = T.radial(16, 8, golden=True), 16
    maps = birdcage_maps(4, n, dtype=torch.complex128) * 1.3  # not normalised: sum |S|^2 != 1
    dcf = T.radial_dcf(n, 8, golden=True)
    multi = NonCartesianFourier(traj, n, maps=maps, dcf=dcf, backend=backend)
    single = NonCartesianFourier(traj, n, dcf=dcf, backend=backend)
    x = multi.random_input(2, torch.complex128, seed=0)
    y = multi.A(x)
    for c in range(4):
        torch.testing.assert_close(y[:, c : c + 1], single.A(x * maps[c]), rtol=1e-12, atol=1e-12)
    v = multi.random_output(2, torch.complex128, seed=1)
    ref = sum(maps[c].conj() * single.A_adjoint(v[:, c : c + 1]) for c in range(4))
    torch.testing.assert_close(multi.A_adjoint(v), ref, rtol=1e-12, atol=1e-12)
    sens = maps.abs().square().sum(dim=0)
    ref_dagger = sum(maps[c].conj() * single.A_dagger(v[:, c : c + 1]) for c in range(4)) / sens
    torch.testing.assert_close(multi.A_dagger(v), ref_dagger, rtol=1e-12, atol=1e-12)
    coil = multi.coil_images(v)
    for c in range(4):
        torch.testing.assert_close(coil[:, c : c + 1], single.A_dagger(v[:, c : c + 1]),
                                   rtol=1e-12, atol=1e-12)
    assert multi.coils == 4 and single.coils == 1 and multi.samples == traj.shape[1]


# ----------------------------------------------------------------------------- reconstructions
@pytest.mark.parametrize(
    ("name", "make", "dcf", "coils", "bound"),
    [
        ("radial, Pipe-Menon", lambda n: T.radial(n, T.nyquist_spokes(n)), None, 0, 0.04),
        ("radial, analytic ramp", lambda n: T.radial(n, T.nyquist_spokes(n)),
         lambda n: T.radial_dcf(n, T.nyquist_spokes(n)), 0, 0.03),
        ("golden radial, Pipe-Menon", lambda n: T.radial(n, T.nyquist_spokes(n), golden=True), None, 0, 0.04),
        ("spiral, Pipe-Menon", lambda n: T.spiral(n, 4), None, 0, 0.05),
        ("spiral, 4 coils", lambda n: T.spiral(n, 8), None, 4, 0.05),
    ],
)
def test_gridding_reconstructs_a_smooth_image(name: str, make, dcf, coils: int, bound: float) -> None:
    n = 32
    x = phantom(n)
    maps = birdcage_maps(coils, n, dtype=torch.complex128) if coils else None
    op = NonCartesianFourier(make(n), n, maps=maps, dcf=None if dcf is None else dcf(n))
    err = rel_err(op.A_dagger(op.A(x)), x)
    assert err < bound, f"{name}: relative error {err:.4f}"
    # Without density compensation the adjoint is far off (the centre is oversampled).
    assert rel_err(op.A_adjoint(op.A(x)), x) > 0.5


def test_gridding_degrades_with_undersampling() -> None:
    """The bound above is not automatic: a 4x undersampled radial trajectory misses it."""
    n = 16
    x = phantom(n)
    op = NonCartesianFourier(T.radial(n, T.nyquist_spokes(n) // 4), n)
    assert rel_err(op.A_dagger(op.A(x)), x) > 0.1


def test_pipe_menon_weights_agree_with_the_analytic_ramp() -> None:
    n, spokes = 32, T.nyquist_spokes(32)
    traj = T.radial(n, spokes)
    pipe, ramp = density_compensation(traj, n), T.radial_dcf(n, spokes)
    assert pipe.shape == ramp.shape and pipe.dtype == torch.float64 and bool((pipe > 0).all())
    radius = traj.norm(dim=0)
    band = (radius > 0.2 * math.pi) & (radius < 0.8 * math.pi)
    relative = ((pipe - ramp).abs() / ramp)[band]
    assert float(relative.max()) < 0.05 and float(relative.mean()) < 0.02
    # Total area: the Nyquist disk, in Nyquist cells (Pipe-Menon inflates the rim a little).
    assert float(pipe.sum()) == pytest.approx(math.pi * n * n / 4, rel=0.1)
    spiral = density_compensation(T.spiral(n, 4), n)
    assert float(spiral.sum()) == pytest.approx(math.pi * n * n / 4, rel=0.1)
    # Cartesian full grid: every sample is one Nyquist cell.
    full = density_compensation(cartesian_traj(torch.ones(12, 10, dtype=torch.bool)), (12, 10))
    torch.testing.assert_close(full, torch.ones_like(full), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("weighted", [True, False])
def test_cg_matches_dense_least_squares(weighted: bool) -> None:
    """A well-posed instance: 3 random samples per Nyquist cell over the whole k-space square."""
    n = 8
    traj = (torch.rand(2, 3 * n * n, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1)
    traj = traj * math.pi
    op = NonCartesianFourier(traj, n)  # Pipe-Menon weights
    e = dense_nudft(traj.numpy(), n, n)
    w = op.dcf.numpy() if weighted else np.ones(traj.shape[1])
    normal = e.conj().T @ (w[:, None] * e)
    assert np.linalg.cond(normal) < 1e3  # checked, not assumed
    rng = np.random.default_rng(0)
    y = rng.standard_normal((2, 1, traj.shape[1])) + 1j * rng.standard_normal((2, 1, traj.shape[1]))
    ref = np.linalg.solve(normal, e.conj().T @ (w[:, None] * y.reshape(2, -1).T)).T.reshape(2, 1, n, n)
    got = op.cg(torch.from_numpy(y), max_iter=100, tol=1e-14, weighted=weighted).numpy()
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-10
    early = op.cg(torch.from_numpy(y), max_iter=5, weighted=weighted).numpy()
    assert np.linalg.norm(early - ref) / np.linalg.norm(ref) > 0.1  # 100 steps were needed


def test_cg_sense_resolves_undersampled_radial_data() -> None:
    n = 32
    x = phantom(n)
    maps = birdcage_maps(8, n, dtype=torch.complex128)
    op = NonCartesianFourier(T.radial(n, T.nyquist_spokes(n) // 3), n, maps=maps)
    y = op.A(x)
    err_grid = rel_err(op.A_dagger(y), x)
    err_cg = rel_err(op.cg(y, max_iter=30, tol=1e-10), x)
    assert err_cg < 0.01 and err_cg < 0.3 * err_grid
    zero = op.cg(torch.zeros_like(y))
    assert float(zero.abs().max()) == 0.0


# ----------------------------------------------------------------------------- norms, dtypes, devices
def test_norm_matches_largest_singular_value() -> None:
    op = NonCartesianFourier(T.spiral(16, 4), 16, maps=birdcage_maps(2, 16), dcf=torch.ones(412))
    sigma = float(torch.linalg.svdvals(op.to_matrix())[0])
    assert op.norm() == pytest.approx(sigma, rel=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_module_to_keeps_double_precision_buffers(backend: str) -> None:
    traj, n = T.radial(16, 8), 16
    maps = torch.from_numpy(random_maps(2, (n, n), seed=0))
    dense = torch.from_numpy(dense_sense(traj.numpy(), maps.numpy()))
    op = NonCartesianFourier(traj, n, maps=maps, dcf=T.radial_dcf(n, 8), backend=backend)
    for target in (torch.float32, torch.float64, "cpu"):
        op = op.to(target)
        assert op.traj.dtype == torch.float64 and op.dcf.dtype == torch.float64
        assert op.maps.dtype == torch.complex128
        x = op.random_input(2, torch.complex128, seed=1)
        assert rel_err(op.A(x), (x.reshape(2, -1) @ dense.T).reshape(2, 2, -1)) < NUDFT_TOL[backend]
        assert op.adjointness_error(torch.complex128) < 1e-12
    if backend == "torchkbnufft":
        assert op.kb_n_shift.dtype == torch.float64 and op.kb_table_0.dtype == torch.complex128
    assert f"backend='{backend}'" in repr(op) and "coils=2" in repr(op)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(backend: str) -> None:
    n = 6
    traj = T.radial(n, 3)
    maps = torch.from_numpy(random_maps(2, (n, n), seed=1))
    op = NonCartesianFourier(traj, n, maps=maps, dcf=T.radial_dcf(n, 3), backend=backend)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, n, n, dtype=torch.float64, generator=g, requires_grad=True)
    xc = torch.randn(1, 1, n, n, dtype=torch.complex128, generator=g, requires_grad=True)
    y = torch.randn(1, 2, traj.shape[1], dtype=torch.complex128, generator=g, requires_grad=True)
    # fast_mode checks the Jacobian along random directions (one NUFFT per probe, not per entry).
    assert torch.autograd.gradcheck(op.A, (x,), fast_mode=True)
    assert torch.autograd.gradcheck(op.A, (xc,), fast_mode=True)
    assert torch.autograd.gradgradcheck(op.A, (xc,), fast_mode=True)
    assert torch.autograd.gradcheck(op.A_adjoint, (y,), fast_mode=True)
    assert torch.autograd.gradcheck(op.A_dagger, (y,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda t: op.cg(t, max_iter=3, tol=0.0, eps=0.1), (y,), fast_mode=True)


def test_finufft_on_an_accelerator_needs_cufinufft(monkeypatch: pytest.MonkeyPatch) -> None:
    import stablerecon.operators.nufft as nufft

    op = NonCartesianFourier(T.radial(8, 4), 8, dcf=torch.ones(64))
    monkeypatch.setattr(nufft, "_cufinufft_available", lambda: False)
    with pytest.raises(RuntimeError, match="cufinufft.*torchkbnufft"):
        op._finufft_kwargs(torch.complex64, torch.device("cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    op = NonCartesianFourier(T.radial(16, 8), 16, maps=birdcage_maps(3, 16), dcf=T.radial_dcf(16, 8),
                             backend="torchkbnufft")
    x = op.random_input(2, torch.float32, seed=0)
    y = op.A(x)
    gpu = op.to("cuda")
    torch.testing.assert_close(gpu.A(x.cuda()).cpu(), y, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gpu.A_dagger(y.cuda()).cpu(), op.to("cpu").A_dagger(y), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- bad input
def test_rejects_bad_arguments() -> None:
    traj, n = T.radial(8, 4), 8
    k = traj.shape[1]
    ones = torch.ones(k)
    with pytest.raises(ValueError, match=r"'traj'.*\[-pi, pi\)"):
        NonCartesianFourier(traj * 1.5, n, dcf=ones)
    with pytest.raises(ValueError, match="'traj'.*NaN"):
        NonCartesianFourier(torch.full((2, 4), math.nan), n, dcf=torch.ones(4))
    with pytest.raises(ValueError, match="'traj'.*shape"):
        NonCartesianFourier(traj.T, n, dcf=ones)
    with pytest.raises(TypeError, match="'traj'"):
        NonCartesianFourier(traj.tolist(), n, dcf=ones)  # type: ignore[arg-type]
    maps = birdcage_maps(2, n)
    with pytest.raises(ValueError, match="'maps'.*shape"):
        NonCartesianFourier(traj, n, maps=maps[0], dcf=ones)
    with pytest.raises(ValueError, match="'maps'.*match 'size'"):
        NonCartesianFourier(traj, n, maps=birdcage_maps(2, 9), dcf=ones)
    bad = maps.clone()
    bad[1, 2, 3] = math.nan
    with pytest.raises(ValueError, match="'maps'.*NaN"):
        NonCartesianFourier(traj, n, maps=bad, dcf=ones)
    with pytest.raises(ValueError, match="'maps'.*all zero"):
        NonCartesianFourier(traj, n, maps=torch.zeros(2, n, n), dcf=ones)
    with pytest.raises(TypeError, match="'maps'"):
        NonCartesianFourier(traj, n, maps=torch.ones(2, n, n, dtype=torch.int32), dcf=ones)
    for dcf, error, pattern in (
        (torch.ones(k + 1), ValueError, "'dcf'.*shape"),
        (torch.ones(1, k), ValueError, "'dcf'.*shape"),
        (-ones, ValueError, "'dcf'.*non-negative"),
        (torch.where(torch.arange(k) == 3, math.nan, 1.0), ValueError, "'dcf'.*NaN"),
        (torch.full((k,), math.inf), ValueError, "'dcf'.*NaN or Inf"),
        (torch.zeros(k), ValueError, "'dcf'.*all zero"),
        (ones.to(torch.complex64), TypeError, "'dcf'.*real"),
        ([1.0] * k, TypeError, "'dcf'"),
    ):
        with pytest.raises(error, match=pattern):
            NonCartesianFourier(traj, n, dcf=dcf)
    for kwargs, name in (({"backend": "sigpy"}, "backend"), ({"eps": 0.0}, "eps"), ({"eps": 1.5}, "eps"),
                         ({"dcf_iter": 0}, "dcf_iter")):
        with pytest.raises(ValueError, match=f"'{name}'"):
            NonCartesianFourier(traj, n, **kwargs)
    with pytest.raises(ValueError, match="'size'"):
        NonCartesianFourier(traj, 0, dcf=ones)
    with pytest.raises(ValueError, match="'iterations'"):
        density_compensation(traj, n, iterations=0)
    assert check_dcf(np.ones(k), k).dtype == torch.float64
    op = NonCartesianFourier(traj, n, maps=maps, dcf=ones)
    with pytest.raises(ValueError, match="'x'"):
        op.A(torch.zeros(1, 2, n, n))  # two image channels
    with pytest.raises(ValueError, match="'y'"):
        op.A_adjoint(torch.zeros(1, 3, k, dtype=torch.complex64))  # three coils
    with pytest.raises(ValueError, match="'y'.*NaN"):
        op.A_dagger(torch.full((1, 2, k), math.nan))
    with pytest.raises(ValueError, match="'y'"):
        op.cg(torch.zeros(1, 2, k + 1))
    with pytest.raises(ValueError, match="'max_iter'"):
        op.cg(torch.zeros(1, 2, k), max_iter=0)
    with pytest.raises(TypeError, match="'weighted'"):
        op.cg(torch.zeros(1, 2, k), weighted=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'y'"):
        op.coil_images(torch.zeros(1, 1, k))
