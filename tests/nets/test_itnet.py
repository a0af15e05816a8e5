"""ItNet: Landweber steps when untrained, exact data consistency, weight sharing, learned eta."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from stablerecon.data import ellipses
from stablerecon.nets import ItNet, UNet
from stablerecon.operators import GaussianMatrix, SubsampledFourier, masks

N = 32


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def op() -> SubsampledFourier:
    return SubsampledFourier(masks.variable_density(N, rate=0.25, seed=0))


def _noisy_measurements(op: SubsampledFourier, batch: int = 2, dtype: torch.dtype = torch.float32,
                        seed: int = 0) -> torch.Tensor:
    """Measurements of ellipse phantoms plus complex noise (so that y is not in the range of A
    restricted to real images and every Landweber step moves)."""
    x = ellipses(batch, N, seed=seed, dtype=dtype)
    y = op.A(x)
    g = torch.Generator().manual_seed(seed + 100)
    rdt = torch.float64 if dtype == torch.float64 else torch.float32
    noise = torch.complex(torch.randn(y.shape, generator=g, dtype=rdt),
                          torch.randn(y.shape, generator=g, dtype=rdt))
    return y + 0.05 * noise


def _randomise(method: ItNet, seed: int) -> None:
    """Random non-zero weights in every network (the heads included); eta is left alone."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in method.nets.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))


def _landweber(matrix: torch.Tensor, y: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
    """k real Landweber steps x <- x - eta Re(M^H (M x - y)) from x = Re(M^H y), per item,
    with a dense complex matrix ``M`` (float64)."""
    mh = matrix.conj().T
    yb = y.reshape(y.shape[0], -1).to(torch.complex128)  # (B, m)
    x = (yb @ mh.T).real  # rows: Re(M^H y_b)
    for _ in range(steps):
        residual = x.to(torch.complex128) @ matrix.T - yb
        x = x - eta * (residual @ mh.T).real
    return x


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("iterations", "eta", "shared", "learn_eta"), [
    (1, 1.0, False, True), (3, 0.7, False, False), (4, 1.3, True, True),
])
def test_untrained_itnet_is_landweber(op: SubsampledFourier, iterations: int, eta: float, shared: bool,
                                      learn_eta: bool) -> None:
    """Zero head: the residual nets vanish and ItNet is k projected Landweber steps on the real
    image, checked against a dense float64 computation with M = op.to_matrix()."""
    torch.manual_seed(0)
    method = ItNet(UNet(1, 1, depth=2, width=4), iterations=iterations, shared=shared, eta=eta,
                   learn_eta=learn_eta, op=op).double()
    y = _noisy_measurements(op, dtype=torch.float64)
    with torch.no_grad():
        x_hat = method(y)
    matrix = op.to_matrix()
    assert matrix.shape == (op.out_shape[-1], N * N) and matrix.dtype == torch.complex128
    # log(eta) is stored in float32 (see the report), so eta is exact to float32 only
    assert method.eta == pytest.approx(eta, rel=1e-7)
    expected = _landweber(matrix, y, method.eta, iterations).reshape(x_hat.shape)
    assert x_hat.dtype == torch.float64
    assert torch.allclose(x_hat, expected, rtol=0, atol=1e-10)
    # and the steps matter: k steps differ from k - 1
    fewer = _landweber(matrix, y, method.eta, iterations - 1).reshape(x_hat.shape)
    assert float((fewer - expected).abs().max()) > 1e-4


def test_float32_itnet_matches_landweber(op: SubsampledFourier) -> None:
    """The same in float32, the default precision, to float32 accuracy."""
    torch.manual_seed(0)
    method = ItNet(UNet(1, 1, depth=2, width=4), iterations=3, eta=0.8, op=op)
    y = _noisy_measurements(op)
    with torch.no_grad():
        x_hat = method(y)
    expected = _landweber(op.to_matrix(), y, 0.8, 3).reshape(x_hat.shape)
    assert torch.allclose(x_hat.double(), expected, atol=1e-5)


