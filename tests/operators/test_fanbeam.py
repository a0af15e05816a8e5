"""FanBeam (flat-detector fan-beam CT) against closed-form line integrals, Joseph's method
written out ray by ray, the parallel-beam limit, and its own adjoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ct_reference import ENGINES, ellipse_chords, ellipse_image, with_engine
from scipy.ndimage import gaussian_filter
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from stablerecon.operators.fanbeam import FanBeam
from stablerecon.operators.radon import FBP_FILTERS, Radon

F64 = torch.float64


def _disk(size: int, margin: int = 0) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - size // 2) ** 2 + (cols - size // 2) ** 2 <= (size // 2 - margin) ** 2


def _rays(op: FanBeam, beta_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Source ``(2,)`` and unit directions ``(n_det, 2)`` of the rays at one angle, in (u, v),
    from the geometry's definition (source at ``-R_s e_c``, detector ``R_d e_c + tau e_t``)."""
    b = math.radians(beta_deg)
    e_c, e_t = np.array([math.sin(b), math.cos(b)]), np.array([math.cos(b), -math.sin(b)])
    tau = (np.arange(op.n_detectors) - (op.n_detectors - 1) / 2) * op.detector_spacing
    source = -op.source_distance * e_c
    ends = op.detector_distance * e_c + tau[:, None] * e_t
    direction = ends - source
    return source, direction / np.linalg.norm(direction, axis=1, keepdims=True)


def _fan_joseph_dense(op: FanBeam) -> np.ndarray:
    """Joseph's method for the fan rays written out ray by ray and step by step.

    Ray ``S -> P_k``, direction ``w``: stepped over the rows when ``|w_v| >= |w_u|`` (the ray
    crosses row ``v`` at ``u = S_u + (v - S_v) w_u / w_v``), else over the columns; linear
    interpolation between the two pixels around each crossing, times ``sqrt(1 + slope^2)``.
    """
    n, c = op.size, op.size // 2
    support = _disk(n) if op.circle else np.ones((n, n), bool)
    matrix = np.zeros((op.n_angles * op.n_detectors, n * n))
    for a, beta in enumerate(op.angles):
        source, directions = _rays(op, beta)
        for k, (w_u, w_v) in enumerate(directions):
            rows = abs(w_v) >= abs(w_u)
            slope = w_u / w_v if rows else w_v / w_u
            for step in range(n):
                q = step - c
                pos = (source[0] + (q - source[1]) * slope if rows
                       else source[1] + (q - source[0]) * slope) + c
                first = math.floor(pos)
                for j, weight in ((first, 1.0 - (pos - first)), (first + 1, pos - first)):
                    i, jj = (step, j) if rows else (j, step)
                    if 0 <= j < n and support[i, jj]:
                        matrix[a * op.n_detectors + k, i * n + jj] += math.sqrt(1 + slope**2) * weight
    return matrix


# angles at all eight symmetries of the square (+-phi + 90 m), the axes, and unshared ones
ANGLES = [0.0, 90.0, 180.0, 270.0, 10.0, 80.0, 100.0, 170.0, 190.0, 260.0, 280.0, 350.0,
          -10.0, 33.0, 201.5, 201.5]



# --------------------------------------------------------------------------- geometry
@pytest.mark.parametrize(
    ("size", "kwargs"),
    [(13, {"source_distance": 16.0, "detector_distance": 5.0}),
     (12, {"source_distance": 30.0, "detector_distance": 0.0, "circle": False}),
     (11, {"source_distance": 9.0, "detector_distance": 20.0, "detectors": 15, "detector_spacing": 1.7})],
)
@pytest.mark.parametrize("engine", ENGINES)
def test_matrix_equals_joseph_written_out(size: int, kwargs: dict, engine: str) -> None:
    """The projector, matrix-free or on its cached sparse matrix, is Joseph's method on the fan
    rays, exactly (float64)."""
    op = with_engine(FanBeam(size, angles=ANGLES, **kwargs), engine)
    ref = torch.from_numpy(_fan_joseph_dense(op))
    torch.testing.assert_close(op.to_matrix(), ref, rtol=0, atol=1e-12)
    y = op.random_output(2, dtype=F64, seed=3)
    torch.testing.assert_close(op.A_adjoint(y).reshape(2, -1), y.reshape(2, -1) @ ref,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("source", "detector", "circle"), [(150.0, 60.0, True), (75.0, 0.0, False)])
