"""The executors of :mod:`stablerecon.audit.executors`: serial and Ray give the same outcomes, a
unit's exception is a :class:`UnitFailure` that is not retried, a killed worker is retried by
Ray, interrupting a Ray run cancels what is still running, and bad arguments are errors before
any work.

The Ray tests share one local Ray instance (two CPUs) and are skipped where Ray is not installed.
The functions run as units are defined here at module level; the Ray fixture registers this module
to be pickled by value, so the workers need not import it (``tests/`` is not on their path).
Units talk to the test through files in ``tmp_path`` (each attempt appends a line to
``attempts-<key>``), which works across worker processes.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stablerecon.audit.executors import (
    EXECUTORS,
    RAY_MISSING,
    Executor,
    RayExecutor,
    SerialExecutor,
    UnitFailure,
    UnreachableClusterError,
    make_executor,
)

# --------------------------------------------------------------------------- units (module level)


@dataclass(frozen=True)
class Key:
    """A unit key like the audit's: method x test x chunk."""

    method: str
    test: str
    chunk: int


def _attempt(folder: str, key: Any) -> int:
    """Record one attempt of ``key``; the number of attempts so far, this one included."""
    path = Path(folder) / f"attempts-{key}"
    with path.open("a") as f:
        f.write("attempt\n")
    return len(path.read_text().splitlines())


def _attempts(folder: Path, key: Any) -> int:
    path = folder / f"attempts-{key}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_for(path: Path, seconds: float = 300.0) -> bool:
    """Whether ``path`` appears (polled: it is written by another process); ``seconds`` only
    guards against a hang, so a loaded machine's slowness never decides the outcome."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def scaled(payload: dict[str, Any], key: Key) -> tuple[str, float]:
    """A deterministic unit."""
    return f"{key.method}/{key.test}", payload["scale"] * (key.chunk + 1) + len(key.method)


def fails_on_three(folder: str, key: int) -> int:
    """Key 3 raises a ``ValueError``; every attempt is recorded."""
    _attempt(folder, key)
    if key == 3:
        raise ValueError(f"bad key {key}")
    return key * key


def dies_once(folder: str, key: int) -> int:
    """Key 2 kills its own worker process on its first attempt."""
    if _attempt(folder, key) == 1 and key == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return 10 * key


def always_dies(folder: str, key: int) -> int:
    """Key 1 kills its worker on every attempt."""
    _attempt(folder, key)
    if key == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return key


def env_var(payload: str, key: int) -> str | None:
    """The worker's value of the environment variable ``payload``."""
    return os.environ.get(payload)


def sees_done(folder: str, key: int) -> list[int]:
    """The keys finished before this one started; then marks this one done."""
    done = sorted(int(p.name.removeprefix("done-")) for p in Path(folder).glob("done-*"))
    (Path(folder) / f"done-{key}").touch()
    return done


def blocks_until_cancelled(folder: str, key: str) -> str:
    """``slow`` runs until it is cancelled (or released), noting the cancellation; ``quick``
    returns once ``slow`` has started."""
    root = Path(folder)
    if key == "quick":
        if not _wait_for(root / "started-slow"):
            raise TimeoutError("slow never started")
        return key
    try:  # a cancellation right after the start is noted too
        (root / "started-slow").touch()
        if not _wait_for(root / "release", 900.0):
            raise TimeoutError("never cancelled nor released")
    except KeyboardInterrupt:  # how Ray cancels a running task
        (root / "cancelled-slow").touch()
        raise
    return key


# --------------------------------------------------------------------------- serial, registry, errors


def test_registry_and_protocol() -> None:
    assert list(EXECUTORS) == ["serial", "ray"]
    assert EXECUTORS.entry("ray").meta["remote"] and not EXECUTORS.entry("serial").meta["remote"]
    ex = make_executor("serial")
    assert isinstance(ex, SerialExecutor) and isinstance(ex, Executor) and ex.name == "serial"


def test_serial_in_order_with_failures_as_values(tmp_path: Path) -> None:
    out = list(SerialExecutor().map(fails_on_three, str(tmp_path), range(6), progress=True))
    assert [k for k, _ in out] == list(range(6))
    failure = dict(out)[3]
    assert isinstance(failure, UnitFailure)
    assert failure.kind == "ValueError" and failure.message == "bad key 3"
    assert "fails_on_three" in failure.traceback and "ValueError: bad key 3" in failure.traceback
    assert str(failure) == "ValueError: bad key 3"
    assert {k: v for k, v in out if k != 3} == {k: k * k for k in (0, 1, 2, 4, 5)}
    assert all(_attempts(tmp_path, k) == 1 for k in range(6))


