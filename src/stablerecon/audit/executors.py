"""Executors: run a list of independent units of work, here or as Ray tasks.

An *executor* runs ``fn(payload, key)`` for every ``key`` of a list and hands each outcome back
to the driver as soon as it is known, as ``(key, result)`` pairs from :meth:`Executor.map`. The
audit splits its work into units (method x test x chunk of images); this module knows nothing of
them: ``fn`` is any picklable function of a shared ``payload`` (everything the units have in
common: methods, operator, images, options) and a small hashable ``key`` naming one unit.

Design
------
- **Failures are values.** A unit whose ``fn`` raises an ordinary :class:`Exception` yields a
  :class:`UnitFailure` (exception type name, message, traceback text) and the other units go
  on; the driver decides what to do with it (record it, re-raise, run it again later). Both
  executors wrap ``fn`` in the same function, so a failure reads the same either way.
  ``KeyboardInterrupt`` and other :class:`BaseException` s are never turned into values.
- **Serial** (:class:`SerialExecutor`): the units run one after the other in this process, in
  order. It never imports Ray.
- **Ray** (:class:`RayExecutor`): each unit is a Ray task. ``fn`` and ``payload`` are put into
  the object store once (:func:`ray.put`) and every task gets the references, so a large payload
  is serialised once, not once per unit. Results come back in the order the tasks finish
  (:func:`ray.wait`, one at a time). At most ``max_in_flight`` tasks (default twice the cluster's
  CPUs) are outstanding at once, more are submitted as others finish, so that a long key list
  never floods the object store or the scheduler.
- **Retries.** A *system* failure (the worker process was killed, ran out of memory, its node
  died) is retried by Ray up to ``max_retries`` times; once they are spent the key yields a
  :class:`UnitFailure` whose ``kind`` is the Ray error (``WorkerCrashedError``,
  ``OutOfMemoryError``, ...). An exception raised by ``fn`` is deterministic: it is never
  retried (``retry_exceptions=False``, and the wrapper returns it as a value anyway).
- **Interruption.** Closing the :meth:`~RayExecutor.map` generator early (``break`` in the
  consuming loop), a ``KeyboardInterrupt`` in the driver, or any other error while waiting
  cancels the tasks still outstanding before the exception propagates: nothing keeps running
  on the cluster for results nobody will read.
- **Errors before work.** A bad executor name, an ``address`` for the serial executor, or an
  address where no cluster answers are reported when the executor is made
  (:func:`make_executor`), not after hours of work. Reaching a ``host:port`` is probed with a
  plain TCP connection first (milliseconds when nothing listens, at most ``probe_timeout``
  seconds for a host that does not answer): ``ray.init`` itself retries an unreachable address
  for many minutes. Ray's own wait for the cluster's GCS is also bounded while connecting.
- **Ray is optional.** ``import ray`` happens only when a :class:`RayExecutor` is made; without
  it that raises an :class:`ImportError` naming the ``ray`` extra.

Example
-------
>>> def square(payload, key):
...     return payload["scale"] * key**2
>>> ex = make_executor("serial")
>>> dict(ex.map(square, {"scale": 2}, [1, 2, 3], progress=False))
{1: 2, 2: 8, 3: 18}
>>> outcome = dict(ex.map(lambda p, k: 1 / k, None, [0, 1], progress=False))
>>> outcome[0].kind, outcome[1]
('ZeroDivisionError', 1.0)
"""

from __future__ import annotations

import os
import re
import socket
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from tqdm.auto import tqdm

from ..registry import Registry

__all__ = [
    "UnitFailure",
    "Executor",
    "SerialExecutor",
    "RayExecutor",
    "UnreachableClusterError",
    "EXECUTORS",
    "make_executor",
]

K = TypeVar("K")

#: What :class:`RayExecutor` raises where Ray is not installed.
RAY_MISSING = "the Ray executor needs the 'ray' package: pip install 'stablerecon[ray]'"

