"""LISTA: equal to ISTA (computed independently in NumPy) at its initialisation, trained by the
library's loop on vector data, bitwise reproducibly and resumably."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stablerecon.data.inexact_input import InexactInputProblem
from stablerecon.nets import LISTA
from stablerecon.training import train
from stablerecon.training.checkpoint import CheckpointError


def ista_numpy(a: np.ndarray, y: np.ndarray, lam: float, iterations: int) -> np.ndarray:
    """Plain ISTA for ``1/2 ||A x - y||^2 + lam ||x||_1`` with step ``1 / ||A||^2``, per row of ``y``."""
    lip = np.linalg.norm(a, 2) ** 2
    x = np.zeros((y.shape[0], a.shape[1]))
    for _ in range(iterations):
        z = x + (y - x @ a.T) @ a / lip
        x = np.sign(z) * np.maximum(np.abs(z) - lam / lip, 0.0)
    return x


@pytest.mark.parametrize("layers", [1, 3, 25])
def test_initial_lista_is_ista(layers: int) -> None:
    rng = np.random.default_rng(layers)
    a, y = rng.standard_normal((6, 10)), rng.standard_normal((4, 6))
    net = LISTA(torch.from_numpy(a), layers=layers, lam=0.3)
    got = net(torch.from_numpy(y)).detach().numpy()
    want = ista_numpy(a, y, 0.3, layers)
    assert np.abs(want).max() > 0.05  # the thresholds did not zero everything
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_matrix_given_per_call_replaces_the_default() -> None:
    rng = np.random.default_rng(0)
    a, b, y = rng.standard_normal((5, 8)), rng.standard_normal((5, 8)), rng.standard_normal((2, 5))
    net_b = LISTA(torch.from_numpy(b), layers=4, lam=0.1)
    net_a = LISTA(torch.from_numpy(a), layers=4, lam=0.1)
    net_a.load_state_dict(net_b.state_dict())  # the weights of b's ISTA, with a as default matrix
    same = net_a(torch.from_numpy(y), torch.from_numpy(b))
    torch.testing.assert_close(same, net_b(torch.from_numpy(y)), rtol=0, atol=0)
    assert not torch.equal(net_a(torch.from_numpy(y)), same)
    assert "matrix" not in net_a.state_dict()  # the matrix is input, not a weight


def test_bad_inputs_name_the_argument() -> None:
    net = LISTA(torch.eye(3, dtype=torch.float64), layers=2)
    with pytest.raises(ValueError, match="'y'"):
        net(torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="'op'"):
        net(torch.zeros(2, 3, dtype=torch.float64), torch.eye(4, dtype=torch.float64))
    with pytest.raises(TypeError, match="'matrix'"):
        LISTA(torch.zeros(3), layers=2)


class Samples:
    """Batches of the inexact-input class (``K = 1``), a pure function of the step."""

    def __init__(self) -> None:
        self.problem = InexactInputProblem(K=1, n=10)

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.problem.samples(2, batch_size, seed=10 + step)

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.problem.samples(2, 32, seed=1)


def relative(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((x_hat - x) ** 2).sum() / (x**2).sum()


CONFIG = {"name": "lista", "seed": 1, "operator": {"kind": "identity", "size": 16},
          "model": {"kind": "postprocessing", "complex_input": False},
          "train": {"epochs": 3, "steps_per_epoch": 10, "batch_size": 16, "lr": 1e-2, "grad_clip": None}}


def run(folder: Path):  # type: ignore[no-untyped-def]
    data = Samples()
    net = LISTA(data.problem.matrix(2), layers=4, lam=1.0)
    return train(CONFIG, folder, progress=False, model=net, data=data, loss=relative), data


def test_training_reduces_the_loss_bitwise_reproducibly(tmp_path: Path) -> None:
    first, data = run(tmp_path / "a")
    second, _ = run(tmp_path / "b")
    x_val, y_val = data.validation()
    untrained = LISTA(data.problem.matrix(2), layers=4, lam=1.0)
    with torch.no_grad():
        before = float(relative(untrained(y_val), x_val))
        after = float(relative(first.model(y_val), x_val))
    assert after < 0.5 * before
    assert first.history[-1]["train_loss"] < first.history[0]["train_loss"]
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    assert [h["train_loss"] for h in first.history] == [h["train_loss"] for h in second.history]
    assert first.history[0]["val_ssim"] is None  # vectors: no SSIM


def test_custom_model_resumes_bitwise(tmp_path: Path) -> None:
    straight, _ = run(tmp_path / "straight")
    broken = tmp_path / "broken"
    run(broken)
    for name in ("model.json", "model.safetensors", "results.json"):
        (broken / name).unlink()
    ckdir = broken / "checkpoints"
    newest = sorted(ckdir.glob("step-*.json"))[-1].name.removesuffix(".json")
    for path in ckdir.glob(f"{newest}*"):
        path.unlink()  # as if killed during the last epoch
    resumed, _ = run(broken)
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_resume_refuses_another_model_class(tmp_path: Path) -> None:
    run(tmp_path / "r")
    data = Samples()
    other = torch.nn.Sequential(LISTA(data.problem.matrix(2), layers=4, lam=1.0))
    with pytest.raises(CheckpointError, match="LISTA"):
        train(CONFIG, tmp_path / "r", progress=False, model=other, data=data, loss=relative)
