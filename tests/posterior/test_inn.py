"""Invertible blocks against autograd's Jacobian; the cINN against an analytic posterior."""

from __future__ import annotations

import math

import pytest
import torch

from stablerecon.posterior import calibration_error, sbc_test
from stablerecon.posterior.cinn import ConditionalINN
from stablerecon.posterior.inn import AffineCoupling, InvertibleNetwork, LearnedPermutation, soft_clamp
from stablerecon.posterior.problems import LinearGaussian


def randomised(net: torch.nn.Module, scale: float = 0.5) -> torch.nn.Module:
    """Give every parameter random values (the last layers start at zero: the identity)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return net


@pytest.mark.parametrize("permutation", ["fixed", "learned"])
@pytest.mark.parametrize("cond_dim", [0, 3])
def test_network_inverts_and_its_log_det_is_the_jacobians(cond_dim: int, permutation: str) -> None:
    net = randomised(InvertibleNetwork(5, cond_dim, blocks=3, hidden=16, permutation=permutation).double())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    c = torch.randn(4, cond_dim, generator=g, dtype=torch.float64) if cond_dim else None
    out, logdet = net(x, c)
    assert torch.allclose(net.inverse(out, c), x, atol=1e-10)
    for i in range(4):
        ci = None if c is None else c[i : i + 1]
        jac = torch.autograd.functional.jacobian(lambda v, ci=ci: net(v[None], ci)[0][0], x[i])
        assert logdet[i].item() == pytest.approx(torch.linalg.slogdet(jac)[1].item(), abs=1e-8)


def test_learned_permutation_starts_as_a_rotation_and_rejects_unknown_kinds() -> None:
    mix = LearnedPermutation(6, seed=3).double()
    w = mix.weight()
    assert torch.allclose(w @ w.T, torch.eye(6, dtype=torch.float64), atol=1e-6)
    assert mix.log_s.sum().item() == pytest.approx(0.0, abs=1e-6)  # |det| of a rotation is 1
    with pytest.raises(ValueError, match="permutation"):
        InvertibleNetwork(4, permutation="random")


def test_soft_clamp_bounds_the_scales() -> None:
    s = torch.linspace(-1e4, 1e4, 101, dtype=torch.float64)
    assert soft_clamp(s, 2.0).abs().max() < 2.0
    assert soft_clamp(torch.tensor(1e-4), 2.0).item() == pytest.approx(1e-4 * 2 / math.pi, rel=1e-6)
    block = AffineCoupling(4, clamp=2.0)
    assert torch.equal(block(torch.ones(2, 4))[0], torch.ones(2, 4))  # starts as the identity


def test_cinn_learns_a_linear_gaussian_posterior() -> None:
    """Maximum likelihood on simulations: posterior means and covariance near the analytic ones,
    and calibrated (median |e_cal| within 2x the sampling floor 0.26 / sqrt(N))."""
    problem = LinearGaussian(dim_x=2, dim_y=1, noise_std=0.3, seed=0)
    torch.manual_seed(0)
    model = ConditionalINN(2, 1, blocks=4, hidden=32).double()
    model.fit(problem, steps=1500, batch=256, lr=3e-3, progress=False)
    x, y = problem.sample_joint(300, seed=7)
    samples = model.sample(y, 200, seed=1)
    exact_mean = problem.posterior_mean(y)
    assert (samples.mean(1) - exact_mean).abs().mean() < 0.05
    cov = torch.stack([torch.cov(s.T) for s in samples[:50]]).mean(0)
    assert torch.allclose(cov, problem.posterior_cov, atol=0.03)
    result = calibration_error(samples, x)
    assert result.median_abs <= 2 * 0.26 / math.sqrt(300)
    assert sbc_test(samples, x)[0] > 0.05
    # the metric sees a posterior made too narrow or too wide by scaling z at sampling time
    narrow = calibration_error(model.sample(y, 200, seed=1, temperature=0.8), x).at_68
    wide = calibration_error(model.sample(y, 200, seed=1, temperature=1.2), x).at_68
    assert narrow < -0.05 and wide > 0.05


def test_cinn_rejects_bad_input_and_divergence() -> None:
    model = ConditionalINN(2, 1, blocks=2, hidden=8)
    with pytest.raises(ValueError, match="'y'"):
        model.sample(torch.zeros(3, 2), 5)
    with pytest.raises(ValueError, match="NaN"):
        model.sample(torch.full((3, 1), math.nan), 5)
    with pytest.raises(ValueError, match="'data'"):
        model.fit(data=(torch.zeros(10, 2), torch.full((10, 1), math.inf)), steps=2, progress=False)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="loss became"):
        model.fit(data=(torch.randn(64, 2), torch.randn(64, 1)), steps=50, lr=1e6, clip=1e12, progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert len(before) == len(list(model.parameters()))


def test_inn_learns_the_forward_model_and_validates_input() -> None:
    """A short bidirectional training fits the simulator (the L_y direction): the forward
    output explains most of the variance of y on fresh data. (Posterior quality is measured in
    the acceptance tests.)"""
    from stablerecon.posterior.inn import INN
    from stablerecon.posterior.training import LossWeights, train_inn

    problem = LinearGaussian(dim_x=3, dim_y=1, noise_std=0.05, seed=0)
    torch.manual_seed(0)
    model = INN(3, 1, 2, blocks=3, hidden=32).double()
    history = train_inn(model, problem, steps=300, batch=128, lr=2e-3, progress=False,
                        weights=LossWeights(x=0.0))
    assert history[-1]["L_y"] < history[0]["L_y"]
    x, y = problem.sample_joint(1000, seed=3)
    with torch.no_grad():
        residual = (model.predict(x) - problem.forward(x)).pow(2).mean()
    assert residual < 0.1 * problem.forward(x).var()
    assert model.sample(y[:4], 7).shape == (4, 7, 3)
    with pytest.raises(ValueError, match="'y'"):
        model.sample(torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match="'dim_z'"):
        INN(3, 1, 0)
    with pytest.raises(ValueError, match="exactly one"):
        train_inn(model, problem, data=(x, y), steps=2, progress=False)


def test_inn_divergence_stops_with_finite_weights() -> None:
    """A learning rate far too large: training stops with a message naming the step, and no
    NaN reaches the weights (the failing step is never applied)."""
    from stablerecon.posterior.inn import INN
    from stablerecon.posterior.training import LossWeights, train_inn

    problem = LinearGaussian(dim_x=3, dim_y=1, noise_std=0.05, seed=0)
    torch.manual_seed(0)
    model = INN(3, 1, 2, blocks=2, hidden=8)
    with pytest.raises(RuntimeError, match="became"):
        train_inn(model, problem, steps=200, batch=64, lr=1e6, clip=1e12, progress=False,
                  weights=LossWeights(likelihood=1.0))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(ValueError, match="'y_noise'"):
        train_inn(model, problem, steps=2, y_noise=-0.1, progress=False)
    with pytest.raises(ValueError, match="likelihood"):
        train_inn(model, problem, steps=2, pad_noise=0.0, weights=LossWeights(likelihood=1.0), progress=False)


def test_ml_inn_learns_a_deterministic_forward_posterior() -> None:
    """y = x_1 + x_2 (no noise) with x ~ N(0, I): the posterior of x given y is the line
    x_1 + x_2 = y with x_1 - x_2 ~ N(0, 2). The INN trained with the likelihood term puts its
    samples on that line, spreads them as N(0, 2) along it, and its latent is N(0, 1)."""
    from stablerecon.posterior.inn import INN
    from stablerecon.posterior.training import LossWeights, train_inn

    problem = LinearGaussian(dim_x=2, dim_y=1, noise_std=1e-4, matrix=torch.tensor([[1.0, 1.0]]))
    torch.manual_seed(0)
    model = INN(2, 1, 1, blocks=4, hidden=32).double()
    train_inn(model, problem, steps=1200, batch=256, lr=2e-3, progress=False, y_noise=0.01, pad_noise=0.01,
              weights=LossWeights(y=0.0, z=0.0, x=0.0, reconstruction=0.0, likelihood=1.0))
    y = torch.tensor([[-1.0], [0.0], [1.5]], dtype=torch.float64)
    s = model.sample(y, 2000, seed=1)
    assert (s.sum(-1) - y).abs().mean() < 0.05
    spread = (s[..., 0] - s[..., 1]).std(1)
    assert torch.allclose(spread, torch.full((3,), math.sqrt(2.0), dtype=torch.float64), rtol=0.1)
    x, _ = problem.sample_joint(4000, seed=2)
    z = model.latent(x)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


def test_x_start_trains_the_forward_direction_first() -> None:
    """``x_start``: the backward MMD is off for that share of the steps (its recorded value is
    exactly zero), then on."""
    from stablerecon.posterior.inn import INN
    from stablerecon.posterior.training import LossWeights, train_inn

    problem = LinearGaussian(dim_x=3, dim_y=1, noise_std=0.05, seed=0)
    torch.manual_seed(0)
    model = INN(3, 1, 2, blocks=2, hidden=16)
    history = train_inn(model, problem, steps=20, batch=64, x_start=0.5, ramp=0.5, progress=False,
                        weights=LossWeights(x=1.0))
    assert all(h["L_x"] == 0.0 for h in history[:10])
    assert all(h["L_x"] != 0.0 for h in history[10:])  # an unbiased MMD: either sign
    with pytest.raises(ValueError, match="'x_start'"):
        train_inn(model, problem, steps=2, x_start=1.0, progress=False)
