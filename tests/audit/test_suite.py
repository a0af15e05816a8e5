"""The audit suite: numbers checked against linear methods with known singular values,
interruption and resume (in process and by SIGINT to the command), the saved report."""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
import yaml

import stablerecon as sr
from stablerecon.audit import AuditResult, load, run
from stablerecon.operators import GaussianMatrix

N = 12
FAST = {"steps": 30, "restarts": 1, "draws": 4, "not_rare_draws": 2, "directions": 4,
        "kernel": {"diameter": 3}, "detail": {"size": 3}, "budgets": [0.01, 0.02, 0.05]}


class Linear(torch.nn.Module):
    """``f(y) = s W A^T y`` with a fixed random ``W``, scaled so that its largest singular
    value is ``sigma``: its worst-case amplification is ``sigma`` exactly."""

    def __init__(self, op: GaussianMatrix, sigma: float, seed: int = 0) -> None:
        super().__init__()
        n = N * N
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(n, n, generator=g, dtype=torch.float64)
        m = w @ op.to_matrix(torch.float64).T
        self.M = m * (sigma / torch.linalg.svdvals(m)[0])

    def forward(self, y: torch.Tensor, op: object = None) -> torch.Tensor:
        flat = y.reshape(y.shape[0], -1).to(torch.float64) @ self.M.T
        return flat.reshape(y.shape[0], 1, N, N)


@pytest.fixture(scope="module")
def problem() -> tuple[GaussianMatrix, torch.Tensor]:
    op = GaussianMatrix(60, N * N, seed=1)
    return op, sr.data.ellipses(2, N, seed=0).double()


def test_summary_against_singular_values(problem, one_thread) -> None:  # type: ignore[no-untyped-def]
    """The suite's amplification is the largest singular value, its verdict follows the
    threshold 3, and its relative changes are amplification x budget x ||y|| / ||f(y)||."""
    op, x = problem
    methods = {"calm": Linear(op, 2.0), "wild": Linear(op, 6.0, seed=1)}
    result = run(methods, op, x, tests=["accuracy", "worst_case", "random_noise"], options=FAST,
                 progress=False)
    rows = {r["method"]: r for r in result.summary()}
    for name, sigma in (("calm", 2.0), ("wild", 6.0)):
        assert sigma * 0.99 <= rows[name]["amplification"] <= sigma * (1 + 1e-9)
        wc = result.get(name, "worst_case")
        y = op.A(x)
        ref = torch.linalg.vector_norm(methods[name](y).reshape(2, -1), dim=1)
        k = result.options.budgets.index(0.02)
        expected = 0.02 * torch.linalg.vector_norm(y.reshape(2, -1), dim=1) * torch.tensor(
            wc["amplification"][k], dtype=torch.float64) / ref
        assert torch.allclose(torch.tensor(wc["relative_error"][k], dtype=torch.float64), expected, rtol=1e-6)
        # random directions see the Frobenius norm, not the top singular value
        assert rows[name]["adversarial_over_random"] > 1.2
    assert rows["calm"]["verdict"].startswith("stable")
    assert rows["wild"]["verdict"].startswith("unstable")
    # accuracy entries are those of metrics.psnr on the method's own output
    out = methods["calm"](op.A(x))
    assert result.get("calm", "accuracy")["clean"]["psnr"] == pytest.approx(
        sr.metrics.psnr(out, x, data_range=1.0).tolist(), abs=1e-9)


def test_plain_function_and_every_test(one_thread) -> None:  # type: ignore[no-untyped-def]
    """A user's plain function goes through every test (gradient-free search flagged); the
    kernel identity holds, and the sampling sweep of zero-filling improves with the rate."""
    size = 16
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(size, 0.25, seed=0))

    def make(rate: float) -> sr.operators.SubsampledFourier:
        return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(size, rate, seed=0))

    def zero_filled(y: torch.Tensor, op: object) -> torch.Tensor:
        return op.A_dagger(y).real

    x = {"a": sr.data.ellipses(1, size, seed=2), "b": sr.data.shepp_logan(size)}
    options = {**FAST, "steps": 4, "noise": 0.0, "rates": [0.25, 0.6, 1.0]}
    result = run({"zero": zero_filled}, op, x, options=options, make_operator=make, progress=False)
    assert result.tests == sr.audit.registry.default_tests()  # all but operator (default=False)
    assert result.get("zero", "worst_case")["gradient_free"]
    kernel = result.get("zero", "kernel")
    assert min(kernel["identity_gap"]) >= -1e-4
    assert max(kernel["kernel_ratio"]) < 1e-6
    psnrs = [sum(p) / 2 for p in result.get("zero", "sampling")["psnr"]]
    assert psnrs[0] < psnrs[1] < psnrs[2] and psnrs[2] > 60  # full sampling: exact
    assert result.get("zero", "sampling")["built_rate"] == pytest.approx(op.rate)


