"""ESPIRiT coil maps against the maps that simulated the data, and SENSE with the estimates."""

from __future__ import annotations

import pytest
import scipy.ndimage
import torch

from stablerecon.data import shepp_logan
from stablerecon.metrics import psnr
from stablerecon.operators import (
    SubsampledMultiCoilFourier,
    birdcage_maps,
    centered_fft2,
    espirit_maps,
    masks,
    rss,
)

N = 64


@pytest.fixture(scope="module")
def scan() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phantom (1, 1, N, N), true maps (8, N, N), full k-space (8, N, N) and ESPIRiT maps."""
    x = shepp_logan(N, dtype=torch.float64)
    truth = birdcage_maps(8, N, dtype=torch.complex128)
    kspace = centered_fft2(truth * x[0].to(torch.complex128))
    return x, truth, kspace


def _object(x: torch.Tensor) -> torch.Tensor:
    return x[0, 0] > 0.05


def test_maps_span_the_true_maps_inside_the_object(scan) -> None:
    x, truth, kspace = scan
    est = espirit_maps(kspace, calib_width=20, dtype=torch.complex128)
    inside = _object(x)
    # Up to a phase per pixel the estimate equals the truth: |<est, truth>| = |est| |truth|.
    corr = (est.conj() * truth).sum(0).abs() / (est.abs().square().sum(0).sqrt()
                                                 * truth.abs().square().sum(0).sqrt()).clamp_min(1e-30)
    assert float(corr[inside].min()) > 0.99
    assert float(corr[inside].median()) > 0.9999
    # Normalised where kept.
    torch.testing.assert_close(est.abs().square().sum(0)[inside], torch.ones_like(corr[inside]),
                               rtol=1e-6, atol=1e-6)


def test_crop_zeroes_the_maps_where_no_coil_sees_the_object(scan) -> None:
    x, _, kspace = scan
    est = espirit_maps(kspace, calib_width=20, crop=0.95)
    # Pixels farther than 6 pixels from the object (ESPIRiT's kernels blur its edge a little).
    distance = scipy.ndimage.distance_transform_edt((x[0, 0] == 0).numpy())
    far = torch.from_numpy(distance > 6)
    assert int(far.sum()) > 100
    assert float(est[:, far].abs().max()) < 1e-6
    kept = espirit_maps(kspace, calib_width=20, crop=0.0)
    assert float(kept[:, far].abs().square().sum(0).min()) > 0.5


def test_sense_with_estimated_maps_matches_sense_with_true_maps(scan) -> None:
    """Retrospective 3x undersampling with 16 calibration lines: CG-SENSE with the ESPIRiT maps
    estimated from those lines reconstructs (in magnitude) as well as with the true maps, and
    far better than the root-sum-of-squares of the zero-filled coil images."""
    x, truth, _ = scan
    mask = masks.cartesian_lines(N, rate=1 / 3, acs=16, seed=0)
    measure = SubsampledMultiCoilFourier(mask, truth, cg_iter=30)
    y = measure.A(x.to(torch.complex128))
    est = espirit_maps(measure.kspace(y)[0], calib_width=16, dtype=torch.complex128)
    with_est = SubsampledMultiCoilFourier(mask, est, cg_iter=30).A_dagger(y).abs()
    with_truth = measure.A_dagger(y).abs()
    zero_filled = rss(measure.coil_images(y)).abs()
    inside = _object(x)
    p_est = float(psnr(with_est * inside, x * inside, data_range=1.0))
    p_truth = float(psnr(with_truth * inside, x * inside, data_range=1.0))
    p_zf = float(psnr(zero_filled * inside, x * inside, data_range=1.0))
    assert p_est > p_truth - 1.0
    assert p_est > p_zf + 5.0


def test_calibration_region_must_be_fully_sampled(scan) -> None:
    _, truth, kspace = scan
    mask = masks.cartesian_lines(N, rate=0.25, acs=8, seed=0)
    undersampled = kspace * mask
    with pytest.raises(ValueError, match="calib_width"):
        espirit_maps(undersampled, calib_width=20)
    espirit_maps(undersampled, calib_width=8, kernel_width=4)  # within the 8 acs lines: fine


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kspace": torch.zeros(4, 8, 8)}, "complex"),
        ({"kspace": torch.zeros(8, 8, dtype=torch.complex64)}, r"\(Ncoils, H, W\)"),
        ({"kspace": torch.full((2, 8, 8), complex(float("nan"), 0))}, "NaN"),
        ({"kspace": "k"}, "torch.Tensor"),
        ({"calib_width": 80}, "calib_width"),
        ({"calib_width": 6, "kernel_width": 6}, "kernel_width"),
        ({"threshold": 1.5}, "threshold"),
        ({"crop": 1.0}, "crop"),
        ({"calib_width": 0}, "calib_width"),
    ],
)
def test_bad_input_names_the_argument(scan, kwargs: dict, match: str) -> None:
    args = {"kspace": scan[2]} | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        espirit_maps(**args)
