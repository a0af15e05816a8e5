"""The ``operator`` audit test (perturbed forward operators, inexact input), checked against
closed forms and dense matrices built here with NumPy: the search never exceeds a proven upper
bound and comes close to the supremum where that is known; random perturbations stay below the
worst case; a method that ignores its ``op`` is flagged; bad families and budgets fail before any
work; the test runs from Python, from a YAML config through the runner and the CLI, and the
report shows it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import stablerecon as sr
from stablerecon.audit import run
from stablerecon.audit.inexact import default_family, make_family, operator_perturbation
from stablerecon.audit.registry import TESTS, default_tests
from stablerecon.cli import app
from stablerecon.config import AuditConfig, ConfigError, load_yaml, validate
from stablerecon.operators import GaussianMatrix, SubsampledFourier, masks
from stablerecon.operators.perturbations import build_perturbation
from stablerecon.runner import run_audit_config

S = 6  # dense problems: 6 x 6 images


class Adjoint(torch.nn.Module):
    """Zero-filling through the adjoint of the operator it is given: ``Re(A^* y)``."""

    def forward(self, y: torch.Tensor, op: object) -> torch.Tensor:
        x = op.A_adjoint(y)
        return x.real if x.is_complex() else x


class DensePinv(torch.nn.Module):
    """``f(y, A) = A^+ y`` with the matrix of the given operator read off its columns
    (differentiable in the operator)."""

    def forward(self, y: torch.Tensor, op: object) -> torch.Tensor:
        basis = torch.eye(S * S, dtype=torch.float64).reshape(S * S, 1, S, S)
        m = op.A(basis).reshape(S * S, -1).T
        return (y.reshape(y.shape[0], -1).double() @ torch.linalg.pinv(m).T).reshape(-1, 1, S, S)


def _norms(t: torch.Tensor) -> np.ndarray:
    return np.linalg.norm(t.reshape(t.shape[0], -1).detach().numpy(), axis=1)


def test_dense_pseudo_inverse_against_closed_forms(one_thread) -> None:  # type: ignore[no-untyped-def]
    """``A`` tall (72 x 36). Mismatch: ``A^+ (A + E) x - x = A^+ E x``, whose supremum over
    rank-1 ``||E|| <= d`` is ``d ||x|| / sigma_min`` exactly. Given ``A_E``:
    ``(A + E)^+ A x - x = -(A + E)^+ E x``, at most ``d ||x|| / (sigma_min - d)`` and, to first
    order, reaching ``d ||x|| / sigma_min``. The reported errors are recomputed with NumPy from
    the returned ``theta``."""
    op = GaussianMatrix(2 * S * S, S * S, seed=3)
    x = sr.data.ellipses(2, S, seed=0).double() + 0.1
    family = make_family(op)
    assert family.name == "additive"
    a = op.matrix.double().numpy()
    sv = np.linalg.svd(a, compute_uv=False)
    budgets = [0.005, 0.02]
    res = operator_perturbation(DensePinv(), x, family, budgets, steps=30, restarts=2, draws=8, seed=1)
    assert not res.ignores_op and res.gradient_free == {"given": False, "mismatch": False}
    xs = x.reshape(2, -1).numpy()
    for k, r in enumerate(budgets):
        d = r * op.norm()
        given, mismatch = res.amplification["given"][k], res.amplification["mismatch"][k]
        assert (given <= 1 / (sv[-1] - d) * (1 + 1e-6)).all()   # no false alarm
        assert (given >= 0.9 / sv[-1]).all()                    # and close to the supremum
        assert (mismatch <= 1 / sv[-1] * (1 + 1e-6)).all()
        assert (mismatch >= 0.98 / sv[-1]).all()
        for case in ("given", "mismatch"):
            assert (res.random_max_error[case][k] <= res.error[case][k]).all()
            for b in range(2):
                u, v = family.factors(res.theta[case][k, b])
                e = (u @ v.T).numpy()
                dist = np.linalg.norm(e, 2)
                assert dist <= d * (1 + 1e-9)
                assert res.distance[case][k, b].item() == pytest.approx(dist, rel=1e-9)
                if case == "given":
                    change = np.linalg.pinv(a + e) @ (a @ xs[b]) - np.linalg.pinv(a) @ (a @ xs[b])
                else:
                    change = np.linalg.pinv(a) @ ((a + e) @ xs[b]) - np.linalg.pinv(a) @ (a @ xs[b])
                assert res.error[case][k, b].item() == pytest.approx(np.linalg.norm(change), rel=1e-6)


def test_adjoint_of_fourier_under_additive_perturbations(one_thread) -> None:  # type: ignore[no-untyped-def]
    """Zero-filling ``Re(A_E^* y)`` of a unitary-row Fourier operator: given ``A_E``, the change
    is ``Re(E^* A x)``, with supremum ``d ||A x||`` over ``||E|| <= d``; mismatch,
    ``Re(A^* E x)``, with supremum ``d ||x||`` (amplifications ``||A x|| / ||x||`` and 1)."""
    op = SubsampledFourier(masks.variable_density(16, 0.3, seed=0))  # scattered points: additive
    x = sr.data.ellipses(2, 16, seed=0).double()
    family = make_family(op)
    assert family.name == "additive" == default_family(op)
    res = operator_perturbation(Adjoint(), x, family, [0.01, 0.1], steps=20, restarts=1, draws=4)
    ratio = torch.from_numpy(_norms(op.A(x)) / _norms(x))
    assert (res.amplification["given"] <= ratio * (1 + 1e-6)).all()
    assert (res.amplification["given"] >= 0.97 * ratio).all()
    assert (res.amplification["mismatch"] <= 1 + 1e-6).all()
    assert (res.amplification["mismatch"] >= 0.97).all()
    for case in ("given", "mismatch"):
        assert (res.random_mean_error[case] <= res.random_max_error[case] + 1e-12).all()
        assert (res.random_max_error[case] <= res.error[case]).all()


def _jittered_dense(lines: np.ndarray, delta: np.ndarray, n: int) -> np.ndarray:
    """The ``L x n`` centred DFT rows at the off-grid lines ``k + delta`` (NumPy, from the
    formula)."""
    c = n // 2
    p = np.arange(n) - c
    return np.exp(-2j * np.pi * np.outer(lines + delta - c, p) / n) / np.sqrt(n)


def test_kspace_jitter_against_dense_matrices(one_thread) -> None:  # type: ignore[no-untyped-def]
    """Lines of a 16 x 16 Cartesian mask shifted off the grid: ``A_E = M_E (x) F`` built densely
    with NumPy from the formula; the reported distance and error of the worst ``theta`` are
    recomputed from it, the error stays below the bounds of zero-filling
    (``||A_E - A|| ||A x||`` given ``A_E``, ``||A_E - A|| ||x||`` mismatch), and the exact
    ``norm()`` of ``A_E`` is its largest singular value."""
    n = 16
    mask = masks.variable_density_lines(n, 0.4, seed=1)
    op = SubsampledFourier(mask)
    family = make_family(op)
    assert family.name == "kspace_jitter"
    lines = family.geometry.lines.numpy()
    x = sr.data.ellipses(2, n, seed=4).double()
    res = operator_perturbation(Adjoint(), x, family, [0.02, 0.1], steps=15, restarts=1, draws=5, seed=2)
    f = _jittered_dense(np.arange(n), np.zeros(n), n)  # the full centred DFT
    a = np.kron(f[lines], f)
    for case in ("given", "mismatch"):
        assert (res.random_max_error[case] <= res.error[case]).all()
        for k, r in enumerate([0.02, 0.1]):
            for b in range(2):
                ae = np.kron(_jittered_dense(lines, res.theta[case][k, b].numpy(), n), f)
                dist = np.linalg.norm(ae - a, 2)
                assert dist <= r * (1 + 1e-9)
                assert res.distance[case][k, b].item() == pytest.approx(dist, rel=1e-9)
                xb = x[b].reshape(-1).numpy()
                if case == "given":
                    change = (ae - a).conj().T @ (a @ xb)
                    bound = dist * np.linalg.norm(a @ xb)
                else:
                    change = a.conj().T @ ((ae - a) @ xb)
                    bound = dist * np.linalg.norm(xb)
                err = np.linalg.norm(change.real)
                assert res.error[case][k, b].item() == pytest.approx(err, rel=1e-6)
                assert err <= bound * (1 + 1e-9)
    theta = family.random(0.3, torch.Generator().manual_seed(0))
    dense = np.kron(_jittered_dense(lines, theta.numpy(), n), f)
    assert family(theta).norm() == pytest.approx(np.linalg.norm(dense, 2), rel=1e-12)


def test_discrete_drop_family(one_thread) -> None:  # type: ignore[no-untyped-def]
    """``kspace_drop``: no line fits a budget below 1 (error 0, no amplification); at ``r = 1``
    the greedy search drops lines, zero-filling loses ``A^* P A x`` with ``||.|| <= ||A x||``."""
    op = SubsampledFourier(masks.variable_density_lines(16, 0.4, seed=1))
    x = sr.data.ellipses(1, 16, seed=0).double()
    family = build_perturbation("kspace_drop", op)
    res = operator_perturbation(Adjoint(), x, family, [0.5, 1.0], cases=["mismatch"], steps=20, restarts=1,
                                draws=3)
    assert res.gradient_free["mismatch"] and "given" not in res.error
    assert res.error["mismatch"][0, 0] == 0 and math.isnan(res.amplification["mismatch"][0, 0])
    assert res.distance["mismatch"][1, 0] == pytest.approx(1.0)
    bound = _norms(op.A(x))[0]
    assert 0 < res.error["mismatch"][1, 0] <= bound * (1 + 1e-9)
    assert res.random_max_error["mismatch"][1, 0] <= res.error["mismatch"][1, 0]


def test_a_method_that_ignores_op_is_flagged(tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    """A closure over the nominal operator cannot react to ``A_E``: flagged, its given case not
    measured (not reported as stable), its mismatch case measured; the same code using its
    ``op`` argument is not flagged. The report says so and shows the operator table."""
    op = SubsampledFourier(masks.variable_density_lines(16, 0.3, seed=0))
    x = sr.data.ellipses(2, 16, seed=1)

    def uses(y: torch.Tensor, given: object) -> torch.Tensor:
        return given.A_adjoint(y).real

    def ignores(y: torch.Tensor, given: object) -> torch.Tensor:
        return op.A_adjoint(y).real

    options = {"steps": 3, "restarts": 1, "draws": 2, "directions": 2, "budgets": [0.01, 0.02]}
    result = run({"uses op": uses, "ignores op": ignores}, op, x, tests=["operator"], options=options,
                 out=tmp_path, progress=False)
    used, ignored = result.get("uses op", "operator"), result.get("ignores op", "operator")
    assert not used["ignores_op"] and used["given"] is not None and used["given"]["gradient_free"]
    assert ignored["ignores_op"] and ignored["given"] is None
    # both are the same function of the data in the mismatch case: the same numbers
    assert np.allclose(ignored["mismatch"]["error"], used["mismatch"]["error"], rtol=1e-5)
    verdict = {r["method"]: r["verdict"] for r in result.summary()}
    assert "IGNORES" in verdict["ignores op"] and "IGNORES" not in verdict["uses op"]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Operator perturbations (inexact input)" in page and "kspace_jitter" in page
    assert "ignores its op argument" in page and "cannot react to A_E" in page
    assert (tmp_path / "figures" / "operator_curves.png").is_file()
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert {e["test"] for e in doc["entries"]} == {"operator"}


def test_incompatible_family_and_bad_budgets_fail_before_any_work(tmp_path: Path) -> None:
    op = SubsampledFourier(masks.variable_density_lines(16, 0.3, seed=0))
    x = sr.data.ellipses(1, 16, seed=1)
    calls = []

    def method(y: torch.Tensor, given: object) -> torch.Tensor:
        calls.append(1)
        return given.A_adjoint(y).real

    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"test 'operator'.*options\.operator\.family = 'angle_offset'"):
        run({"m": method}, op, x, tests=["operator"], options={"operator": {"family": "angle_offset"}},
            out=out, progress=False)
    with pytest.raises(ValueError, match=r"test 'operator'.*options\.budgets.*options\.operator\.budgets"):
        run({"m": method}, op, x, tests=["accuracy", "operator"], options={"budgets": [0.5, 2.0],
                                                                          "report_budget": 0.5},
            out=out, progress=False)
    points = SubsampledFourier(masks.variable_density(16, 0.3, seed=0))
    with pytest.raises(ValueError, match=r"options\.operator\.family = 'kspace_jitter'.*whole k-space lines"):
        run({"m": method}, points, x, tests=["operator"], options={"operator": {"family": "kspace_jitter"}},
            out=out, progress=False)
    assert calls == [] and not out.exists()
    for bad, field in (([float("nan")], "operator.budgets.0"), ([1.5], "operator.budgets.0"),
                       ([0.0], "operator.budgets.0")):
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            run({"m": method}, op, x, tests=["operator"], options={"operator": {"budgets": bad}},
                progress=False)
    family = make_family(op)
    for bad in ([0.0], [float("nan")], [1.01]):
        with pytest.raises(ValueError, match="argument 'budgets'"):
            operator_perturbation(method, x, family, bad)
    with pytest.raises(ValueError, match="NaN"):
        family(torch.full(family.theta_shape, float("nan"), dtype=torch.float64))
    assert calls == []


def test_registered_listed_and_not_a_default_test() -> None:
    """``operator`` costs about twice ``worst_case``: registered with ``default=False``, so the
    default tests of a config and of ``audit.run`` leave it out; ``stablerecon list`` shows it."""
    assert "operator" in TESTS and "operator" not in default_tests()
    assert default_tests() == [t for t in TESTS if t != "operator"]
    cfg = AuditConfig.model_validate({"methods": [{"name": "z", "kind": "zero_filled"}]})
    assert "operator" not in cfg.tests
    listed = CliRunner().invoke(app, ["list"]).output
    assert any(line.split()[:1] == ["operator"] for line in listed.splitlines())
    with pytest.raises(ConfigError, match=r"options\.operator\.family: unknown operator perturbation"):
        validate(AuditConfig, {"methods": [{"name": "z", "kind": "zero_filled"}],
                               "options": {"operator": {"family": "no_such"}}})


PLAIN_FILE = '''
def plain():
    """A user's plain function (not differentiable as far as the audit knows)."""
    return lambda y, op: op.A_adjoint(y).real
