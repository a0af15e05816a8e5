"""Metrics checked against scikit-image and numpy on shipped images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data, filters, metrics, util

from stablerecon.metrics import nmse, psnr, relative_error, ssim


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reference / distorted pairs (float64 numpy, [0, 1]): noisy and blurred, square and not."""
    rng = np.random.default_rng(0)
    camera = util.img_as_float(data.camera())[::2, ::2]  # 256 x 256
    coins = util.img_as_float(data.coins())  # 303 x 384, non-square
    return {
        "camera_noisy": (camera, np.clip(camera + 0.08 * rng.standard_normal(camera.shape), 0, 1)),
        "camera_blur": (camera, filters.gaussian(camera, sigma=1.5)),
        "coins_noisy": (coins, coins + 0.05 * rng.standard_normal(coins.shape)),
        "coins_blur": (coins, filters.gaussian(coins, sigma=3.0)),
    }


def _t(a: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.as_tensor(a, dtype=dtype)[None, None]


@pytest.mark.parametrize("name", ["camera_noisy", "camera_blur", "coins_noisy", "coins_blur"])
@pytest.mark.parametrize("data_range", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psnr_and_ssim_match_skimage(pairs, name, data_range, dtype):
    ref, dist = pairs[name]
    x, x_hat = _t(ref, dtype), _t(dist, dtype)

    expected = metrics.peak_signal_noise_ratio(ref, dist, data_range=data_range)
    assert psnr(x_hat, x, data_range=data_range).item() == pytest.approx(expected, abs=1e-3)

    # Wang et al. (2004) settings
    expected = metrics.structural_similarity(
        ref, dist, data_range=data_range, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )
    got = ssim(x_hat, x, data_range=data_range)
    assert got.shape == (1,)
    assert got.item() == pytest.approx(expected, abs=1e-3)

    # scikit-image's default: 7x7 uniform window, sample covariance
    expected = metrics.structural_similarity(ref, dist, data_range=data_range)
    got = ssim(x_hat, x, data_range=data_range, gaussian_weights=False)
    assert got.item() == pytest.approx(expected, abs=1e-3)


def test_ssim_float64_agrees_to_round_off(pairs):
    ref, dist = pairs["coins_blur"]
    got = ssim(_t(dist), _t(ref), data_range=1.0).item()
    expected = metrics.structural_similarity(
        ref, dist, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(got - expected) < 1e-10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gaussian_weights": True, "sigma": 1.0, "use_sample_covariance": True},
        {"gaussian_weights": True, "sigma": 2.0, "use_sample_covariance": False},
        {"gaussian_weights": True, "sigma": 1.5, "win_size": 7, "use_sample_covariance": False},
        {"gaussian_weights": False, "win_size": 11, "use_sample_covariance": False},
        {"gaussian_weights": False, "win_size": 3, "use_sample_covariance": True},
        {"gaussian_weights": False, "K1": 0.02, "K2": 0.05, "use_sample_covariance": True},
    ],
)
def test_ssim_options_match_skimage(pairs, kwargs):
    ref, dist = pairs["coins_noisy"]
    expected = metrics.structural_similarity(ref, dist, data_range=1.0, **kwargs)
    got = ssim(_t(dist, torch.float32), _t(ref, torch.float32), data_range=1.0, **kwargs)
    assert got.item() == pytest.approx(expected, abs=1e-3)


def test_multichannel_averages_channels_like_skimage():
    ref = util.img_as_float(data.astronaut())[::4, ::4]  # 128 x 128 x 3
    dist = filters.gaussian(ref, sigma=1.0, channel_axis=-1)
    x = torch.as_tensor(ref).permute(2, 0, 1)[None]
    x_hat = torch.as_tensor(dist).permute(2, 0, 1)[None]
    expected = metrics.structural_similarity(
        ref, dist, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(x_hat, x, data_range=1.0).item() == pytest.approx(expected, abs=1e-6)
    expected = metrics.peak_signal_noise_ratio(ref, dist, data_range=1.0)
    assert psnr(x_hat, x, data_range=1.0).item() == pytest.approx(expected, abs=1e-6)


def test_batch_gives_one_value_per_image_and_per_image_data_range(pairs):
    refs = [pairs[k][0][:256, :256] for k in ("camera_noisy", "coins_noisy")]
    dists = [pairs[k][1][:256, :256] for k in ("camera_noisy", "coins_noisy")]
    x = torch.as_tensor(np.stack(refs))[:, None]
    x_hat = torch.as_tensor(np.stack(dists))[:, None]
    ranges = torch.tensor([1.0, 0.7], dtype=torch.float64)
    got_ssim = ssim(x_hat, x, data_range=ranges)
    got_psnr = psnr(x_hat, x, data_range=ranges)
    assert got_ssim.shape == got_psnr.shape == (2,)
    for i in range(2):
        r = float(ranges[i])
        assert got_psnr[i].item() == pytest.approx(
            metrics.peak_signal_noise_ratio(refs[i], dists[i], data_range=r), abs=1e-8
        )
        assert got_ssim[i].item() == pytest.approx(
            metrics.structural_similarity(
                refs[i], dists[i], data_range=r, gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False,
            ),
            abs=1e-8,
        )


def test_default_data_range_is_reference_range_per_image(pairs):
    ref, dist = pairs["coins_noisy"]
    r = ref.max() - ref.min()
    assert r < 0.99  # so that the default actually differs from 1
    x, x_hat = _t(ref), _t(dist)
    assert psnr(x_hat, x).item() == pytest.approx(
        metrics.peak_signal_noise_ratio(ref, dist, data_range=r), abs=1e-8
    )
    assert ssim(x_hat, x, gaussian_weights=False).item() == pytest.approx(
        metrics.structural_similarity(ref, dist, data_range=r), abs=1e-8
    )


def test_nmse_and_relative_error_match_numpy(pairs):
    ref, dist = pairs["coins_blur"]
    ref2, dist2 = pairs["camera_noisy"]
    x = torch.as_tensor(np.stack([ref[:200, :200], ref2[:200, :200]]))[:, None]
    x_hat = torch.as_tensor(np.stack([dist[:200, :200], dist2[:200, :200]]))[:, None]
    for i, (a, b) in enumerate(((dist, ref), (dist2, ref2))):
        a, b = a[:200, :200], b[:200, :200]
        expected_rel = np.linalg.norm(a - b) / np.linalg.norm(b)
        assert relative_error(x_hat, x)[i].item() == pytest.approx(expected_rel, rel=1e-10)
        expected_nmse = np.sum((a - b) ** 2) / np.sum(b**2)
        assert nmse(x_hat, x)[i].item() == pytest.approx(expected_nmse, rel=1e-10)


def test_identical_images():
    x = _t(util.img_as_float(data.camera())[::8, ::8])
    assert ssim(x, x, data_range=1.0).item() == pytest.approx(1.0, abs=1e-12)
    assert psnr(x, x, data_range=1.0).item() == float("inf")
    assert nmse(x, x).item() == 0.0
    assert relative_error(x, x).item() == 0.0


def test_psnr_closed_form():
    x = torch.zeros(2, 1, 8, 8)
    x_hat = x + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    torch.testing.assert_close(psnr(x_hat, x, data_range=1.0), torch.tensor([20.0, 40.0]))


def test_complex_images_are_compared_by_magnitude(pairs):
    ref, dist = pairs["camera_blur"]
    rng = np.random.default_rng(1)
    phase_x = np.exp(2j * np.pi * rng.random(ref.shape))
    phase_y = np.exp(2j * np.pi * rng.random(ref.shape))
    x_c = torch.as_tensor(ref * phase_x)[None, None]
    x_hat_c = torch.as_tensor(dist * phase_y)[None, None]
    x, x_hat = _t(ref), _t(dist)
    for f in (psnr, ssim):
        assert f(x_hat_c, x_c, data_range=1.0).item() == pytest.approx(
            f(x_hat, x, data_range=1.0).item(), abs=1e-10
        )
    for f in (nmse, relative_error):
        assert f(x_hat_c, x_c).item() == pytest.approx(f(x_hat, x).item(), rel=1e-10)


def test_two_dimensional_input_is_one_image(pairs):
    ref, dist = pairs["camera_noisy"]
    a, b = torch.as_tensor(dist), torch.as_tensor(ref)
    for f in (psnr, ssim):
        out = f(a, b, data_range=1.0)
        assert out.shape == (1,)
        assert out.item() == pytest.approx(f(a[None, None], b[None, None], data_range=1.0).item())


def test_metrics_are_differentiable():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 7, 8, generator=gen, dtype=torch.float64)
    x_hat = (x + 0.1 * torch.randn(x.shape, generator=gen, dtype=torch.float64)).requires_grad_()
    for f in (
        lambda a: ssim(a, x, data_range=1.0, sigma=0.8),
        lambda a: ssim(a, x, data_range=1.0, gaussian_weights=False, win_size=5),
        lambda a: psnr(a, x, data_range=1.0),
        lambda a: nmse(a, x),
        lambda a: relative_error(a, x),
    ):
        assert torch.autograd.gradcheck(f, (x_hat,))


def test_ssim_gradient_ascent_improves_ssim():
    x = _t(util.img_as_float(data.camera())[::8, ::8], torch.float32)
    x_hat = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))
    x_hat.requires_grad_()
    before = ssim(x_hat, x, data_range=1.0)
    before.sum().backward()
    with torch.no_grad():
        after = ssim(x_hat + 0.01 * x_hat.grad / x_hat.grad.abs().max(), x, data_range=1.0)
    assert after.item() > before.item()


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------

