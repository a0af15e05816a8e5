"""The Ray executor: each unit of an audit a Ray task, on a local Ray instance or a cluster.

See :mod:`stablerecon.audit.executors` for the interface (:class:`~.executors.Executor`) and
the serial executor; ``ray`` is imported only when a :class:`RayExecutor` is made.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .execution import _ANSI, RAY_CLIENT_PORT, RAY_MISSING, K, UnitFailure, _bar, _run_unit

__all__ = ["RayExecutor", "UnreachableClusterError"]


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
    cancel_grace: float = 20.0
    """Seconds for which an interrupted :meth:`map` keeps cancelling the tasks that still run
    (see :meth:`_cancel`); set it on an instance to wait less for tasks that ignore
    cancellation."""

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
    def task_cpus(self) -> int | None:
        """The CPUs Ray gives each task (``task_options["num_cpus"]``, default 1): the torch threads
        an audit unit runs with on a worker (:attr:`~stablerecon.audit.units.AuditJob.threads`);
        ``None`` for fractional or zero CPUs."""
        cpus = self.task_options.get("num_cpus", 1)
        whole = isinstance(cpus, (int, float)) and cpus >= 1 and float(cpus).is_integer()
        return int(cpus) if whole else None

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
            if pending:  # interrupted, closed early or failed: nothing left running
                self._cancel(list(pending))

    def _cancel(self, refs: list[Any]) -> None:
        """Cancel ``refs``, again every half second while any is unfinished, for at most
        ``cancel_grace`` seconds: a task that its owner still saw as queued when the first
        cancellation was sent (its start not yet reported, as on a loaded machine) is only
        dequeued by it and goes on running; the next cancellation interrupts it."""
        ray = self._ray
        deadline = time.monotonic() + self.cancel_grace
        while refs:
            for ref in refs:
                try:
                    ray.cancel(ref)
                except Exception:  # finished meanwhile, or the cluster is gone
                    pass
            if time.monotonic() >= deadline:
                return
            try:
                _, refs = ray.wait(refs, num_returns=len(refs), timeout=0.5, fetch_local=False)
            except Exception:  # the cluster is gone: nothing left to cancel
                return


_DONE: Any = object()