class Interrupting(torch.nn.Module):
    """Wraps a method and raises KeyboardInterrupt on its ``after``-th call."""

    def __init__(self, inner: torch.nn.Module, after: int) -> None:
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0

    def forward(self, y: torch.Tensor, op: object = None) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.after:
            raise KeyboardInterrupt
        return self.inner(y, op)


def _entries(folder: Path) -> list[dict]:
    return json.loads((folder / "results.json").read_text())["entries"]


def test_interrupted_run_resumes_with_identical_entries(problem, tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    op, x = problem
    calm, wild = Linear(op, 2.0), Linear(op, 6.0, seed=1)
    tests = ["accuracy", "worst_case", "random_noise", "detail"]
    straight = run({"calm": calm, "wild": wild}, op, x, tests=tests, options=FAST, out=tmp_path / "a",
                   progress=False)
    with pytest.raises(KeyboardInterrupt, match="resume"):
        run({"calm": calm, "wild": Interrupting(wild, after=20)}, op, x, tests=tests, options=FAST,
            out=tmp_path / "b", progress=False)
    partial = _entries(tmp_path / "b")
    assert 4 <= len(partial) < 8  # calm finished, wild interrupted inside a test
    resumed = run({"calm": calm, "wild": wild}, op, x, tests=tests, options=FAST, out=tmp_path / "b",
                  progress=False)
    a, b = _entries(tmp_path / "a"), _entries(tmp_path / "b")
    assert len({(e["method"], e["test"]) for e in b}) == len(b) == 8  # no duplicates
    key = lambda e: (e["method"], e["test"])  # noqa: E731
    assert sorted(a, key=key) == sorted(b, key=key)
    assert resumed.summary() == straight.summary()
    again = load(tmp_path / "b")
    assert isinstance(again, AuditResult) and again.summary() == straight.summary()


def test_a_folder_of_another_audit_is_refused(problem, tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    op, x = problem
    run({"calm": Linear(op, 2.0)}, op, x, tests=["accuracy"], options=FAST, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="images"):
        run({"calm": Linear(op, 2.0)}, op, x + 0.1, tests=["accuracy"], options=FAST, out=tmp_path,
            progress=False)
    with pytest.raises(ValueError, match="options"):
        run({"calm": Linear(op, 2.0)}, op, x, tests=["accuracy"], options={**FAST, "seed": 1}, out=tmp_path,
            progress=False)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="results"):
        run({"calm": Linear(op, 2.0)}, op, x, tests=["accuracy"], options=FAST, out=tmp_path, progress=False)


def test_bad_arguments_are_named(problem) -> None:  # type: ignore[no-untyped-def]
    op, x = problem
    f = Linear(op, 2.0)
    with pytest.raises(ValueError, match="methods"):
        run({}, op, x)
    with pytest.raises(TypeError, match="methods"):
        run({"f": 3}, op, x)
    with pytest.raises(ValueError, match="collide"):
        run({"U-Net": f, "u net": f}, op, x)
    with pytest.raises(ValueError, match="images"):
        run({"f": f}, op, x * float("nan"))
    with pytest.raises(ValueError, match="images"):
        run({"f": f}, op, x[0])
    with pytest.raises(ValueError, match="images"):
        run({"f": f}, op, sr.data.ellipses(1, 16, seed=0))
    with pytest.raises(ValueError, match="tests"):
        run({"f": f}, op, x, tests=["speed"])
    with pytest.raises(ValueError, match="make_operator"):
        run({"f": f}, op, x, tests=["sampling"])
    with pytest.raises(ValueError, match="report_budget"):
        run({"f": f}, op, x, options={"budgets": [0.01], "report_budget": 0.02})
    with pytest.raises(ValueError, match="budgets"):
        run({"f": f}, op, x, budgets=[-1.0])


class _Checker(HTMLParser):
    """Collects tags, checks that every non-void element is closed in order."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_report(folder: Path, methods: list[str]) -> _Checker:
    """The report parses with every element closed, embeds every figure of figures/ as a PNG
    data URI, references nothing outside itself and names every method."""
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors and checker.stack == [], (checker.errors, checker.stack)
    pngs = sorted((folder / "figures").glob("*.png"))
    assert pngs and len(checker.images) == len(pngs)
    embedded = set()
    for img in checker.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,") and img.get("alt")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        embedded.add(data)
    assert embedded == {p.read_bytes() for p in pngs}
    assert "http://" not in page and "https://" not in page and not checker.links
    text = " ".join(checker.text)
    for m in methods:
        assert m in text, m
    return checker


def test_report_is_self_contained_and_names_every_method(problem, tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    op, x = problem
    methods = {"calm <2>": Linear(op, 2.0), "wild & co": Linear(op, 6.0, seed=1)}
    run(methods, op, x, tests=["accuracy", "worst_case", "random_noise", "kernel", "detail"], options=FAST,
        out=tmp_path, progress=False)
    check_report(tmp_path, list(methods))
    assert "calm &lt;2&gt;" in (tmp_path / "report.html").read_text()  # names are escaped
    figures = {p.stem for p in (tmp_path / "figures").glob("*.png")}
    assert {"gallery_00", "gallery_01", "error_curves", "adversarial_vs_random", "accuracy_stability",
            "kernel_detail"} <= figures


def _cli_config(tmp_path: Path) -> Path:
    cfg = {
        "name": "tiny",
        "operators": [{"kind": "fourier", "size": 16, "rate": 0.3, "seed": 0}],
        "methods": [{"name": "zero-filled", "kind": "zero_filled"},
                    {"name": "TV", "kind": "tv", "max_iter": 40},
                    {"name": "FIRENET", "kind": "firenet", "restarts": 3, "inner": 4}],
        "images": ["ellipses:1", "shepp_logan"],
        "options": {**FAST, "steps": 8, "kernel": {"diameter": 3}, "detail": {"size": 3},
                    "rates": [0.2, 0.3]},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _audit_command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "stablerecon.cli", "audit", str(config), "--out", str(out), "--no-progress"]


@pytest.mark.slow
def test_sigint_mid_audit_then_the_same_command_resumes(tmp_path: Path) -> None:
    """The acceptance: SIGINT to a running `stablerecon audit`, then the same command again,
    ends with the entries of an uninterrupted run and no duplicates."""
    config = _cli_config(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = subprocess.run(_audit_command(config, tmp_path / "straight"), env=env, capture_output=True,
                              text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    total = len(_entries(tmp_path / "straight"))
    assert total == 3 * 6

    for attempt in range(6):  # on a loaded machine the run may finish before the signal lands
        out = tmp_path / f"killed{attempt}"
        # a shell that starts the test suite in the background (`cmd &`) makes its children ignore
        # SIGINT, and Python then installs no KeyboardInterrupt handler: restore the default
        proc = subprocess.Popen(_audit_command(config, out), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if len(_entries(out)) >= 1:  # the first unit is written: the audit is under way
                    break
            except (OSError, json.JSONDecodeError):
                pass
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if len(_entries(out)) == total:
            continue  # the tests finished before the signal (it landed in the report): try again
        break
    assert proc.returncode == 130, (f"exit {proc.returncode} after {attempt + 1} attempts with "
                                    f"{len(_entries(out))} of {total} entries: {err}")
    assert "resume" in err
    done = len(_entries(out))
    assert 1 <= done < total
    resumed = subprocess.run(_audit_command(config, out), env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "report:" in resumed.stdout
    a = sorted(_entries(tmp_path / "straight"), key=lambda e: (e["method"], e["test"]))
    b = sorted(_entries(out), key=lambda e: (e["method"], e["test"]))
    assert len({(e["method"], e["test"]) for e in b}) == len(b) == total
    assert a == b
    check_report(out, ["zero-filled", "TV", "FIRENET"])


def test_audit_command_rejects_a_bad_config(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stablerecon.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"methods": [{"name": "x", "kind": "tv", "restarts": 2}],
                                    "options": {"budgets": [0.01], "report_budget": 0.01, "stepz": 3}}))
    result = CliRunner().invoke(app, ["audit", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "methods.0" in result.output and "options.stepz" in result.output
    assert not (tmp_path / "out").exists()  # nothing written before validation


def test_amplification_bound_is_never_exceeded_by_the_search(problem, one_thread) -> None:  # type: ignore[no-untyped-def]
    """Whatever the search finds for a linear method stays below sigma_max (no false alarms)."""
    op, x = problem
    result = run({"lin": Linear(op, 2.5)}, op, x, tests=["worst_case"], options={**FAST, "restarts": 2},
                 progress=False)
    amps = result.get("lin", "worst_case")["amplification"]
    assert max(max(a) for a in amps) <= 2.5 * (1 + 1e-9)
    assert math.isclose(max(max(a) for a in amps), 2.5, rel_tol=0.01)


class DuckOperator:
    """Not a stablerecon operator: a matrix with A and A_adjoint only (DeepInverse style)."""

    def __init__(self, m: torch.Tensor) -> None:
        self.m = m

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the contract's name
        return x.reshape(x.shape[0], -1) @ self.m.T

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return (y @ self.m).reshape(y.shape[0], 1, N, N)


def test_any_object_with_a_and_adjoint_is_audited(one_thread) -> None:  # type: ignore[no-untyped-def]
    """A duck-typed operator (no norm, no A_dagger) and a least-squares method through the
    kernel test: z0 is the null-space projection from the SVD, and the least-squares solution
    (pseudo-inverse) never sees it, so its identity gap is exactly ||x - P x|| terms."""
    g = torch.Generator().manual_seed(0)
    m = torch.randn(50, N * N, generator=g, dtype=torch.float64) * 3.0  # ||A|| far from 1
    op = DuckOperator(m)
    pinv = torch.linalg.pinv(m)

    def least_squares(y: torch.Tensor, op: object) -> torch.Tensor:
        return (y @ pinv.T).reshape(y.shape[0], 1, N, N)

    x = sr.data.ellipses(2, N, seed=0).double()
    result = run({"lsq": least_squares}, op, x, tests=["kernel", "accuracy"], options=FAST, progress=False)
    kernel = result.get("lsq", "kernel")
    assert max(kernel["kernel_ratio"]) < 1e-6  # the issue's threshold for "in the kernel"
    # f(A x) = P x (projection on the row space), so ||f(Ax) - x|| = ||(I - P) x|| exactly
    proj = torch.eye(N * N, dtype=torch.float64) - pinv @ m
    expected = torch.linalg.vector_norm(x.reshape(2, -1) @ proj.T, dim=1)
    assert torch.allclose(torch.tensor(kernel["error_x"], dtype=torch.float64), expected, rtol=1e-8)
    assert min(kernel["identity_gap"]) >= -1e-9


def test_auditing_a_subset_keeps_the_folder_s_other_entries(problem, tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    op, x = problem
    both = {"calm": Linear(op, 2.0), "wild": Linear(op, 6.0, seed=1)}
    run(both, op, x, tests=["accuracy"], options=FAST, out=tmp_path, progress=False)
    first = _entries(tmp_path)
    sub = run({"calm": both["calm"]}, op, x, tests=["accuracy"], options=FAST, out=tmp_path, progress=False)
    assert [r["method"] for r in sub.summary()] == ["calm"]
    assert _entries(tmp_path) == first  # nothing recomputed, nothing lost


def test_kernel_test_on_an_operator_without_kernel_fails_before_any_work(tmp_path: Path) -> None:
    """Full Fourier sampling is unitary: the detail has no kernel part, and the audit says so,
    naming the test and the operator, before any method runs and before the run folder exists."""
    calls = []

    def method(y: torch.Tensor, op: object) -> torch.Tensor:
        calls.append(1)
        return op.A_dagger(y).real

    op = sr.operators.SubsampledFourier(torch.ones(16, 16, dtype=torch.bool))
    x = sr.data.image("camera", size=16)
    with pytest.raises(ValueError, match=r"test 'kernel'.*no component in the kernel of SubsampledFourier"):
        run({"zf": method}, op, x, tests=["accuracy", "kernel"], out=tmp_path / "out", progress=False)
    assert calls == [] and not (tmp_path / "out").exists()
    # with a kernel (half the lines), the same call runs and the kernel part is exact
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[::2] = True
    result = run({"zf": method}, sr.operators.SubsampledFourier(mask), x, tests=["kernel"],
                 out=tmp_path / "out", progress=False, report=False)
    assert max(result.get("zf", "kernel")["kernel_ratio"]) <= 1e-6


def test_kernel_target_loosens_the_kernel_split_for_badly_conditioned_operators(one_thread) -> None:  # type: ignore[no-untyped-def]
    """Radon 72 x 72 with 12 angles (nonzero singular values down to about 1e-4 ||A||, too many
    unknowns for the dense solve): the kernel split stalls above the default target 1e-6 and
    the audit refuses, naming the operator; with ``kernel.target`` 1e-3 it runs and reports
    the ratio reached (between the two targets), and a target not below
    ``kernel.ratio`` is refused naming the field."""
    from pydantic import ValidationError

    from stablerecon.audit.options import AuditOptions

    op = sr.operators.Radon(72, angles=12)
    x = {"p": sr.data.shepp_logan(72)}

    def fbp(y: torch.Tensor, op: object) -> torch.Tensor:
        return op.A_dagger(y)

    with pytest.raises(RuntimeError, match="Radon did not converge"):
        run({"fbp": fbp}, op, x, tests=["kernel"], options=FAST, progress=False)
    loose = {**FAST, "kernel": {"diameter": 3, "target": 1e-3}}
    result = run({"fbp": fbp}, op, x, tests=["kernel"], options=loose, progress=False)
    ratio = result.get("fbp", "kernel")["kernel_ratio"][0]
    assert 1e-6 < ratio <= 1e-3
    with pytest.raises(ValidationError, match=r"kernel.target \(0.2\) must be below kernel.ratio"):
        AuditOptions.model_validate({"kernel": {"target": 0.2}})
