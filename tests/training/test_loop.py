"""The training loop: bitwise resume, schedules, early stopping, jitter, data streams."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stablerecon.config import TrainingConfig, validate
from stablerecon.metrics import psnr
from stablerecon.training import TrainingData, evaluate, learning_rate, train
from stablerecon.training.data import TRAIN_STREAM, VALIDATION_STREAM


def tiny(**train_overrides: object) -> dict:
    return {
        "name": "tiny",
        "seed": 3,
        "operator": {"kind": "fourier", "size": 32, "rate": 0.25, "seed": 0},
        "model": {"kind": "postprocessing", "unet": {"depth": 2, "width": 4}},
        "data": {"source": "ellipses", "noise": 0.01, "n_val": 4},
        "train": {"epochs": 3, "steps_per_epoch": 4, "batch_size": 2, "lr": 3e-3, **train_overrides},
    }


def weights(run: Path) -> dict[str, torch.Tensor]:
    ckdir = run / "checkpoints"
    last = sorted(ckdir.glob("step-*.json"))[-1]
    return load_file(str(ckdir / json.loads(last.read_text())["weights"]))


class Interrupt(Exception):
    pass


def interrupted_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = TrainingData.batch

    def batch(self: TrainingData, g: int, batch_size: int):  # type: ignore[no-untyped-def]
        if g == step:
            raise Interrupt(f"killed before step {g}")
        return original(self, g, batch_size)

    monkeypatch.setattr(TrainingData, "batch", batch)


@pytest.mark.parametrize(("checkpoint_every", "kill_at"), [(0, 6), (3, 7), (2, 4), (0, 4)])
def test_resume_is_bitwise_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     checkpoint_every: int, kill_at: int) -> None:
    """Kill a run mid-epoch, after an in-epoch checkpoint, or right at an epoch end; resuming
    from the last checkpoint ends with exactly the weights and history of an unbroken run."""
    cfg = tiny(checkpoint_every=checkpoint_every)
    straight = train(cfg, tmp_path / "straight", progress=False)
    with monkeypatch.context() as m:
        interrupted_at(m, kill_at)
        with pytest.raises(Interrupt):
            train(cfg, tmp_path / "broken", progress=False)
    assert not (tmp_path / "broken" / "model.json").exists()
    resumed = train(cfg, tmp_path / "broken", progress=False)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "broken")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in straight.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history]
    assert not list((tmp_path / "broken").rglob("*.tmp"))


def test_resume_refuses_other_config_and_resume_false(tmp_path: Path) -> None:
    train(tiny(), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(tiny(lr=1e-3), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="resume"):
        train(tiny(), tmp_path / "run", progress=False, resume=False)


def test_finished_run_resumes_to_the_same_model(tmp_path: Path) -> None:
    first = train(tiny(), tmp_path / "run", progress=False)
    again = train(tiny(), tmp_path / "run", progress=False)
    y = first.model.op.A(torch.rand(2, 1, 32, 32))
    assert torch.equal(first.model(y), again.model(y))
    assert len(again.history) == 3


def test_learning_rate_schedules_closed_form() -> None:
    cfg = validate(TrainingConfig, tiny(schedule="cosine", lr=1e-2, min_lr_ratio=0.1))
    total = 12
    for step in (0, 3, 6, 11):
        expected = 1e-3 + 0.5 * (1e-2 - 1e-3) * (1 + math.cos(math.pi * step / total))
        assert learning_rate(cfg, step) == pytest.approx(expected, rel=1e-12)
    cfg = validate(TrainingConfig, tiny(schedule="step", lr=1.0, step_size=1, gamma=0.5))
    assert [learning_rate(cfg, s) for s in (0, 3, 4, 8, 11)] == [1.0, 1.0, 0.5, 0.25, 0.25]
    cfg = validate(TrainingConfig, tiny(schedule="constant", lr=0.3))
    assert {learning_rate(cfg, s) for s in range(12)} == {0.3}


def test_training_learns_and_keeps_the_best_epoch(tmp_path: Path) -> None:
    """Validation PSNR after training beats the untrained (zero-filled) start, and model.json
    holds the epoch of the best validation PSNR."""
    cfg = tiny(epochs=4, steps_per_epoch=15, lr=1e-2)
    result = train(cfg, tmp_path / "run", progress=False)
    data = TrainingData(validate(TrainingConfig, cfg).data, result.model.op, seed=3)
    x, y = data.validation()
    zero = float(psnr(result.model.op.A_dagger(y).real, x, data_range=1.0).mean())
    best = max(h["val_psnr"] for h in result.history)
    assert result.best["val_psnr"] == best
    assert evaluate(result.model, x, y)["psnr"] == pytest.approx(best, abs=1e-4)
    assert best > zero + 1.0
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["completed"] and saved["best"]["epoch"] == result.best["epoch"]


def test_early_stopping_after_patience(tmp_path: Path) -> None:
    """With a learning rate too small to change anything, validation never improves after the
    first epoch and training stops after ``patience`` more epochs."""
    result = train(tiny(epochs=10, lr=1e-12, patience=2, schedule="constant"), tmp_path / "run",
                   progress=False)
    assert result.stopped_early
    assert len(result.history) == 3
    assert result.best["epoch"] == 1


def test_batches_are_pure_functions_of_seed_and_step() -> None:
    cfg = validate(TrainingConfig, tiny())
    op = cfg.operator.build()
    data = TrainingData(cfg.data, op, seed=3)
    x1, y1 = data.batch(5, 3)
    x2, y2 = TrainingData(cfg.data, op, seed=3).batch(5, 3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(data.batch(6, 3)[0], x1)
    assert not torch.equal(TrainingData(cfg.data, op, seed=4).batch(5, 3)[0], x1)
    xv = data.images(3, VALIDATION_STREAM, 0)
    assert not any(torch.equal(xv[i], data.images(3, TRAIN_STREAM, 0)[i]) for i in range(3))


def test_measurement_noise_and_jitter_levels() -> None:
    """Relative noise ``noise`` plus independent jitter: E||y - Ax||^2 = (noise^2 + jitter^2)
    ||Ax||^2."""
    cfg = validate(TrainingConfig, {**tiny(), "data": {"noise": 0.03, "jitter": 0.04, "n_val": 4}})
    op = cfg.operator.build()
    x, y = TrainingData(cfg.data, op, seed=0).batch(0, 64)
    clean = op.A(x)
    ratio = (torch.linalg.vector_norm((y - clean).flatten(1), dim=1)
             / torch.linalg.vector_norm(clean.flatten(1), dim=1))
    assert float((ratio**2).mean()) == pytest.approx(0.05**2, rel=0.05)


def test_patch_source_crops_shipped_images() -> None:
    cfg = validate(TrainingConfig, {**tiny(), "data": {"source": "patches", "images": ["camera"],
                                                        "n_val": 2}})
    data = TrainingData(cfg.data, cfg.operator.build(), seed=0)
    x = data.images(6, TRAIN_STREAM, 0)
    assert x.shape == (6, 1, 32, 32)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    from stablerecon.data import image

    source = image("camera", size=64)[0, 0]
    # every patch is a crop of the (possibly rotated / flipped) source image
    for patch in x[:, 0]:
        found = False
        for k in range(4):
            for flip in (False, True):
                p = torch.rot90(patch.flip(-1) if flip else patch, -k)
                windows = source.unfold(0, 32, 1).unfold(1, 32, 1)
                if bool(((windows - p).abs().amax(dim=(-2, -1)) < 1e-6).any()):
                    found = True
        assert found


@pytest.mark.slow
def test_jitter_trades_clean_accuracy(tmp_path: Path) -> None:
    """Networks trained with more jitter are less accurate on clean data (Genzel et al. 2022):
    validation PSNR on noiseless measurements orders no-jitter >= high-jitter."""
    scores = {}
    for jitter in (0.0, 0.05, 0.3):
        cfg = tiny(epochs=3, steps_per_epoch=20, batch_size=4, lr=5e-3)
        cfg["data"] = {"noise": 0.0, "jitter": jitter, "n_val": 16}
        cfg["model"]["unet"] = {"depth": 2, "width": 8}
        scores[jitter] = train(cfg, tmp_path / f"jitter-{jitter}", progress=False).best["val_psnr"]
    assert scores[0.0] >= scores[0.3] + 0.5, scores
    assert scores[0.05] >= scores[0.3], scores


def test_near_kernel_pair_takes_the_last_places_of_every_batch() -> None:
    """``data.pair``: x* (an ellipse phantom) and x* + z, z a disc moved near the kernel with
    ||A z|| / ||z|| = ratio, in every batch after the phantoms."""
    cfg = validate(TrainingConfig, {**tiny(batch_size=5), "data": {"noise": 0.0, "n_val": 4,
                                    "pair": {"phantom_seed": 3, "diameter": 6, "ratio": 0.2}}})
    op = cfg.operator.build()
    data = TrainingData(cfg.data, op, seed=cfg.seed)
    x_star, x_z, split = data.pair
    assert torch.equal(x_star, sr_ellipses(3))
    z = (x_z - x_star).double()
    ratio = torch.linalg.vector_norm(op.A(z)) / torch.linalg.vector_norm(z)
    assert float(ratio) == pytest.approx(0.2, rel=1e-4)
    for step in (0, 7):
        x, y = data.batch(step, 5)
        assert torch.equal(x[3:4], x_star) and torch.equal(x[4:5], x_z)
        assert torch.equal(x[:3], data.images(3, TRAIN_STREAM, step))
        assert torch.allclose(y, op.A(x))  # noiseless
    with pytest.raises(ValueError, match="batch_size"):
        data.batch(0, 2)


def sr_ellipses(seed: int) -> torch.Tensor:
    from stablerecon.data import ellipses

    return ellipses(1, 32, seed=seed)


@pytest.mark.parametrize(("pair", "field"), [
    ({"copies": 2}, "data.pair.copies"),
    ({"ratio": 1.0}, "data.pair.ratio"),
    ({"contrast": 0.0}, "data.pair.contrast"),
    ({"position": [40, 2]}, "data.pair.position"),
])
def test_bad_pair_configs_name_the_field(pair: dict, field: str) -> None:
    from stablerecon.config import ConfigError

    data = {**tiny(batch_size=4), "data": {"pair": pair}}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        validate(TrainingConfig, data)