@pytest.mark.parametrize(("shared", "learn_eta"), [(False, True), (True, False)])
def test_complex_itnet_with_unit_step_is_data_consistent(op: SubsampledFourier, shared: bool,
                                                         learn_eta: bool) -> None:
    """eta = 1 and A A^* = I: A(x - A^*(A x - y)) = y, whatever the network did before the step,
    so the complex output fits the data exactly even with random weights."""
    torch.manual_seed(0)
    method = ItNet(UNet(2, 2, depth=2, width=4), iterations=3, shared=shared, eta=1.0, learn_eta=learn_eta,
                   op=op, real_output=False)
    _randomise(method, seed=1)
    y = _noisy_measurements(op)
    with torch.no_grad():
        x_hat = method(y)
        first_correction = method.nets[0](torch.cat((op.A_dagger(y).real, op.A_dagger(y).imag), dim=1))
    assert x_hat.is_complex() and x_hat.shape == (2, 1, N, N)
    assert float(first_correction.abs().max()) > 0.1  # the networks really change the iterate
    residual = torch.linalg.vector_norm(op.A(x_hat) - y) / torch.linalg.vector_norm(y)
    assert float(residual) < 1e-5
    # control: a step size other than 1 leaves a residual
    method_half = ItNet(UNet(2, 2, depth=2, width=4), iterations=3, shared=shared, eta=0.5,
                        learn_eta=learn_eta, op=op, real_output=False)
    _randomise(method_half, seed=1)
    with torch.no_grad():
        off = method_half(y)
    assert float(torch.linalg.vector_norm(op.A(off) - y) / torch.linalg.vector_norm(y)) > 1e-2


def test_real_output_is_the_real_part(op: SubsampledFourier) -> None:
    """real_output=True returns exactly Re of the complex final iterate."""
    torch.manual_seed(0)
    complex_method = ItNet(UNet(2, 2, depth=2, width=4), iterations=2, op=op, real_output=False)
    _randomise(complex_method, seed=2)
    real_method = ItNet(UNet(2, 2, depth=2, width=4), iterations=2, op=op, real_output=True)
    real_method.load_state_dict(complex_method.state_dict())
    y = _noisy_measurements(op)
    with torch.no_grad():
        z = complex_method(y)
        x = real_method(y)
    assert not x.is_complex()
    assert torch.equal(x, z.real)
    assert float(z.imag.abs().max()) > 1e-3


def test_shared_has_one_network(op: SubsampledFourier) -> None:
    """shared=True: one UNet plus eta; shared=False: k identical, independent copies plus eta."""
    unet_params = _param_count(UNet(2, 2, depth=2, width=4))
    shared = ItNet(UNet(2, 2, depth=2, width=4), iterations=4, shared=True, op=op)
    assert len(shared.nets) == 1
    assert _param_count(shared) == unet_params + 1
    separate = ItNet(UNet(2, 2, depth=2, width=4), iterations=4, shared=False, op=op)
    assert len(separate.nets) == 4
    assert _param_count(separate) == 4 * unet_params + 1
    first = separate.nets[0].state_dict()
    for net in separate.nets[1:]:
        assert all(torch.equal(first[k], v) for k, v in net.state_dict().items())  # same start
    storages = {p.data_ptr() for p in separate.parameters()}
    assert len(storages) == len(list(separate.parameters()))  # nothing aliased


def test_separate_copies_are_independent(op: SubsampledFourier) -> None:
    """Changing copy 1 leaves copies 0 and 2 unchanged; the output then changes only through
    step 1 (so with the zero head restored in copy 1 it is Landweber again)."""
    torch.manual_seed(0)
    method = ItNet(UNet(1, 1, depth=2, width=4), iterations=3, shared=False, eta=0.9, op=op).eval()
    snapshots = [{k: v.clone() for k, v in net.state_dict().items()} for net in method.nets]
    y = _noisy_measurements(op)
    with torch.no_grad():
        landweber = method(y)
        method.nets[1].head.weight.fill_(0.5)
        changed = method(y)
    for i in (0, 2):
        state = method.nets[i].state_dict()
        assert all(torch.equal(snapshots[i][k], v) for k, v in state.items()), i
    assert not torch.equal(method.nets[1].head.weight, snapshots[1]["head.weight"])
    assert float((changed - landweber).abs().max()) > 1e-3
    with torch.no_grad():
        method.nets[1].head.weight.zero_()
        assert torch.equal(method(y), landweber)


