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

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..registry import Registry

__all__ = [
    "UnitFailure",
    "Executor",
    "SerialExecutor",
    "EXECUTORS",
    "make_executor",
]

from .execution import _ANSI, RAY_CLIENT_PORT, RAY_MISSING, Executor, K, UnitFailure, _bar, _run_unit  # noqa: F401


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


def __getattr__(name: str) -> Any:
    """``RayExecutor`` and ``UnreachableClusterError`` live in :mod:`.ray_executor` (imported on
    first use, so that this module never imports Ray)."""
    if name in ("RayExecutor", "UnreachableClusterError"):
        from . import ray_executor

        return getattr(ray_executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
def _ray(address: str | None = None, **options: Any) -> Executor:
    from .ray_executor import RayExecutor

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
