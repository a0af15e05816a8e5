"""Deep Image Prior: generators, early-stopping rules against closed forms and direct
computations, the fit's guard, determinism and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from stablerecon import data, metrics
from stablerecon.nets import dip as dipmod
from stablerecon.nets.dip import (
    ConvDecoder,
    DeepDecoder,
    DeepImagePrior,
    ExponentialVariance,
    SkipNet,
    WindowedVariance,
)
from stablerecon.operators import Downsample, Identity, Inpainting, SubsampledFourier, masks


def tiny_skip(**kwargs) -> SkipNet:
    torch.manual_seed(0)
    return SkipNet(depth=3, channels_down=8, channels_up=8, channels_skip=2, **kwargs)


@pytest.fixture(autouse=True)
def _threads(one_thread) -> None:
    """Small convolutions run fastest on one thread."""


# ----------------------------------------------------------------------------- generators


def test_skip_net_matches_the_paper_layout() -> None:
    net = SkipNet.paper()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # per level: skip 1x1, down 3x3 (stride 2) + 3x3, merge 3x3 + 1x1 -> 5 convolutions; one head
    assert len(convs) == 5 * 5 + 1
    strided = [c for c in convs if c.stride == (2, 2)]
    assert len(strided) == 5 and all(c.kernel_size == (3, 3) for c in strided)
    assert [c.out_channels for c in convs if c.kernel_size == (1, 1) and c.out_channels == 4] == [4] * 5
    acts = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert acts and all(a.negative_slope == 0.2 for a in acts)
    assert isinstance(net.head[-1], nn.Sigmoid)
    pads = [m for m in net.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert len(pads) == 3 * 5  # every 3x3 convolution pads by reflection


@pytest.mark.parametrize("size", [(37, 50), (64, 64)])
@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_skip_net_sigmoid_output_is_the_sigmoid_of_the_linear_network(size: tuple[int, int],
                                                                      upsample: str) -> None:
    """With the same weights, ``output="sigmoid"`` is ``torch.sigmoid`` of ``output="linear"``, at any
    size (odd levels included, mapped back to the input's size); and the gradient of a data fit reaches
    the weights of every convolution, so every level and skip branch is connected to the output."""
    gen = torch.Generator().manual_seed(1)
    z = 10 * torch.randn(1, 32, *size, generator=gen)
    target = torch.randn(1, 1, *size, generator=gen)
    sig = tiny_skip(upsample=upsample)
    torch.manual_seed(5)  # other initial weights, then the sigmoid network's
    lin = SkipNet(depth=3, channels_down=8, channels_up=8, channels_skip=2, output="linear",
                  upsample=upsample)
    lin.load_state_dict(sig.state_dict())
    out, pre = sig(z), lin(z)
    assert out.shape == pre.shape == (1, 1, *size)
    torch.testing.assert_close(out, torch.sigmoid(pre), rtol=0, atol=1e-7)
    assert float(pre.detach().std()) > 0.1  # the comparison is not made on a constant
    (pre - target).pow(2).mean().backward()
    convs = [m for m in lin.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 * 3 + 1
    assert all(float(c.weight.grad.abs().max()) > 0 for c in convs)


@pytest.mark.parametrize("make", [lambda: DeepDecoder(channels=16, upsamplings=3),
                                  lambda: ConvDecoder(channels=16, upsamplings=3, output="sigmoid")])
def test_decoders_fit_a_smooth_image(make) -> None:
    """Each generator can represent a smooth image: its fit reaches 30 dB."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    x = (0.5 + 0.3 * torch.sin(3 * xx) * torch.cos(2 * yy))[None, None]
    result = DeepImagePrior(make(), steps=600, input_noise_std=0, ema=None, early_stopping=None,
                            progress=False).fit(x, Identity(32), truth=x)
    assert result.psnr[-1] > 30


def test_decoder_sizes_must_divide() -> None:
    with pytest.raises(ValueError, match="divisible by"):
        DeepDecoder(upsamplings=3).latent_shape(30, 32)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"depth": 0}, "depth"), ({"channels_down": (8, 8)}, "channels_down"), ({"kernel_size": 4}, "odd"),
    ({"upsample": "cubic"}, "upsample"), ({"output": "tanh"}, "output"),
    ({"channels_skip": -1}, "channels_skip"),
])
def test_skip_net_rejects_bad_configs(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        SkipNet(**({"depth": 3} | kwargs))


# ----------------------------------------------------------------------------- early stopping


def test_windowed_variance_equals_the_direct_computation() -> None:
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(40, 1, 1, 5, 6)).cumsum(axis=0)
    rule = WindowedVariance(window=7, patience=1000)
    for t, f in enumerate(frames):
        rule.update(t, torch.from_numpy(f).float())
    values = np.asarray(rule.values)
    assert np.isnan(values[:6]).all()
    for t in range(6, 40):
        window = frames[t - 6 : t + 1].reshape(7, -1).astype(np.float32).astype(np.float64)
        expected = np.mean(np.sum((window - window.mean(0)) ** 2, axis=0) / 7)
        assert values[t] == pytest.approx(expected, rel=1e-9)
    assert rule.best_iteration == 6 + int(np.argmin(values[6:]))


