"""DeepInverse physics through :func:`from_deepinv` and stablerecon operators through
:func:`to_deepinv`, against NumPy's FFT, SciPy's correlation, dense matrices and DeepInverse's
own adjointness test and solvers."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

dinv = pytest.importorskip("deepinv")

import stablerecon as sr  # noqa: E402
from stablerecon.interop.deepinv import (  # noqa: E402
    DeepinvOperator,
    from_deepinv,
    method_from_deepinv,
    operator_from_target,
    to_deepinv,
)
from stablerecon.operators import as_linear_operator  # noqa: E402

N = 16

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _randn(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype.is_complex:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        return torch.complex(torch.randn(shape, generator=g, dtype=real),
                             torch.randn(shape, generator=g, dtype=real))
    return torch.randn(shape, generator=g, dtype=dtype)


def _dot(a: torch.Tensor, b: torch.Tensor) -> complex:
    return complex((a.conj() * b).sum()) if a.is_complex() or b.is_complex() else float((a * b).sum())


def _centred_fft(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def _centred_ifft(k: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


@pytest.fixture(scope="module")
def mask() -> torch.Tensor:
    return (torch.rand(N, N, generator=torch.Generator().manual_seed(4)) < 0.4).float()


def test_mri_maps_two_channels_to_complex_exactly(mask: torch.Tensor) -> None:
    physics = dinv.physics.MRI(mask=mask, img_size=(N, N))
    op = from_deepinv(physics)
    m = mask.numpy().astype(bool)
    samples = int(m.sum())
    assert isinstance(op, DeepinvOperator) and op.is_complex and op.kspace == "sampled"
    assert op.in_shape == (1, N, N) and op.out_shape == (1, samples) and op.rate == samples / N**2
    assert op.in_kind == "any" and op.out_complex
    x, y = _randn(3, 1, N, N, dtype=torch.complex128), _randn(3, 1, samples, dtype=torch.complex128, seed=1)
    # the forward map and its adjoint are NumPy's centred unitary FFT at the mask's samples
    # (row-major order), to rounding
    np.testing.assert_allclose(op.A(x).numpy(), _centred_fft(x.numpy())[..., m], atol=1e-13)
    grid = np.zeros((3, 1, N, N), dtype=np.complex128)
    grid[..., m] = y.numpy()
    np.testing.assert_allclose(op.A_adjoint(y).numpy(), _centred_ifft(grid), atol=1e-13)
    # ... which is stablerecon's own SubsampledFourier with the same mask
    fourier = sr.operators.SubsampledFourier(mask.bool())
    torch.testing.assert_close(op.A(x), fourier.A(x), rtol=0, atol=1e-13)
    # DeepInverse's grid layout on request: zeros off the mask
    on_grid = from_deepinv(physics, kspace="grid")
    assert on_grid.out_shape == (1, N, N)
    np.testing.assert_allclose(on_grid.A(x).numpy(), _centred_fft(x.numpy()) * m, atol=1e-13)
    lhs, rhs = _dot(op.A(x), y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-13 * abs(lhs)
    # the mask is 0/1: the pseudo-inverse is the zero-filled adjoint; ||A|| = 1
    torch.testing.assert_close(op.A_dagger(y), op.A_adjoint(y), rtol=0, atol=1e-14)
    assert op.norm() == pytest.approx(1.0, rel=1e-5)
    # a real image is a complex image with zero imaginary part; the physics sees its two channels
    xr = x.real.contiguous()
    torch.testing.assert_close(op.A(xr), op.A(xr.to(torch.complex128)))
    two = physics.A(torch.cat([xr, torch.zeros_like(xr)], 1))
    torch.testing.assert_close(on_grid.A(xr), torch.complex(two[:, :1], two[:, 1:]), rtol=0, atol=0)
    # stablerecon's adapter sees a complex-linear operator
    adapted = as_linear_operator(op)
    assert adapted.in_kind == "any" and adapted.out_complex and adapted.adjointness_error() < 1e-6


def test_multicoil_mri_matches_coil_weighted_fft(mask: torch.Tensor) -> None:
    coils = _randn(3, N, N, dtype=torch.complex64, seed=5)
    physics = dinv.physics.MultiCoilMRI(mask=mask, coil_maps=coils, img_size=(N, N))
    op = from_deepinv(physics)
    s, m = coils.numpy().astype(np.complex128), mask.numpy().astype(bool)
    samples = int(m.sum())
    assert op.in_shape == (1, N, N) and op.out_shape == (1, 3, samples)
    x = _randn(2, 1, N, N, dtype=torch.complex64, seed=2)
    y = _randn(2, 1, 3, samples, dtype=torch.complex64, seed=3)
    expected = _centred_fft(s[None] * x.numpy().astype(np.complex128))[..., m]  # (B, coils, samples)
    np.testing.assert_allclose(op.A(x)[:, 0].numpy(), expected, atol=2e-5)
    grid = np.zeros((2, 3, N, N), dtype=np.complex128)
    grid[..., m] = y[:, 0].numpy()
    adjoint = (np.conj(s)[None] * _centred_ifft(grid)).sum(1, keepdims=True)
    np.testing.assert_allclose(op.A_adjoint(y).numpy(), adjoint, atol=2e-5)
    lhs, rhs = _dot(op.A(x), y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def _dense(op: object, n: int, dtype: torch.dtype = torch.float64) -> np.ndarray:
    eye = torch.eye(n * n, dtype=dtype).reshape(-1, 1, n, n)
    with torch.no_grad():
        return op.A(eye).reshape(n * n, -1).T.numpy()


def test_tomography_dot_test_norm_and_fbp() -> None:
    physics = dinv.physics.Tomography(angles=12, img_width=N, normalize=False, dtype=torch.float64)
    op = from_deepinv(physics)
    assert op.in_shape == (1, N, N) and op.out_shape[0] == 1 and op.out_shape[-1] == 12
    assert op.in_kind == "real" and not op.out_complex
    x, y = _randn(2, 1, N, N), _randn(2, *op.out_shape, seed=1)
    lhs, rhs = _dot(op.A(x), y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    dense = _dense(op, N)
    assert op.norm() == pytest.approx(float(np.linalg.norm(dense, 2)), rel=1e-4)
    # A_dagger is DeepInverse's filtered back-projection (cheap), unless asked otherwise
    torch.testing.assert_close(op.A_dagger(op.A(x)), physics.A_dagger(physics.A(x), fbp=True))
    adjoint = from_deepinv(physics, dagger="adjoint")
    torch.testing.assert_close(adjoint.A_dagger(y), op.A_adjoint(y))
    with pytest.raises(TypeError, match="'x'.*real"):
        op.A(x.to(torch.complex128))
    with pytest.raises(ValueError, match="'x'.*shape"):
        op.A(x[..., :-1])
    with pytest.raises(ValueError, match="'y'.*shape"):
        op.A_adjoint(y[:, 0])


def test_blur_matches_scipy_and_needs_its_image_size() -> None:
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=torch.float64) / 16
    physics = dinv.physics.Blur(filter=kernel[None, None], padding="valid")
    with pytest.raises(ValueError, match="in_shape"):
        from_deepinv(physics)  # a blur takes images of any size
    op = from_deepinv(physics, in_shape=(1, N, N))
    assert op.out_shape == (1, N - 2, N - 2)
    x, y = _randn(2, 1, N, N), _randn(2, 1, N - 2, N - 2, seed=1)
    expected = np.stack([correlate2d(im[0], kernel.numpy(), mode="valid") for im in x.numpy()])[:, None]
    np.testing.assert_allclose(op.A(x).numpy(), expected, atol=1e-14)
    lhs, rhs = _dot(op.A(x), y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def _stablerecon_operators() -> dict[str, object]:
    n = 32
    return {
        "fourier": sr.operators.SubsampledFourier(sr.operators.masks.variable_density(n, rate=0.3, seed=0)),
        "radon": sr.operators.Radon(n, angles=20),
        "blur": sr.operators.Blur(sr.operators.gaussian_kernel(1.5), n),
    }


@pytest.mark.parametrize("name", ["fourier", "radon", "blur"])
def test_to_deepinv_passes_deepinvs_adjointness_test(name: str) -> None:
    op = _stablerecon_operators()[name]
    physics = to_deepinv(op)
    assert isinstance(physics, dinv.physics.LinearPhysics)
    channels = 2 if name == "fourier" else 1
    assert physics.img_size == (channels, 32, 32)
    u = torch.rand(2, channels, 32, 32, dtype=torch.float64)
    assert float(physics.adjointness_test(u)) < 1e-10
    assert float(physics.adjointness_test(u.float())) < 1e-5
    # the physics computes exactly what the operator does, in DeepInverse's layout
    x = u[:, :1] if channels == 1 else torch.complex(u[:, :1], u[:, 1:])
    y = op.A(x)
    out = physics.A(u)
    torch.testing.assert_close(torch.complex(out[:, :1], out[:, 1:]) if name == "fourier" else out, y,
                               rtol=0, atol=0)
    # DeepInverse's power method agrees with stablerecon's norm
    norm = physics.compute_sqnorm(u[:1], max_iter=300, tol=1e-9, verbose=False) ** 0.5
    assert float(norm) == pytest.approx(op.norm(), rel=1e-3)
    # A_dagger is the operator's own (zero-filling, FBP, its blur inverse)
    back = physics.A_dagger(out)
    expected = op.A_dagger(y)
    if name == "fourier":
        back = torch.complex(back[:, :1], back[:, 1:])
    else:
        expected = expected.real
    torch.testing.assert_close(back, expected)


def test_round_trips_give_back_the_wrapped_object(mask: torch.Tensor) -> None:
    ops = _stablerecon_operators()
    for op in ops.values():
        assert from_deepinv(to_deepinv(op)) is op
    physics = dinv.physics.MRI(mask=mask, img_size=(N, N))
    assert to_deepinv(from_deepinv(physics)) is physics
    # the same composition without the shortcut computes the same numbers
    fourier = ops["fourier"]
    twice = DeepinvOperator(to_deepinv(fourier))
    assert twice.is_complex and twice.in_shape == (1, 32, 32)
    assert twice.out_shape == (1, *fourier.out_shape[1:])
    x = _randn(2, 1, 32, 32, dtype=torch.complex128)
    y = fourier.A(x)
    torch.testing.assert_close(twice.A(x), y, rtol=0, atol=0)
    torch.testing.assert_close(twice.A_adjoint(y), fourier.A_adjoint(y), rtol=0, atol=0)
    torch.testing.assert_close(twice.A_dagger(y), fourier.A_dagger(y), rtol=0, atol=0)


def test_duck_operator_needs_a_shape_and_falls_back_to_least_squares() -> None:
    g = torch.randn(40, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    class Dense:  # A and A_adjoint only
        def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
            return x.flatten(-2) @ g.T

        def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
            return (y @ g).unflatten(-1, (8, 8))

    with pytest.raises(ValueError, match="in_shape"):
        to_deepinv(Dense())
    physics = to_deepinv(Dense(), in_shape=(1, 8, 8))
    x = _randn(1, 1, 8, 8)
    assert float(physics.adjointness_test(x)) < 1e-12
    # no A_dagger: DeepInverse's least-squares solve, here the minimum-norm solution
    y = physics.A(x)
    x_ls = physics.A_dagger(y, max_iter=500, tol=1e-10)
    expected = np.linalg.pinv(g.numpy()) @ y.reshape(-1).numpy()
    np.testing.assert_allclose(x_ls.reshape(-1).numpy(), expected, atol=1e-5)


def test_deepinv_fista_with_wavelets_beats_zero_filling() -> None:
    n = 64
    x = sr.data.image("camera", size=n)
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(n, rate=0.25, seed=0))
    y = op.A(x)
    zero_filled = sr.metrics.psnr(op.A_dagger(y).real, x, data_range=1.0)
    fista = dinv.optim.FISTA(data_fidelity=dinv.optim.L2(), prior=dinv.optim.WaveletPrior(wv="db4", level=3),
                             lambda_reg=1e-3, stepsize=1.0, max_iter=100)
    method = method_from_deepinv(fista)  # runs FISTA on to_deepinv(op)
    with torch.no_grad():
        x_hat = method(y, op)
    assert x_hat.shape == (1, 1, n, n) and x_hat.is_complex()
    psnr = sr.metrics.psnr(x_hat.real, x, data_range=1.0)
    assert float(psnr) > float(zero_filled) + 2.0


def test_bad_physics_and_missing_deepinv(monkeypatch: pytest.MonkeyPatch) -> None:
    square = dinv.physics.Physics(A=lambda x, **kwargs: x**2)
    with pytest.raises(TypeError, match="'physics'.*non-linear"):
        from_deepinv(square)
    with pytest.raises(TypeError, match="'physics'"):
        from_deepinv(object())
    with pytest.raises(TypeError, match="'op'"):
        to_deepinv(object())
    with pytest.raises(ValueError, match="'complex'.*refuses complex"):
        to_deepinv(sr.operators.Radon(16, angles=4), complex=True)
    monkeypatch.setitem(sys.modules, "deepinv", None)  # as if it were not installed
    for call in (lambda: from_deepinv(square), lambda: to_deepinv(sr.operators.Radon(16, angles=4)),
                 lambda: method_from_deepinv(lambda y, p: y),
                 lambda: operator_from_target("deepinv.physics.Tomography", {}, 16)):
        with pytest.raises(ImportError, match=r"pip install 'stablerecon\[deepinv\]'"):
            call()


def test_core_imports_without_deepinv() -> None:
    import subprocess

    code = ("import sys; sys.modules['deepinv'] = None; import stablerecon as sr; "
            "import stablerecon.interop.deepinv; sr.operators, sr.audit, sr.recipes; print('ok')")
    with warnings.catch_warnings():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
