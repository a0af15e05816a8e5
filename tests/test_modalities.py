"""Every method kind and every audit test on each imaging modality's operator kind, through the
config path (``stablerecon audit``), at a small size (the sampling sweep over the kind's mask
rate, or over the views for CT).

Independent checks: the clean-data PSNR of the operator's ``A_dagger`` (the ``zero_filled``
method) equals scikit-image's PSNR of ``A_dagger(A x)`` computed here, and every
(method, test) pair finishes with finite values and no failure.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from skimage.metrics import peak_signal_noise_ratio
from typer.testing import CliRunner

from stablerecon.cli import app
from stablerecon.config import AuditConfig, load_yaml
from stablerecon.operators import OperatorSpec
from stablerecon.recipes import build_images

SIZE = 32

NETWORK_FILE = '''
import torch
from stablerecon.nets import ItNet, UNet


def itnet(op, consistency="adjoint"):
    """A small ItNet with random (not zero) weights: a network obeying method(y, op)."""
    torch.manual_seed(0)
    channels = 1 if op.in_kind == "real" else 2  # real CT images, complex MRI iterates
    net = ItNet(UNet(channels, channels, depth=2, width=4), iterations=2, op=op, consistency=consistency)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.0).add_(0.05 * torch.randn_like(p))
    return net.eval()
'''

# Fewer real measurements than pixels (2 x complex samples x coils < 32^2), so that A has a
# kernel on real images for the kernel test.
MODALITIES = {
    "multicoil": {"kind": "multicoil", "mask": "cartesian_lines", "rate": 0.2, "coils": 2, "acs": 4},
    "radial-multicoil": {"kind": "noncartesian", "rate": 0.06, "coils": 2, "golden": True},
    "spiral": {"kind": "noncartesian", "trajectory": "spiral", "rate": 0.25, "interleaves": 2},
    "fanbeam": {"kind": "fanbeam", "angles": 16},
}


def _walk(value: object) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    if isinstance(value, dict):
        return [v for item in value.values() for v in _walk(item)]
    if isinstance(value, list):
        return [v for item in value for v in _walk(item)]
    return []


@pytest.mark.slow
@pytest.mark.parametrize("modality", sorted(MODALITIES))
def test_every_method_and_test_runs_on_the_modality(tmp_path: Path, modality: str) -> None:
    (tmp_path / "nets.py").write_text(NETWORK_FILE, encoding="utf-8")
    step = "dagger" if MODALITIES[modality]["kind"] in ("noncartesian", "fanbeam") else "adjoint"
    config = {
        "name": modality,
        "operators": [{"size": SIZE, **MODALITIES[modality]}],
        "methods": [
            {"name": "FIRENET", "kind": "firenet", "restarts": 3, "inner": 4},
            {"name": "TV", "kind": "tv", "max_iter": 40},
            {"name": "l1-wavelet", "kind": "fista", "max_iter": 40},
            {"name": "DIP", "kind": "dip", "steps": 15},
            {"name": "ItNet", "kind": "python", "target": "nets.py:itnet", "args": {"consistency": step}},
            {"name": "zero-filled", "kind": "zero_filled"},
        ],
        "images": ["mr:0", "mr_t1"],
        "tests": ["accuracy", "worst_case", "random_noise", "kernel", "detail"]
        + (["sampling"] if OperatorSpec(size=SIZE, **MODALITIES[modality]).sweepable else []),
        "options": {"budgets": [0.02], "report_budget": 0.02, "steps": 2, "restarts": 1, "draws": 2,
                    "not_rare_draws": 2, "rates": [0.3, 0.6], "seed": 0},
    }
    path = tmp_path / f"{modality}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["audit", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output

    saved = json.loads((out / "results.json").read_text())
    assert saved["failures"] == []
    pairs = {(e["method"], e["test"]) for e in saved["entries"]}
    methods = [m["name"] for m in config["methods"]]
    assert pairs == {(m, t) for m in methods for t in config["tests"]}
    for entry in saved["entries"]:
        values = _walk(entry["values"])
        assert values and all(math.isfinite(v) for v in values), (entry["method"], entry["test"])
    assert (out / "report.html").stat().st_size > 10_000

    # The operator's A_dagger on clean data, scored here with scikit-image.
    cfg = load_yaml(path, AuditConfig)
    op = cfg.operators[0].build()
    images = build_images(config["images"], SIZE)
    accuracy = next(e for e in saved["entries"] if e["method"] == "zero-filled" and e["test"] == "accuracy")
    for i, x in enumerate(images.values()):
        x_hat = op.A_dagger(op.A(x)).real
        expected = peak_signal_noise_ratio(x[0, 0].double().numpy(), x_hat[0, 0].double().numpy(),
                                           data_range=1.0)
        assert accuracy["values"]["clean"]["psnr"][i] == pytest.approx(expected, abs=1e-3)
    assert np.isfinite(expected)
