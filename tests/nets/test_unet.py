"""UNet and PostProcessing: the zero-initialised head, complex channels, validation, training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stablerecon.data import ellipses
from stablerecon.metrics import psnr
from stablerecon.nets import PostProcessing, UNet, channels_to_complex, complex_to_channels
from stablerecon.operators import SubsampledFourier, masks

N = 32


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def op() -> SubsampledFourier:
    return SubsampledFourier(masks.variable_density(N, rate=0.25, seed=0))


def _measurements(op: SubsampledFourier, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return op.A(ellipses(batch, N, seed=seed))


def _randomise_head(net: UNet, seed: int = 0) -> None:
    """Give the (zero-initialised) final convolution random weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.head.weight.copy_(0.3 * torch.randn(net.head.weight.shape, generator=g))
        net.head.bias.copy_(0.1 * torch.randn(net.head.bias.shape, generator=g))


# ---------------------------------------------------------------- channel conversion


def test_complex_channels_round_trip() -> None:
    """complex -> channels puts the C real parts first, then the C imaginary parts; the inverse
    recovers the tensor exactly."""
    g = torch.Generator().manual_seed(0)
    z = torch.complex(torch.randn(3, 2, 4, 5, generator=g), torch.randn(3, 2, 4, 5, generator=g))
    ch = complex_to_channels(z)
    assert ch.shape == (3, 4, 4, 5) and not ch.is_complex()
    assert torch.equal(ch[:, :2], z.real) and torch.equal(ch[:, 2:], z.imag)
    assert torch.equal(channels_to_complex(ch), z)
    x = torch.randn(3, 6, 4, 5, generator=g)
    assert torch.equal(complex_to_channels(channels_to_complex(x)), x)


def test_real_input_gets_zero_imaginary_channels() -> None:
    x = torch.rand(2, 3, 4, 4)
    ch = complex_to_channels(x)
    assert torch.equal(ch[:, :3], x) and torch.equal(ch[:, 3:], torch.zeros_like(x))
    assert torch.equal(channels_to_complex(ch), torch.complex(x, torch.zeros_like(x)))


def test_channels_to_complex_rejects_odd_channel_count() -> None:
    with pytest.raises(ValueError, match="'x'.*even number of channels"):
        channels_to_complex(torch.rand(1, 3, 4, 4))


# ---------------------------------------------------------------- UNet


@pytest.mark.parametrize(("cin", "cout", "depth", "batch_norm"), [(1, 1, 2, True), (2, 1, 2, False),
                                                                   (2, 2, 0, True), (3, 5, 1, True)])
def test_untrained_unet_outputs_exact_zeros(cin: int, cout: int, depth: int, batch_norm: bool) -> None:
    """The final convolution starts at zero, so any input maps to exactly zero."""
    torch.manual_seed(0)
    net = UNet(cin, cout, depth=depth, width=4, batch_norm=batch_norm)
    out = net(torch.randn(2, cin, 16, 16) * 10.0)
    assert out.shape == (2, cout, 16, 16)
    assert torch.equal(out, torch.zeros_like(out))


def test_gradients_reach_every_parameter() -> None:
    """With the zero head only the head's gradient is non-zero (every other path is multiplied
    by it); once the head is non-zero, one backward pass gives every parameter a gradient."""
    torch.manual_seed(0)
    net = UNet(2, 1, depth=2, width=4)
    x = torch.randn(2, 2, N, N)
    target = torch.randn(2, 1, N, N)
    torch.mean((net(x) - target) ** 2).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        if name.startswith("head."):
            assert p.grad.abs().sum() > 0, name
        else:
            assert torch.equal(p.grad, torch.zeros_like(p)), name
    net.zero_grad(set_to_none=True)
    _randomise_head(net)
    torch.mean((net(x) - target) ** 2).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert p.grad.abs().sum() > 0, name


