"""Radon (parallel-beam CT) against scikit-image, dense matrices and autograd's own checks."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
from ct_reference import ENGINES, ellipse_chords, ellipse_image, with_engine
from scipy.ndimage import gaussian_filter
from skimage.data import shepp_logan_phantom
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import iradon, radon, resize

from stablerecon.operators.radon import FBP_FILTERS, Radon, clear_radon_cache


@pytest.fixture(scope="module")
def phantom128() -> np.ndarray:
    """Shepp-Logan at 128 x 128, values in [0, 1], zero outside the inscribed disk."""
    return resize(shepp_logan_phantom(), (128, 128), anti_aliasing=True)


@pytest.fixture(scope="module")
def op128() -> Radon:
    return Radon(128, angles=180)


def _disk(size: int, margin: int = 0) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - size // 2) ** 2 + (cols - size // 2) ** 2 <= (size // 2 - margin) ** 2


def _smooth_random(size: int, seed: int, circle: bool = True) -> np.ndarray:
    image = gaussian_filter(np.random.default_rng(seed).standard_normal((size, size)), 2.0)
    return image * _disk(size, margin=1) if circle else image


def _joseph_dense(size: int, angles: list[float], n_det: int, circle: bool = True) -> np.ndarray:
    """Joseph's projector written out ray by ray, step by step (independent dense reference).

    Ray ``(k, d)``: the line ``u cos - v sin = d - n_det // 2``; stepped over the rows when
    ``|cos| >= |sin|`` (else the columns), linear interpolation between the two pixels of
    each row (column) around the crossing, times ``1 / max(|cos|, |sin|)``; pixels outside
    the grid (and the disk, with ``circle``) are zero.
    """
    c = size // 2
    support = _disk(size) if circle else np.ones((size, size), bool)
    matrix = np.zeros((len(angles) * n_det, size * size))
    for k, theta in enumerate(np.deg2rad(np.asarray(angles, dtype=float))):
        cos, sin = math.cos(theta), math.sin(theta)
        rows = abs(cos) >= abs(sin)
        for d in range(n_det):
            t = d - n_det // 2
            for step in range(size):
                w = step - c
                pos = (t + w * sin) / cos + c if rows else (w * cos - t) / sin + c
                length = 1.0 / abs(cos) if rows else 1.0 / abs(sin)
                first = math.floor(pos)
                for j, weight in ((first, 1.0 - (pos - first)), (first + 1, pos - first)):
                    i, jj = (step, j) if rows else (j, step)
                    if 0 <= j < size and support[i, jj]:
                        matrix[k * n_det + d, i * size + jj] += length * weight
    return matrix


def _ours(op: Radon, image: np.ndarray) -> np.ndarray:
    """Our sinogram of one image in skimage's layout (n_detectors, n_angles)."""
    return op.A(torch.from_numpy(image)[None, None])[0, 0].numpy().T


def _compare(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    corr = float(np.corrcoef(ours.ravel(), ref.ravel())[0, 1])
    rel = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
    return corr, rel


# --------------------------------------------------------------------------- vs scikit-image
def test_matches_skimage_radon_on_shepp_logan(op128: Radon, phantom128: np.ndarray) -> None:
    assert not phantom128[~_disk(128)].any()
    ref = radon(phantom128, theta=np.asarray(op128.angles), circle=True)
    ours = _ours(op128, phantom128)
    assert ours.shape == ref.shape == (128, 180)
    corr, rel = _compare(ours, ref)
    print(f"Shepp-Logan 128, 180 angles: corr {corr:.6f}, relative l2 difference {rel:.4f}")
    assert corr > 0.99
    assert rel < 0.02  # measured 0.0036


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("size", "angles"), [(64, 180), (33, 50), (16, 12)])
def test_matches_skimage_radon_on_smooth_random_images(size: int, angles: int, engine: str) -> None:
    op = with_engine(Radon(size, angles=angles), engine)
    image = _smooth_random(size, seed=size)
    ref = radon(image, theta=np.asarray(op.angles), circle=True)
    corr, rel = _compare(_ours(op, image), ref)
    print(f"smooth random {size}, {angles} angles: corr {corr:.6f}, relative l2 {rel:.4f}")
    assert corr > 0.99
    assert rel < 0.05  # measured 0.004 (64), 0.013 (33), 0.020 (16)


