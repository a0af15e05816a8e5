"""Dataset audits: results that do not depend on how the images are chunked, image sets read a
chunk at a time, ranges of phantoms, bootstrap intervals, failed units, resume, devices and bad
input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import stablerecon as sr
from stablerecon.audit import ImageSet, load, median_ci, run
from stablerecon.audit.merge import merge_values
from stablerecon.config import AuditConfig
from stablerecon.config_base import ConfigError, validate

SIZE = 32
TESTS = ["accuracy", "worst_case", "random_noise", "kernel", "detail", "sampling"]
FAST = {"steps": 4, "restarts": 1, "draws": 2, "not_rare_draws": 2, "directions": 2,
        "kernel": {"diameter": 3}, "detail": {"size": 3}, "budgets": [0.01, 0.02, 0.05],
        "rates": [0.2, 0.4]}


def _op(rate: float = 0.25) -> sr.operators.SubsampledFourier:
    return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(SIZE, rate, seed=0))


def _methods(op: sr.operators.SubsampledFourier) -> dict:
    torch.manual_seed(0)
    unet = sr.nets.PostProcessing(sr.nets.UNet(1, 1, width=4, depth=2)).eval()
    return {
        "TV": sr.solvers.SparseReconstructor("tv", op, lam=0.02, max_iter=15),
        "U-Net": unet,
        "plain": lambda y, op: 1.3 * op.A_dagger(y).real,  # gradient-free search
    }


def _flat(v: object) -> list:
    if isinstance(v, dict):
        return [a for k in sorted(v) for a in _flat(v[k])]
    if isinstance(v, list):
        return [a for e in v for a in _flat(e)]
    return [v]


def _close(a: dict, b: dict, rtol: float, atol: float) -> None:
    fa, fb = _flat(a), _flat(b)
    assert len(fa) == len(fb)
    for p, q in zip(fa, fb, strict=True):
        if isinstance(p, float) and isinstance(q, float):
            assert math.isclose(p, q, rel_tol=rtol, abs_tol=atol) or (math.isinf(p) and p == q), (p, q)
        else:
            assert p == q


def test_entries_do_not_depend_on_the_batch_size(one_thread) -> None:  # type: ignore[no-untyped-def]
    """Every test, for a solver, a network and a gradient-free function, gives the same numbers
    image by image whether the 5 images run one at a time, in chunks of 2 or all at once."""
    op = _op()
    x = sr.data.ellipses(5, SIZE, seed=3)
    results = {}
    for bs in (1, 2, 5):
        results[bs] = run(_methods(op), op, x, tests=TESTS, options={**FAST, "batch_size": bs},
                          make_operator=_op, progress=False)
        assert not results[bs].failures
    assert len(results[1].units) == 3 * 6 * 5 and len(results[2].units) == 3 * 6 * 3
    for key in results[5].entries:
        for bs in (1, 2):
            _close(results[bs].entries[key], results[5].entries[key], rtol=2e-3, atol=1e-5)
    # the arrays of one image are the same too
    a = results[1].image_arrays("U-Net", "worst_case", [3])
    b = results[5].image_arrays("U-Net", "worst_case", [3])
    assert torch.allclose(a["perturbed_output"], b["perturbed_output"], atol=1e-4)


def test_lazy_image_sets_read_a_chunk_at_a_time(tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def loader(k: int):  # type: ignore[no-untyped-def]
        def load() -> torch.Tensor:
            calls.append(k)
            return sr.data.ellipses(1, SIZE, seed=k)
        return load

    images = ImageSet.lazy([(f"e{k}", loader(k)) for k in range(7)])
    assert len(calls) == 0 and len(images) == 7
    op = _op()
    x = torch.cat([sr.data.ellipses(1, SIZE, seed=k) for k in range(7)])
    held = run({"zf": sr.nets.ZeroFilled()}, op, x, tests=["accuracy"], options={"batch_size": 3},
               progress=False)
    lazy = run({"zf": sr.nets.ZeroFilled()}, op, images, tests=["accuracy"], options={"batch_size": 3},
               out=tmp_path / "run", progress=False, report=False)
    assert lazy.entries[("zf", "accuracy")] == held.entries[("zf", "accuracy")]
    # each image is produced a bounded number of times (shape, digest, truth file, the first
    # chunk's checks, its unit and as a neighbour), not once per test or per method
    assert max(np.bincount(calls)) <= 6
    saved = load(tmp_path / "run")
    assert torch.equal(saved.truth_at([6, 0]), torch.cat([sr.data.ellipses(1, SIZE, seed=6),
                                                          sr.data.ellipses(1, SIZE, seed=0)]))


def test_ranges_of_phantoms_in_configs() -> None:
    cfg = validate(AuditConfig, {"methods": [{"name": "zf", "kind": "zero_filled"}],
                                 "images": ["ellipses:3-12", "camera"]})
    sources = cfg.image_sources(32)
    assert [n for n, _ in sources] == [f"ellipses:{k}" for k in range(3, 13)] + ["camera"]
    assert torch.equal(sources[2][1](), sr.data.ellipses(1, 32, seed=5))
    with pytest.raises(ConfigError, match="images"):
        validate(AuditConfig, {"methods": [{"name": "zf", "kind": "zero_filled"}],
                               "images": ["ellipses:9-3"]})
    with pytest.raises(ConfigError, match="listed twice"):
        validate(AuditConfig, {"methods": [{"name": "zf", "kind": "zero_filled"}],
                               "images": ["ellipses:0-4", "ellipses:4"]}).image_sources(32)


def test_median_interval_matches_scipy_and_covers() -> None:
    """The percentile bootstrap of the median agrees with scipy's to a few percent of the
    spread, and covers the true median about 95% of the time."""
    rng = np.random.default_rng(0)
    sample = rng.normal(5.0, 1.0, size=200)
    ours = median_ci(sample.tolist(), resamples=4000, seed=1)
    ref = stats.bootstrap((sample,), np.median, method="percentile", n_resamples=4000,
                          random_state=np.random.default_rng(2)).confidence_interval
    assert ours.median == pytest.approx(float(np.median(sample)))
    assert abs(ours.low - ref.low) < 0.05 and abs(ours.high - ref.high) < 0.05
    hits = 0
    for t in range(200):
        s = rng.normal(0.0, 1.0, size=60)
        ci = median_ci(s.tolist(), resamples=500, seed=t)
        hits += ci.low <= 0.0 <= ci.high
    assert 0.88 <= hits / 200 <= 0.995
    assert median_ci([None, float("nan")]) is None
    one = median_ci([2.0])
    assert (one.low, one.median, one.high, one.n) == (2.0, 2.0, 2.0, 1)


def test_merge_keeps_constants_and_joins_images() -> None:
    parts = [{"rates": [0.1, 0.2], "psnr": [[1.0, 2.0], [3.0, 4.0]], "k": "x", "a": [5.0, 6.0]},
             {"rates": [0.1, 0.2], "psnr": [[7.0], [8.0]], "k": "x", "a": [9.0]}]
    merged = merge_values(parts, constants=["rates"])
    assert merged == {"rates": [0.1, 0.2], "psnr": [[1.0, 2.0, 7.0], [3.0, 4.0, 8.0]], "k": "x",
                      "a": [5.0, 6.0, 9.0]}


class Flaky(torch.nn.Module):
    """Zero-filling that raises on the images whose mean lies above ``limit`` (a deterministic
    failure on some chunks) or, with ``interrupt_after``, raises KeyboardInterrupt at that call."""

    def __init__(self, limit: float = math.inf, interrupt_after: int | None = None) -> None:
        super().__init__()
        self.limit, self.interrupt_after, self.calls = limit, interrupt_after, 0

    def forward(self, y: torch.Tensor, op: object) -> torch.Tensor:
        self.calls += 1
        if self.interrupt_after is not None and self.calls == self.interrupt_after:
            raise KeyboardInterrupt
        x = op.A_dagger(y).real  # type: ignore[attr-defined]
        if bool((x.mean(dim=(1, 2, 3)) > self.limit).any()):
            raise ValueError("this image is too bright")
        return x


def test_failed_units_are_reported_and_retried(tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    op = _op()
    x = torch.cat([0.5 * sr.data.ellipses(2, SIZE, seed=0), 0.5 + 0.5 * sr.data.ellipses(2, SIZE, seed=1)])
    limit = 0.49
    assert all(float(x[i].mean()) < limit for i in range(2))
    assert all(float(x[i].mean()) > limit for i in (2, 3))
    opts = {**FAST, "batch_size": 2}
    with pytest.warns(RuntimeWarning, match="too bright"):
        result = run({"zf": sr.nets.ZeroFilled(), "flaky": Flaky(limit)}, op, x,
                     tests=["accuracy", "worst_case"], options=opts, out=tmp_path / "run", progress=False)
    failed = sorted(k.label for k in result.failures)
    assert failed == ["flaky: accuracy [2:4]", "flaky: worst_case [2:4]"]
    assert ("zf", "worst_case") in result.entries and ("flaky", "accuracy") not in result.entries
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {f["message"] for f in doc["failures"]} == {"this image is too bright"}
    assert "FAILED" in next(r for r in result.summary() if r["method"] == "flaky")["verdict"]
    fixed = run({"zf": sr.nets.ZeroFilled(), "flaky": Flaky()}, op, x, tests=["accuracy", "worst_case"],
                options=opts, out=tmp_path / "run", progress=False, report=False)
    assert not fixed.failures and ("flaky", "accuracy") in fixed.entries
    assert fixed.units[next(iter(k for k in fixed.units if k.method == "zf"))] is not None


def test_interrupted_dataset_audit_resumes_to_the_same_entries(tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    op = _op()
    x = sr.data.ellipses(6, SIZE, seed=2)
    opts = {**FAST, "batch_size": 2}
    straight = run({"m": Flaky()}, op, x, tests=["accuracy", "worst_case", "random_noise"], options=opts,
                   progress=False)
    with pytest.raises(KeyboardInterrupt, match="resume"):
        run({"m": Flaky(interrupt_after=40)}, op, x, tests=["accuracy", "worst_case", "random_noise"],
            options=opts, out=tmp_path / "run", progress=False)
    done = json.loads((tmp_path / "run" / "results.json").read_text())["entries"]
    assert 0 < len(done) < 9
    resumed = run({"m": Flaky()}, op, x, tests=["accuracy", "worst_case", "random_noise"], options=opts,
                  out=tmp_path / "run", progress=False, report=False)
    for key, values in straight.entries.items():
        _close(resumed.entries[key], values, rtol=1e-6, atol=1e-7)


def test_bad_input_fails_before_any_work(tmp_path: Path) -> None:
    op = _op()
    x = sr.data.ellipses(2, SIZE, seed=0)
    m = {"zf": sr.nets.ZeroFilled()}
    with pytest.raises(ValueError, match="batch_size"):
        run(m, op, x, options={"batch_size": 0}, out=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="at least one image"):
        run(m, op, {}, out=tmp_path / "b", progress=False)
    pattern = "'device'.*no CUDA" if not torch.cuda.is_available() else "'device'"
    with pytest.raises(ValueError, match=pattern):
        run(m, op, x, device="cuda:7", out=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="'device'"):
        run(m, op, x, device="warp-drive", out=tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="'executor'"):
        run(m, op, x, executor="threads", out=tmp_path / "e", progress=False)
    lazy = ImageSet.lazy([("ok", lambda: sr.data.ellipses(1, SIZE, seed=0)),
                          ("bad", lambda: torch.full((1, 1, SIZE, SIZE), float("nan")))])
    with pytest.raises(ValueError, match="'bad'.*NaN"):
        run(m, op, lazy, tests=["accuracy"], out=tmp_path / "f", progress=False)
    assert not any((tmp_path / n).exists() for n in "abcdef")


def test_device_cpu_runs_and_matches(one_thread) -> None:  # type: ignore[no-untyped-def]
    op = _op()
    x = sr.data.ellipses(2, SIZE, seed=0)
    tests = ["accuracy", "worst_case"]
    a = run({"zf": sr.nets.ZeroFilled()}, op, x, tests=tests, options=FAST, progress=False)
    b = run({"zf": sr.nets.ZeroFilled()}, op, x, tests=tests, options=FAST, progress=False, device="cpu")
    assert a.entries == b.entries
