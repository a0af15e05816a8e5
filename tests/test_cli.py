"""The command line and the examples, checked against independent computations."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio
from typer.testing import CliRunner

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import stablerecon as sr
from stablerecon.cli import app

runner = CliRunner()
# audit_deepinv_model.py needs DeepInverse: `make test-interop` runs it in its own environment.
EXAMPLES = sorted(p for p in (Path(__file__).parents[1] / "examples").glob("*.py")
                  if p.name != "audit_deepinv_model.py")


def test_compare_reports_the_zero_filled_psnr() -> None:
    result = runner.invoke(app, ["compare", "--size", "64", "--rate", "0.3", "--noise", "0"])
    assert result.exit_code == 0, result.output
    reported = float(re.search(r"zero-filled adjoint\s+([\d.]+)", result.output).group(1))
    # Independent: numpy's centred FFT, zero-filling, scikit-image PSNR.
    x = sr.data.image("camera", size=64)[0, 0].numpy().astype(np.float64)
    mask = sr.operators.masks.variable_density(64, 0.3, seed=0).numpy()
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho")) * mask
    x_hat = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho")).real.clip(0, 1)
    assert reported == pytest.approx(peak_signal_noise_ratio(x, x_hat, data_range=1.0), abs=0.01)
    rows = dict(re.findall(r"^(zero-filled adjoint|l1-wavelet \(FISTA\)|TV|FIRENET)\s+([\d.]+)",
                           result.output, re.M))
    assert len(rows) == 4
    assert float(rows["TV"]) > float(rows["zero-filled adjoint"])  # regularisation helps


def test_compare_rejects_bad_options() -> None:
    result = runner.invoke(app, ["compare", "--image", "no-such-image"])
    assert result.exit_code != 0 and "no-such-image" in result.output
    result = runner.invoke(app, ["compare", "--mask", "spiral"])
    assert result.exit_code != 0 and "spiral" in result.output
    result = runner.invoke(app, ["compare", "--rate", "1.5"])
    assert result.exit_code != 0


def test_list_names_every_operator_mask_and_image() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in [*sr.operators.OPERATORS, *sr.operators.masks.MASKS, *sr.data.available_images(),
                 *sr.training.available_pretrained()]:
        assert name in result.output


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_run(path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", [str(path), str(tmp_path)])  # output folder, where taken
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    if path.name == "posterior_digits.py":
        # the uncertainty sits on the unobserved pixels, in the null space of A
        found = re.search(r"unobserved pixels ([\d.]+), observed ([\d.]+)", out)
        hidden, seen = (float(v) for v in found.groups())
        assert hidden > 3 * seen
        assert float(re.search(r"in ker A: ([\d.]+)", out).group(1)) > 0.9
        mean, zero = (float(v) for v in re.findall(r"PSNR ([\d.]+) dB", out))
        assert mean > zero + 3.0
        assert (tmp_path / "posterior_digits.png").exists() and (tmp_path / "posterior_sbc.png").exists()
        return
    psnr = float(re.search(r"PSNR ([\d.]+) dB", out).group(1))
    assert 20.0 < psnr < 40.0  # zero-filled 25% variable density: well above noise, below exact
    if "adjointness error" in out:
        assert float(re.search(r"adjointness error ([\d.e+-]+)", out).group(1)) < 1e-5
    if path.name == "firenet_mri.py":
        scores = {m.group(1).split(" (")[0]: float(m.group(2))
                  for m in re.finditer(r"^(.+?)\s+PSNR ([\d.]+) dB", out, re.M)}
        # restarts beat both the adjoint and the same number of unrestarted steps
        assert scores["FIRENET"] > scores["zero-filled"] + 1.0
        assert scores["FIRENET"] > scores["plain CP"] + 3.0
        figure = plt.imread(tmp_path / "firenet_mri.png")
        assert figure.ndim == 3 and figure.shape[1] > 2 * figure.shape[0]
    if path.name == "dip_denoise.py":
        noisy, stop, oracle = (float(v) for v in re.findall(r"PSNR ([\d.]+) dB", out))
        assert stop >= noisy + 5 and stop >= oracle - 1.5
        assert plt.imread(tmp_path / "dip_denoise.png").ndim == 3
    if path.name == "trained_mri.py":
        rows = re.finditer(r"^(.+?)\s+PSNR ([\d.]+) dB", out, re.M)
        scores = {m.group(1).strip(): float(m.group(2)) for m in rows}
        # the shipped networks are accurate in distribution (the benchmark measures 50 phantoms)
        assert scores["U-Net post-processing"] > scores["zero-filled"] + 3.0
        assert scores["ItNet"] > scores["zero-filled"] + 3.0
        assert plt.imread(tmp_path / "trained_mri.png").ndim == 3
    if path.name == "audit_your_method.py":
        import json

        doc = json.loads((tmp_path / "results.json").read_text())
        flags = {e["method"]: e["values"]["gradient_free"] for e in doc["entries"]
                 if e["test"] == "worst_case"}
        assert flags == {"median zero-filled": True, "FIRENET": False}
        assert "median zero-filled" in (tmp_path / "report.html").read_text()


TINY_CONFIG = """\
name: tiny
operator: {kind: fourier, size: 32, rate: 0.25}
model: {kind: itnet, iterations: 2, unet: {depth: 2, width: 4}}
data: {n_val: 4}
train: {epochs: 2, steps_per_epoch: 3, batch_size: 2}
"""


def test_train_command_trains_and_the_model_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_CONFIG)
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    reported = float(re.search(r"best validation PSNR ([\d.]+) dB", result.output).group(1))
    method = sr.training.load(tmp_path / "run")
    cfg_model = sr.config.load_yaml(cfg, sr.config.TrainingConfig)
    data = sr.training.TrainingData(cfg_model.data, method.op, seed=cfg_model.seed)
    x, y = data.validation()
    assert reported == pytest.approx(sr.training.evaluate(method, x, y)["psnr"], abs=0.01)
    assert str(tmp_path / "run" / "model.json") in result.output


@pytest.mark.parametrize(("edit", "field"), [
    ("train: {epochs: 2, steps_per_epoch: 3, batch_size: 2, lrr: 1}", "train.lrr"),
    ("train: {epochs: 2, steps_per_epoch: 3, batch_size: 2, lr: -0.1}", "train.lr"),
    ("operator: {kind: fourier, size: 34, rate: 0.25}", "model.unet.depth"),
    ("operator: {kind: fourier, size: 32, rate: -0.25}", "operator.rate"),
])
def test_train_command_rejects_bad_configs_before_any_work(tmp_path: Path, edit: str, field: str) -> None:
    key = edit.split(":")[0]
    text = "\n".join(edit if line.startswith(f"{key}:") else line for line in TINY_CONFIG.splitlines())
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2
    assert field in result.output
    assert not (tmp_path / "run").exists()


def test_demo_modalities_print_their_configs_and_refuse_unknown_ones() -> None:
    from stablerecon.runner import available_demos, demo_path

    assert "fourier" in available_demos()
    for name in available_demos():
        printed = runner.invoke(app, ["demo", "--modality", name, "--print-config"])
        assert printed.exit_code == 0, printed.output
        assert printed.output == demo_path(name).read_text()
    bad = runner.invoke(app, ["demo", "--modality", "ultrasound"])
    assert bad.exit_code != 0 and "ultrasound" in bad.output