def test_matches_skimage_with_explicit_angles_and_without_circle() -> None:
    theta = [-30.0, 0.0, 12.5, 45.0, 90.0, 100.0, 135.0, 200.0, 271.0]
    image = _smooth_random(40, seed=3, circle=False)
    for angles in (theta, torch.tensor(theta), np.asarray(theta)):
        op = Radon(40, angles=angles, circle=False)  # type: ignore[arg-type]
        ref = radon(image, theta=theta, circle=False)
        assert op.n_detectors == ref.shape[0]
        corr, rel = _compare(_ours(op, image), ref)
        assert corr > 0.99 and rel < 0.05


def test_point_source_lands_where_skimage_puts_it() -> None:
    """A single pixel projects to detector ``(j - c) cos - (i - c) sin + n_det // 2``."""
    size, (i, j) = 33, (10, 20)
    op = Radon(size, angles=[0.0, 30.0, 90.0, 150.0])
    image = np.zeros((size, size))
    image[i, j] = 1.0
    ours, ref = _ours(op, image), radon(image, theta=list(op.angles), circle=True)
    for k, theta in enumerate(np.deg2rad(op.angles)):
        t = (j - size // 2) * math.cos(theta) - (i - size // 2) * math.sin(theta) + size // 2
        centre = (ours[:, k] * np.arange(size)).sum() / ours[:, k].sum()
        assert centre == pytest.approx(t, abs=0.05)  # sub-pixel; measured <= 0.014
        assert int(np.argmax(ours[:, k])) == int(np.argmax(ref[:, k]))


def test_line_integral_of_a_constant_disk() -> None:
    """Closed form: the projection of the indicator of a disk of radius r is 2 sqrt(r^2 - t^2)."""
    size, r = 96, 30.0
    op = Radon(size, angles=16)
    rows, cols = np.mgrid[:size, :size]
    # Anti-aliased disk (16 x 16 supersampling) so the pixel image approximates the disk well.
    sub = (np.arange(16) + 0.5) / 16 - 0.5
    dy, dx = np.meshgrid(sub, sub, indexing="ij")
    inside = ((rows[..., None, None] + dy - size // 2) ** 2
              + (cols[..., None, None] + dx - size // 2) ** 2 <= r**2)
    image = inside.mean(axis=(-1, -2))
    sino = _ours(op, image)
    t = np.arange(op.n_detectors) - op.n_detectors // 2
    exact = 2 * np.sqrt(np.clip(r**2 - t**2, 0, None))
    err = np.abs(sino - exact[:, None])
    # Away from the rim within 1% of the diameter (measured 0.31, skimage's radon: 0.30).
    assert err[np.abs(t) < r - 2].max() < 0.01 * 2 * r
    # Each projection integrates to the disk's area (measured within 4e-4).
    assert sino.sum(axis=0) == pytest.approx(np.full(16, math.pi * r**2), rel=1e-3)


def test_line_integrals_of_a_tilted_ellipse() -> None:
    """Closed form: the chord of the line through the ellipse, against the sinogram of its image."""
    size, centre, axes, tilt = 80, (6.0, -4.0), (26.0, 14.0), 0.6
    op = Radon(size, angles=[0.0, 17.0, 45.0, 63.5, 90.0, 118.0, 151.0])
    sino = op.A(torch.from_numpy(ellipse_image(size, centre, axes, tilt))[None, None])[0, 0].numpy()
    t = np.arange(op.n_detectors) - op.n_detectors // 2
    worst = 0.0
    for k, theta in enumerate(np.deg2rad(op.angles)):
        normal = np.array([math.cos(theta), -math.sin(theta)])
        along = np.array([math.sin(theta), math.cos(theta)])
        points = t[:, None] * normal
        exact = ellipse_chords(points, np.broadcast_to(along, points.shape), centre, axes, tilt)
        # away from the rim: the chord of the ellipse shrunk by 1.5 pixels is still long
        inner = ellipse_chords(points, np.broadcast_to(along, points.shape), centre,
                                (axes[0] - 1.5, axes[1] - 1.5), tilt) > 4.0
        worst = max(worst, float(np.abs(sino[k] - exact)[inner].max()))
        assert sino[k].sum() == pytest.approx(math.pi * axes[0] * axes[1], rel=2e-3)  # 5e-4
    assert worst < 0.01 * 2 * axes[0]  # measured 0.39 (0.7% of the major axis)


# --------------------------------------------------------------------------- adjoint, norm
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("size", "angles", "circle"), [(16, 12, True), (31, 40, False)])
def test_dot_product_test(size: int, angles: int, circle: bool, seed: int, engine: str) -> None:
    op = with_engine(Radon(size, angles=angles, circle=circle), engine)
    assert op.adjointness_error(dtype=torch.float32, seed=seed, batch=3) < 1e-5
    assert op.adjointness_error(dtype=torch.float64, seed=seed, batch=3) < 1e-12


def test_adjoint_is_transpose_of_dense_matrix() -> None:
    op = Radon(12, angles=[0.0, 33.0, 71.0, 128.0], detectors=15)
    m = op.to_matrix()
    y = op.random_output(2, dtype=torch.float64, seed=3)
    ref = (y.reshape(2, -1) @ m).reshape(2, 1, 12, 12)
    torch.testing.assert_close(op.A_adjoint(y), ref, rtol=1e-12, atol=1e-12)


# Every symmetry of the square (angles +-phi + 90 m), the 45-degree ties stepped either way,
# negative and repeated angles, and angles that share nothing.
SYMMETRIC_ANGLES = [0.0, 90.0, 180.0, 270.0, -90.0, 20.0, 70.0, 110.0, 160.0, 200.0, 250.0,
                    290.0, 340.0, -20.0, 45.0, 135.0, 225.0, 315.0, -45.0, 33.3, 33.3, 101.7]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("size", "n_det", "circle"), [(13, 13, True), (12, 19, False), (9, 7, True)])
def test_matrix_equals_joseph_written_out(size: int, n_det: int, circle: bool, engine: str) -> None:
    """The projector, matrix-free or on its cached sparse matrix, is Joseph's method exactly
    (float64), at every symmetry."""
    op = with_engine(Radon(size, angles=SYMMETRIC_ANGLES, detectors=n_det, circle=circle), engine)
    ref = torch.from_numpy(_joseph_dense(size, SYMMETRIC_ANGLES, n_det, circle))
    torch.testing.assert_close(op.to_matrix(), ref, rtol=0, atol=1e-12)
    y = op.random_output(3, dtype=torch.float64, seed=4)
    torch.testing.assert_close(op.A_adjoint(y).reshape(3, -1), y.reshape(3, -1) @ ref,
                               rtol=1e-12, atol=1e-12)
    # float32: the same operator to float32 rounding of the sample positions
    x = op.random_input(2, torch.float64, seed=5)
    torch.testing.assert_close(op.A(x.float()).double(), op.A(x), rtol=0, atol=1e-4)


def test_chunking_and_batching_do_not_change_the_result() -> None:
    """Tiny chunks (one angle at a time, one image per slice) give the same numbers."""
    op = with_engine(Radon(20, angles=37, circle=False), "matrix-free")
    x = op.random_input(3, torch.float64, seed=0).repeat(1, 2, 1, 1)
    y = op.random_output(3, torch.float64, seed=1).repeat(1, 2, 1, 1)
    ax, aty = op.A(x), op.A_adjoint(y)
    op.chunk_elements = 1
    torch.testing.assert_close(op.A(x), ax, rtol=1e-13, atol=1e-12)
    torch.testing.assert_close(op.A_adjoint(y), aty, rtol=1e-13, atol=1e-12)
    for b in range(3):
        torch.testing.assert_close(op.A(x[b:b + 1, :1]), ax[b:b + 1, :1], rtol=1e-13, atol=1e-12)


def test_operator_keeps_no_system_matrix_above_its_budget() -> None:
    """What an operator holds grows like n_angles * n_detectors + size^2, not like their product,
    when its matrix exceeds ``matrix_bytes``."""
    op = Radon(256, angles=360)
    assert op._matrix_bound(torch.float32) > op.matrix_bytes
    assert op._matrices(torch.float32, torch.device("cpu")) is None
    held = sum(t.numel() * t.element_size() for t in op.buffers())
    assert held < 25e6  # measured 6 MB; the former sparse matrices took about 0.8 GB here
    assert op.adjointness_error(dtype=torch.float32, seed=0) < 1e-5
    clear_radon_cache()  # kept for compatibility: nothing is cached any more
    assert op.adjointness_error(dtype=torch.float64, seed=1) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_matrix_stays_within_its_budget(dtype: torch.dtype) -> None:
    """The cached matrix and its transpose take at most the bound checked against
    ``matrix_bytes``; one byte less of budget and the operator stays matrix-free, with the
    same results."""
    op = Radon(48, angles=70)
    cpu = torch.device("cpu")
    pair = op._matrices(dtype, cpu)
    assert pair is not None
    held = sum(t.numel() * t.element_size() for m in pair
               for t in (m.crow_indices(), m.col_indices(), m.values()))
    assert held <= op._matrix_bound(dtype)
    x, y = op.random_input(2, dtype, seed=0), op.random_output(2, dtype, seed=1)
    ax, aty = op.A(x), op.A_adjoint(y)
    free = Radon(48, angles=70)
    free.matrix_bytes = free._matrix_bound(dtype) - 1
    assert free._matrices(dtype, cpu) is None
    tol = 1e-12 if dtype == torch.float64 else 1e-4  # float32: sample positions in float32 vs float64
    torch.testing.assert_close(free.A(x), ax, rtol=tol, atol=tol * float(ax.abs().max()))
    torch.testing.assert_close(free.A_adjoint(y), aty, rtol=tol, atol=tol * float(aty.abs().max()))
    op.matrix_bytes = 0  # a lowered budget drops the cached matrices
    assert op._matrices(dtype, cpu) is None
    assert not any(key[0].startswith("_matrix") for key in op._cast_cache)


def test_float32_adjoint_at_256_is_exact_too() -> None:
    """At 256 x 256 (float32 sample positions up to 256) the float32 dot-product test holds."""
    op = Radon(256, angles=30)
    assert op.adjointness_error(dtype=torch.float32, seed=0) < 1e-5


def test_norm_matches_largest_singular_value() -> None:
    op = Radon(16, angles=20)
    sigma_max = float(torch.linalg.svdvals(op.to_matrix())[0])
    assert op.norm() == pytest.approx(sigma_max, rel=1e-2)


# --------------------------------------------------------------------------- FBP
def test_fbp_psnr_on_shepp_logan(op128: Radon, phantom128: np.ndarray) -> None:
    """PSNR on the whole 128 x 128 image (data range 1); skimage's own radon+iradon gets 30.0."""
    x = torch.from_numpy(phantom128)[None, None]
    for dtype in (torch.float64, torch.float32):
        recon = op128.A_dagger(op128.A(x.to(dtype)))[0, 0].double().numpy()
        psnr = peak_signal_noise_ratio(phantom128, recon, data_range=1.0)
        print(f"FBP Shepp-Logan 128, 180 angles, {dtype}: PSNR {psnr:.2f} dB (whole image)")
        assert psnr > 25.0  # measured 30.79 dB


@pytest.mark.parametrize("name", FBP_FILTERS)
def test_fbp_matches_skimage_iradon(name: str) -> None:
    """Same filters and scaling as ``skimage.transform.iradon`` (on skimage's sinogram)."""
    size = 64
    op = Radon(size, angles=90, filter=name)
    image = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    theta = np.asarray(op.angles)
    ref = iradon(radon(image, theta=theta, circle=True), theta=theta, circle=True,
                 filter_name=name)
    ours = op.A_dagger(op.A(torch.from_numpy(image)[None, None]))[0, 0].numpy()
    corr, rel = _compare(ours, ref)
    assert corr > 0.995 and rel < 0.08
    # Same scaling: the means agree closely (the value, not just the shape, is right).
    assert ours.mean() == pytest.approx(ref.mean(), rel=0.02)


def test_fbp_filter_response_matches_kak_slaney_ramp() -> None:
    """Filtering a unit impulse returns the spatial Ram-Lak kernel (times 2): 1/2, -2/(pi k)^2."""
    op = Radon(32, angles=1)
    y = torch.zeros(1, 1, 1, 32, dtype=torch.float64)
    y[..., 16] = 1.0
    h = op.filter_sinogram(y)[0, 0, 0].numpy()
    k = np.arange(32) - 16
    expected = np.zeros(32)
    odd = k % 2 == 1
    expected[odd] = -2.0 / (np.pi * k[odd]) ** 2
    expected[k == 0] = 0.5
    np.testing.assert_allclose(h, expected, atol=1e-12)


# --------------------------------------------------------------------------- autograd
def test_gradcheck_forward_and_adjoint() -> None:
    """Full finite-difference Jacobians of A and A^T; double backward in gradcheck's fast mode.

    (Kept to a single image: every call is several parallel kernels, and on a machine whose cores are
    oversubscribed each one can cost milliseconds of OpenMP thread start-up.)
    """
    op = Radon(8, angles=[0.0, 40.0, 95.0])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(1, 1, 3, 8, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    assert torch.autograd.gradgradcheck(op.A, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(op.A_adjoint, (y,), fast_mode=True)


def test_fbp_is_differentiable() -> None:
    """Autograd's vector-Jacobian product of the (linear) FBP is its adjoint: <J^T w, v> = <w, J v>."""
    op = Radon(12, angles=7)
    y = op.random_output(1, torch.float64, seed=0).requires_grad_(True)
    w = op.random_input(1, torch.float64, seed=1)
    (vjp,) = torch.autograd.grad((op.A_dagger(y) * w).sum(), y)
    for seed in (2, 3):
        v = op.random_output(1, torch.float64, seed=seed)
        assert float((vjp * v).sum()) == pytest.approx(float((w * op.A_dagger(v)).sum()), rel=1e-10)
    assert torch.autograd.gradcheck(op.A_dagger, (y,), fast_mode=True)


def test_gradients_of_least_squares() -> None:
    """Autograd at a moderate size: gradient and Hessian-vector product (double backward).

    d/dx 1/2 ||A x - y||^2 = A^T (A x - y) and d/dx <A^T (A x - y), v> = A^T A v.
    """
    op = Radon(40, angles=30)
    x = op.random_input(2, torch.float64, seed=0).requires_grad_(True)
    y = op.random_output(2, torch.float64, seed=1)
    v = op.random_input(2, torch.float64, seed=2)
    loss = 0.5 * (op.A(x) - y).square().sum()
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    torch.testing.assert_close(grad, op.A_adjoint(op.A(x.detach()) - y))
    (hvp,) = torch.autograd.grad((grad * v).sum(), x)
    torch.testing.assert_close(hvp, op.A_adjoint(op.A(v)))
    x32 = x.detach().float().requires_grad_(True)
    (grad32,) = torch.autograd.grad(0.5 * (op.A(x32) - y.float()).square().sum(), x32)
    # float32 places the samples with float32 coordinates: the same operator to ~1e-6
    grad = grad.detach()
    rel = torch.linalg.vector_norm(grad32.double() - grad) / torch.linalg.vector_norm(grad)
    assert float(rel) < 1e-5  # measured 1.0e-6


# --------------------------------------------------------------------------- plumbing
def test_shapes_batches_channels_and_dtypes() -> None:
    op = Radon(20, angles=7, detectors=25)
    assert op.in_shape == (None, 20, 20) and op.out_shape == (None, 7, 25)
    x = op.random_input(3, torch.float64, seed=0).repeat(1, 2, 1, 1)
    x[:, 1] *= -2.0
    y = op.A(x)
    assert y.shape == (3, 2, 7, 25) and y.dtype == torch.float64
    torch.testing.assert_close(y[:, 1], -2.0 * y[:, 0])
    assert op.A(x.float()).dtype == torch.float32
    assert op.A_adjoint(y.float()).dtype == torch.float32
    assert op.A_dagger(y).shape == (3, 2, 20, 20)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_tiny_images(size: int) -> None:
    op = Radon(size, angles=[0.0, 45.0, 90.0])
    x = op.random_input(1, torch.float64)
    torch.testing.assert_close(op.A(x)[0, 0, 0], (x[0, 0] * torch.from_numpy(_disk(size))).sum(0))
    assert op.adjointness_error(dtype=torch.float64) < 1e-12


def test_circle_ignores_and_zeroes_the_outside() -> None:
    op = Radon(24, angles=10)
    outside = torch.from_numpy(~_disk(24)).to(torch.float64)[None, None]
    assert op.A(outside).abs().max() == 0.0
    back = op.A_adjoint(op.random_output(1, torch.float64))
    assert back[outside.bool()].abs().max() == 0.0


def test_float64_geometry_survives_module_casts() -> None:
    op = Radon(48, angles=33)
    x = op.random_input(2, torch.float64, seed=0)
    before = op.A(x)
    op.float()  # casts floating buffers of a model: the geometry must stay float64
    torch.testing.assert_close(op.A(x), before, rtol=0, atol=0)
    assert op.adjointness_error(dtype=torch.float64) < 1e-12
    assert op.to("cpu") is op


def test_deepcopy_pickle_and_torch_func() -> None:
    op = Radon(16, angles=10)
    x = op.random_input(2, torch.float64, seed=0)
    y = op.A(x)  # fills the per-dtype cache of constants (float64 views of int64 buffers)
    torch.testing.assert_close(copy.deepcopy(op).A(x), y)
    buffer = io.BytesIO()
    torch.save(op, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False).A(x), y)
    assert op.state_dict() == {}  # the matrices are derived from the geometry, not saved
    grad = torch.func.grad(lambda z: 0.5 * op.A(z).square().sum())(x)
    torch.testing.assert_close(grad, op.A_adjoint(y))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    op = Radon(32, angles=20)
    x = op.random_input(2, torch.float64, seed=0)
    y_cpu, fbp_cpu = op.A(x), op.A_dagger(op.A(x))
    op.to("cuda")
    torch.testing.assert_close(op.A(x.cuda()).cpu(), y_cpu)
    torch.testing.assert_close(op.A_dagger(y_cpu.cuda()).cpu(), fbp_cpu)
    assert op.adjointness_error(dtype=torch.float32) < 1e-5
    assert op.adjointness_error(dtype=torch.float64) < 1e-12
    with pytest.raises(ValueError, match="'x' is on cpu"):
        op.A(x)


def test_rejects_bad_inputs() -> None:
    op = Radon(16, angles=12)
    with pytest.raises(ValueError, match="'x'"):
        op.A(torch.zeros(1, 1, 16, 15))
    with pytest.raises(ValueError, match="'x'"):
        op.A(torch.zeros(16, 16))
    with pytest.raises(ValueError, match="'y'"):
        op.A_adjoint(torch.zeros(1, 1, 12, 17))
    with pytest.raises(ValueError, match="'y'"):
        op.A_dagger(torch.zeros(1, 1, 11, 16))
    with pytest.raises(TypeError, match="'x'.*dtype"):
        op.A(torch.zeros(1, 1, 16, 16, dtype=torch.int32))
    with pytest.raises(TypeError, match="'x'.*real"):
        op.A(torch.zeros(1, 1, 16, 16, dtype=torch.complex64))
    with pytest.raises(TypeError, match="'y'.*real"):
        op.A_adjoint(torch.zeros(1, 1, 12, 16, dtype=torch.complex128))
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 3, 4] = math.nan
    with pytest.raises(ValueError, match="'x'.*NaN"):
        op.A(x)
    y = torch.zeros(1, 1, 12, 16)
    y[0, 0, 0, 0] = math.inf
    with pytest.raises(ValueError, match="'y'.*NaN"):
        op.A_dagger(y)
    with pytest.raises(ValueError, match="filter_sinogram.*'y'"):
        op.filter_sinogram(torch.zeros(1, 1, 12, 15))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"size": 0}, ValueError, "size"),
        ({"size": -4}, ValueError, "size"),
        ({"size": 8.0}, ValueError, "size"),
        ({"size": "8"}, ValueError, "size"),
        ({"size": True}, ValueError, "size"),
        ({"size": 8, "angles": 0}, ValueError, "angles"),
        ({"size": 8, "angles": []}, ValueError, "angles"),
        ({"size": 8, "angles": torch.tensor([])}, ValueError, "angles"),
        ({"size": 8, "angles": [0.0, math.nan]}, ValueError, "angles"),
        ({"size": 8, "angles": [[0.0, 1.0]]}, ValueError, "angles"),
        ({"size": 8, "angles": 45.0}, TypeError, "angles"),
        ({"size": 8, "angles": "0,90"}, TypeError, "angles"),
        ({"size": 8, "detectors": 0}, ValueError, "detectors"),
        ({"size": 8, "detectors": 8.5}, ValueError, "detectors"),
        ({"size": 8, "circle": "yes"}, TypeError, "circle"),
        ({"size": 8, "filter": "butterworth"}, ValueError, "filter"),
    ],
)
def test_rejects_bad_constructor_arguments(kwargs: dict, error: type, name: str) -> None:
    with pytest.raises(error, match=f"'{name}'"):
        Radon(**kwargs)
