"""SDNet's acceptance on the shipped digits configs: parity with the plain-convolution baseline,
and test-time lam tuning under noise (Dai et al., NeurIPS 2022, Sec. 4.3).

Both networks are trained here with the configs' budget (about a minute each on one core), the
first CSC layer's lam is swept on corrupted validation and test sets, and the label-free
choice is fitted on validation and measured on test (`benchmarks/csc.py` prints the table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stablerecon.config import ClassifierConfig, load_yaml
from stablerecon.data.classification import classification_data
from stablerecon.nets.csc_robust import RobustnessStudy, robustness_study
from stablerecon.training.classify import load_classifier, train_classifier

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

CONFIGS = Path(__file__).parents[2] / "configs" / "classifiers"
LAMS = [0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4]
NOISES = ("gaussian", "shot", "speckle", "impulse")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> RobustnessStudy:
    root = tmp_path_factory.mktemp("csc")
    models = {}
    for name in ("sdnet_digits16", "convnet_digits16"):
        train_classifier(CONFIGS / f"{name}.yaml", root / name, progress=False)
        models[name] = load_classifier(root / name / "model.json").eval()
    cfg = load_yaml(CONFIGS / "sdnet_digits16.yaml", ClassifierConfig)
    data = classification_data(cfg.dataset, seed=cfg.seed, size=cfg.image_size)
    return robustness_study(models["sdnet_digits16"], models["convnet_digits16"], data.x_val, data.y_val,
                            data.x_test, data.y_test, LAMS, NOISES, (1, 2, 3, 4, 5), seed=0, progress=False)


def _row(study: RobustnessStudy, noise: str, severity: int) -> dict:
    return next(r for r in study.rows if r["corruption"] == noise and r["severity"] == severity)


def test_clean_accuracy_of_sdnet_is_within_one_point_of_the_baseline(study: RobustnessStudy) -> None:
    clean = study.rows[0]
    assert clean["sdnet"] > 0.97
    assert abs(clean["sdnet"] - clean["baseline"]) <= 0.01, clean


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
    """Per noise type (the paper's procedure): R^2 >= 0.8 for every type."""
    assert all(fit.r2 >= 0.8 for fit in study.fits.values()), study.fits
    assert study.oracle_gain() > 0.2
    assert study.recovered() >= 0.8, (study.adaptive_gain(), study.oracle_gain())
