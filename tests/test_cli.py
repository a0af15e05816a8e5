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
EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_demo_reports_the_zero_filled_psnr() -> None:
    result = runner.invoke(app, ["demo", "--size", "64", "--rate", "0.3", "--noise", "0"])
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


def test_demo_rejects_bad_options() -> None:
    result = runner.invoke(app, ["demo", "--image", "no-such-image"])
    assert result.exit_code != 0 and "no-such-image" in result.output
    result = runner.invoke(app, ["demo", "--mask", "spiral"])
    assert result.exit_code != 0 and "spiral" in result.output
    result = runner.invoke(app, ["demo", "--rate", "1.5"])
    assert result.exit_code != 0


def test_list_names_every_operator_mask_and_image() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in [*sr.operators.OPERATORS, *sr.operators.masks.MASKS, *sr.data.available_images()]:
        assert name in result.output


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_run(path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", [str(path), str(tmp_path)])  # output folder, where taken
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
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
