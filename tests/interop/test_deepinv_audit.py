"""The audit on DeepInverse physics (through :func:`from_deepinv`) with a DeepInverse network
trained briefly, beside FIRENET, TV and zero-filling: every unit runs, the linear baseline
matches NumPy and its norm bound, and the network is attacked with gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

dinv = pytest.importorskip("deepinv")

import stablerecon as sr  # noqa: E402
from stablerecon.interop.deepinv import from_deepinv, method_from_deepinv  # noqa: E402
from stablerecon.nets import ZeroFilled  # noqa: E402

N = 32
TESTS = ["accuracy", "worst_case", "random_noise"]
OPTIONS = {"budgets": [0.02], "report_budget": 0.02, "steps": 5, "restarts": 1, "draws": 3,
           "not_rare_draws": 1}

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _train(physics: object, channels: int, steps: int = 80) -> torch.nn.Module:
    """A small DeepInverse U-Net on ``A^T y`` (ArtifactRemoval), trained on random ellipses."""
    torch.manual_seed(0)
    net = dinv.models.ArtifactRemoval(dinv.models.UNet(channels, channels, scales=2, batch_norm=False),
                                      mode="adjoint")
    images = sr.data.ellipses(64, N, seed=1)
    if channels == 2:
        images = torch.cat([images, torch.zeros_like(images)], 1)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for step in range(steps):
        batch = images[(8 * step) % 64:(8 * step) % 64 + 8]
        loss = torch.nn.functional.mse_loss(net(physics.A(batch), physics), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.cat([sr.data.shepp_logan(N), sr.data.ellipses(1, N, seed=99)])


def _methods(net: torch.nn.Module) -> dict[str, object]:
    return {"deepinv U-Net": method_from_deepinv(net), "FIRENET": sr.nets.FIRENet(restarts=2, inner=4),
            "TV": sr.solvers.SparseReconstructor("tv", max_iter=20), "zero-filled": ZeroFilled()}


def _check_entries(result: object, methods: dict[str, object], images: torch.Tensor, op: object) -> None:
    for name in methods:
        for test in TESTS:
            assert (name, test) in result.entries
    # the network's reported PSNR is that of its output, scored independently
    with torch.no_grad():
        out = methods["deepinv U-Net"](op.A(images), op)
    out = (out.real if out.is_complex() else out).numpy().astype(np.float64)
    expected = [peak_signal_noise_ratio(images[i, 0].numpy().astype(np.float64), out[i, 0], data_range=1.0)
                for i in range(len(images))]
    np.testing.assert_allclose(result.entries[("deepinv U-Net", "accuracy")]["clean"]["psnr"], expected,
                               rtol=1e-4)
    # differentiable: attacked with gradients, not the gradient-free search
    assert result.entries[("deepinv U-Net", "worst_case")]["gradient_free"] is False


def test_audit_on_deepinv_mri(images: torch.Tensor) -> None:
    generator = dinv.physics.generator.GaussianMaskGenerator((N, N), acceleration=3)
    physics = dinv.physics.MRI(mask=generator.step(batch_size=1, seed=0)["mask"], img_size=(N, N))
    op = from_deepinv(physics)
    methods = _methods(_train(physics, channels=2))
    result = sr.audit.run(methods, op, images, tests=TESTS, options=OPTIONS, report=False, progress=False)
    _check_entries(result, methods, images, op)
    # zero-filling, in NumPy: PSNR of the real part of the masked inverse FFT
    m = physics.mask[0, 0].numpy()
    x = images[:, 0].numpy().astype(np.float64)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)) * m
    zero = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)).real
    psnr = [peak_signal_noise_ratio(x[i], zero[i], data_range=1.0) for i in range(len(x))]
    zero_entry = result.entries[("zero-filled", "accuracy")]["clean"]["psnr"]
    np.testing.assert_allclose(zero_entry, psnr, rtol=1e-4)
    # a linear method with ||A_dagger|| = 1 amplifies no perturbation by more than 1
    assert max(result.entries[("zero-filled", "worst_case")]["amplification"][0]) <= 1 + 1e-4
    # the network learnt something in 80 steps: better than its zero-filled input (by 1.2 dB here)
    assert np.mean(result.entries[("deepinv U-Net", "accuracy")]["clean"]["psnr"]) > np.mean(zero_entry) + 0.5


def test_audit_on_deepinv_tomography(images: torch.Tensor, tmp_path) -> None:
    physics = dinv.physics.Tomography(angles=20, img_width=N, normalize=True)
    op = from_deepinv(physics)
    methods = _methods(_train(physics, channels=1))
    result = sr.audit.run(methods, op, images, tests=TESTS, options=OPTIONS, out=tmp_path, progress=False)
    _check_entries(result, methods, images, op)
    # the baseline is DeepInverse's filtered back-projection
    with torch.no_grad():
        fbp = physics.A_dagger(physics.A(images), fbp=True).numpy().astype(np.float64)
    psnr = [peak_signal_noise_ratio(images[i, 0].numpy().astype(np.float64), fbp[i, 0], data_range=1.0)
            for i in range(len(images))]
    np.testing.assert_allclose(result.entries[("zero-filled", "accuracy")]["clean"]["psnr"], psnr, rtol=1e-4)
    assert (tmp_path / "results.json").exists() and (tmp_path / "report.html").exists()
    assert "deepinv U-Net" in (tmp_path / "report.html").read_text()