def test_line_integrals_of_a_tilted_ellipse(source: float, detector: float, circle: bool) -> None:
    """Closed form: the chord of each ray S -> P_k through the ellipse (computed from the ray
    parameters), against the sinogram of its anti-aliased image, away from the rim."""
    size, centre, axes, tilt = 96, (9.0, -6.0), (24.0, 15.0), -0.4
    op = FanBeam(size, angles=[0.0, 17.0, 45.0, 100.0, 200.0, 300.0], source_distance=source,
                 detector_distance=detector, circle=circle)
    image = ellipse_image(size, centre, axes, tilt)
    sino = op.A(torch.from_numpy(image)[None, None])[0, 0].numpy()
    errors = []
    for k, beta in enumerate(op.angles):
        src, directions = _rays(op, beta)
        exact = ellipse_chords(src, directions, centre, axes, tilt)
        inner = ellipse_chords(src, directions, centre, (axes[0] - 1.5, axes[1] - 1.5), tilt) > 4.0
        assert inner.sum() > 10
        errors.append(np.abs(sino[k] - exact)[inner])
        # rays that miss the ellipse grown by 2.5 pixels (its blur and the interpolation) see 0
        outer = ellipse_chords(src, directions, centre, (axes[0] + 2.5, axes[1] + 2.5), tilt)
        assert (outer == 0).sum() > 10 and not sino[k][outer == 0].any()
    errors = np.concatenate(errors)
    # measured: max 0.54 and 0.35 (grazing rays), mean 0.060 and 0.068; Radon's Joseph on the
    # same ellipse and angles: max 0.33, mean 0.056
    assert errors.max() < 0.015 * 2 * axes[0]
    assert errors.mean() < 0.1


def test_distant_source_tends_to_parallel_beam() -> None:
    """R_s -> infinity with unit spacing at the centre: the fan becomes Radon's parallel rays;
    the difference shrinks like 1 / R_s."""
    size, n_det = 24, 25
    angles = [0.5 + 360.0 * k / 40 for k in range(40)]
    x = FanBeam(size, angles=4, source_distance=100.0).random_input(2, F64, seed=0)
    parallel = Radon(size, angles=angles, detectors=n_det).A(x)
    errors = []
    for r_s in (1e3, 1e4, 1e5):
        fan = FanBeam(size, angles=angles, source_distance=r_s, detector_distance=0.0,
                      detectors=n_det, detector_spacing=1.0)
        errors.append(float((fan.A(x) - parallel).abs().max() / parallel.abs().max()))
    assert errors[2] < 2e-3  # measured 5.7e-4, 5.7e-3, 5.7e-2 for 1e5, 1e4, 1e3
    assert errors[0] > 5 * errors[1] > 25 * errors[2]


def test_mirror_image_is_the_reversed_fan() -> None:
    """Flipping the image left-right (odd size: about pixel c) mirrors the scan: the
    projection at -beta of the flipped image is that at beta with the detector reversed."""
    op = FanBeam(17, angles=[13.0, 71.0, 124.0, -13.0, -71.0, -124.0], source_distance=25.0,
                 detector_distance=8.0)
    x = op.random_input(2, F64, seed=1)
    y, y_flip = op.A(x), op.A(x.flip(-1))
    torch.testing.assert_close(y_flip[:, :, 3:], y[:, :, :3].flip(-1), rtol=1e-12, atol=1e-12)


def test_default_detector_covers_the_field_of_view() -> None:
    op = FanBeam(32, angles=8)
    assert op.source_distance == 64.0 and op.detector_distance == 32.0
    assert op.detector_spacing == pytest.approx(1.5)
    x = torch.ones(1, 1, 32, 32, dtype=F64)
    y = op.A(x)[0, 0]
    # the outermost bins look just past the field of view (radius 17), their neighbours into it
    assert float(y[:, 0].abs().max()) == 0.0 and float(y[:, -1].abs().max()) == 0.0
    assert float(y[:, 1].min()) > 0.0 and float(y[:, -2].min()) > 0.0
    assert float(y.max()) == pytest.approx(33.0, rel=0.02)  # the diameter of the disk


# --------------------------------------------------------------------------- adjoint, autograd
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("size", "kwargs"),
    [(16, {}), (21, {"source_distance": 40.0, "detector_distance": 0.0, "circle": False}),
     (24, {"angles": [3.0, 47.0, 200.0], "source_distance": 14.0, "detectors": 40})],
)
@pytest.mark.parametrize("engine", ENGINES)
def test_dot_product_test(size: int, kwargs: dict, seed: int, engine: str) -> None:
    op = with_engine(FanBeam(size, **{"angles": 30, **kwargs}), engine)
    assert op.adjointness_error(dtype=torch.float32, seed=seed, batch=3) < 1e-5
    assert op.adjointness_error(dtype=F64, seed=seed, batch=3) < 1e-12