def test_patience_stops_exactly_after_the_minimum() -> None:
    """Steps of V-shaped length: the rule picks the bottom and stops ``patience`` iterations later."""
    rule = WindowedVariance(window=2, patience=5)
    stopped_at, value = None, 0.0
    for t in range(60):
        value += abs(t - 20) + 1.0  # a window of two outputs d apart has variance d^2 / 4
        rule.update(t, torch.full((1, 1, 2, 2), value))
        if rule.stop:
            stopped_at = t
            break
    assert rule.best_iteration == 20
    assert stopped_at == 25
    assert rule.values[20] == pytest.approx(0.25)


def test_exponential_variance_of_white_noise_matches_its_closed_form() -> None:
    """For i.i.d. outputs of variance s^2 the stationary EMV is ``s^2 2 (1 - a) / (2 - a)``."""
    alpha, s = 0.1, 0.3
    gen = torch.Generator().manual_seed(0)
    rule = ExponentialVariance(alpha=alpha, patience=10**6)
    for t in range(3000):
        rule.update(t, s * torch.randn(1, 1, 16, 16, generator=gen, dtype=torch.float64))
    tail = np.asarray(rule.values[500:])
    assert np.isnan(rule.values[: rule.warmup]).all()
    assert tail.mean() == pytest.approx(s**2 * 2 * (1 - alpha) / (2 - alpha), rel=0.02)


def test_exponential_variance_follows_its_recursion() -> None:
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(30, 4))
    rule = ExponentialVariance(alpha=0.25, patience=100, warmup=0)
    for t, f in enumerate(frames):
        rule.update(t, torch.from_numpy(f))
    m, v = frames[0].copy(), 0.0
    for t in range(1, 30):
        d = frames[t] - m
        m = m + 0.25 * d
        v = 0.75 * (v + 0.25 * np.mean(d**2))
        assert rule.values[t] == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: WindowedVariance(window=1), "window"), (lambda: WindowedVariance(patience=0), "patience"),
    (lambda: ExponentialVariance(alpha=1.0), "alpha"), (lambda: ExponentialVariance(alpha=-0.1), "alpha"),
])
def test_rules_reject_bad_parameters(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------------------------- the fit


def noisy_camera(size: int = 32, sigma: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    x = data.image("camera", size)
    return x, x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))


def test_fit_is_deterministic_and_calls_are_independent() -> None:
    x, y = noisy_camera()
    dip = DeepImagePrior(tiny_skip(), steps=40, progress=False, early_stopping=None)
    a = dip(y, Identity(32))
    b = dip(y, Identity(32))
    assert torch.equal(a, b)
    other = DeepImagePrior(tiny_skip(), steps=40, progress=False, early_stopping=None, seed=1)
    other = other(y, Identity(32))
    assert not torch.equal(a, other)


def test_a_batch_is_fitted_sample_by_sample() -> None:
    x, y = noisy_camera()
    y2 = torch.cat([y, y.flip(-1)])
    dip = DeepImagePrior(tiny_skip(), steps=25, progress=False)
    batch = dip(y2, Identity(32))
    assert torch.equal(batch[1:], dip(y2[1:], Identity(32)))
    assert torch.equal(batch[:1], dip(y2[:1], Identity(32)))


def test_ema_and_loss_curves_are_recorded_consistently() -> None:
    x, y = noisy_camera()
    result = DeepImagePrior(tiny_skip(), steps=60, ema=0.9, early_stopping=None, input_noise_std=0,
                            progress=False).fit(y, Identity(32), truth=x)
    assert result.iterations_run == 60 and result.stop_iteration == 59 and not result.stopped_early
    # the recorded loss is the data fit of the output before the step; the PSNR curve is the truth's
    raw = result.final_raw
    assert torch.equal(result.image, result.final_ema)
    assert result.psnr[-1] == pytest.approx(10 * math.log10(1 / float((raw - x).pow(2).mean())), abs=1e-4)
    assert np.all(np.isfinite(result.losses)) and result.losses[-1] < result.losses[0]


