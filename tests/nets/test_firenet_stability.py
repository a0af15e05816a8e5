"""FIRENET's stability in (y, A): the proved bound against measured changes, and its tightness.

References: the bound's own inequality (a theorem about the implementation, proved in the
docstring of :func:`stablerecon.nets.firenet_bound`), and for one block of two layers the
closed form of the network, checked against the implementation and used as an exact worst case
(a dense real matrix and its SVD).
"""

from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import pytest
import torch

import stablerecon as sr
from stablerecon.nets import FIRENet
from stablerecon.nets.firenet_stability import firenet_bound, random_inexact, worst_case_inexact
from stablerecon.operators.perturbations import build_perturbation


@pytest.fixture(scope="module")
def problem16() -> tuple[sr.operators.SubsampledFourier, torch.Tensor]:
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(16, 0.4, seed=0))
    x = sr.data.shepp_logan(16).double()
    return op, sr.operators.noise.add_gaussian(op.A(x), rel=0.01, seed=1)


def _bound(net, op, y, found, family) -> float:
    norm = family(found.theta).norm() if found.theta is not None else None
    return firenet_bound(net, op, float(torch.linalg.vector_norm(y)), found.e_norm, found.E_norm,
                         perturbed_norm=norm, dtype=torch.float64).bound


@pytest.mark.parametrize(("restarts", "inner", "lam", "step"),
                         [(1, 2, 1e-2, None), (2, 3, 1e-2, None), (3, 4, 2e-3, None), (4, 5, 1e-2, 0.6)])
@pytest.mark.parametrize(("r_y", "r_A"), [(1e-2, 0.0), (0.0, 1e-2), (1e-3, 1e-3), (5e-2, 5e-2)])
def test_measured_change_never_exceeds_the_bound(problem16, restarts, inner, lam, step, r_y, r_A) -> None:
    op, y = problem16
    net = FIRENet(op, restarts=restarts, inner=inner, lam=lam, tau=step, sigma=step)
    family = build_perturbation("additive", op, rank=1)
    worst = worst_case_inexact(net, y, op, family, r_y=r_y, r_A=r_A, steps=8, seed=0)
    rand = random_inexact(net, y, op, family, r_y=r_y, r_A=r_A, draws=3, seed=1)
    for found in (worst, rand):
        assert found.e_norm == pytest.approx(r_y * float(torch.linalg.vector_norm(y)))
        assert found.E_norm == pytest.approx(r_A * op.norm(), rel=1e-9, abs=1e-15)
        assert 0.0 < found.change <= _bound(net, op, y, found, family)
    assert worst.change >= rand.change  # the ascent starts from a random draw and keeps the best


def test_bound_holds_for_kspace_jitter_and_multiple_channels() -> None:
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density_lines(16, 0.5, seed=0))
    x = torch.cat([sr.data.shepp_logan(16), sr.data.shepp_logan(16).flip(-1)], dim=1).double()
    y = op.A(x)
    net = FIRENet(op, restarts=2, inner=4, lam=5e-3)
    family = build_perturbation("kspace_jitter", op)
    found = worst_case_inexact(net, y, op, family, r_y=1e-2, r_A=1e-2, steps=6)
    bound = firenet_bound(net, op, float(torch.linalg.vector_norm(y)), found.e_norm, found.E_norm,
                          perturbed_norm=family(found.theta).norm(), channels=2, dtype=torch.float64)
    assert 0.0 < found.change <= bound.bound


def test_one_block_closed_form_and_tightness(problem16) -> None:
    """``restarts=1, inner=2``: ``c_1 = 0``, ``z_1 = -y / ||y||`` and the output is
    ``W^* soft(W Re A^* y / (e ||A||^2), lam ||y|| w / (e ||A||^2)) / 2``. With a tiny ``lam``
    it is linear in ``y`` up to ``O(lam)``: the worst change under ``||e|| = rho`` is
    ``rho s / (2 e)``, ``s`` the norm of the real-linear map ``e -> Re A^* e`` (dense SVD)."""
    op, y = problem16
    lam = 1e-7
    wav = sr.sparsity.Wavelet("haar", size=16)
    net = FIRENet(op, wav, restarts=1, inner=2, lam=lam)
    ny, na = float(torch.linalg.vector_norm(y)), op.norm()
    scale = math.e * na**2
    coefficients = wav.A(op.A_adjoint(y).real) / scale
    closed = wav.A_adjoint(sr.sparsity.soft_threshold(coefficients, lam * ny / scale)) / 2
    torch.testing.assert_close(net(y, op), closed, rtol=1e-10, atol=1e-12)

    m = y.shape[-1]
    basis = torch.eye(2 * m, dtype=torch.float64)
    e_all = torch.complex(basis[:, :m], basis[:, m:]).reshape(2 * m, *y.shape[1:])
    dense = op.A_adjoint(e_all).real.reshape(2 * m, -1)
    s = float(torch.linalg.matrix_norm(dense, ord=2))
    rho = 1e-2 * ny
    exact = rho * s / (2 * math.e)
    found = worst_case_inexact(net, y, op, r_y=1e-2, steps=8)
    assert 0.98 * exact <= found.change <= (1 + 1e-4) * exact  # the ascent nearly finds it
    bound = firenet_bound(net, op, ny, rho, dtype=torch.float64).bound
    assert exact <= bound <= 20 * exact                     # not vacuous: within a factor 20


