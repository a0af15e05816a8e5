"""Checkpoints of a tiny training run: exact reloads, and every kind of damage is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from stablerecon.config import TrainingConfig
from stablerecon.data import ellipses
from stablerecon.nets import PostProcessing, UNet
from stablerecon.operators import SubsampledFourier, masks
from stablerecon.training import CheckpointError, TrainingData, TrainResult, evaluate, load, train
from stablerecon.training.checkpoint import write_atomic

N = 32
CONFIG: dict[str, Any] = {
    "name": "tiny",
    "operator": {"size": N},
    "model": {"kind": "postprocessing", "unet": {"depth": 2, "width": 4}},
    "data": {"n_val": 4},
    "train": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 2},
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def result(one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """One tiny run, trained once for the whole module."""
    return train(CONFIG, tmp_path_factory.mktemp("ck") / "run", progress=False)


@pytest.fixture(scope="module")
def y() -> torch.Tensor:
    op = SubsampledFourier(masks.variable_density(N, rate=0.25, seed=0))
    return op.A(ellipses(3, N, seed=123))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit_json(folder: Path, edit: Callable[[dict], None]) -> None:
    path = folder / "model.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _replace_weights(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    """Rewrite the weights as a valid safetensors file and record its new SHA-256, so that only
    the checks after the checksum can catch the change."""
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    change(state)
    save_file(state, str(weights))
    _edit_json(folder, lambda meta: meta.update(weights_sha256=_sha256(weights)))


def _output(method: torch.nn.Module, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return method(y)


# ---------------------------------------------------------------- the run


def test_run_folder_holds_the_documented_files_and_no_partial_ones(result: TrainResult) -> None:
    run = result.run_dir
    for name in ("config.yaml", "results.json", "model.json", "model.safetensors"):
        assert (run / name).is_file(), name
    files = [p for p in run.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp")]
    assert not [p for p in files if p.name.startswith(".")]
    # every checkpoint is complete: JSON, weights and optimiser state, with matching checksums
    jsons = sorted((run / "checkpoints").glob("step-*.json"))
    assert [p.stem for p in jsons] == ["step-00000003", "step-00000006"]
    for path in jsons:
        meta = json.loads(path.read_text())
        assert _sha256(path.parent / meta["weights"]) == meta["weights_sha256"]
        assert _sha256(path.parent / meta["optimizer"]) == meta["optimizer_sha256"]
    meta = json.loads((run / "model.json").read_text())
    assert meta["weights"] == "model.safetensors" and meta["optimizer"] is None
    assert "optimizer_param_groups" not in meta
    assert result.completed and len(result.history) == 2


def test_best_checkpoint_is_the_best_validation_epoch(result: TrainResult) -> None:
    psnrs = [h["val_psnr"] for h in result.history]
    best_epoch = 1 + max(range(len(psnrs)), key=psnrs.__getitem__)
    assert result.best["epoch"] == best_epoch
    assert result.best["checkpoint"] == f"step-{best_epoch * 3:08d}"
    assert result.best["val_psnr"] == max(psnrs)
    results = json.loads((result.run_dir / "results.json").read_text())
    assert results["best"] == result.best and results["completed"] is True


def test_model_weights_are_those_of_the_best_checkpoint(result: TrainResult) -> None:
    run = result.run_dir
    model = load_file(str(run / "model.safetensors"))
    best = load_file(str(run / "checkpoints" / f"{result.best['checkpoint']}.safetensors"))
    assert model.keys() == best.keys()
    assert all(torch.equal(model[k], best[k]) for k in model)
    state = result.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in model.items())
    # training moved the weights away from the zero-initialised head
    assert float(model["net.head.weight"].abs().max()) > 0


@pytest.mark.parametrize("target", ["", "model.json", "model.safetensors"])
def test_load_reproduces_the_trained_method_bit_for_bit(result: TrainResult, y: torch.Tensor,
                                                        target: str) -> None:
    method = load(result.run_dir / target if target else result.run_dir)
    assert not method.training
    assert torch.equal(_output(method, y), _output(result.model, y))


def test_weights_rebuild_the_method_without_the_checkpoint_code(result: TrainResult, y: torch.Tensor) -> None:
    """Independently of ``load``: a UNet of the recorded architecture with the tensors of
    model.safetensors gives the same reconstructions."""
    op = SubsampledFourier(masks.variable_density(N, rate=0.25, seed=0))
    method = PostProcessing(UNet(2, 1, depth=2, width=4), op)
    state = load_file(str(result.run_dir / "model.safetensors"))
    method.load_state_dict(state, strict=True)
    method.eval()
    assert torch.equal(_output(method, y), _output(load(result.run_dir), y))


def test_loaded_method_scores_the_recorded_validation_psnr(result: TrainResult) -> None:
    cfg = TrainingConfig.model_validate(CONFIG)
    op = cfg.operator.build()
    x_val, y_val = TrainingData(cfg.data, op, seed=cfg.seed).validation()
    metrics = evaluate(load(result.run_dir), x_val, y_val, batch_size=cfg.train.batch_size)
    assert metrics["psnr"] == pytest.approx(result.best["val_psnr"], rel=1e-6)
    assert metrics["ssim"] == pytest.approx(result.best["val_ssim"], rel=1e-6)


def test_two_files_alone_load(copy: Path, result: TrainResult, y: torch.Tensor) -> None:
    assert sorted(p.name for p in copy.iterdir()) == ["model.json", "model.safetensors"]
    assert torch.equal(_output(load(copy), y), _output(result.model, y))
    assert torch.equal(_output(load(copy / "model.safetensors"), y), _output(result.model, y))


def test_load_with_another_operator(result: TrainResult) -> None:
    """``load(path, op)`` attaches ``op``: its measurements (another length) are accepted and
    reconstructed as the trained network does with that operator."""
    other = SubsampledFourier(masks.variable_density(N, rate=0.4, seed=3))
    method = load(result.run_dir, op=other)
    assert method.op is other
    y_other = other.A(ellipses(2, N, seed=5))
    with pytest.raises(ValueError, match="'y'"):
        _output(load(result.run_dir), y_other)  # the recorded 25% operator cannot take them
    with torch.no_grad():
        expected = result.model(y_other, other)
    assert torch.equal(_output(method, y_other), expected)


# ---------------------------------------------------------------- damage


def test_checkpoint_error_is_a_value_error() -> None:
    assert issubclass(CheckpointError, ValueError)


def test_truncated_weights(copy: Path) -> None:
    path = copy / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*SHA-256"):
        load(copy)


def test_truncated_weights_with_matching_checksum(copy: Path) -> None:
    """Even with the checksum updated, a truncated file is no safetensors file."""
    path = copy / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    _edit_json(copy, lambda meta: meta.update(weights_sha256=_sha256(path)))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*not a valid safetensors"):
        load(copy)


def test_one_flipped_byte(copy: Path) -> None:
    path = copy / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) - 7] ^= 0x01  # inside the last tensor's data: still parses
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*corrupt or was modified"):
        load(copy)


def test_tensor_of_the_wrong_shape(copy: Path) -> None:
    _replace_weights(copy, lambda s: s.update({"net.head.weight": torch.zeros(1, 5, 1, 1)}))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*'net\.head\.weight'.*\(1, 5, 1, 1\)"):
        load(copy)


def test_tensor_of_the_wrong_dtype(copy: Path) -> None:
    _replace_weights(copy, lambda s: s.update({"net.head.bias": s["net.head.bias"].double()}))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*'net\.head\.bias'.*float64"):
        load(copy)


def test_missing_and_unexpected_tensors(copy: Path) -> None:
    def change(state: dict[str, torch.Tensor]) -> None:
        state["net.extra"] = state.pop("net.head.bias")

    _replace_weights(copy, change)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*net\.head\.bias.*net\.extra"):
        load(copy)


def test_architecture_that_disagrees_with_the_training_config(copy: Path) -> None:
    _edit_json(copy, lambda meta: meta["architecture"]["unet"].update(width=8))
    with pytest.raises(CheckpointError, match=r"model\.json.*'architecture'"):
        load(copy)


def test_consistently_changed_architecture_does_not_fit_the_weights(copy: Path) -> None:
    def widen(meta: dict) -> None:
        meta["architecture"]["unet"]["width"] = 8
        meta["training"]["model"]["unet"]["width"] = 8

    _edit_json(copy, widen)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*shape"):
        load(copy)


def test_invalid_training_config_in_the_json(copy: Path) -> None:
    _edit_json(copy, lambda meta: meta["training"]["train"].update(lr=-1))
    with pytest.raises(CheckpointError, match=r"model\.json(.|\n)*train\.lr"):
        load(copy)


def test_invalid_json(copy: Path) -> None:
    path = copy / "model.json"
    path.write_text(path.read_text()[:-20])
    with pytest.raises(CheckpointError, match=r"model\.json.*not valid JSON"):
        load(copy)


@pytest.mark.parametrize("content", [{"format": "other-format", "version": 1}, [1, 2, 3], "text"])
def test_json_of_another_format(copy: Path, content: Any) -> None:
    (copy / "model.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match=r"model\.json.*not a stablerecon checkpoint"):
        load(copy)


def test_json_of_another_version(copy: Path) -> None:
    _edit_json(copy, lambda meta: meta.update(version=2))
    with pytest.raises(CheckpointError, match=r"model\.json.*version 2"):
        load(copy)


def test_json_without_a_required_field(copy: Path) -> None:
    _edit_json(copy, lambda meta: meta.pop("operator"))
    with pytest.raises(CheckpointError, match=r"model\.json.*'operator'"):
        load(copy)


def test_missing_weights_file(copy: Path) -> None:
    (copy / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*missing"):
        load(copy)


def test_folder_without_model_json(copy: Path) -> None:
    (copy / "model.json").unlink()
    with pytest.raises(CheckpointError, match=r"copy.*no model\.json"):
        load(copy)
    with pytest.raises(CheckpointError, match=r"model\.json.*does not exist"):
        load(copy / "model.safetensors")


def test_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nothing\.json.*does not exist"):
        load(tmp_path / "nothing.json")


# ---------------------------------------------------------------- atomic writes


def test_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.json"

    def write_then_fail(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("killed while saving")

    with pytest.raises(RuntimeError, match="killed"):
        write_atomic(target, write_then_fail)
    assert list((tmp_path / "out").iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        write_atomic(target, write_then_fail)
    assert target.read_text() == "old"  # the previous version survives
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["file.json"]
    write_atomic(target, lambda p: p.write_text("new"))
    assert target.read_text() == "new"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["file.json"]