#: The port of a ``ray://`` (Ray client) address without one.
RAY_CLIENT_PORT = 10001

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class UnitFailure:
    """A unit that raised: the exception type name, its message, and the formatted traceback text.

    Attributes
    ----------
    kind:
        The exception's type name (``"ValueError"``) or, for a failure of Ray itself, the Ray
        error's (``"WorkerCrashedError"``, ``"TaskCancelledError"``, ...).
    message:
        ``str`` of the exception.
    traceback:
        The formatted traceback, as the process that raised it printed it.
    """

    kind: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, err: BaseException) -> UnitFailure:
        """The failure record of ``err`` (its traceback as far as it has one)."""
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return cls(type(err).__name__, str(err), text)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind


def _run_unit(fn: Callable[[Any, K], Any], payload: Any, key: K) -> Any:
    """``fn(payload, key)``, or the :class:`UnitFailure` of the ``Exception`` it raised.

    The one wrapper of both executors (in a Ray worker, the body of every task), so that a
    failure reads the same whichever ran it. ``BaseException`` s that are not ``Exception`` s
    (``KeyboardInterrupt``, ``SystemExit``, Ray's cancellation) propagate.
    """
    try:
        return fn(payload, key)
    except Exception as err:  # a unit's failure is a value
        return UnitFailure.from_exception(err)


@runtime_checkable
class Executor(Protocol):
    """Runs ``fn(payload, key)`` for a list of keys; see the module docstring."""

    name: str

    def map(self, fn: Callable[[Any, K], Any], payload: Any, keys: Sequence[K], *,
            progress: bool = True) -> Iterator[tuple[K, Any | UnitFailure]]:
        """Run ``fn(payload, key)`` for every key; yield ``(key, result)`` as each finishes.

        Parameters
        ----------
        fn:
            A picklable function ``fn(payload, key) -> result`` (for Ray, importable on the
            workers or picklable by value).
        payload:
            What every unit shares; shipped once.
        keys:
            The units, each a hashable, picklable key.
        progress:
            Show a progress bar counting the units.

        Yields
        ------
        tuple
            ``(key, result)``, in order for a serial executor, in the order they finish for
            Ray. ``result`` is a :class:`UnitFailure` if ``fn`` raised an ``Exception`` (or,
            with Ray, if the task failed for good); the other keys go on.
        """
        ...

    def shutdown(self) -> None:
        """Release what the executor started (nothing for the serial executor)."""
        ...


def _bar(total: int, name: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=f"units ({name})", unit="unit", disable=not progress)