def test_shared_network_acts_at_every_step(op: SubsampledFourier) -> None:
    """With shared=True the one network's weights change every step: a nonzero head changes
    the output, and the method equals an unshared one whose copies all carry those weights."""
    torch.manual_seed(0)
    shared = ItNet(UNet(2, 2, depth=2, width=4), iterations=3, shared=True, op=op, eta=0.8)
    _randomise(shared, seed=3)
    separate = ItNet(UNet(2, 2, depth=2, width=4), iterations=3, shared=False, op=op, eta=0.8)
    for net in separate.nets:
        net.load_state_dict(shared.nets[0].state_dict())
    shared.eval()
    separate.eval()
    y = _noisy_measurements(op)
    with torch.no_grad():
        assert torch.allclose(shared(y), separate(y), atol=1e-6)
        separate.nets[2].head.bias.add_(0.1)
        assert not torch.allclose(shared(y), separate(y), atol=1e-3)


def test_learn_eta_makes_eta_a_parameter_with_a_gradient(op: SubsampledFourier) -> None:
    torch.manual_seed(0)
    y = _noisy_measurements(op)
    x = ellipses(2, N, seed=0)
    learned = ItNet(UNet(1, 1, depth=2, width=4), iterations=2, eta=0.6, learn_eta=True, op=op)
    assert any(p is learned.log_eta for p in learned.parameters())
    torch.mean((learned(y) - x) ** 2).backward()
    assert learned.log_eta.grad is not None and float(learned.log_eta.grad.abs()) > 0
    # the gradient is d loss / d log(eta), checked by a central difference in eta
    h = 1e-3

    def loss_at(log_eta: float) -> float:
        with torch.no_grad():
            learned.log_eta.fill_(log_eta)
            return float(torch.mean((learned(y) - x) ** 2))

    base = math.log(0.6)
    numeric = (loss_at(base + h) - loss_at(base - h)) / (2 * h)
    assert float(learned.log_eta.grad) == pytest.approx(numeric, rel=2e-2)

    fixed = ItNet(UNet(1, 1, depth=2, width=4), iterations=2, eta=0.6, learn_eta=False, op=op)
    assert all(p is not fixed.log_eta for p in fixed.parameters())
    assert "log_eta" in fixed.state_dict() and not fixed.log_eta.requires_grad
    assert _param_count(fixed) == _param_count(learned) - 1
    assert fixed.eta == pytest.approx(0.6)


def test_eta_stays_positive_after_large_updates(op: SubsampledFourier) -> None:
    """eta is parametrised by its logarithm: a gradient step of any size on log(eta) keeps
    eta > 0 (a step of the same size on eta itself would make it negative), and the forward
    pass then uses exactly that eta (Landweber check with the zero head)."""
    torch.manual_seed(0)
    y = _noisy_measurements(op)
    method = ItNet(UNet(1, 1, depth=2, width=4), iterations=2, eta=0.5, op=op)
    method(y).pow(2).sum().backward()
    grad = method.log_eta.grad
    assert grad is not None and float(grad) != 0.0
    with torch.no_grad():
        method.log_eta.sub_(10.0 * torch.sign(grad))  # a huge step along the gradient
    assert abs(float(method.log_eta.detach()) - math.log(0.5)) == pytest.approx(10.0)
    assert method.eta > 0 and math.isfinite(method.eta)
    with torch.no_grad():
        x_hat = method(y)
    expected = _landweber(op.to_matrix(), y, method.eta, 2).reshape(x_hat.shape)
    scale = float(expected.abs().max())
    assert torch.allclose(x_hat.double(), expected, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"iterations": 0}, "'iterations'"),
    ({"iterations": -2}, "'iterations'"),
    ({"iterations": True}, "'iterations'"),
    ({"iterations": 2.0}, "'iterations'"),
    ({"eta": 0.0}, "'eta'"),
    ({"eta": -1.0}, "'eta'"),
    ({"eta": float("nan")}, "'eta'"),
    ({"eta": float("inf")}, "'eta'"),
])
def test_constructor_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ItNet(UNet(1, 1, depth=2, width=4), **kwargs)