def test_norm_matches_largest_singular_value() -> None:
    op = FanBeam(12, angles=16, source_distance=15.0)
    sigma_max = float(torch.linalg.svdvals(op.to_matrix())[0])
    assert op.norm() == pytest.approx(sigma_max, rel=1e-2)


def test_chunking_and_batching_do_not_change_the_result() -> None:
    op = with_engine(FanBeam(18, angles=24, source_distance=20.0, circle=False), "matrix-free")
    x = op.random_input(3, F64, seed=0).repeat(1, 2, 1, 1)
    x[:, 1] *= -0.5
    y = op.random_output(3, F64, seed=1)
    ax, aty = op.A(x), op.A_adjoint(y)
    torch.testing.assert_close(ax[:, 1], -0.5 * ax[:, 0])
    op.chunk_elements = 1
    torch.testing.assert_close(op.A(x), ax, rtol=1e-13, atol=1e-12)
    torch.testing.assert_close(op.A_adjoint(y), aty, rtol=1e-13, atol=1e-12)


def test_gradcheck_and_least_squares_gradient() -> None:
    op = FanBeam(8, angles=[0.0, 40.0, 95.0, 250.0], source_distance=10.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 8, 8, dtype=F64, generator=g, requires_grad=True)
    y = torch.randn(1, 1, 4, op.n_detectors, dtype=F64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    assert torch.autograd.gradgradcheck(op.A, (x,), fast_mode=True)
    assert torch.autograd.gradcheck(op.A_dagger, (y,), fast_mode=True)
    target = op.random_output(1, F64, seed=2)
    (grad,) = torch.autograd.grad(0.5 * (op.A(x) - target).square().sum(), x)
    torch.testing.assert_close(grad, op.A_adjoint(op.A(x.detach()) - target))


# --------------------------------------------------------------------------- FBP
@pytest.fixture(scope="module")
def phantom64() -> np.ndarray:
    """A smooth phantom at 64 x 64 (Shepp-Logan blurred), zero outside the inscribed disk."""
    image = gaussian_filter(resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True), 1.0)
    return image * _disk(64, margin=1)


@pytest.mark.parametrize("kwargs", [{}, {"source_distance": 45.0, "detector_distance": 20.0},
                                    {"source_distance": 200.0, "detector_distance": 0.0}])
def test_fbp_reconstructs_a_phantom(phantom64: np.ndarray, kwargs: dict) -> None:
    """Full-scan fan-beam FBP: relative l2 error inside the disk (measured 0.049, 0.028, 0.050
    in float64 and float32; parallel-beam FBP with 180 angles: 0.053), the mean (the scaling)
    within 1% (measured 3e-4), zero outside the disk."""
    op = FanBeam(64, angles=360, **kwargs)
    x = torch.from_numpy(phantom64)[None, None]
    disk = _disk(64)
    for dtype in (F64, torch.float32):
        recon = op.A_dagger(op.A(x.to(dtype)))[0, 0].double().numpy()
        err = np.linalg.norm((recon - phantom64)[disk]) / np.linalg.norm(phantom64[disk])
        assert err < 0.06
        assert recon[disk].mean() == pytest.approx(phantom64[disk].mean(), rel=0.01)
        assert not recon[~disk].any()


@pytest.mark.parametrize("name", FBP_FILTERS)
def test_fbp_filters_agree_with_parallel_fbp(phantom64: np.ndarray, name: str) -> None:
    """Each window gives a reconstruction close to the parallel-beam FBP with the same window."""
    x = torch.from_numpy(phantom64)[None, None]
    fan = FanBeam(64, angles=240, source_distance=100.0, filter=name)
    par = Radon(64, angles=120, filter=name)
    a = fan.A_dagger(fan.A(x))[0, 0].numpy()
    b = par.A_dagger(par.A(x))[0, 0].numpy()
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 0.05  # measured 0.028-0.029


def test_filter_sinogram_is_cosine_weighted_ramp() -> None:
    """A unit impulse at the central bin: the Ram-Lak kernel (times 2) times R_s / sqrt(R_s^2)."""
    op = FanBeam(32, angles=1, source_distance=50.0, detector_distance=0.0, detectors=33,
                 detector_spacing=1.0)
    y = torch.zeros(1, 1, 1, 33, dtype=F64)
    y[..., 16] = 1.0
    h = op.filter_sinogram(y)[0, 0, 0].numpy()
    k = np.arange(33) - 16
    expected = np.where(k % 2 == 1, -2.0 / (np.pi * np.maximum(np.abs(k), 1)) ** 2, 0.0)
    expected[16] = 0.5
    np.testing.assert_allclose(h, expected, atol=1e-12)