def test_early_stopping_returns_the_outputs_of_the_chosen_iteration() -> None:
    x, y = noisy_camera()
    rule = WindowedVariance(window=5, patience=10)
    dip = DeepImagePrior(tiny_skip(), steps=400, early_stopping=rule, progress=False)
    result = dip.fit(y, Identity(32), truth=x)
    assert result.stopped_early and result.rule == "ES-WMV"
    assert result.iterations_run == result.stop_iteration + 11
    assert result.stop_iteration == int(np.nanargmin(result.variances))
    assert result.stop_psnr == pytest.approx(
        10 * math.log10(1 / float((result.image - x).pow(2).mean())), abs=1e-4)
    assert rule.best_iteration is None  # the template is untouched: each fit uses a copy
    # the rule does not change the fit: replaying the scores of an unstopped fit gives the same choice
    watcher = WindowedVariance(window=5, patience=10**6)
    full = DeepImagePrior(tiny_skip(), steps=result.iterations_run + 20, early_stopping=watcher,
                          progress=False).fit(y, Identity(32), truth=x)
    assert rule.replay(full.variances) == (result.stop_iteration, result.iterations_run - 1)
    assert np.array_equal(full.psnr_ema[: result.iterations_run], result.psnr_ema)


class _Faulty(nn.Module):
    """A generator whose output turns to NaN once, at a given call."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.net = tiny_skip()
        self.calls, self.at = 0, at

    def latent_shape(self, h: int, w: int) -> tuple[int, int, int]:
        return (32, h, w)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.net(z)
        return out * math.nan if self.calls == self.at else out


def test_divergence_guard_restores_and_the_fit_goes_on() -> None:
    x, y = noisy_camera()
    dip = DeepImagePrior(_Faulty(at=30), steps=50, early_stopping=None, progress=False, backup_every=10)
    result = dip.fit(y, Identity(32), truth=x)
    assert result.restores == [29]
    assert np.isnan(result.losses[29]) and np.isfinite(np.delete(result.losses, 29)).all()
    assert torch.isfinite(result.image).all()


def test_divergence_guard_catches_a_loss_jump() -> None:
    """A learning rate far too large makes Adam jump; the guard undoes every jump: each recorded loss
    is at most ``divergence_factor`` times the loss of the weights kept last (the backup taken at the
    last unrestored multiple of ``backup_every``), and a restore is never followed by another."""
    x, y = noisy_camera()
    factor, every = 2.0, 20
    result = DeepImagePrior(tiny_skip(output="linear"), steps=80, lr=5.0, early_stopping=None, ema=None,
                            divergence_factor=factor, backup_every=every, progress=False).fit(y, Identity(32))
    assert result.restores
    kept = None  # the iteration whose weights the guard keeps
    for i, loss in enumerate(result.losses):
        if i in result.restores:
            assert math.isnan(loss) and i - 1 not in result.restores
            continue
        if kept is not None:
            assert loss <= factor * result.losses[kept]
        if i % every == 0:
            kept = i
    assert torch.isfinite(result.image).all()


class _Jumps(nn.Module):
    """A linear generator for denoising ``y`` that plants loss jumps: at call ``k`` in ``jumps`` its
    residual ``G(z) - y`` is scaled so that the loss is ``jumps[k]`` times that of its true output.
    Every call appends a copy of its weights to ``log`` (a list shared by the generator's copies)."""

    def __init__(self, y: torch.Tensor, jumps: dict[int, float], log: list[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.net = tiny_skip(output="linear")
        self.y, self.calls, self.jumps = y, 0, jumps
        self.log = log.append  # a builtin method: deep copies of the generator log into the same list

    def latent_shape(self, h: int, w: int) -> tuple[int, int, int]:
        return (32, h, w)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.log({name: p.detach().clone() for name, p in self.net.named_parameters()})
        out = self.net(z)
        ratio = self.jumps.get(self.calls, 1.0)
        return out if ratio == 1.0 else self.y + math.sqrt(ratio) * (out - self.y)


def test_divergence_guard_restores_the_saved_weights_bit_for_bit() -> None:
    """Planted jumps: the loss times 100 and times 3 (2.7 times the loss at the backup, above
    ``divergence_factor = 2``) force exactly two restores; times 1.9 (1.5 times the loss at the
    backup) none. Each restore brings back the weights saved at the last backup bit for bit, and the
    optimiser's state with them: the fit replays the iterations since the backup exactly (same
    losses, the first equal to the loss at the backup)."""
    x, y = noisy_camera()
    log: list[dict[str, torch.Tensor]] = []
    dip = DeepImagePrior(_Jumps(y, {18: 100.0, 30: 1.9, 44: 3.0}, log), steps=60, input_noise_std=0,
                         ema=None, early_stopping=None, backup_every=10, divergence_factor=2.0,
                         progress=False)
    result = dip.fit(y, Identity(32))
    assert len(log) == 60  # one generator call per iteration (no early-stopping rule watching)
    assert result.restores == [17, 43]  # call k is iteration k - 1
    assert np.isnan(result.losses[[17, 43]]).all()
    assert np.isfinite(np.delete(result.losses, [17, 43])).all()
    for jump, saved in ((17, 10), (43, 40)):
        assert log[jump + 1].keys() == log[saved].keys()
        assert all(torch.equal(log[jump + 1][name], w) for name, w in log[saved].items())
        assert not all(torch.equal(log[jump][name], w) for name, w in log[saved].items())
        replay = jump - saved
        assert np.array_equal(result.losses[jump + 1 : jump + 1 + replay], result.losses[saved:jump])


def test_inpainting_uses_only_observed_pixels() -> None:
    """Two images that agree on the observed pixels give the same fit."""
    x = data.image("camera", 32)
    mask = torch.rand(32, 32, generator=torch.Generator().manual_seed(0)) < 0.5
    op = Inpainting(mask)
    other = torch.where(mask, x, torch.rand(x.shape))
    dip = DeepImagePrior(tiny_skip(), steps=30, progress=False)
    assert torch.equal(dip(op.A(x), op), dip(op.A(other), op))


def test_complex_images_for_mri() -> None:
    """With ``complex_image`` the generator's 2 channels become a complex image that fits k-space."""
    x = data.image("camera", 32).to(torch.complex64) * torch.exp(1j * torch.linspace(0, 1, 32))
    op = SubsampledFourier(masks.variable_density(32, rate=0.25, seed=0))
    torch.manual_seed(0)
    gen = SkipNet(out_channels=2, depth=3, channels_down=16, channels_up=16, output="linear")
    result = DeepImagePrior(gen, steps=500, complex_image=True, early_stopping=None, progress=False).fit(
        op.A(x), op, truth=x)
    assert result.image.is_complex()
    # both measured as the audit measures them (by magnitude, data range max |x|)
    zero_filled = float(metrics.psnr(op.A_adjoint(op.A(x)), x, data_range=float(x.abs().max())))
    assert result.stop_psnr > zero_filled + 3


def test_psnr_curves_are_the_audits_psnr_on_complex_data() -> None:
    """On complex images the PSNR curves are :func:`stablerecon.metrics.psnr` (by magnitude, as in the
    audit) with data range ``max |truth|``, at the chosen iteration and at the last one; the modulus
    of the complex difference would give a PSNR lower by several dB on this phase-ramped image."""
    size = 16
    ramp = torch.linspace(0, 2 * math.pi, size)
    x = 0.8 * data.image("camera", size).to(torch.complex64) * torch.exp(1j * (ramp[:, None] + ramp))
    op = SubsampledFourier(masks.variable_density(size, rate=0.5, seed=0))
    torch.manual_seed(0)
    gen = SkipNet(out_channels=2, depth=3, channels_down=8, channels_up=8, channels_skip=2, output="linear")
    rule = WindowedVariance(window=3, patience=10**6)  # never stops: picks the lowest variance
    result = DeepImagePrior(gen, steps=60, complex_image=True, ema=0.9, early_stopping=rule,
                            progress=False).fit(op.A(x), op, truth=x)
    peak = float(x.abs().max())
    assert result.image.is_complex() and result.stop_iteration < 59
    audit = float(metrics.psnr(result.image, x, data_range=peak))
    assert result.psnr_curve[result.stop_iteration] == pytest.approx(audit, abs=1e-6)
    assert result.stop_psnr == pytest.approx(audit, abs=1e-6)
    for curve, output in ((result.psnr, result.final_raw), (result.psnr_ema, result.final_ema)):
        assert curve[-1] == pytest.approx(float(metrics.psnr(output, x, data_range=peak)), abs=1e-6)
    modulus = 10 * math.log10(peak**2 / float((result.image - x).abs().pow(2).mean()))
    assert audit > modulus + 3


def test_default_generator_is_built_once_with_the_seed() -> None:
    x, y = noisy_camera(48)
    a = DeepImagePrior(steps=3, progress=False, early_stopping=None, seed=3)
    b = DeepImagePrior(steps=3, progress=False, early_stopping=None, seed=3)
    assert torch.equal(a(y, Identity(48)), b(y, Identity(48)))
    assert isinstance(a.generator, SkipNet) and a.generator.out_channels == 1
    with pytest.raises(ValueError, match="too small for depth 5"):
        a(y[..., :32, :32], Identity(32))


# ----------------------------------------------------------------------------- bad input


class _WrongShape(nn.Module):
    """A duck-typed operator whose ``A`` does not produce measurements shaped like ``y``."""

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return x[..., ::2, :]

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return y


def test_bad_input_is_rejected_clearly() -> None:
    x, y = noisy_camera(16)
    dip = DeepImagePrior(tiny_skip(), steps=3, progress=False)
    with pytest.raises(ValueError, match="argument 'op'.*shape"):
        dip(y, _WrongShape())
    with pytest.raises(ValueError, match="'y' contains NaN"):
        dip(y * math.nan, Identity(16))
    with pytest.raises(TypeError, match="'y'"):
        dip(y.numpy(), Identity(16))
    with pytest.raises(ValueError, match="needs an operator"):
        dip(y)
    with pytest.raises(ValueError, match="'truth'"):
        dip.fit(y, Identity(16), truth=x[..., :8])
    with pytest.raises(ValueError, match="one measurement"):
        dip.fit(torch.cat([y, y]), Identity(16))
    with pytest.raises(ValueError, match="'generator'"):
        DeepImagePrior(tiny_skip(out_channels=3), steps=3, progress=False)(y, Identity(16))
    with pytest.raises(ValueError, match="'op'|'y'|shape"):
        dip(y[..., :8], Downsample(2, 16))
    for kwargs, match in [({"steps": 0}, "steps"), ({"steps": -5}, "steps"), ({"lr": 0.0}, "lr"),
                          ({"lr": math.inf}, "lr"), ({"ema": 1.0}, "ema"),
                          ({"input_noise_std": -1}, "input_noise"),
                          ({"early_stopping": "oracle"}, "early_stopping"), ({"monitor": "x"}, "monitor"),
                          ({"divergence_factor": 1.0}, "divergence")]:
        with pytest.raises(ValueError, match=match):
            DeepImagePrior(tiny_skip(), **kwargs)
    with pytest.raises(TypeError, match="generator"):
        DeepImagePrior(generator="skip")  # type: ignore[arg-type]


def test_module_lists_its_public_names() -> None:
    for name in dipmod.__all__:
        assert getattr(dipmod, name).__doc__


# ----------------------------------------------------------------------------- in the audit


def test_the_audit_attacks_dip_without_gradients() -> None:
    from stablerecon.audit import run
    from stablerecon.config import MethodSpec
    from stablerecon.recipes import build_method

    size = 16
    op = SubsampledFourier(masks.variable_density(size, 0.25, seed=0))
    x = data.shepp_logan(size)
    dip = DeepImagePrior.cheap(steps=15, generator=tiny_skip())
    options = {"budgets": [0.02], "steps": 2, "restarts": 1, "directions": 2, "draws": 2, "not_rare_draws": 1}
    result = run({"DIP": dip}, op, x, tests=["accuracy", "worst_case"], options=options, progress=False)
    assert result.get("DIP", "worst_case")["gradient_free"]
    # a DIP call is a deterministic function of y: the audit's accuracy is the direct call's
    direct = float(data_psnr(dip(op.A(x), op), x))
    assert result.get("DIP", "accuracy")["clean"]["psnr"][0] == pytest.approx(direct, abs=1e-6)
    built = build_method(MethodSpec(name="DIP", kind="dip", steps=7), op)
    assert isinstance(built, DeepImagePrior) and built.steps == 7 and not built.differentiable
    with pytest.raises(ValueError, match="steps"):
        MethodSpec(name="TV", kind="tv", steps=7)


def data_psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return 10 * math.log10(1 / float((x_hat - x).pow(2).mean()))
