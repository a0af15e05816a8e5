"""DeepInverse models as stablerecon methods (:func:`method_from_deepinv`): which physics the
model is given, the tensor conventions, gradients, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

dinv = pytest.importorskip("deepinv")

import stablerecon as sr  # noqa: E402
from stablerecon.contracts import is_differentiable  # noqa: E402
from stablerecon.interop.deepinv import DeepinvMethod, from_deepinv, method_from_deepinv, to_deepinv  # noqa: E402

N = 16

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class Recorder(dinv.models.Reconstructor):
    """``x = A^T y`` through the physics it is given, remembering that physics."""

    def forward(self, y: torch.Tensor, physics, **kwargs) -> torch.Tensor:  # noqa: ANN001
        self.seen = physics
        return physics.A_adjoint(y)


class Shrink(dinv.models.Denoiser):
    """``D(x, sigma) = x / (1 + sigma)``."""

    def forward(self, x: torch.Tensor, sigma: float, **kwargs) -> torch.Tensor:
        self.channels = x.shape[1]
        return x / (1 + sigma)


@pytest.fixture(scope="module")
def mri() -> tuple[object, object]:
    mask = (torch.rand(N, N, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    physics = dinv.physics.MRI(mask=mask, img_size=(N, N))
    return physics, from_deepinv(physics)


def _complex(seed: int, *shape: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))


def test_reconstructor_gets_the_original_physics(mri) -> None:
    physics, op = mri
    model = Recorder()
    method = method_from_deepinv(model)
    assert isinstance(method, DeepinvMethod) and is_differentiable(method)
    y = op.A(sr.data.shepp_logan(N))
    x_hat = method(y, op)
    assert model.seen is physics  # not a wrapper of a wrapper
    # the zero-filled image, computed independently with NumPy
    x = sr.data.shepp_logan(N)[0, 0].numpy().astype(np.float64)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho")) * physics.mask[0, 0].numpy()
    expected = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho"))
    assert x_hat.shape == (1, 1, N, N) and x_hat.is_complex()
    np.testing.assert_allclose(x_hat[0, 0].numpy(), expected, atol=1e-6)


def test_reconstructor_on_a_stablerecon_operator_uses_to_deepinv() -> None:
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(N, rate=0.4, seed=0))
    model = Recorder()
    method = method_from_deepinv(model)
    y = op.A(_complex(0, 2, 1, N, N))
    torch.testing.assert_close(method(y, op), op.A_adjoint(y))
    physics = model.seen
    assert isinstance(physics, dinv.physics.LinearPhysics) and physics.stablerecon_operator is op
    method(y, op)
    assert model.seen is physics  # built once per operator
    # a real operator: real tensors on both sides
    radon = sr.operators.Radon(N, angles=6)
    y = radon.A(sr.data.shepp_logan(N))
    torch.testing.assert_close(method(y, radon), radon.A_adjoint(y))
    # an explicit physics is used whatever the operator
    explicit = dinv.physics.MRI(mask=torch.ones(N, N), img_size=(N, N))
    method = method_from_deepinv(model, explicit)
    full = sr.operators.SubsampledFourier(torch.ones(N, N, dtype=torch.bool))
    y = full.A(_complex(1, 1, 1, N, N))
    torch.testing.assert_close(method(y, full), full.A_adjoint(y), atol=1e-6, rtol=1e-6)
    assert model.seen is explicit


def test_gradients_flow_through_the_method(mri) -> None:
    """The method is A^*: the gradient of <w, method(y)> with respect to y is A w."""
    _, op = mri
    method = method_from_deepinv(Recorder())
    y = op.A(_complex(3, 1, 1, N, N)).detach().requires_grad_(True)
    w = _complex(4, 1, 1, N, N)
    (method(y, op).conj() * w).real.sum().backward()
    torch.testing.assert_close(y.grad, op.A(w), atol=1e-6, rtol=1e-6)


def test_denoiser_is_applied_to_the_inverse(mri) -> None:
    _, op = mri
    x = sr.data.shepp_logan(N)
    y = op.A(x)
    model = Shrink()
    method = method_from_deepinv(model, denoiser_sigma=0.25)
    torch.testing.assert_close(method(y, op), op.A_dagger(y) / 1.25)
    assert model.channels == 2  # a complex image goes in as two channels
    real = method_from_deepinv(model, denoiser_sigma=0.25, complex=False)
    torch.testing.assert_close(real(y, op), op.A_dagger(y).real / 1.25)
    assert model.channels == 1
    tomo = from_deepinv(dinv.physics.Tomography(angles=8, img_width=N, normalize=True))
    y = tomo.A(x)
    torch.testing.assert_close(method(y, tomo), tomo.A_dagger(y) / 1.25)


def test_a_deepinv_physics_used_directly_is_not_converted() -> None:
    physics = dinv.physics.Tomography(angles=8, img_width=N, normalize=True)
    model = Recorder()
    y = physics.A(sr.data.shepp_logan(N))
    out = method_from_deepinv(model)(y, physics)
    assert model.seen is physics
    torch.testing.assert_close(out, physics.A_adjoint(y))


def test_errors_name_the_model(mri) -> None:
    _, op = mri
    y = op.A(sr.data.shepp_logan(N))
    with pytest.raises(ValueError, match="'denoiser_sigma' is required.*Shrink"):
        method_from_deepinv(Shrink())
    with pytest.raises(ValueError, match="'denoiser_sigma'"):
        method_from_deepinv(Shrink(), denoiser_sigma=-1.0)
    with pytest.raises(TypeError, match="'model'"):
        method_from_deepinv(3)
    crop = method_from_deepinv(lambda y, physics: physics.A_adjoint(y)[..., :-1])
    with pytest.raises(ValueError, match=r"'model'.*returned shape \(1, 2, 16, 15\).*\(1, 2, 16, 16\)"):
        crop(y, op)
    one_channel = method_from_deepinv(lambda y, physics: physics.A_adjoint(y)[:, :1])
    with pytest.raises(ValueError, match="'model'.*returned shape"):
        one_channel(y, op)
    not_a_tensor = method_from_deepinv(lambda y, physics: [y])
    with pytest.raises(TypeError, match="'model'.*must return a tensor"):
        not_a_tensor(y, op)
    with pytest.raises(TypeError, match="'op'"):
        method_from_deepinv(Recorder())(y, object())
    # the audit refuses such a method before any long work, naming it
    with pytest.raises(ValueError, match="'methods'\\['cropped'\\]"):
        sr.audit.run({"cropped": crop}, op, sr.data.shepp_logan(N), tests=["accuracy"], report=False,
                     progress=False)


def test_round_trip_of_a_model_through_to_deepinv() -> None:
    """A DeepInverse solver on to_deepinv(op) and stablerecon's adjoint agree where they must:
    with a zero prior and one gradient step from zero, FISTA returns step * A^* y."""
    op = sr.operators.Radon(N, angles=10)
    physics = to_deepinv(op)
    fista = dinv.optim.FISTA(data_fidelity=dinv.optim.L2(), prior=dinv.optim.ZeroPrior(), stepsize=0.5,
                             max_iter=1, custom_init=lambda y, p: (torch.zeros(1, 1, N, N),) * 2)
    y = op.A(sr.data.shepp_logan(N))
    with torch.no_grad():
        out = method_from_deepinv(fista, physics)(y, op)
    torch.testing.assert_close(out, 0.5 * op.A_adjoint(y), atol=1e-5, rtol=1e-5)
