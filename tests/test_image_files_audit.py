"""``stablerecon audit`` on a researcher's own things: a ``kind: python`` method from a file, a
``kind: python`` operator, and images from a folder of PNG files and an ``.npy`` file; bad files
refused before any work, naming the config entry.

Expected numbers are independent of the code under test: the PNG pixels are read back with
Pillow and divided by 255, and the method ``x_hat = A^* y`` of a real symmetric blur gives
exactly ``A^* A x``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from skimage.transform import resize as sk_resize
from typer.testing import CliRunner

import stablerecon as sr
from stablerecon.cli import app
from stablerecon.config import AuditConfig, ConfigError, load_yaml

METHOD_FILE = '''
def adjoint():
    return lambda y, op: op.A_adjoint(y)
'''

OPERATOR_FILE = '''
import stablerecon as sr


def blur(size, sigma=1.0):
    return sr.operators.Blur(sr.operators.gaussian_kernel(sigma), size)
'''

SIZE = 16


def _png(path: Path, seed: int, shape: tuple[int, int] = (SIZE, SIZE), mode: str = "L") -> np.ndarray:
    rng = np.random.default_rng(seed)
    channels = {"L": (), "RGB": (3,)}[mode]
    pixels = rng.integers(0, 256, size=(*shape, *channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)
    return pixels


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mine.py").write_text(METHOD_FILE, encoding="utf-8")
    (tmp_path / "ops.py").write_text(OPERATOR_FILE, encoding="utf-8")
    _png(tmp_path / "scans" / "a.png", 1)
    _png(tmp_path / "scans" / "b.png", 2)
    (tmp_path / "scans" / "README.txt").write_text("not an image", encoding="utf-8")
    np.save(tmp_path / "phantom.npy", sr.data.shepp_logan(SIZE)[0, 0].double().numpy())
    return tmp_path


def _write(folder: Path, images: list[str], **extra: object) -> Path:
    path = folder / "audit.yaml"
    path.write_text(yaml.safe_dump({
        "name": "mine",
        "operators": [{"kind": "python", "target": "ops.py:blur", "size": SIZE, "args": {"sigma": 1.0}}],
        "methods": [{"name": "adjoint", "kind": "python", "target": "mine.py:adjoint"}],
        "images": images,
        "tests": ["accuracy"],
        **extra,
    }), encoding="utf-8")
    return path


def test_cli_audits_png_folder_and_npy_with_python_method_and_operator(project: Path) -> None:
    path = _write(project, ["scans/*.png", "phantom.npy"])
    result = CliRunner().invoke(app, ["audit", str(path), "--out", str(project / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    doc = json.loads((project / "run" / "results.json").read_text(encoding="utf-8"))
    assert doc["images"] == ["scans/a.png", "scans/b.png", "phantom.npy"]  # README.txt skipped

    op = sr.operators.Blur(sr.operators.gaussian_kernel(1.0), SIZE)
    truth = torch.stack([
        torch.from_numpy(np.asarray(Image.open(project / "scans" / "a.png"), dtype=np.float32) / 255),
        torch.from_numpy(np.asarray(Image.open(project / "scans" / "b.png"), dtype=np.float32) / 255),
        sr.data.shepp_logan(SIZE)[0, 0],
    ])[:, None]
    recon = sr.audit.load(project / "run").arrays[("adjoint", "accuracy")]["reconstruction"]
    assert torch.allclose(recon, op.A_adjoint(op.A(truth)), atol=1e-6)

    report = (project / "run" / "report.html").read_text(encoding="utf-8")
    for source in ("scans/a.png", "scans/b.png", "phantom.npy", "mine.py:adjoint", "ops.py:blur"):
        assert source in report, source


def test_paths_are_the_config_files_not_the_working_directory(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project / "scans")
    cfg = load_yaml(_write(project, ["phantom.npy", "scans/a.png"]), AuditConfig)
    images = cfg.load_images(SIZE)
    assert list(images) == ["phantom.npy", "scans/a.png"]


def test_a_size_mismatch_is_an_error_unless_resize(project: Path) -> None:
    pixels = _png(project / "big" / "c.png", 3, shape=(24, 20))
    with pytest.raises(ConfigError, match=r"images\.0.*c\.png.*24x20.*16x16.*resize"):
        load_yaml(_write(project, ["big/c.png"]), AuditConfig)
    cfg = load_yaml(_write(project, ["big/c.png"], resize=True), AuditConfig)
    got = cfg.load_images(SIZE)["big/c.png"][0, 0].double().numpy()
    expected = sk_resize(pixels / 255.0, (SIZE, SIZE), order=1, mode="reflect", anti_aliasing=True)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_colour_rules(project: Path) -> None:
    rgb = _png(project / "colour" / "c.png", 4, mode="RGB") / 255.0
    with pytest.raises(ConfigError, match=r"images\.0.*c\.png.*colour"):
        load_yaml(_write(project, ["colour/c.png"], grey="refuse"), AuditConfig)
    lum = load_yaml(_write(project, ["colour/c.png"]), AuditConfig).load_images(SIZE)["colour/c.png"]
    bt709 = np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(lum[0, 0].double().numpy(), rgb @ bt709, atol=1e-6)
    mean = load_yaml(_write(project, ["colour/c.png"], grey="mean"), AuditConfig).load_images(SIZE)
    np.testing.assert_allclose(mean["colour/c.png"][0, 0].double().numpy(), rgb.mean(axis=2), atol=1e-6)


@pytest.mark.parametrize(("images", "make", "message"), [
    (["absent.png"], None, r"images\.0.*absent\.png"),
    (["phantom.npy", "nothing/*.png"], None, r"images\.1.*matches no image file"),
    (["corrupt.png"], lambda p: (p / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40),
     r"images\.0.*corrupt\.png"),
    (["mri.npy"], lambda p: np.save(p / "mri.npy", np.full((SIZE, SIZE), 0.5 + 0.1j)),
     r"images\.0.*mri\.npy.*complex"),
    (["nan.npy"], lambda p: np.save(p / "nan.npy", np.full((SIZE, SIZE), np.nan)),
     r"images\.0.*nan\.npy.*NaN"),
    (["high.npy"], lambda p: np.save(p / "high.npy", np.full((SIZE, SIZE), 2.0)),
     r"images\.0.*high\.npy"),
    (["scans/*.png", "scans/a.png"], None, r"images\.1.*scans/a\.png.*twice"),
    (["camera", "camera"], None, r"images.*twice"),
    (["scans/*.png"], None, None),
])
def test_bad_image_files_are_refused_by_the_cli_before_any_work(project: Path, images, make, message) -> None:
    if make is not None:
        make(project)
    path = _write(project, images)
    result = CliRunner().invoke(app, ["audit", str(path), "--out", str(project / "run"), "--no-progress"])
    if message is None:  # the control: the same call with good files succeeds
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code != 0
    assert re.search(message, " ".join(result.output.split())), result.output
    assert not (project / "run").exists()
