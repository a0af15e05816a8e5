"""The dropout point-estimate baseline against the analytic linear-Gaussian posterior; the posterior
figures against the data they were given."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection, PathCollection, QuadMesh
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from stablerecon.posterior.baseline import DropoutRegressor
from stablerecon.posterior.calibration import calibration_error, sbc_ranks, sbc_test
from stablerecon.posterior.plots import arm_figure, corner_plot, sbc_histogram, scatter_modes
from stablerecon.posterior.problems import GaussianMixture, InverseKinematics, LinearGaussian

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(one_thread: None) -> tuple[LinearGaussian, DropoutRegressor]:
    """A small dropout MLP fitted to a 4-D linear-Gaussian problem with a 2-D observation: two
    directions of x are unobserved, so the posterior is wide (std 0.6-0.8 per coordinate)."""
    problem = LinearGaussian(dim_x=4, dim_y=2, noise_std=0.1, seed=0)
    model = DropoutRegressor(4, 2, hidden=64, layers=2, p=0.1, seed=0).double()
    model.fit(problem, steps=800, batch=256, lr=3e-3, progress=False)
    return problem, model


def test_dropout_regressor_learns_the_posterior_mean(
        trained: tuple[LinearGaussian, DropoutRegressor]) -> None:
    """Mean squared error is minimised by E[x | y]: the prediction matches the closed-form
    posterior mean to within a small fraction of its size and of the posterior spread
    (measured: RMS error 0.042, against RMS mean 1.49 and posterior std >= 0.61)."""
    problem, model = trained
    _, y = problem.sample_joint(300, seed=7)
    exact = problem.posterior_mean(y)
    rms_error = float((model.predict(y) - exact).pow(2).sum(1).mean().sqrt())
    assert rms_error < 0.1
    assert rms_error < 0.1 * float(exact.pow(2).sum(1).mean().sqrt())
    assert rms_error < 0.2 * float(problem.posterior_cov.diagonal().sqrt().min())


def test_mc_dropout_samples_are_not_the_posterior(trained: tuple[LinearGaussian, DropoutRegressor]) -> None:
    """Dropout spread is weight uncertainty, not the ambiguity of the inverse problem: the samples
    are far too narrow. Exact posterior samples of the same test pairs are calibrated to within
    the sampling noise (median |e_cal| <= 2 * 0.26 / sqrt(N), as for the cINN; measured 0.0075),
    while MC dropout's 68% intervals hold well under half the truths they should (measured:
    median |e_cal| 0.43, e_cal(0.68) = -0.58, sharpness 0.15 against 1.34; the same with
    weight seeds 1 and 2) and SBC rejects it."""
    problem, model = trained
    n = 300
    x, y = problem.sample_joint(n, seed=7)
    dropout = calibration_error(model.sample(y, 200, seed=1), x)
    exact = calibration_error(problem.sample_posterior(y, 200, seed=1), x)
    assert exact.median_abs <= 2 * 0.26 / math.sqrt(n)
    assert dropout.median_abs > 0.25 and dropout.median_abs > 10 * exact.median_abs
    assert dropout.at_68 < -0.4  # over-confident: fewer than 28% of truths in the 68% intervals
    assert dropout.sharpness < 0.25 * exact.sharpness
    assert sbc_test(model.sample(y, 99, seed=2), x)[0] < 1e-6  # measured 1.5e-49
    assert sbc_test(problem.sample_posterior(y, 99, seed=2), x)[0] > 0.01  # measured 0.39


def test_dropout_sampling_is_seeded_and_temperature_scales_the_spread(
        trained: tuple[LinearGaussian, DropoutRegressor]) -> None:
    problem, model = trained
    y = problem.sample_joint(5, seed=3)[1]
    a, b = model.sample(y, 50, seed=4), model.sample(y, 50, seed=4)
    assert a.shape == (5, 50, 4) and torch.equal(a, b)
    assert not torch.equal(a, model.sample(y, 50, seed=5))
    point = model.predict(y)
    assert torch.allclose(model.sample(y, 3, seed=4, temperature=0.0), point.unsqueeze(1).expand(5, 3, 4))
    half = model.sample(y, 50, seed=4, temperature=0.5)
    assert torch.allclose(half - point.unsqueeze(1), 0.5 * (a - point.unsqueeze(1)), atol=1e-12)


def test_dropout_regressor_trains_on_fixed_data_and_sets_its_moments() -> None:
    g = torch.Generator().manual_seed(0)
    x = 3.0 + 2.0 * torch.randn(200, 2, generator=g)
    y = x[:, :1] - 1.0
    model = DropoutRegressor(2, 1, hidden=8, layers=1)
    losses = model.fit(data=(x, y), steps=20, batch=32, progress=False)
    assert len(losses) == 20 and all(np.isfinite(losses))
    assert torch.allclose(model.x_mean, x.mean(0)) and torch.allclose(model.y_std, y.std(0))
    assert not model.training


def test_dropout_regressor_rejects_bad_input_and_divergence() -> None:
    model = DropoutRegressor(2, 1, hidden=8, layers=2)
    with pytest.raises(ValueError, match="'y'"):
        model.sample(torch.zeros(3, 2), 5)
    with pytest.raises(ValueError, match="'y'"):
        model.predict(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(torch.full((3, 1), math.nan))
    with pytest.raises(ValueError, match="'n'"):
        model.sample(torch.zeros(3, 1), 0)
    with pytest.raises(ValueError, match="'temperature'"):
        model.sample(torch.zeros(3, 1), 2, temperature=-1.0)
    with pytest.raises(ValueError, match="'p'"):
        DropoutRegressor(2, 1, p=1.0)
    with pytest.raises(ValueError, match="'hidden'"):
        DropoutRegressor(2, 1, hidden=0)
    with pytest.raises(ValueError, match="'data'"):
        model.fit(data=(torch.zeros(10, 2), torch.full((10, 1), math.inf)), steps=2, progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        model.fit(steps=2, progress=False)
    with pytest.raises(RuntimeError, match="loss became"):
        model.fit(data=(torch.randn(64, 2), torch.randn(64, 1)), steps=200, lr=1e6, clip=1e12,
                  progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _offsets(ax: object) -> list[int]:
    return [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


def test_corner_plot_draws_every_sample_and_the_reference() -> None:
    g = torch.Generator().manual_seed(0)
    samples, reference = torch.randn(123, 3, generator=g), torch.randn(45, 3, generator=g).numpy()
    truth = torch.tensor([0.1, -0.2, 0.3])
    fig = corner_plot(samples, truth=truth, reference=reference, labels=["a", "b", "c"], bins=10)
    assert isinstance(fig, Figure)
    axes = np.array(fig.axes).reshape(3, 3)
    for i in range(3):
        for j in range(3):
            ax = axes[i, j]
            assert ax.get_visible() == (j <= i)
            if j < i:
                assert _offsets(ax) == [123, 45]
                assert np.allclose(ax.collections[0].get_offsets(), samples[:, [j, i]].numpy())
                marks = [ln.get_xydata() for ln in ax.lines]
                assert any(np.allclose(m, [[truth[j], truth[i]]]) for m in marks)
            elif i == j:
                bars = ax.containers[0]
                assert len(bars) == 10
                width = bars[0].get_width()
                assert sum(b.get_height() for b in bars) * width == pytest.approx(1.0)  # a density
                assert any(np.allclose(ln.get_xdata(), truth[i]) for ln in ax.lines)
    assert axes[2, 0].get_xlabel() == "a" and axes[2, 0].get_ylabel() == "c"
    hist = corner_plot(samples, kind="hist", bins=8)
    quads = [c for c in hist.axes[3].collections if isinstance(c, QuadMesh)]
    assert len(quads) == 1 and quads[0].get_array().sum() == 123  # every sample in a bin
    assert len(corner_plot(samples[:, :1]).axes) == 1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"samples": torch.zeros(10)}, "'samples'"),
    ({"samples": torch.zeros(1, 2)}, "'samples'"),
    ({"samples": torch.zeros(10, 2), "truth": torch.zeros(3)}, "'truth'"),
    ({"samples": torch.zeros(10, 2), "reference": torch.zeros(5, 3)}, "'reference'"),
    ({"samples": torch.zeros(10, 2), "labels": ["a"]}, "'labels'"),
    ({"samples": torch.full((10, 2), math.inf)}, "NaN or Inf"),
    ({"samples": torch.zeros(10, 2), "bins": 0}, "'bins'"),
    ({"samples": torch.zeros(10, 2), "kind": "kde"}, "'kind'"),
])
def test_corner_plot_rejects_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        corner_plot(**kwargs)


def test_corner_plot_rejects_non_arrays() -> None:
    with pytest.raises(TypeError, match="'samples'"):
        corner_plot([[0.0, 1.0], [1.0, 2.0]])


def test_scatter_modes_colours_samples_per_label_and_draws_the_modes() -> None:
    problem = GaussianMixture("some")
    posterior = problem.sample_posterior(torch.eye(problem.dim_y), 30, seed=0)  # (5, 30, 2)
    ax = scatter_modes(problem, posterior).axes[0]
    assert _offsets(ax) == [30] * 5
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(circles) == 8
    assert np.allclose([c.center for c in circles], problem.means.numpy())
    assert all(c.radius == pytest.approx(3 * problem.std) for c in circles)
    colours = {tuple(c.get_edgecolor()) for c in circles[4:]}
    assert len(colours) == 1  # the four modes sharing label 4 share a colour ...
    assert np.allclose(ax.collections[4].get_facecolor()[0][:3], colours.pop()[:3])  # ... with its samples
    ax = scatter_modes(problem, {0: posterior[0, :10], 4: posterior[4].numpy()}, sigma=2).axes[0]
    assert _offsets(ax) == [10, 30]
    assert ax.patches[0].radius == pytest.approx(2 * problem.std)


def test_scatter_modes_rejects_bad_input() -> None:
    problem = GaussianMixture("some")
    with pytest.raises(TypeError, match="'problem'"):
        scatter_modes(LinearGaussian(), {0: torch.zeros(3, 2)})
    with pytest.raises(ValueError, match="labels must be integers"):
        scatter_modes(problem, {5: torch.zeros(3, 2)})
    with pytest.raises(ValueError, match=r"samples_by_label\[0\]"):
        scatter_modes(problem, {0: torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="'samples_by_label'"):
        scatter_modes(problem, torch.zeros(5, 2))
    with pytest.raises(ValueError, match="empty"):
        scatter_modes(problem, {})
    with pytest.raises(ValueError, match="'sigma'"):
        scatter_modes(problem, {0: torch.zeros(3, 2)}, sigma=0)


def test_sbc_histogram_counts_every_rank() -> None:
    problem = LinearGaussian(dim_x=3, dim_y=2, noise_std=0.3, seed=1)
    x, y = problem.sample_joint(400, seed=0)
    ranks = sbc_ranks(problem.sample_posterior(y, 99, seed=1), x)  # (400, 3) in [0, 99]
    fig = sbc_histogram(ranks, n_samples=99, bins=20)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    for k, ax in enumerate(visible):
        bars = ax.containers[0]
        assert len(bars) == 20 and {b.get_width() for b in bars} == {5.0}  # 100 rank values, 5 per bin
        heights = np.array([b.get_height() for b in bars])
        assert heights.sum() == 400
        assert np.array_equal(heights, np.bincount(ranks[:, k] // 5, minlength=20))
    # uneven bins: 11 rank values in 3 bins of 3, 4, 4 values; 1-D ranks give one panel
    fig = sbc_histogram(torch.arange(11).repeat(3), n_samples=10, bins=3)
    bars = fig.axes[0].containers[0]
    assert [b.get_width() for b in bars] == [3, 4, 4] and [b.get_height() for b in bars] == [9, 12, 12]


@pytest.mark.parametrize(("ranks", "kwargs", "match"), [
    (np.array([0, 5, 11]), {}, "'ranks'"),
    (np.array([0, 5, -1]), {}, "'ranks'"),
    (np.array([0.5, 5.0]), {}, "'ranks'"),
    (np.zeros((2, 2, 2)), {}, "'ranks'"),
    (np.array([0, 5]), {"bins": 12}, "'bins'"),
    (np.array([0, 5]), {"level": 1.0}, "'level'"),
    (np.array([0, 5]), {"n_samples": 0}, "'n_samples'"),
    (np.zeros((4, 2), dtype=int), {"labels": ["a"]}, "'labels'"),
])
def test_sbc_histogram_rejects_bad_input(ranks: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sbc_histogram(ranks, **({"n_samples": 10, "bins": 5} | kwargs))


def test_arm_figure_draws_one_arm_per_sample_reaching_its_end_point() -> None:
    arm = InverseKinematics()
    samples, reference = arm.sample_prior(30, seed=0), arm.sample_prior(20, seed=1).numpy()
    y = torch.tensor([1.5, 0.2])
    fig = arm_figure(arm, samples, y, reference=reference)
    assert len(fig.axes) == 2
    for ax, x in zip(fig.axes, (torch.as_tensor(reference), samples), strict=True):
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(lines) == 1
        segments = lines[0].get_segments()
        assert len(segments) == len(x) and all(s.shape == (4, 2) for s in segments)
        ends = np.array([s[-1] for s in segments])
        assert np.allclose(ends, arm.forward(x).numpy())  # each polyline ends at the arm's end point
        starts = np.array([s[0] for s in segments])
        assert np.allclose(starts, np.stack([np.zeros(len(x)), x[:, 0].numpy()], 1))  # on the rail
        assert any(np.allclose(ln.get_xydata(), [[1.5, 0.2]]) for ln in ax.lines)
    assert len(arm_figure(arm, samples, y).axes) == 1


def test_arm_figure_rejects_bad_input() -> None:
    arm = InverseKinematics()
    with pytest.raises(TypeError, match="'problem'"):
        arm_figure(GaussianMixture(), torch.zeros(3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="'samples'"):
        arm_figure(arm, torch.zeros(3, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="'y'"):
        arm_figure(arm, torch.zeros(3, 4), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="'reference'"):
        arm_figure(arm, torch.zeros(3, 4), torch.zeros(2), reference=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="NaN"):
        arm_figure(arm, torch.full((3, 4), math.nan), torch.zeros(2))
