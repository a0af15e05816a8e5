"""``kind: python``: a researcher's own method and operator named in an audit config, from a file
or a module, with optional safetensors weights; bad targets and weights refused before any work.

Expected numbers are closed forms: the method ``x_hat = gain * A^* y`` with ``gain`` loaded from
the weights file gives exactly ``gain * A^* A x``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file
from typer.testing import CliRunner

import stablerecon as sr
from stablerecon.cli import app
from stablerecon.config import AuditConfig, ConfigError, load_yaml
from stablerecon.recipes import build_method
from stablerecon.runner import run_audit_config

METHOD_FILE = '''
import torch
from torch import nn


class Gain(nn.Module):
    """x_hat = gain * Re(A^* y)"""

    def __init__(self, start=1.0):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(start)))

    def forward(self, y, op):
        x = op.A_adjoint(y)
        return self.gain * (x.real if x.is_complex() else x)


def make(start=1.0):
    return Gain(start)


def plain(op):  # takes the audit's operator
    return lambda y, op2: op.A_adjoint(y)


def broken():
    raise RuntimeError("no GPU here")


def wrong_shape():
    return lambda y, op: op.A_adjoint(y)[..., :-1]
'''

OPERATOR_FILE = '''
import stablerecon as sr


def blur(size, sigma=1.0):
    return sr.operators.Blur(sr.operators.gaussian_kernel(sigma), size)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mine.py").write_text(METHOD_FILE, encoding="utf-8")
    (tmp_path / "ops.py").write_text(OPERATOR_FILE, encoding="utf-8")
    save_file({"gain": torch.tensor(0.5)}, str(tmp_path / "gain.safetensors"))
    return tmp_path


def _write(folder: Path, methods: list[dict], operator: dict | None = None) -> Path:
    path = folder / "audit.yaml"
    path.write_text(yaml.safe_dump({
        "name": "mine",
        "operators": [operator or {"kind": "python", "target": "ops.py:blur", "size": 16,
                                   "args": {"sigma": 1.0}}],
        "methods": methods,
        "images": ["ellipses:1"],
        "tests": ["accuracy"],
    }), encoding="utf-8")
    return path


def test_file_targets_weights_and_the_report(project: Path) -> None:
    path = _write(project, [{"name": "gain", "kind": "python", "target": "mine.py:make",
                             "weights": "gain.safetensors"},
                            {"name": "adjoint", "kind": "python", "target": "mine.py:plain"}])
    cfg = load_yaml(path, AuditConfig)  # relative paths are the config file's
    (result,) = run_audit_config(cfg, project / "run", progress=False)
    op = sr.operators.Blur(sr.operators.gaussian_kernel(1.0), 16)
    x = sr.data.ellipses(1, 16, seed=1)
    expected = 0.5 * op.A_adjoint(op.A(x))
    assert torch.allclose(result.arrays[("gain", "accuracy")]["reconstruction"], expected, atol=1e-6)
    assert torch.allclose(result.arrays[("adjoint", "accuracy")]["reconstruction"], 2 * expected, atol=1e-6)
    report = (project / "run" / "report.html").read_text(encoding="utf-8")
    assert "mine.py:make" in report and "gain.safetensors" in report and "ops.py:blur" in report


def test_module_targets_and_the_cli(project: Path) -> None:
    path = _write(project, [{"name": "zero", "kind": "zero_filled"}],
                  operator={"kind": "python", "target": "stablerecon.operators:Identity", "size": 16})
    out = CliRunner().invoke(app, ["audit", str(path), "--out", str(project / "cli"), "--no-progress"])
    assert out.exit_code == 0, out.output
    doc = json.loads((project / "cli" / "results.json").read_text(encoding="utf-8"))
    (entry,) = doc["entries"]
    assert entry["values"]["clean"]["psnr"][0] > 100  # the identity is inverted exactly
    assert "python" in CliRunner().invoke(app, ["list"]).output


@pytest.mark.parametrize(("method", "field"), [
    ({"target": "missing.py:make"}, "methods.0.target"),
    ({"target": "mine.py:nothere"}, "methods.0.target"),
    ({"target": "no_such_package_xyz:make"}, "methods.0.target"),
    ({"target": "mine.py"}, "methods.0.target"),
    ({"target": "mine.py:make", "weights": "gain.pt"}, "methods.0.weights"),
    ({"target": "mine.py:make", "weights": "absent.safetensors"}, "methods.0.weights"),
    ({"target": "mine.py:make", "weights": "corrupt.safetensors"}, "methods.0.weights"),
    ({"target": "mine.py:make", "lam": 0.1}, "methods.0.lam"),
])
def test_bad_targets_and_weights_name_the_field(project: Path, method: dict, field: str) -> None:
    (project / "corrupt.safetensors").write_bytes(b"\x00not a safetensors file" * 10)
    path = _write(project, [{"name": "m", "kind": "python", **method}])
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_yaml(path, AuditConfig)


@pytest.mark.parametrize(("method", "message"), [
    ({"target": "mine.py:broken"}, "'m'.*factory raised RuntimeError: no GPU here"),
    ({"target": "mine.py:make", "args": {"stat": 1}}, "'m'.*factory raised TypeError"),
    ({"target": "mine.py:plain", "weights": "gain.safetensors"}, "'m'.*need an nn.Module"),
])
def test_factories_that_fail_are_refused_before_any_work(project: Path, method: dict, message: str) -> None:
    cfg = load_yaml(_write(project, [{"name": "m", "kind": "python", **method}]), AuditConfig)
    with pytest.raises(ValueError, match=message):
        run_audit_config(cfg, project / "run", progress=False)
    assert not (project / "run").exists()


def test_weights_that_do_not_match_are_refused(project: Path) -> None:
    save_file({"gain": torch.tensor(0.5), "bias": torch.tensor(1.0)}, str(project / "extra.safetensors"))
    save_file({"gain": torch.ones(3)}, str(project / "shape.safetensors"))
    for name in ("extra", "shape"):
        cfg = load_yaml(_write(project, [{"name": "m", "kind": "python", "target": "mine.py:make",
                                          "weights": f"{name}.safetensors"}]), AuditConfig)
        op = cfg.operators[0].build()
        with pytest.raises(ValueError, match=f"'m'.*{name}.safetensors.*do not match"):
            build_method(cfg.methods[0], op)


def test_a_method_with_the_wrong_output_is_refused_before_results(project: Path) -> None:
    cfg = load_yaml(_write(project, [{"name": "m", "kind": "python", "target": "mine.py:wrong_shape"}]),
                    AuditConfig)
    with pytest.raises(ValueError, match=r"'methods'\['m'\] returned shape"):
        run_audit_config(cfg, project / "run", progress=False)
    assert not (project / "run" / "results.json").exists()


def test_an_operator_factory_must_return_an_operator(project: Path) -> None:
    (project / "bad.py").write_text("def make(size):\n    return object()\n", encoding="utf-8")
    cfg = load_yaml(_write(project, [{"name": "z", "kind": "zero_filled"}],
                           operator={"kind": "python", "target": "bad.py:make", "size": 16}), AuditConfig)
    with pytest.raises(ValueError, match="bad.py:make.*A and A_adjoint"):
        run_audit_config(cfg, project / "run", progress=False)