class SerialExecutor:
    """Run the units one after the other in this process, in order.

    ``KeyboardInterrupt`` is not caught: it stops the run where it is. Ray is never imported.
    """

    name = "serial"

    def map(self, fn: Callable[[Any, K], Any], payload: Any, keys: Sequence[K], *,
            progress: bool = True) -> Iterator[tuple[K, Any | UnitFailure]]:
        """Run ``fn(payload, key)`` for every key, in order; see :meth:`Executor.map`."""
        keys = list(keys)
        with _bar(len(keys), self.name, progress) as bar:
            for key in keys:
                outcome = _run_unit(fn, payload, key)
                bar.update(1)
                yield key, outcome

    def shutdown(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return "SerialExecutor()"


class UnreachableClusterError(ConnectionError, ValueError):
    """No Ray cluster answers at the ``address`` given (both a ``ConnectionError`` and a
    ``ValueError``: a bad argument, found out by trying to connect)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(RAY_MISSING) from err
    return ray


def _split_host_port(hostport: str, default_port: int | None) -> tuple[str, int]:
    """``"host:port"`` (``"[v6]:port"``) as ``(host, port)``; ``ValueError`` if it is not one."""
    host, sep, port = hostport.rpartition(":")
    if not sep or "]" in port:  # no port at all, or a bare "[v6]"
        host, port = hostport, ""
    host = host.strip("[]")
    if not port and default_port is not None:
        return host, default_port
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"argument 'address': expected 'host:port', 'ray://host:port' or 'auto', "
                         f"got {hostport!r}")
    return host, int(port)


def _bootstrap_target(address: str) -> tuple[str, int] | None:
    """The ``(host, port)`` that ``ray.init(address)`` will connect to, or ``None`` where it cannot
    be told beforehand. ``"auto"`` is resolved as Ray does (``RAY_ADDRESS``, then the cluster
    last started on this machine); finding none is an :class:`UnreachableClusterError`."""
    if address.startswith("ray://"):
        rest = address.removeprefix("ray://").split("/", 1)[0]
        return _split_host_port(rest, RAY_CLIENT_PORT)
    if "://" in address:
        raise ValueError(f"argument 'address': unknown scheme in {address!r}; expected 'host:port', "
                         "'ray://host:port' or 'auto'")
    if address == "auto":
        try:  # Ray's own lookup; a private function, so do without it where it moved
            from ray._private.services import canonicalize_bootstrap_address_or_die
        except ImportError:
            return None
        try:
            resolved = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as err:
            raise UnreachableClusterError(f"argument 'address': 'auto' finds no running Ray cluster "
                                          f"({err}); start one with `ray start --head` or give "
                                          "its 'host:port'") from None
        if resolved.startswith("ray://"):
            return _bootstrap_target(resolved)
        return _split_host_port(resolved, None)
    return _split_host_port(address, None)


def _probe(address: str, timeout: float, label: str | None = None) -> None:
    """Raise :class:`UnreachableClusterError` unless something accepts a TCP connection at the
    cluster address ``address`` (within ``timeout`` seconds); ``label`` names the address in
    messages (default ``address`` itself)."""
    if label is None:
        env = os.environ.get("RAY_ADDRESS")
        label = f"{address!r} (RAY_ADDRESS={env!r})" if address == "auto" and env else repr(address)
    target = _bootstrap_target(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise UnreachableClusterError(
            f"argument 'address': no Ray cluster answers at {label} ({host}:{port}: {reason}); "
            "start one with `ray start --head`, or give no address (and no RAY_ADDRESS) to start a local "
            "instance"
        ) from None


class RayExecutor:
    """Run each unit as a Ray task, on a local Ray instance or an existing cluster.

    Parameters
    ----------
    address:
        ``None``: start a local Ray instance (``ray.init(num_cpus=num_cpus)``), or connect to
        the cluster ``RAY_ADDRESS`` names where that environment variable is set (as inside a Ray
        job). ``"auto"``, ``"host:port"`` (the head's GCS) or ``"ray://host:port"`` (Ray client):
        connect to an existing cluster; one that does not answer is an
        :class:`UnreachableClusterError` at once. If Ray is already initialised in this process,
        it is used as it is (``address`` and ``num_cpus`` then play no part).
    num_cpus:
        CPUs of a local instance (default: all of this machine's).
    max_retries:
        How many times Ray re-runs a task whose worker died (killed, out of memory, node lost).
        An exception raised by ``fn`` is never retried.
    runtime_env:
        A Ray runtime environment for the tasks (``{"env_vars": {...}}``, ``{"pip": [...]}``,
        ``{"working_dir": ...}``), set per task so that it applies to a Ray instance this executor
        did not start as well.
    init:
        Connect now (``True``: errors surface here) or at the first :meth:`map`. The address is
        checked (format, reachability) now either way.
    max_in_flight:
        Most tasks outstanding at once (default: twice the cluster's CPUs, at least 2).
    task_options:
        Further options of every task (``{"num_gpus": 1}``, ``{"num_cpus": 2}``,
        ``{"memory": ...}``), passed to Ray's ``.options``.
    probe_timeout:
        Seconds to wait for a TCP connection to a cluster address before calling it unreachable.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, max_retries: int = 3,
                 runtime_env: dict | None = None, init: bool = True, max_in_flight: int | None = None,
                 task_options: dict | None = None, probe_timeout: float = 5.0) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"argument 'address': expected 'host:port', 'ray://host:port' or 'auto', "
                             f"got {address!r}")
        if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int)
                                     or num_cpus < 1):
            raise ValueError(f"argument 'num_cpus': expected a positive integer, got {num_cpus!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"argument 'max_retries': expected an integer >= 0, got {max_retries!r}")
        if max_in_flight is not None and (isinstance(max_in_flight, bool)
                                          or not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ValueError(f"argument 'max_in_flight': expected a positive integer, got {max_in_flight!r}")
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise ValueError(f"argument 'runtime_env': expected a dict, got {type(runtime_env).__name__}")
        reserved = {"max_retries", "retry_exceptions", "runtime_env"} & set(task_options or {})
        if reserved:
            raise ValueError(f"argument 'task_options': {sorted(reserved)} are set by the executor "
                             "(use its own arguments)")
        self._ray = _import_ray()
        self.address = address.strip() if address is not None else None
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.runtime_env = runtime_env
        self.max_in_flight = max_in_flight
        self.task_options = dict(task_options or {})
        self._started = False
        target, label = self.address, None
        if target is None and os.environ.get("RAY_ADDRESS"):
            target = os.environ["RAY_ADDRESS"]
            label = f"RAY_ADDRESS={target!r} (no address given)"
        if target is not None:  # checked even where Ray is up already: a wrong address is a mistake
            if num_cpus is not None:
                raise ValueError("argument 'num_cpus': only for a local Ray instance, not with an "
                                 f"existing cluster ({target!r})")
            _probe(target, probe_timeout, label)
        if init:
            self._connect()

    @property
    def started(self) -> bool:
        """Whether this executor started the Ray instance it uses (and :meth:`shutdown` stops it)."""
        return self._started

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        if self.address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(num_cpus=self.num_cpus)
            self._started = True
            return
        target = self.address or os.environ["RAY_ADDRESS"]
        # Past the TCP probe, bound Ray's own wait for the GCS too (otherwise 20 tries of ~40 s)
        previous = os.environ.get("RAY_gcs_server_port_wait_time_s")
        if previous is None:
            os.environ["RAY_gcs_server_port_wait_time_s"] = "1"
        try:
            ray.init(address=target)
        except (ConnectionError, RuntimeError, TimeoutError) as err:
            raise UnreachableClusterError(f"argument 'address': could not connect to the Ray cluster "
                                          f"at {target!r}: {err}") from err
        finally:
            if previous is None:
                os.environ.pop("RAY_gcs_server_port_wait_time_s", None)

    def shutdown(self) -> None:
        """``ray.shutdown()`` if this executor started Ray; otherwise nothing."""
        if self._started:
            self._started = False
            if self._ray.is_initialized():
                self._ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, max_retries={self.max_retries})"

    def _in_flight(self) -> int:
        if self.max_in_flight is not None:
            return self.max_in_flight
        cpus = int(self._ray.cluster_resources().get("CPU", 0))
        return max(2, 2 * cpus)

    def _failure(self, err: Exception) -> UnitFailure:
        """The record of a task that failed in Ray (not in ``fn``, whose exceptions are values)."""
        exceptions = self._ray.exceptions
        cause = err.cause if isinstance(err, exceptions.RayTaskError) else None
        if isinstance(cause, exceptions.RaySystemError):  # fn or payload did not unpickle there
            return UnitFailure(type(cause).__name__,
                               f"the worker could not load the task's fn or payload: {cause.client_exc} "
                               "(is fn's module importable on the workers?)",
                               _ANSI.sub("", cause.traceback_str or str(err)))
        if cause is not None:
            return UnitFailure(type(cause).__name__, str(cause), _ANSI.sub("", str(err)))
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return UnitFailure(type(err).__name__, _ANSI.sub("", str(err)), _ANSI.sub("", text))

    def map(self, fn: Callable[[Any, K], Any], payload: Any, keys: Sequence[K], *,
            progress: bool = True) -> Iterator[tuple[K, Any | UnitFailure]]:
        """Run ``fn(payload, key)`` for every key as Ray tasks; yield ``(key, result)`` in the
        order they finish. See :meth:`Executor.map`.

        Closing the generator early, a ``KeyboardInterrupt`` or any other exception while it
        runs cancels the outstanding tasks, then propagates.
        """
        ray = self._ray
        keys = list(keys)
        self._connect()
        if not keys:
            return
        options: dict[str, Any] = {**self.task_options, "max_retries": self.max_retries,
                                   "retry_exceptions": False}
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        task = ray.remote(_run_unit).options(**options)
        limit = self._in_flight()
        fn_ref, payload_ref = ray.put(fn), ray.put(payload)
        todo = iter(keys)
        pending: dict[Any, K] = {}  # ObjectRef -> key
        try:
            with _bar(len(keys), self.name, progress) as bar:
                while True:
                    while len(pending) < limit:
                        key = next(todo, _DONE)
                        if key is _DONE:
                            break
                        pending[task.remote(fn_ref, payload_ref, key)] = key
                    if not pending:
                        return
                    (ref,), _ = ray.wait(list(pending), num_returns=1)
                    key = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as err:  # a failure of Ray, not of fn
                        outcome = self._failure(err)
                    bar.update(1)
                    yield key, outcome
        finally:
            for ref in pending:  # interrupted, closed early or failed: nothing left running
                try:
                    ray.cancel(ref)
                except Exception:  # finished meanwhile, or the cluster is gone
                    pass


_DONE: Any = object()


#: The executors by name: ``name -> factory(address=None, **options) -> Executor``; entry
#: ``meta["remote"]`` tells whether the executor takes an ``address``.
EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")


@EXECUTORS.register("serial", summary="one unit after the other in this process", remote=False)
def _serial(address: str | None = None, **options: Any) -> SerialExecutor:
    if options:
        raise ValueError(f"argument {next(iter(options))!r} does not apply to the serial executor")
    return SerialExecutor()


@EXECUTORS.register("ray", summary="each unit a Ray task, on a local Ray instance or a cluster "
                    "(pip install 'stablerecon[ray]')", remote=True)
def _ray(address: str | None = None, **options: Any) -> RayExecutor:
    return RayExecutor(address, **options)


def make_executor(name: str, address: str | None = None, **kwargs: Any) -> Executor:
    """The executor ``name`` of :data:`EXECUTORS`, checked before any work is done.

    Parameters
    ----------
    name:
        ``"serial"`` or ``"ray"`` (or any other registered name).
    address:
        The cluster to run on; only for an executor that runs elsewhere (``"ray"``): see
        :class:`RayExecutor`.
    **kwargs:
        Options of the executor (``num_cpus``, ``max_retries``, ... for Ray).

    Returns
    -------
    Executor
        Connected and ready: an unknown name, an address the executor does not take and an
        unreachable cluster are errors here.

    Raises
    ------
    ValueError
        ``name`` is not registered (naming argument ``'executor'`` and the choices), or
        ``address`` is given for an executor that runs in this process.
    UnreachableClusterError
        No Ray cluster answers at ``address`` (a ``ValueError`` and a ``ConnectionError``).
    ImportError
        ``"ray"`` without the ``ray`` package installed.
    """
    if not isinstance(name, str) or name not in EXECUTORS:
        raise ValueError(f"argument 'executor': {EXECUTORS.unknown(name)}")
    entry = EXECUTORS.entry(name)
    if address is not None and not entry.meta.get("remote", False):
        remote = [n for n in EXECUTORS if EXECUTORS.entry(n).meta.get("remote", False)]
        raise ValueError(f"argument 'address': the {name} executor runs in this process and takes no "
                         f"address (got {address!r}); use executor={remote[0] if remote else 'ray'!r}")
    return entry.value(address, **kwargs)
