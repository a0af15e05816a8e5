"""The acceptance of audits at scale, end to end through the command line: a 100-image audit of
3 methods from one YAML, run serially and with ``--executor ray`` (a local Ray instance that the
command starts), each interrupted by SIGINT (Ctrl-C) mid-run and resumed by the same command,
ends with the same ``results.json`` entries both ways (up to float tolerance), and a report that
states each verdict with its confidence interval and shows the distributions and the worst-case
galleries."""

from __future__ import annotations

import html
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ray")

N_IMAGES = 100
METHODS = ["zero-filled", "TV", "FIRENET"]
TESTS = ["accuracy", "worst_case", "random_noise"]
BATCH = 10


def _config(tmp_path: Path) -> Path:
    cfg = {
        "name": "hundred",
        "operators": [{"kind": "fourier", "size": 32, "mask": "variable_density", "rate": 0.25, "seed": 0}],
        "methods": [{"name": "zero-filled", "kind": "zero_filled"},
                    {"name": "TV", "kind": "tv", "max_iter": 20},
                    {"name": "FIRENET", "kind": "firenet", "restarts": 2, "inner": 3}],
        "images": [f"ellipses:0-{N_IMAGES - 1}"],
        "tests": TESTS,
        "options": {"budgets": [0.01, 0.02, 0.05], "report_budget": 0.02, "steps": 3, "restarts": 1,
                    "draws": 2, "not_rare_draws": 1, "batch_size": BATCH, "worst_images": 3, "seed": 0},
    }
    path = tmp_path / "hundred.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _command(config: Path, out: Path, executor: str) -> list[str]:
    return [sys.executable, "-m", "stablerecon.cli", "audit", str(config), "--out", str(out), "--no-progress",
            "--executor", executor]


def _units(folder: Path) -> dict[tuple, Any]:
    """The finished units of the run folder: (method, test, first image, stop) -> values."""
    doc = json.loads((folder / "results.json").read_text())
    return {(e["method"], e["test"], *e["images"]): e["values"] for e in doc["entries"]}


def _interrupt_then_resume(config: Path, out: Path, executor: str, total: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a shell that starts the test suite in the background makes its children ignore SIGINT, and
    # Python then installs no KeyboardInterrupt handler: restore the default
    proc = subprocess.Popen(_command(config, out, executor), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(_units(out)) >= 3:  # a few units are written: the audit is under way
                break
        except (OSError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, f"{executor}: exit {proc.returncode}: {err[-3000:]}"
    assert "resume" in err
    done = len(_units(out))
    assert 3 <= done < total, f"{executor}: {done} of {total} units done at the interrupt"
    resumed = subprocess.run(_command(config, out, executor), env=env, capture_output=True, text=True,
                             timeout=1800)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return resumed


def _leaves(v: Any) -> list:
    if isinstance(v, dict):
        return [(k, x) for k in sorted(v) for x in _leaves(v[k])]
    if isinstance(v, list):
        return [x for e in v for x in _leaves(e)]
    return [v]


def _close(p: Any, q: Any) -> bool:
    if isinstance(p, tuple):
        return p[0] == q[0] and _close(p[1], q[1])
    if isinstance(p, float) and isinstance(q, float):
        return math.isclose(p, q, rel_tol=1e-5, abs_tol=1e-7)
    return p == q


@pytest.mark.slow
def test_hundred_image_audit_serial_and_ray_interrupted_and_resumed(tmp_path: Path) -> None:
    config = _config(tmp_path)
    total = len(METHODS) * len(TESTS) * (N_IMAGES // BATCH)
    runs = {}
    for executor in ("serial", "ray"):
        out = tmp_path / executor
        resumed = _interrupt_then_resume(config, out, executor, total)
        assert "report:" in resumed.stdout
        runs[executor] = _units(out)
        assert len(runs[executor]) == total
    serial, ray = runs["serial"], runs["ray"]
    assert serial.keys() == ray.keys()
    for key in serial:
        a, b = _leaves(serial[key]), _leaves(ray[key])
        assert len(a) == len(b), key
        bad = [(p, q) for p, q in zip(a, b, strict=True) if not _close(p, q)]
        assert not bad, (key, bad[:5])

    for method in METHODS:
        covered = sorted(i for (m, t, a, b) in ray if m == method and t == "worst_case" for i in range(a, b))
        assert covered == list(range(N_IMAGES))
    doc = json.loads((tmp_path / "ray" / "results.json").read_text())
    page = (tmp_path / "ray" / "report.html").read_text(encoding="utf-8")
    for method in METHODS:
        row = next(r for r in doc["summary"] if r["method"] == method)
        # the verdict states the median with its 95% interval over the 100 images
        assert re.search(r"amplification [\d.]+ \[[\d.]+, [\d.]+\]", row["verdict"]), row["verdict"]
        assert f"over {N_IMAGES} images" in row["verdict"]
        assert html.escape(row["verdict"], quote=False) in page
    figures = {p.name for p in (tmp_path / "ray" / "figures").glob("*.png")}
    assert "distributions.png" in figures
    assert {f"worst_{j:02d}.png" for j in range(len(METHODS))} <= figures
    assert not any(name.startswith("gallery_") for name in figures)  # no per-image galleries at 100 images
