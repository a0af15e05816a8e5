"""The audit on a local Ray cluster started by the test: the same entries as the serial path
(objects shipped by Ray's serialisation, and methods rebuilt from a config on the workers), a
worker killed mid-run, and resume of a run folder across executors."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import stablerecon as sr
from stablerecon.audit import run
from stablerecon.config import AuditConfig, load_yaml
from stablerecon.runner import run_audit_config

SIZE = 32
FAST = {"steps": 3, "restarts": 1, "draws": 2, "not_rare_draws": 2, "directions": 2, "batch_size": 2,
        "kernel": {"diameter": 3}, "detail": {"size": 3}, "budgets": [0.01, 0.02, 0.05]}
TESTS = ["accuracy", "worst_case", "random_noise", "kernel"]


def _op() -> sr.operators.SubsampledFourier:
    return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(SIZE, 0.25, seed=0))


class KillOnce(torch.nn.Module):
    """Zero-filling whose first call in a worker on images ``start`` kills that worker process
    (once: a marker file remembers it), as a crashed or preempted machine would."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, y: torch.Tensor, op: Any) -> torch.Tensor:
        if y.shape[0] == 2 and not os.path.exists(self.marker) and "ray" in sys.modules:
            import ray

            if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
                Path(self.marker).write_text("killed")
                os.kill(os.getpid(), signal.SIGKILL)
        return op.A_dagger(y).real


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        fa, fb = json.dumps(a[key], sort_keys=True), json.dumps(b[key], sort_keys=True)
        if fa != fb:  # equal up to float tolerance
            la, lb = _leaves(a[key]), _leaves(b[key])
            assert len(la) == len(lb)
            for p, q in zip(la, lb, strict=True):
                assert p == q or (isinstance(p, float) and math.isclose(p, q, rel_tol=1e-5, abs_tol=1e-7))


def _leaves(v: Any) -> list:
    if isinstance(v, dict):
        return [x for k in sorted(v) for x in _leaves(v[k])]
    if isinstance(v, list):
        return [x for e in v for x in _leaves(e)]
    return [v]


def test_ray_matches_serial_and_survives_a_killed_worker(ray_session, tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    op = _op()
    x = sr.data.ellipses(6, SIZE, seed=1)
    methods = {"zf": sr.nets.ZeroFilled(), "plain": lambda y, op: 1.2 * op.A_dagger(y).real}
    serial = run(methods, op, x, tests=TESTS, options=FAST, out=tmp_path / "serial", progress=False,
                 report=False)
    ray_run = run(methods, op, x, tests=TESTS, options=FAST, out=tmp_path / "ray", progress=False,
                  executor="ray", report=False)
    assert not ray_run.failures
    _same(ray_run.entries, serial.entries)
    doc = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert len(doc["entries"]) == 2 * len(TESTS) * 3
    # a worker killed mid-run: Ray retries the unit and the entries are the same
    marker = tmp_path / "killed"
    crashing = {"zf": KillOnce(str(marker)), "plain": methods["plain"]}
    survived = run(crashing, op, x, tests=TESTS, options=FAST, out=tmp_path / "killed-run", progress=False,
                   executor="ray", report=False)
    assert marker.exists(), "no worker was killed: the test did not test anything"
    assert not survived.failures
    _same(survived.entries, serial.entries)


def test_config_audit_on_ray_rebuilds_methods_and_resumes_serially(ray_session, tmp_path: Path,
                                                                   one_thread) -> None:  # type: ignore[no-untyped-def]
    config = {
        "name": "ray-cfg",
        "operators": [{"kind": "fourier", "size": SIZE, "rate": 0.25, "seed": 0}],
        "methods": [{"name": "ZF", "kind": "zero_filled"}, {"name": "TV", "kind": "tv", "max_iter": 10}],
        "images": ["ellipses:0-4"],
        "tests": ["accuracy", "worst_case", "detail"],
        "options": FAST,
    }
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(config))
    cfg = load_yaml(path, AuditConfig)
    [serial] = run_audit_config(cfg, tmp_path / "serial", progress=False)
    [on_ray] = run_audit_config(cfg, tmp_path / "ray", progress=False, executor="ray")
    assert len(on_ray.images) == 5 and not on_ray.failures
    _same(on_ray.entries, serial.entries)
    # drop some finished units of the Ray run: the serial path finishes them to the same entries
    results = tmp_path / "ray" / "results.json"
    doc = json.loads(results.read_text())
    doc["entries"] = doc["entries"][::2]
    results.write_text(json.dumps(doc))
    [resumed] = run_audit_config(cfg, tmp_path / "ray", progress=False)
    _same(resumed.entries, serial.entries)
    assert (tmp_path / "ray" / "report.html").is_file()


def test_unreachable_cluster_fails_before_any_file(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    with pytest.raises((ValueError, ConnectionError), match="address"):
        run({"zf": sr.nets.ZeroFilled()}, _op(), sr.data.ellipses(2, SIZE, seed=0), tests=["accuracy"],
            executor="ray", address="127.0.0.1:1", out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="address"):
        run({"zf": sr.nets.ZeroFilled()}, _op(), sr.data.ellipses(2, SIZE, seed=0), tests=["accuracy"],
            address="127.0.0.1:1", out=tmp_path / "run", progress=False)


class ThreadProbe(torch.nn.Module):
    """Zero-filling that notes torch's thread count at every call, then leaves the worker on 3
    threads (as user code may)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def forward(self, y: torch.Tensor, op: Any) -> torch.Tensor:
        import time

        Path(self.folder, f"{os.getpid()}-{time.monotonic_ns()}").write_text(str(torch.get_num_threads()))
        torch.set_num_threads(3)
        return op.A_dagger(y).real


def test_ray_units_run_on_the_threads_of_their_cpus(ray_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every unit starts on as many torch threads as Ray gave its task CPUs (1), whatever an
    earlier unit on the same worker left: one-CPU tasks on all cores' threads spin against each
    other."""
    notes = tmp_path / "notes"
    notes.mkdir()
    x = sr.data.ellipses(4, SIZE, seed=0)
    run({"probe": ThreadProbe(str(notes))}, _op(), x, tests=["accuracy", "random_noise"],
        options={**FAST, "batch_size": 2}, executor="ray", progress=False, report=False)
    seen = [int(p.read_text()) for p in notes.iterdir()]
    units = 2 * 2
    assert len({p.name.split("-")[0] for p in notes.iterdir()}) < units  # workers were reused
    assert seen.count(1) >= units  # each unit's first call ran on one thread