'''


def test_from_yaml_on_firenet_tv_unet_itnet_and_a_callable(tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    """The shipped networks (128 x 128 Fourier), FIRENET, TV and a plain function through a
    YAML config, the runner and the CLI; kept small (one image, one budget, two steps)."""
    (tmp_path / "mine.py").write_text(PLAIN_FILE, encoding="utf-8")
    cfg = {
        "name": "operator-test",
        "operators": [{"kind": "fourier", "size": 128, "mask": "variable_density_lines", "rate": 0.25,
                       "seed": 0}],
        "methods": [{"name": "FIRENET", "kind": "firenet", "restarts": 2, "inner": 3},
                    {"name": "TV", "kind": "tv", "max_iter": 10},
                    {"name": "U-Net", "kind": "pretrained", "weights": "unet_fourier128"},
                    {"name": "ItNet", "kind": "pretrained", "weights": "itnet_fourier128"},
                    {"name": "plain", "kind": "python", "target": "mine.py:plain"}],
        "images": ["ellipses:100"],
        "tests": ["operator"],
        "options": {"budgets": [0.02], "report_budget": 0.02, "draws": 1, "directions": 1,
                    "operator": {"family": "kspace_jitter", "steps": 1, "restarts": 1}},
    }
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = CliRunner().invoke(app, ["audit", str(path), "--out", str(tmp_path / "cli"), "--no-progress"])
    assert out.exit_code == 0, out.output
    doc = json.loads((tmp_path / "cli" / "results.json").read_text(encoding="utf-8"))
    entries = {e["method"]: e["values"] for e in doc["entries"]}
    assert set(entries) == {m["name"] for m in cfg["methods"]}
    for name, values in entries.items():
        assert values["family"] == "kspace_jitter" and not values["ignores_op"], name
        for case in ("given", "mismatch"):
            amp = values[case]["amplification"][0][0]
            assert amp is not None and math.isfinite(amp) and amp > 0, (name, case)
            assert values[case]["distance"][0][0] <= 0.02 * values["norm"] * (1 + 1e-9)
            assert values[case]["gradient_free"] == (name == "plain"), (name, case)
    page = (tmp_path / "cli" / "report.html").read_text(encoding="utf-8")
    assert "Operator perturbations (inexact input)" in page
    assert all(m["name"] in page for m in cfg["methods"])
    # the same config through the runner in Python: identical numbers (seeded)
    (result,) = run_audit_config(load_yaml(path, AuditConfig), tmp_path / "py", progress=False)
    for name, values in entries.items():
        assert np.allclose(result.get(name, "operator")["mismatch"]["error"], values["mismatch"]["error"],
                           rtol=1e-5)