def test_unet_parameter_count_matches_closed_form() -> None:
    """Parameters of the documented architecture (3x3 double convolutions with batch norm and
    no bias, 2x2 transposed convolutions, 1x1 head), counted by hand."""
    cin, cout, depth, w = 2, 3, 2, 4
    chans = [w * 2**i for i in range(depth + 1)]

    def double_conv(a: int, b: int) -> int:
        return 9 * a * b + 2 * b + 9 * b * b + 2 * b  # two convolutions + two batch norms

    expected = 0
    c = cin
    for ch in chans[:-1]:
        expected += double_conv(c, ch)
        c = ch
    expected += double_conv(c, chans[-1])
    for low, ch in zip(chans[:0:-1], chans[-2::-1], strict=True):
        expected += 4 * low * ch + ch  # transposed convolution with bias
        expected += double_conv(2 * ch, ch)
    expected += chans[0] * cout + cout
    net = UNet(cin, cout, depth=depth, width=w)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_unet_input_validation() -> None:
    net = UNet(2, 1, depth=2, width=4)
    with pytest.raises(ValueError, match=r"'x'.*\(B, 2, H, W\)"):
        net(torch.rand(1, 1, N, N))
    with pytest.raises(ValueError, match=r"'x'.*\(B, 2, H, W\)"):
        net(torch.rand(2, N, N))
    with pytest.raises(ValueError, match=r"multiples of 2\*\*depth = 4.*'x'"):
        net(torch.rand(1, 2, 30, N))
    with pytest.raises(ValueError, match=r"multiples of 2\*\*depth = 4.*'x'"):
        net(torch.rand(1, 2, N, 34))
    with pytest.raises(TypeError, match="'x'.*real floating"):
        net(torch.rand(1, 2, N, N, dtype=torch.complex64))
    with pytest.raises(TypeError, match="'x'.*real floating"):
        net(torch.ones(1, 2, N, N, dtype=torch.int64))
    with pytest.raises(TypeError, match="'x'.*torch.Tensor"):
        net([[0.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"depth": -1}, "depth"),
    ({"width": 0}, "width"),
    ({"width": 2.5}, "width"),
    ({"in_channels": 0}, "in_channels"),
    ({"in_channels": True}, "in_channels"),
    ({"out_channels": False}, "out_channels"),
    ({"depth": True}, "depth"),
    ({"width": True}, "width"),
])
def test_unet_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        UNet(**kwargs)


def test_unet_depth_zero_accepts_any_size() -> None:
    net = UNet(1, 1, depth=0, width=4)
    assert net.multiple == 1
    out = net(torch.rand(1, 1, 7, 5))
    assert torch.equal(out, torch.zeros(1, 1, 7, 5))


# ---------------------------------------------------------------- PostProcessing


@pytest.mark.parametrize("cin", [1, 2])
def test_untrained_postprocessing_is_the_real_zero_filled_adjoint(op: SubsampledFourier, cin: int) -> None:
    """Zero head: x_hat = Re(A_dagger y) exactly, whether the net sees the real part (1 channel)
    or real and imaginary parts (2 channels)."""
    torch.manual_seed(0)
    method = PostProcessing(UNet(cin, 1, depth=2, width=4), op)
    y = _measurements(op)
    x_hat = method(y)
    assert not x_hat.is_complex()
    assert torch.equal(x_hat, op.A_dagger(y).real)
    # the zero-filled adjoint, independently: inverse centred DFT of the zero-filled k-space
    dense = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(op.kspace(y), dim=(-2, -1)),
                                               norm="ortho"), dim=(-2, -1))
    assert torch.allclose(x_hat, dense.real, atol=1e-6)


def test_postprocessing_with_twice_the_channels_is_complex(op: SubsampledFourier) -> None:
    """A net returning 2C channels gives x_hat = A_dagger(y) + (out_re + i out_im)."""
    torch.manual_seed(0)
    net = UNet(2, 2, depth=2, width=4)
    method = PostProcessing(net, op).eval()
    y = _measurements(op)
    assert torch.equal(method(y), op.A_dagger(y))  # untrained: the complex adjoint itself
    _randomise_head(net)
    with torch.no_grad():
        x_hat = method(y)
        z = op.A_dagger(y)
        out = net(torch.cat((z.real, z.imag), dim=1))
    assert x_hat.is_complex() and x_hat.shape == (2, 1, N, N)
    assert torch.allclose(x_hat.real, z.real + out[:, :1], atol=1e-6)
    assert torch.allclose(x_hat.imag, z.imag + out[:, 1:], atol=1e-6)
    assert float(out.abs().max()) > 1e-2


def test_postprocessing_residual_uses_real_part(op: SubsampledFourier) -> None:
    """A 1-channel output is added to Re(A_dagger y): x_hat = Re(z) + net([Re z, Im z])."""
    torch.manual_seed(0)
    net = UNet(2, 1, depth=2, width=4)
    _randomise_head(net)
    method = PostProcessing(net).eval()
    y = _measurements(op)
    with torch.no_grad():
        x_hat = method(y, op)  # the operator passed to forward
        z = op.A_dagger(y)
        expected = z.real + net(torch.cat((z.real, z.imag), dim=1))
    assert torch.allclose(x_hat, expected, atol=1e-6)
    assert not torch.allclose(x_hat, z.real, atol=1e-3)