def test_constructor_rejects_networks_that_change_channels() -> None:
    with pytest.raises(ValueError, match="'net'.*in_channels=2, out_channels=1"):
        ItNet(UNet(2, 1, depth=2, width=4))
    with pytest.raises(ValueError, match="'net'"):
        ItNet(nn.Sequential(nn.Conv2d(1, 1, 1)))


def test_forward_validation(op: SubsampledFourier) -> None:
    y = _noisy_measurements(op)
    with pytest.raises(ValueError, match="'op'"):
        ItNet(UNet(2, 2, depth=2, width=4))(y)
    with pytest.raises(ValueError, match="takes 3 channels but the image has 1"):
        ItNet(UNet(3, 3, depth=2, width=4), op=op)(y)
    # the operator given to forward replaces the default one
    other = SubsampledFourier(masks.variable_density(N, rate=0.3, seed=4))
    method = ItNet(UNet(1, 1, depth=2, width=4), iterations=2, eta=0.7, op=op)
    y_other = other.A(ellipses(1, N, seed=5))
    with torch.no_grad():
        x_hat = method(y_other, other)
    expected = _landweber(other.to_matrix(), y_other, 0.7, 2).reshape(x_hat.shape)
    assert torch.allclose(x_hat.double(), expected, atol=1e-5)


def test_data_consistency_step_is_relative_to_the_operator_norm() -> None:
    """``3 A`` measuring ``3 y`` poses the same problem as ``A`` measuring ``y``: with the step
    ``eta / ||A||^2`` the iterates, hence the outputs, are the same (a fixed step would be 9x
    too large on the scaled operator)."""
    torch.manual_seed(0)
    op = SubsampledFourier(masks.variable_density(16, 0.3, seed=0))
    net = ItNet(UNet(in_channels=2, out_channels=2, depth=2, width=4), iterations=2, eta=0.7).eval()
    x = torch.rand(2, 1, 16, 16)
    y = op.A(x)
    scaled = 3.0 * op
    with torch.no_grad():
        torch.testing.assert_close(net(3.0 * y, scaled), net(y, op), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("consistency", ["adjoint", "dagger"])
def test_dagger_consistency_makes_any_network_output_fit_the_data(consistency: str) -> None:
    """For a wide Gaussian matrix (full row rank, A A^+ = I) the step ``x - A^+(A x - y)`` with
    eta = 1 lands exactly on {A x = y}, whatever the network did before it; the plain gradient
    step of a matrix that is not a partial isometry does not."""
    torch.manual_seed(0)
    op = GaussianMatrix(60, (16, 16), seed=0)
    net = ItNet(UNet(in_channels=1, out_channels=1, depth=2, width=4), iterations=2, eta=1.0,
                learn_eta=False, consistency=consistency).eval()
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    net = net.double()
    with torch.no_grad():  # an untrained ItNet starts as Landweber (zero residual networks)
        for p in net.parameters():
            p.normal_(0.0, 0.3)
    y = op.A(x)
    with torch.no_grad():
        residual = torch.linalg.vector_norm(op.A(net(y, op)) - y) / torch.linalg.vector_norm(y)
    if consistency == "dagger":
        assert float(residual) < 1e-10
    else:
        assert float(residual) > 1e-3