def _interrupt(payload: None, key: int) -> int:
    if key == 1:
        raise KeyboardInterrupt
    return key


def test_serial_keyboard_interrupt_propagates() -> None:
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for key, value in SerialExecutor().map(_interrupt, None, [0, 1, 2], progress=False):
            seen.append((key, value))
    assert seen == [(0, 0)]


def test_serial_never_imports_ray(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # any `import ray` now raises ImportError
    ex = make_executor("serial")
    assert dict(ex.map(fails_on_three, str(tmp_path), [0, 1], progress=False)) == {0: 0, 1: 1}
    ex.shutdown()
    with pytest.raises(ImportError, match=r"stablerecon\[ray\]") as info:
        make_executor("ray")
    assert str(info.value) == RAY_MISSING


def test_unknown_executor_name() -> None:
    with pytest.raises(ValueError, match=r"argument 'executor'.*'dask'.*\['serial', 'ray'\]"):
        make_executor("dask")


def test_address_with_serial() -> None:
    with pytest.raises(ValueError, match=r"argument 'address'.*serial.*'127\.0\.0\.1:6379'.*'ray'"):
        make_executor("serial", "127.0.0.1:6379")
    with pytest.raises(ValueError, match="'num_cpus'"):
        make_executor("serial", num_cpus=2)


def test_unreachable_address() -> None:
    pytest.importorskip("ray")
    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
        with pytest.raises(UnreachableClusterError, match=rf"argument 'address'.*'{address}'") as info:
            make_executor("ray", address)
        assert isinstance(info.value, ValueError) and isinstance(info.value, ConnectionError)
    for bad in ("localhost", "host:port", "http://x:1", ""):
        with pytest.raises(ValueError, match="argument 'address'"):
            make_executor("ray", bad)


def test_unreachable_ray_address_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RAY_ADDRESS`` (read by Ray for ``address=None`` and ``"auto"``) is checked the same way."""
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    for address in (None, "auto"):
        with pytest.raises(UnreachableClusterError, match="argument 'address'.*127.0.0.1:1"):
            make_executor("ray", address)


def test_bad_ray_options() -> None:
    pytest.importorskip("ray")
    for kwargs, name in (({"max_retries": -1}, "max_retries"), ({"num_cpus": 0}, "num_cpus"),
                         ({"max_in_flight": 0}, "max_in_flight"),
                         ({"task_options": {"max_retries": 5}}, "task_options")):
        with pytest.raises(ValueError, match=f"argument '{name}'"):
            make_executor("ray", init=False, **kwargs)
    with pytest.raises(ValueError, match="argument 'num_cpus'"):
        make_executor("ray", "127.0.0.1:1", num_cpus=2)


class _FakeRay(SimpleNamespace):
    """Just enough of ``ray`` to see how an executor starts and stops it."""

    def __init__(self, initialised: bool) -> None:
        super().__init__(calls=[], up=initialised)

    def is_initialized(self) -> bool:
        return self.up

    def init(self, **kwargs: Any) -> None:
        self.calls.append(("init", kwargs))
        self.up = True

    def shutdown(self) -> None:
        self.calls.append(("shutdown", {}))
        self.up = False


def test_local_start_and_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = _FakeRay(initialised=False)
    monkeypatch.setitem(sys.modules, "ray", fake)
    lazy = RayExecutor(num_cpus=3, init=False)
    assert fake.calls == [] and not lazy.started
    with RayExecutor(num_cpus=3) as ex:
        assert ex.started and fake.calls == [("init", {"num_cpus": 3})]
    assert fake.calls[-1] == ("shutdown", {}) and not ex.started
    ex.shutdown()  # a second shutdown does nothing
    assert len(fake.calls) == 2


def test_running_instance_is_reused_not_shut_down(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeRay(initialised=True)
    monkeypatch.setitem(sys.modules, "ray", fake)
    ex = make_executor("ray")
    ex.shutdown()
    assert fake.calls == [] and fake.up


# --------------------------------------------------------------------------- Ray


@pytest.fixture
def ray_executor(ray_session: Any) -> RayExecutor:
    ex = make_executor("ray")
    assert isinstance(ex, RayExecutor) and not ex.started  # reuses the module's instance
    return ex


def test_ray_matches_serial(ray_executor: RayExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = ray_executor._ray
    puts: list[Any] = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda obj, **kw: puts.append(obj) or real_put(obj, **kw))
    keys = [Key(m, t, c) for m in ("tv", "unet") for t in ("accuracy", "worst_case") for c in range(3)]
    payload = {"scale": 0.5}
    serial = dict(SerialExecutor().map(scaled, payload, keys, progress=False))
    ray_out = list(ray_executor.map(scaled, payload, keys, progress=False))
    assert len(ray_out) == len(keys) == 12
    assert dict(ray_out) == serial
    assert sum(obj is payload for obj in puts) == 1  # shipped once, not once per unit


def test_ray_exception_is_a_failure_not_retried(ray_executor: RayExecutor, tmp_path: Path) -> None:
    out = dict(ray_executor.map(fails_on_three, str(tmp_path), range(8), progress=False))
    failure = out.pop(3)
    assert isinstance(failure, UnitFailure)
    assert failure.kind == "ValueError" and failure.message == "bad key 3"
    assert "ValueError: bad key 3" in failure.traceback
    assert out == {k: k * k for k in range(8) if k != 3}
    assert [_attempts(tmp_path, k) for k in range(8)] == [1] * 8


def test_ray_killed_worker_is_retried(ray_executor: RayExecutor, tmp_path: Path) -> None:
    out = dict(ray_executor.map(dies_once, str(tmp_path), range(5), progress=False))
    assert out == {k: 10 * k for k in range(5)}
    assert [_attempts(tmp_path, k) for k in range(5)] == [1, 1, 2, 1, 1]


def test_ray_retries_exhausted(ray_session: Any, tmp_path: Path) -> None:
    ex = make_executor("ray", max_retries=1)
    out = dict(ex.map(always_dies, str(tmp_path), range(3), progress=False))
    failure = out.pop(1)
    assert isinstance(failure, UnitFailure) and failure.kind == "WorkerCrashedError", failure
    assert out == {0: 0, 2: 2}
    assert _attempts(tmp_path, 1) == 2  # the first try and one retry


def test_ray_unimportable_module_is_a_failure(ray_executor: RayExecutor, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "driver_only_units.py"
    source.write_text("def unit(payload, key):\n    return key\n")
    spec = importlib.util.spec_from_file_location("driver_only_units", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "driver_only_units", module)  # importable here only
    out = dict(ray_executor.map(module.unit, None, [0, 1], progress=False))
    assert set(out) == {0, 1}
    for failure in out.values():
        assert isinstance(failure, UnitFailure), failure
        assert "driver_only_units" in failure.message and "importable" in failure.message


def test_ray_runtime_env(ray_session: Any) -> None:
    name = "STABLERECON_EXECUTOR_TEST"
    ex = make_executor("ray", runtime_env={"env_vars": {name: "set"}})
    assert dict(ex.map(env_var, name, [0, 1], progress=False)) == {0: "set", 1: "set"}
    assert os.environ.get(name) is None


def test_ray_in_flight_bound(ray_session: Any, tmp_path: Path) -> None:
    ex = make_executor("ray", max_in_flight=1)
    out = list(ex.map(sees_done, str(tmp_path), range(5), progress=False))
    # one task at a time: each unit starts after all earlier ones are done, in order
    assert out == [(k, list(range(k))) for k in range(5)]


@pytest.mark.parametrize("how", ["interrupt", "close"])
def test_ray_interruption_cancels_outstanding(ray_executor: RayExecutor, tmp_path: Path, how: str) -> None:
    run = ray_executor.map(blocks_until_cancelled, str(tmp_path), ["slow", "quick"], progress=False)
    try:
        assert next(run) == ("quick", "quick")  # "slow" is running now
        if how == "interrupt":
            with pytest.raises(KeyboardInterrupt):
                run.throw(KeyboardInterrupt)
        else:
            run.close()  # what `break` out of the loop does
        assert _wait_for(tmp_path / "cancelled-slow"), "the running task was not cancelled"
    finally:
        (tmp_path / "release").touch()
    # the CPUs are free again
    assert dict(ray_executor.map(fails_on_three, str(tmp_path), [0, 1], progress=False)) == {0: 0, 1: 1}