def test_postprocessing_forward_operator_overrides_default(op: SubsampledFourier) -> None:
    """``forward(y, op2)`` uses op2, not the constructor's operator."""
    other = SubsampledFourier(masks.variable_density(N, rate=0.25, seed=5))
    method = PostProcessing(UNet(2, 1, depth=2, width=4), op)
    y = other.A(ellipses(1, N, seed=3))
    assert torch.equal(method(y, other), other.A_dagger(y).real)


def test_postprocessing_validation(op: SubsampledFourier) -> None:
    with pytest.raises(ValueError, match="'op'"):
        PostProcessing(UNet(2, 1, depth=2, width=4))(_measurements(op))
    with pytest.raises(TypeError, match="'net'.*'in_channels'"):
        PostProcessing(nn.Sequential(nn.Conv2d(2, 1, 1)), op)
    with pytest.raises(TypeError, match="'op'.*A_dagger"):
        PostProcessing(UNet(2, 1, depth=2, width=4), nn.Identity())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="takes 3 channels but the image has 1"):
        PostProcessing(UNet(3, 1, depth=2, width=4), op)(_measurements(op))
    with pytest.raises(ValueError, match="returns 3 channels"):
        PostProcessing(UNet(2, 3, depth=2, width=4), op)(_measurements(op))
    bad_size = SubsampledFourier(masks.variable_density(30, rate=0.25, seed=0))
    with pytest.raises(ValueError, match=r"multiples of 2\*\*depth"):
        PostProcessing(UNet(2, 1, depth=2, width=4), bad_size)(bad_size.A(torch.rand(1, 1, 30, 30)))


def test_tiny_postprocessing_overfits_one_phantom(op: SubsampledFourier) -> None:
    """100 Adam steps on one ellipse phantom from 25% Fourier data beat the zero-filled PSNR
    by a wide margin (the network learns the aliasing correction)."""
    torch.manual_seed(0)
    x = ellipses(1, N, seed=0)
    y = op.A(x)
    method = PostProcessing(UNet(2, 1, depth=2, width=8, batch_norm=False), op)
    zero_filled = float(psnr(op.A_dagger(y).real, x, data_range=1.0)[0])
    opt = torch.optim.Adam(method.parameters(), lr=5e-3)
    for _ in range(100):
        loss = torch.mean((method(y) - x) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        trained = float(psnr(method(y), x, data_range=1.0)[0])
    assert trained > zero_filled + 5.0, (zero_filled, trained)


def test_float64_matches_float32(op: SubsampledFourier) -> None:
    """``.to(torch.float64)`` converts the network; outputs agree with float32 to its precision."""
    torch.manual_seed(0)
    net = UNet(2, 1, depth=2, width=4)
    _randomise_head(net)
    method = PostProcessing(net, op).eval()
    y = _measurements(op)
    with torch.no_grad():
        single = method(y)
        method.to(torch.float64)
        double = method(y.to(torch.complex128))
    assert double.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in method.parameters())
    assert torch.allclose(double, single.double(), atol=1e-5)


@pytest.mark.filterwarnings("error:Casting complex values to real")
def test_float64_keeps_the_operator_of_odd_size() -> None:
    """``method.to(torch.float64)`` must not change the operator it holds: for an odd image size
    the Fourier phase is not real and A(x) must stay the same."""
    op = SubsampledFourier(masks.uniform_random((15, 13), 0.3, seed=3))
    x = torch.rand(1, 1, 15, 13, dtype=torch.float64)
    before = op.A(x)
    PostProcessing(UNet(2, 1, depth=0, width=4), op).to(torch.float64)
    assert torch.allclose(op.A(x), before, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(op: SubsampledFourier) -> None:
    torch.manual_seed(0)
    net = UNet(2, 1, depth=2, width=4)
    _randomise_head(net)
    cpu_op = SubsampledFourier(masks.variable_density(N, rate=0.25, seed=0))
    method = PostProcessing(net, cpu_op).eval()
    y = _measurements(cpu_op)
    with torch.no_grad():
        expected = method(y)
        method.to("cuda")
        out = method(y.to("cuda"))
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), expected, atol=1e-4)