def test_bound_regimes_for_the_default_network() -> None:
    """At 12 x 8 layers the Lipschitz part grows by ~2730 per block: the bound is in the absolute
    cap's regime at every practical budget (documented as vacuous), yet it is monotone and
    finite, and infinite where the schedule is unbounded."""
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(32, 0.25, seed=0))
    net = FIRENet(op, restarts=12, inner=8, lam=2e-3)
    small = firenet_bound(net, op, 5.0, 5e-4, 0.0)
    large = firenet_bound(net, op, 5.0, 5e-2, 1e-2)
    assert small.slope_y > 1e30 and small.slope_A > 1e30
    assert small.linear > small.cap and small.bound <= small.cap
    assert 0.0 < small.bound <= large.bound <= large.cap < math.inf
    assert firenet_bound(net, op, 5.0, 5.0, 0.0).bound == math.inf
    assert firenet_bound(net, op, 5.0, 0.0, 1.5).bound == math.inf
    assert firenet_bound(net, op, 5.0, 0.0, 0.0).bound == 0.0


def test_metric_bound_for_shorter_steps(problem16) -> None:
    """With ``tau sigma ||A||^2 = theta < 1`` the bound through the Chambolle-Pock metric grows
    by at most ``(1 - sqrt(theta))^{-1/2}`` per block instead of ~2730: at 6 x 8 layers it is the
    smaller one by many orders, and it is still above the measured worst case."""
    op, y = problem16
    ny = float(torch.linalg.vector_norm(y))
    default = firenet_bound(FIRENet(op, restarts=6, inner=8, lam=1e-2), op, ny, 1e-3 * ny)
    net = FIRENet(op, restarts=6, inner=8, lam=1e-2, tau=0.5, sigma=0.5)
    short = firenet_bound(net, op, ny, 1e-3 * ny)
    assert default.metric == math.inf and short.metric < math.inf
    assert short.slope_y < 1e4 < 1e18 < default.slope_y
    assert short.bound == short.metric < short.linear
    found = worst_case_inexact(net, y, op, r_y=1e-3, steps=6)
    assert 0.0 < found.change <= short.bound


def test_validation_errors(problem16) -> None:
    op, y = problem16
    net = FIRENet(op, restarts=1, inner=2)
    family = build_perturbation("additive", op)
    with pytest.raises(TypeError, match="'net'"):
        firenet_bound(sr.nets.ZeroFilled(), op, 1.0, 0.1)
    with pytest.raises(TypeError, match="'op'"):
        firenet_bound(net, object(), 1.0, 0.1)
    with pytest.raises(ValueError, match="e_norm"):
        firenet_bound(net, op, 1.0, -0.1)
    with pytest.raises(ValueError, match="y_norm"):
        firenet_bound(net, op, 0.0, 0.1)
    with pytest.raises(ValueError, match="channels"):
        firenet_bound(net, op, 1.0, 0.1, channels=0)
    with pytest.raises(TypeError, match="'family'"):
        worst_case_inexact(net, y, op, None, r_A=0.1)
    with pytest.raises(ValueError, match="both be 0"):
        random_inexact(net, y, op, family)
    with pytest.raises(ValueError, match="one batch item"):
        worst_case_inexact(net, torch.cat([y, y]), op, family, r_y=0.1)
    with pytest.raises(ValueError, match="r_y"):
        worst_case_inexact(net, y, op, family, r_y=-1.0)
    with pytest.raises(ValueError, match="continuous"):
        worst_case_inexact(net, y, op, build_perturbation("kspace_drop", op), r_A=0.1)


def test_benchmark_writes_json_plots_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``benchmarks/firenet_inexact.py`` at its smallest: the table, the JSON (the bound holds at
    the pair found), the figure, and a rerun that recomputes nothing."""
    bench = Path(__file__).parents[2] / "benchmarks"
    args = ["--budgets", "1e-2", "--images", "1", "--steps", "1", "--draws", "1",
            "--tasks", "FIRENET", "unet_fourier128", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [str(bench / "firenet_inexact.py"), *args])
    monkeypatch.syspath_prepend(str(bench))
    runpy.run_path(str(bench / "firenet_inexact.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "FIRENET" in out and "unet_fourier128" in out and "holds" in out
    payload = json.loads((tmp_path / "firenet_inexact.json").read_text())
    row = payload["tasks"]["FIRENET"]["images"][0]["budgets"][0]
    assert row["holds"] and 0.0 < row["worst"] <= row["bound_at_pair"]
    assert (tmp_path / "firenet_inexact.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp*"))
    (tmp_path / "firenet_inexact.json").write_text(json.dumps(payload | {"marker": 1}))
    runpy.run_path(str(bench / "firenet_inexact.py"), run_name="__main__")
    again = json.loads((tmp_path / "firenet_inexact.json").read_text())
    assert again["marker"] == 1 and again["tasks"] == payload["tasks"]