ALL = [psnr, ssim, nmse, relative_error]


@pytest.mark.parametrize("f", ALL)
def test_shape_mismatch_names_both_arguments(f):
    with pytest.raises(ValueError, match=r"x_hat .*\(1, 1, 16, 16\).*x .*\(1, 1, 16, 17\)"):
        f(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 17))


@pytest.mark.parametrize("f", ALL)
def test_nan_is_rejected_and_named(f):
    x = torch.rand(1, 1, 16, 16)
    bad = x.clone()
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="x_hat must contain only finite values, got 1 NaN"):
        f(bad, x)
    with pytest.raises(ValueError, match="x must contain only finite values"):
        f(x, bad)


@pytest.mark.parametrize("f", [psnr, ssim])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_non_positive_data_range(f, bad):
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="data_range must be positive"):
        f(x, x, data_range=bad)


@pytest.mark.parametrize("f", [psnr, ssim])
def test_data_range_cannot_be_inferred_from_constant_reference(f):
    x = torch.full((1, 1, 16, 16), 0.5)
    with pytest.raises(ValueError, match="data_range could not be inferred"):
        f(torch.rand(1, 1, 16, 16), x)


def test_data_range_wrong_batch_shape():
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"data_range must be a scalar or have shape \(2,\)"):
        psnr(x, x, data_range=torch.ones(3))


@pytest.mark.parametrize("f", [nmse, relative_error])
def test_zero_reference_norm(f):
    with pytest.raises(ValueError, match="x must have a nonzero norm"):
        f(torch.rand(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize("f", ALL)
def test_three_dimensional_input_is_ambiguous(f):
    with pytest.raises(ValueError, match=r"x_hat must have shape \(B, C, H, W\) or \(H, W\)"):
        f(torch.rand(3, 16, 16), torch.rand(3, 16, 16))


@pytest.mark.parametrize("f", ALL)
def test_non_tensor_is_type_error(f):
    with pytest.raises(TypeError, match="x_hat must be a torch.Tensor, got ndarray"):
        f(np.zeros((8, 8)), torch.zeros(8, 8))


def test_ssim_window_errors():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="win_size must be odd"):
        ssim(x, x, data_range=1.0, win_size=6)
    with pytest.raises(ValueError, match="at least win_size x win_size = 11 x 11"):
        ssim(torch.rand(1, 1, 10, 20), torch.rand(1, 1, 10, 20), data_range=1.0)
    with pytest.raises(ValueError, match="sigma must be"):
        ssim(x, x, data_range=1.0, sigma=-1.0)

