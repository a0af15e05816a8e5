"""Test-time lam tuning: the fit against closed forms, the label-free choice against running
each sample alone, PGD against the closed-form step on a linear model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stablerecon.csc import SDNet
from stablerecon.csc.robust import (
    ResidualLamFit,
    RobustnessStudy,
    adaptive_predict,
    lam_of,
    lam_sweep,
    noise_level,
    pgd_linf,
    residuals,
    robustness_study,
)


def _net() -> SDNet:
    torch.manual_seed(0)
    net = SDNet(csc="first", width=8, lam=0.1, steps=3).eval()
    with torch.no_grad():  # give the (untrained) network varied decisions
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def test_fit_recovers_a_log_linear_law_and_clips() -> None:
    r = torch.tensor([1e-3, 3e-3, 1e-2, 5e-2, 0.2], dtype=torch.float64)
    lam = 0.4 + 0.05 * r.log()
    fit = ResidualLamFit.fit(r.tolist(), lam.tolist())
    assert fit.a == pytest.approx(0.4, abs=1e-9) and fit.b == pytest.approx(0.05, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    assert float(fit(torch.tensor([1e-9]))) == pytest.approx(float(lam.min()))
    assert float(fit(torch.tensor([10.0]))) == pytest.approx(float(lam.max()))
    # a noisy law against numpy's least-squares line in log r and R^2 = 1 - SS_res / SS_tot
    noisy = (lam + torch.tensor([0.01, -0.02, 0.015, -0.01, 0.005], dtype=lam.dtype)).numpy()
    fit = ResidualLamFit.fit(r.tolist(), noisy.tolist())
    b_ref, a_ref = np.polyfit(np.log(r.numpy()), noisy, 1)
    pred = a_ref + b_ref * np.log(r.numpy())
    r2_ref = 1 - ((noisy - pred) ** 2).sum() / ((noisy - noisy.mean()) ** 2).sum()
    assert [fit.a, fit.b, fit.r2] == pytest.approx([a_ref, b_ref, r2_ref], abs=1e-9)
    assert (fit.lo, fit.hi) == (noisy.min(), noisy.max())
    with pytest.raises(ValueError, match="residual"):
        ResidualLamFit.fit([0.1], [0.2])
    with pytest.raises(ValueError, match="residual"):
        ResidualLamFit.fit([0.1, -1.0], [0.2, 0.3])


def test_noise_level_is_sigma_on_white_noise_and_blind_to_ramps() -> None:
    """Closed forms: the 5-point Laplacian of white N(0, sigma^2) noise has standard deviation
    sqrt(20) sigma and a median absolute value 0.6745 sqrt(20) sigma; it is zero on a linear
    ramp (so adding one changes nothing)."""
    g = torch.Generator().manual_seed(0)
    sigma = torch.tensor([0.05, 0.3, 1.0, 2.0]).view(-1, 1, 1, 1)
    z = sigma * torch.randn(4, 2, 96, 96, generator=g, dtype=torch.float64)
    est = noise_level(z)
    assert torch.allclose(est, sigma.flatten().double(), rtol=0.03), est
    yy, xx = torch.meshgrid(*[torch.arange(96, dtype=torch.float64)] * 2, indexing="ij")
    ramp = (3.0 * xx - 0.7 * yy + 5.0)[None, None]
    assert float(noise_level(ramp.expand(1, 2, 96, 96)).abs().max()) < 1e-9
    assert torch.allclose(noise_level(z + ramp), est, atol=1e-9)
    # against the definition: median over the interior of |x[i-1]+x[i+1]+x[j-1]+x[j+1]-4x| of one image
    one = z[1:2, :1]
    lap = (one[..., :-2, 1:-1] + one[..., 2:, 1:-1] + one[..., 1:-1, :-2] + one[..., 1:-1, 2:]
           - 4 * one[..., 1:-1, 1:-1])
    want = float(lap.abs().flatten().median()) / (0.6744897501960817 * math.sqrt(20))
    assert float(noise_level(one)) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="'r'"):
        noise_level(torch.zeros(1, 1, 2, 8))


def test_residual_statistics_match_the_layer_residual() -> None:
    """``"energy"`` is the layer's own mean-square residual; ``"noise"`` is the noise level of
    the residual image x - D c computed by hand from the code."""
    net = _net()
    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 1, 8, 8, generator=g)
    layer = net.first_csc
    with torch.no_grad():
        xn = net.normalise(x)
        code, energy = layer(xn, return_residual=True)
        r = xn - F.conv_transpose2d(code, layer.dictionary(), padding=layer.padding)
    assert torch.allclose(residuals(net, x, statistic="energy", batch=4), energy)
    assert torch.allclose(energy, r.pow(2).mean((1, 2, 3)), rtol=1e-5)
    assert torch.allclose(residuals(net, x, batch=4), noise_level(r), rtol=1e-5)
    with pytest.raises(ValueError, match="statistic"):
        residuals(net, x, statistic="mse")


def test_lam_of_restores_and_the_sweep_matches_single_runs() -> None:
    net = _net()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(24, 1, 8, 8, generator=g), torch.randint(0, 10, (24,), generator=g)
    with lam_of(net, 0.3):
        assert net.first_csc.lam == 0.3
    assert net.first_csc.lam == 0.1
    correct = lam_sweep(net, x, y, [0.05, 0.3], batch=7)
    for k, lam in enumerate([0.05, 0.3]):
        net.first_csc.lam = lam
        with torch.no_grad():
            assert torch.equal(correct[k], net(x).argmax(1) == y)
    net.first_csc.lam = 0.1
    # a larger lam leaves more of the input unexplained
    assert float(residuals(net, x, 0.5, statistic="energy").mean()) > float(
        residuals(net, x, 0.05, statistic="energy").mean())


def test_adaptive_choice_equals_running_each_sample_with_its_lam() -> None:
    net = _net()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(16, 1, 8, 8, generator=g) * torch.linspace(0.2, 1.0, 16).view(-1, 1, 1, 1)
    fit = ResidualLamFit(a=0.5, b=0.08, lo=0.05, hi=0.4, r2=1.0)
    grid = [0.05, 0.1, 0.2, 0.4]
    labels, chosen = adaptive_predict(net, x, fit, probe_lam=0.1, grid=grid, batch=5, statistic="energy")
    for i in range(16):
        with torch.no_grad():
            net.first_csc.lam = 0.1
            _, r = net(x[i : i + 1], return_residual=True)
            want = min(max(0.5 + 0.08 * math.log(float(r)), 0.05), 0.4)
            lam = min(grid, key=lambda v: abs(v - want))
            assert float(chosen[i]) == pytest.approx(lam)
            net.first_csc.lam = lam
            assert int(labels[i]) == int(net(x[i : i + 1]).argmax(1))
    assert net.first_csc.lam in grid  # the loop above set it; adaptive_predict restores its own


def test_pgd_stays_in_the_ball_and_takes_the_sign_step_on_a_linear_model() -> None:
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(5, 1, 4, 4, generator=g) * 0.6 + 0.2, torch.tensor([0, 1, 2, 0, 1])
    eps = 0.05
    x_adv = pgd_linf(lin, x, y, eps, steps=20, seed=1)
    assert float((x_adv - x).abs().max()) <= eps + 1e-7
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    # for a linear model the loss is maximised at a vertex of the box: the sign of the gradient
    x0 = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(lin(x0), y), x0)
    vertex = x + eps * grad.sign()
    with torch.no_grad():
        losses = [float(F.cross_entropy(lin(z), y)) for z in (x, x_adv, vertex)]
    assert losses[1] > losses[0]
    assert losses[1] >= losses[2] - 0.02
    with pytest.raises(ValueError, match="eps"):
        pgd_linf(lin, x, y, -1.0)
    with pytest.raises(ValueError, match="'y'"):
        pgd_linf(lin, x, y[:3], 0.1)


def test_bad_input_names_the_argument() -> None:
    net = _net()
    with pytest.raises(ValueError, match="'x'"):
        lam_sweep(net, torch.rand(3, 8, 8), torch.zeros(3, dtype=torch.long), [0.1])
    with pytest.raises(ValueError, match="'x'"):
        residuals(net, torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="lams"):
        lam_sweep(net, torch.rand(3, 1, 8, 8), torch.zeros(3, dtype=torch.long), [-0.1])
    with pytest.raises(ValueError, match="no CSC layer"):
        residuals(SDNet(csc="none"), torch.rand(2, 1, 8, 8))


def test_study_bookkeeping_against_its_own_sweeps() -> None:
    """On a tiny study: the training-lam accuracy is the sweep's entry at that lam, the oracle
    the sweep's maximum, the fits are those of the recorded (statistic, best lam) pairs, the
    label-free accuracy run per sample matches the one read off the sweep, and the networks'
    training mode is restored."""
    net, base = _net().train(), _net().train()
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(40, 1, 8, 8, generator=g), torch.randint(0, 10, (40,), generator=g)
    lams = [0.05, 0.1, 0.3, 0.6]
    study = robustness_study(net, base, x[:20], y[:20], x[20:], y[20:], lams, ("gaussian", "impulse"), (2, 5),
                             progress=False)
    assert net.training and base.training and net.first_csc.lam == 0.1
    for row in study.rows:
        assert row["sdnet"] == pytest.approx(row["by_lam"][1])
        assert row["best_accuracy"] == pytest.approx(max(row["by_lam"]))
        assert row["by_lam"][lams.index(row["best_lam"])] == row["best_accuracy"]
        assert abs(row["adaptive"] - row["adaptive_by"]["noise/pooled"]) <= 1 / 20 + 1e-9
    assert study.oracle_gain() == pytest.approx(sum(r["best_accuracy"] - r["sdnet"] for r in study.rows[1:]))
    for stat in ("noise", "energy"):
        # every fit against numpy's least squares on the recorded (statistic, best lam) pairs: the
        # pooled one on all sets, the one of a corruption on its sets and the clean one
        for kind in ("pooled", "gaussian", "impulse"):
            rows = [r for r in study.rows if kind == "pooled" or r["corruption"] in (kind, "clean")]
            u = np.log([r["residual_val"][stat] for r in rows])
            best = np.array([r["best_lam_val"] for r in rows])
            (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(u), u], 1), best, rcond=None)
            ss_res, ss_tot = ((best - a - b * u) ** 2).sum(), ((best - best.mean()) ** 2).sum()
            r2 = 1 - ss_res / ss_tot if np.ptp(best) else 1.0
            got = study.fits[stat][kind]
            assert [got.a, got.b, got.r2, got.lo, got.hi] == pytest.approx([a, b, r2, best.min(), best.max()],
                                                                           abs=1e-9), (stat, kind)
    with pytest.raises(ValueError, match="fit_by"):
        robustness_study(net, None, x[:20], y[:20], x[20:], y[20:], lams, fit_by="type")
    with pytest.raises(ValueError, match="statistic"):
        robustness_study(net, None, x[:20], y[:20], x[20:], y[20:], lams, statistic="mse")


def test_study_summaries_on_a_hand_written_study() -> None:
    """The summaries of a study whose rows are written out here, against sums done by hand; the
    clean row (severity 0) counts in none of them."""
    pooled = ResidualLamFit(a=0.5, b=0.1, lo=0.1, hi=0.4, r2=0.9)
    gaussian = ResidualLamFit(a=0.3, b=0.05, lo=0.1, hi=0.3, r2=0.95)
    rows = [
        {"corruption": "clean", "severity": 0, "sdnet": 0.90, "best_accuracy": 0.95, "adaptive": 0.91,
         "adaptive_by": {"noise/pooled": 0.91, "noise/corruption": 0.80}},
        {"corruption": "gaussian", "severity": 1, "sdnet": 0.60, "best_accuracy": 0.80, "adaptive": 0.75,
         "adaptive_by": {"noise/pooled": 0.75, "noise/corruption": 0.70}},
        {"corruption": "gaussian", "severity": 3, "sdnet": 0.40, "best_accuracy": 0.70, "adaptive": 0.55,
         "adaptive_by": {"noise/pooled": 0.55, "noise/corruption": 0.65}},
    ]
    study = RobustnessStudy(train_lam=0.1, probe_lam=0.1, lams=[0.1, 0.2, 0.4], rows=rows,
                            fits={"noise": {"pooled": pooled, "gaussian": gaussian}})
    # oracle (0.80 - 0.60) + (0.70 - 0.40) = 0.50; label-free (0.75 - 0.60) + (0.55 - 0.40) = 0.30
    assert study.oracle_gain() == pytest.approx(0.50)
    assert study.adaptive_gain() == pytest.approx(0.30)
    assert study.recovered() == pytest.approx(0.60)
    # per-corruption fits: (0.70 - 0.60) + (0.65 - 0.40) = 0.35, 70% of the oracle gain
    assert study.adaptive_gain("noise", "corruption") == pytest.approx(0.35)
    assert study.recovered("noise", "corruption") == pytest.approx(0.70)
    assert study.fit_for("gaussian") is pooled
    assert study.fit_for("gaussian", fit_by="corruption") is gaussian
    assert study.fit_for("impulse", fit_by="corruption") is pooled  # no fit of its own
    doc = study.to_dict()
    assert doc["oracle_gain"] == pytest.approx(0.50) and doc["adaptive_gain"] == pytest.approx(0.30)
    assert doc["recovered_by"] == pytest.approx({"noise/pooled": 0.60, "noise/corruption": 0.70})
    assert doc["fits"]["noise"]["gaussian"] == {"a": 0.3, "b": 0.05, "r2": 0.95, "lo": 0.1, "hi": 0.3}
    # no oracle gain: no share of it to recover
    flat = RobustnessStudy(0.1, 0.1, [0.1], rows=[{**rows[1], "best_accuracy": 0.60}])
    assert math.isnan(flat.recovered())
