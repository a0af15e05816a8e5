"""SDNet's acceptance on the shipped digits configs: parity with the plain-convolution baseline
(8 x 8 digits, 3 x 3 stem), and test-time lam tuning under noise (16 x 16 digits, 5 x 5 stem;
Dai et al., NeurIPS 2022, Sec. 4.3).

The networks are trained here with the configs' budgets (under a minute each on two cores; torch's
default threads, as the command line trains them),
the first CSC layer's lam is swept on corrupted validation and test sets, the residual's noise
level is fitted to the best validation lam, and lam is chosen per test sample from that fit,
without labels (`benchmarks/csc.py` prints the whole table)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stablerecon.config import ClassifierConfig, load_yaml
from stablerecon.csc.robust import RobustnessStudy, robustness_study
from stablerecon.data.classification import classification_data
from stablerecon.training.classify import accuracy, load_classifier, train_classifier

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).parents[2] / "configs" / "classifiers"
LAMS = [0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4]
NOISES = ("gaussian", "shot", "speckle", "impulse")


def _train(name: str, root: Path):  # type: ignore[no-untyped-def]
    train_classifier(CONFIGS / f"{name}.yaml", root / name, progress=False)
    return load_classifier(root / name / "model.json").eval()


def test_clean_accuracy_of_sdnet_is_within_one_point_of_the_baseline(tmp_path: Path) -> None:
    cfg = load_yaml(CONFIGS / "sdnet_digits.yaml", ClassifierConfig)
    data = classification_data(cfg.dataset, seed=cfg.seed, size=cfg.image_size)
    sdnet, conv = _train("sdnet_digits", tmp_path), _train("convnet_digits", tmp_path)
    acc = [accuracy(m, data.x_test, data.y_test) for m in (sdnet, conv)]
    assert min(acc) > 0.97
    assert abs(acc[0] - acc[1]) <= 0.01, acc


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> RobustnessStudy:
    root = tmp_path_factory.mktemp("csc")
    models = {name: _train(name, root) for name in ("sdnet_digits16", "convnet_digits16")}
    cfg = load_yaml(CONFIGS / "sdnet_digits16.yaml", ClassifierConfig)
    data = classification_data(cfg.dataset, seed=cfg.seed, size=cfg.image_size)
    return robustness_study(models["sdnet_digits16"], models["convnet_digits16"], data.x_val, data.y_val,
                            data.x_test, data.y_test, LAMS, NOISES, (1, 2, 3, 4, 5), seed=0, progress=False)


def _row(study: RobustnessStudy, noise: str, severity: int) -> dict:
    return next(r for r in study.rows if r["corruption"] == noise and r["severity"] == severity)


def test_the_best_lam_rises_with_the_noise(study: RobustnessStudy) -> None:
    """Best test lam at severity 1 below that at 4 for every noise, and a positive rank
    correlation between severity and best lam over all noises."""
    for noise in NOISES:
        assert _row(study, noise, 1)["best_lam"] < _row(study, noise, 4)["best_lam"], noise
    pairs = [(r["severity"], r["best_lam"]) for r in study.rows if r["severity"] > 0]
    concordant = sum((a[0] - b[0]) * (a[1] - b[1]) > 0 for a in pairs for b in pairs)
    discordant = sum((a[0] - b[0]) * (a[1] - b[1]) < 0 for a in pairs for b in pairs)
    assert concordant > 2 * discordant


def test_at_high_noise_the_best_lam_beats_the_training_lam_and_the_baseline(study: RobustnessStudy) -> None:
    """At severity 4, by >= 5 points on at least two noise types."""
    rows = [_row(study, n, 4) for n in NOISES]
    wins = [r["corruption"] for r in rows if r["best_accuracy"] - max(r["sdnet"], r["baseline"]) >= 0.05]
    assert len(wins) >= 2, rows


def test_the_residual_predicts_the_best_lam_and_the_label_free_choice_recovers_the_gain(
        study: RobustnessStudy) -> None:
    """The residual's noise level at the training lam against the best validation lam: R^2 >= 0.8
    for one fit pooled over all noises and for the fit of every noise type; lam chosen per test
    sample from the pooled fit (no labels, no noise type) recovers >= 80% of the oracle gain,
    the gain of the best lam of each test set over the training lam."""
    fits = study.fits["noise"]
    assert all(fit.r2 >= 0.8 for fit in fits.values()), fits
    assert study.oracle_gain() > 0.5
    assert study.recovered() >= 0.8, (study.adaptive_gain(), study.oracle_gain())
    # the study's choice, run per sample, agrees with reading the same choice off the test sweep
    for row in study.rows:
        assert abs(row["adaptive"] - row["adaptive_by"]["noise/pooled"]) <= 0.005, row
    # the paper's statistic, the residual's mean square, also predicts the best lam per noise type
    assert all(study.fits["energy"][noise].r2 >= 0.8 for noise in NOISES), study.fits["energy"]


def test_the_figure_draws_the_sweeps_and_the_pooled_fit(study: RobustnessStudy, tmp_path: Path) -> None:
    """One panel per noise with a line per severity holding the test sweep, and the pooled fit
    drawn as lam = a + b log(statistic), clipped."""
    fig = study.figure()
    axes = fig.axes
    assert len(axes) == len(NOISES) + 1
    row = _row(study, "shot", 3)
    lines = [ln for ln in axes[NOISES.index("shot")].get_lines() if ln.get_label() == "severity 3"]
    assert len(lines) == 1 and list(lines[0].get_ydata()) == row["by_lam"]
    fit = study.fits["noise"]["pooled"]
    x, y = (torch.as_tensor(v, dtype=torch.float64) for v in axes[-1].get_lines()[-1].get_data())
    assert torch.allclose(y, fit(x))
    fig.savefig(tmp_path / "lam.png")
    assert (tmp_path / "lam.png").stat().st_size > 10_000