# --------------------------------------------------------------------------- plumbing
def test_pickle_and_module_casts() -> None:
    import copy
    import io

    op = FanBeam(16, angles=10, source_distance=20.0)
    x = op.random_input(2, F64, seed=0)
    y = op.A(x)
    torch.testing.assert_close(copy.deepcopy(op).A(x), y)
    buffer = io.BytesIO()
    torch.save(op, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False).A(x), y)
    assert op.state_dict() == {}
    op.float()
    torch.testing.assert_close(op.A(x), y, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    op = FanBeam(32, angles=40, source_distance=40.0)
    x = op.random_input(2, F64, seed=0)
    y_cpu, fbp_cpu = op.A(x), op.A_dagger(op.A(x))
    op.to("cuda")
    torch.testing.assert_close(op.A(x.cuda()).cpu(), y_cpu)
    torch.testing.assert_close(op.A_dagger(y_cpu.cuda()).cpu(), fbp_cpu)
    assert op.adjointness_error(dtype=torch.float32) < 1e-5
    assert op.adjointness_error(dtype=F64) < 1e-12
    with pytest.raises(ValueError, match="'x' is on cpu"):
        op.A(x)


def test_rejects_bad_inputs() -> None:
    op = FanBeam(16, angles=12)
    with pytest.raises(ValueError, match="'x'"):
        op.A(torch.zeros(1, 1, 16, 15))
    with pytest.raises(ValueError, match="'y'"):
        op.A_adjoint(torch.zeros(1, 1, 12, op.n_detectors + 1))
    with pytest.raises(TypeError, match="'x'.*real"):
        op.A(torch.zeros(1, 1, 16, 16, dtype=torch.complex64))
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 3, 4] = math.inf
    with pytest.raises(ValueError, match="'x'.*NaN"):
        op.A(x)
    y = torch.zeros(1, 1, 12, op.n_detectors)
    y[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="'y'.*NaN"):
        op.A_dagger(y)
    with pytest.raises(ValueError, match="filter_sinogram.*'y'"):
        op.filter_sinogram(torch.zeros(1, 1, 11, op.n_detectors))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"size": 0}, ValueError, "size"),
        ({"size": 8.0}, ValueError, "size"),
        ({"size": 16, "angles": 0}, ValueError, "angles"),
        ({"size": 16, "angles": []}, ValueError, "angles"),
        ({"size": 16, "angles": torch.tensor([])}, ValueError, "angles"),
        ({"size": 16, "angles": [0.0, math.inf]}, ValueError, "angles"),
        ({"size": 16, "angles": "0,90"}, TypeError, "angles"),
        ({"size": 16, "source_distance": 9.0}, ValueError, "source_distance"),    # fov radius 9
        ({"size": 16, "source_distance": 5.0}, ValueError, "source_distance"),    # inside the disk
        ({"size": 16, "source_distance": 12.0, "circle": False}, ValueError, "source_distance"),
        ({"size": 16, "source_distance": math.nan}, ValueError, "source_distance"),
        ({"size": 16, "source_distance": math.inf}, ValueError, "source_distance"),
        ({"size": 16, "source_distance": "far"}, TypeError, "source_distance"),
        ({"size": 16, "detector_distance": -1.0}, ValueError, "detector_distance"),
        ({"size": 16, "detector_distance": math.nan}, ValueError, "detector_distance"),
        ({"size": 16, "detector_spacing": 0.0}, ValueError, "detector_spacing"),
        ({"size": 16, "detector_spacing": -math.inf}, ValueError, "detector_spacing"),
        ({"size": 16, "detectors": 0}, ValueError, "detectors"),
        ({"size": 16, "detectors": 3.5}, ValueError, "detectors"),
        ({"size": 16, "circle": 1}, TypeError, "circle"),
        ({"size": 16, "filter": "butterworth"}, ValueError, "filter"),
    ],
)
def test_rejects_bad_constructor_arguments(kwargs: dict, error: type, name: str) -> None:
    with pytest.raises(error, match=f"'{name}'"):
        FanBeam(**kwargs)


def test_source_just_outside_the_field_of_view_is_accepted() -> None:
    op = FanBeam(16, angles=8, source_distance=9.01)
    assert op.fov_radius == 9.0
    assert op.adjointness_error(dtype=F64) < 1e-12
