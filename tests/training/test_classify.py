"""Classifier training: it learns the digits, resumes bit for bit, refuses damaged checkpoints."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from sklearn.metrics import accuracy_score
from typer.testing import CliRunner

import stablerecon.training.classify as classify
from stablerecon.cli import app
from stablerecon.config import ClassifierConfig, ConfigError, load_yaml, validate
from stablerecon.csc import SDNet
from stablerecon.data import classification_data
from stablerecon.training import (
    CheckpointError,
    ClassifierResult,
    accuracy,
    load,
    load_classifier,
    train_classifier,
)

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIGS = Path(__file__).parents[2] / "configs" / "classifiers"


def tiny(csc: str = "first", **train: Any) -> dict[str, Any]:
    return {"name": "tiny", "seed": 1, "dataset": "digits",
            "model": {"csc": csc, "width": 8, "lam": 0.1, "steps": 2},
            "train": {"epochs": 3, "batch_size": 128, "lr": 5e-3, **train}}


@pytest.fixture(scope="module")
def digits() -> Any:
    return classification_data("digits", seed=1)


@pytest.fixture(scope="module")
def result(one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> ClassifierResult:
    """One tiny run, trained once for the checkpoint tests."""
    return train_classifier(tiny(), tmp_path_factory.mktemp("cls") / "run", progress=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit_json(path: Path, edit: Any) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


# ---------------------------------------------------------------- learning


def test_training_learns_the_digits(tmp_path: Path, digits: Any) -> None:
    """A short budget (5 epochs, ~2 s) classifies held-out digits far above chance (10%)."""
    cfg = {"name": "short", "seed": 1, "dataset": "digits",
           "model": {"csc": "first", "width": 16, "steps": 3},
           "train": {"epochs": 5, "batch_size": 64, "lr": 5e-3}}
    result = train_classifier(cfg, tmp_path / "run", progress=False)
    # the accuracy, independently: sklearn on the arg-max of the logits of the saved model
    predicted = _logits(load_classifier(tmp_path / "run"), digits.x_test).argmax(1).numpy()
    independent = accuracy_score(digits.y_test.numpy(), predicted)
    assert result.test_accuracy == pytest.approx(independent, abs=1e-12)
    assert independent >= 0.9
    vals = [h["val_accuracy"] for h in result.history]
    assert result.best["val_accuracy"] == max(vals) == result.val_accuracy
    assert result.best["epoch"] == 1 + max(i for i, v in enumerate(vals) if v == max(vals))
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["completed"] and saved["test_accuracy"] == result.test_accuracy
    assert saved["history"] == result.history


def test_accuracy_matches_sklearn_and_validates(result: ClassifierResult, digits: Any) -> None:
    model = load_classifier(result.run_dir).train()  # accuracy() evaluates in eval mode, restores the mode
    predicted = _logits(model.eval(), digits.x_val).argmax(1).numpy()
    model.train()
    expected = accuracy_score(digits.y_val.numpy(), predicted)
    assert accuracy(model, digits.x_val, digits.y_val, batch=7) == pytest.approx(expected, abs=1e-12)
    assert model.training
    with pytest.raises(ValueError, match="'y'"):
        accuracy(model, digits.x_val, digits.y_val[:-1])
    with pytest.raises(ValueError, match="'x'"):
        accuracy(model, digits.x_val[:, 0], digits.y_val)
    with pytest.raises(ValueError, match="'batch'"):
        accuracy(model, digits.x_val, digits.y_val, batch=0)


def test_divergence_stops_without_saving(tmp_path: Path) -> None:
    with pytest.raises(FloatingPointError, match="train.lr"):
        train_classifier(tiny(lr=1e30), tmp_path / "run", progress=False)
    assert not list((tmp_path / "run").rglob("*.safetensors"))
    assert not (tmp_path / "run" / "model.json").exists()


# ---------------------------------------------------------------- resume


class Interrupt(Exception):
    pass


@pytest.mark.parametrize(("csc", "where", "epoch"), [
    ("first", "validation", 2),  # killed after the training steps of epoch 2, before its checkpoint
    ("first", "epoch_start", 1),  # killed right after the checkpoint of epoch 1
    ("all", "validation", 2),
])
def test_resume_after_interruption_is_bitwise_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        csc: str, where: str, epoch: int) -> None:
    cfg = tiny(csc)
    straight = train_classifier(cfg, tmp_path / "straight", progress=False)
    with monkeypatch.context() as m:
        if where == "validation":
            calls = []
            original = classify.accuracy

            def killed(*args: Any, **kwargs: Any) -> float:
                calls.append(1)
                if len(calls) == epoch:
                    raise Interrupt
                return original(*args, **kwargs)

            m.setattr(classify, "accuracy", killed)
        else:
            original_perm = classify._permutation

            def killed_perm(seed: int, e: int, n: int) -> torch.Tensor:
                if e == epoch:
                    raise Interrupt
                return original_perm(seed, e, n)

            m.setattr(classify, "_permutation", killed_perm)
        with pytest.raises(Interrupt):
            train_classifier(cfg, tmp_path / "broken", progress=False)
    assert not (tmp_path / "broken" / "model.json").exists()
    done = json.loads((tmp_path / "broken" / "results.json").read_text())
    assert done["epochs_run"] == (epoch - 1 if where == "validation" else epoch)
    resumed = train_classifier(cfg, tmp_path / "broken", progress=False)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "broken" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the last epoch's weights too (not only the best), and the whole history
    last = f"step-{3 * 9:08d}.safetensors"  # 1077 training images in batches of 128: 9 steps
    a = load_file(str(tmp_path / "straight" / "checkpoints" / last))
    b = load_file(str(tmp_path / "broken" / "checkpoints" / last))
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in straight.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history]
    assert resumed.test_accuracy == straight.test_accuracy
    assert not list((tmp_path / "broken").rglob("*.tmp"))


def test_resume_refuses_other_config_resume_false_and_damaged_checkpoint(result: ClassifierResult,
                                                                        tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="different config"):
        train_classifier(tiny(lr=1e-3), result.run_dir, progress=False)
    with pytest.raises(ValueError, match="resume"):
        train_classifier(tiny(), result.run_dir, progress=False, resume=False)
    run = tmp_path / "run"
    shutil.copytree(result.run_dir, run)
    newest = sorted((run / "checkpoints").glob("step-*.optim.safetensors"))[-1]
    newest.write_bytes(newest.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="optimiser state.*SHA-256"):
        train_classifier(tiny(), run, progress=False)


def test_finished_run_resumes_to_the_same_model(result: ClassifierResult, digits: Any) -> None:
    again = train_classifier(tiny(), result.run_dir, progress=False)
    assert torch.equal(_logits(again.model, digits.x_test), _logits(result.model, digits.x_test))
    assert again.history == result.history and again.test_accuracy == result.test_accuracy


# ---------------------------------------------------------------- files


def test_run_folder_and_model_files(result: ClassifierResult, digits: Any) -> None:
    run = result.run_dir
    for name in ("config.yaml", "results.json", "model.json", "model.safetensors"):
        assert (run / name).is_file(), name
    assert load_yaml(run / "config.yaml", ClassifierConfig) == validate(ClassifierConfig, tiny())
    jsons = sorted((run / "checkpoints").glob("step-*.json"))
    # the newest two and the best are kept (9 steps per epoch)
    assert {p.stem for p in jsons} == {"step-00000018", "step-00000027", result.best["checkpoint"]}
    for path in jsons:
        meta = json.loads(path.read_text())
        assert _sha256(path.parent / meta["weights"]) == meta["weights_sha256"]
        assert _sha256(path.parent / meta["optimizer"]) == meta["optimizer_sha256"]
    meta = json.loads((run / "model.json").read_text())
    assert meta["optimizer"] is None and meta["test_accuracy"] == result.test_accuracy
    best = load_file(str(run / "checkpoints" / f"{result.best['checkpoint']}.safetensors"))
    model = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(model[k], best[k]) for k in best)


def test_weights_rebuild_the_classifier_without_the_loader(result: ClassifierResult, digits: Any) -> None:
    """Independently of load_classifier: an SDNet of the recorded architecture with the tensors
    of model.safetensors gives the same logits and the recorded test accuracy."""
    net = SDNet(1, 10, width=8, csc="first", lam=0.1, steps=2, seed=123)
    net.load_state_dict(load_file(str(result.run_dir / "model.safetensors")), strict=True)
    net.eval()
    assert torch.equal(_logits(net, digits.x_test), _logits(result.model, digits.x_test))
    predicted = _logits(net, digits.x_test).argmax(1).numpy()
    assert accuracy_score(digits.y_test.numpy(), predicted) == pytest.approx(result.test_accuracy, abs=1e-12)
    for target in ("model.json", "model.safetensors"):
        again = load_classifier(result.run_dir / target)
        assert not again.training
        assert torch.equal(_logits(again, digits.x_test), _logits(net, digits.x_test))


def test_missing_files(copy: Path) -> None:
    (copy / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_classifier(copy)
    (copy / "model.json").unlink()
    with pytest.raises(CheckpointError, match="model.json"):
        load_classifier(copy)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_classifier(copy / "nothing.json")


def test_corrupt_weights_and_json(copy: Path) -> None:
    weights = copy / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_classifier(copy)
    weights.write_bytes(original)
    (copy / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_classifier(copy)


@pytest.mark.parametrize("edit", ["no_checksum", "format", "width", "config", "shapes"])
def test_mismatched_description(copy: Path, edit: str) -> None:
    path, weights = copy / "model.json", copy / "model.safetensors"
    if edit == "no_checksum":
        _edit_json(path, lambda m: m.pop("weights_sha256"))
    elif edit == "format":
        _edit_json(path, lambda m: m.update(format="stablerecon-checkpoint"))
    elif edit == "width":  # architecture disagrees with the recorded config
        _edit_json(path, lambda m: m["architecture"].update(width=16))
    elif edit == "config":
        _edit_json(path, lambda m: m["config"]["model"].update(csc="sometimes"))
    else:  # a valid safetensors file with its checksum, but tensors of another network
        state = SDNet(1, 10, width=4, csc="first", steps=2).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
        _edit_json(path, lambda m: m.update(weights_sha256=_sha256(weights)))
    with pytest.raises(CheckpointError):
        load_classifier(copy)


def test_reconstruction_loader_refuses_a_classifier(result: ClassifierResult) -> None:
    with pytest.raises(CheckpointError, match="not a stablerecon checkpoint"):
        load(result.run_dir)


# ---------------------------------------------------------------- configs and CLI


@pytest.mark.parametrize(("change", "field"), [
    ({"model": {"csc": "some"}}, "model.csc"),
    ({"model": {"lam": -0.1}}, "model.lam"),
    ({"model": {"steps": 0}}, "model.steps"),
    ({"train": {"lr": 0}}, "train.lr"),
    ({"train": {"schedule": "step"}}, "train.schedule"),
    ({"train": {"epochz": 3}}, "train.epochz"),
    ({"dataset": "cifar10"}, "dataset"),
    ({"operator": {}}, "operator"),
])
def test_bad_configs_name_the_field(change: dict, field: str, tmp_path: Path) -> None:
    cfg = tiny()
    for key, value in change.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and key in cfg else value
    escaped = re.escape(field)
    with pytest.raises(ConfigError, match=rf"(?m)^\s*{escaped}:"):
        validate(ClassifierConfig, cfg)
    with pytest.raises(ConfigError, match=escaped):
        train_classifier(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_shipped_configs_share_the_budget() -> None:
    sdnet = load_yaml(CONFIGS / "sdnet_digits.yaml", ClassifierConfig)
    convnet = load_yaml(CONFIGS / "convnet_digits.yaml", ClassifierConfig)
    assert (sdnet.model.csc, convnet.model.csc) == ("first", "none")
    assert sdnet.train == convnet.train and sdnet.dataset == convnet.dataset == "digits"
    assert sdnet.model.width == convnet.model.width and sdnet.seed == convnet.seed


def test_cli_trains_and_reports_accuracies(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny("none", epochs=2)))
    out = tmp_path / "run"
    done = runner.invoke(app, ["train-classifier", str(config), "--out", str(out), "--no-progress"])
    assert done.exit_code == 0, done.output
    results = json.loads((out / "results.json").read_text())
    assert f"test accuracy {100 * results['test_accuracy']:.2f}%" in done.output
    assert f"validation accuracy {100 * results['best']['val_accuracy']:.2f}%" in done.output
    again = runner.invoke(app, ["train-classifier", str(config), "--out", str(out), "--no-progress",
                                "--no-resume"])
    assert again.exit_code == 1 and "resume" in again.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**tiny(), "train": {"lr": -1}}))
    refused = runner.invoke(app, ["train-classifier", str(bad), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "train.lr" in refused.output
    assert not (tmp_path / "x").exists()
    assert np.isfinite(results["train_seconds"])
