"""What every executor of the audit shares: the outcome of a unit that raised
(:class:`UnitFailure`), the :class:`Executor` protocol, and running one unit with its failure
caught. The executors themselves are in :mod:`~stablerecon.audit.executors` (serial, and the
registry) and :mod:`~stablerecon.audit.ray_executor`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from tqdm.auto import tqdm

__all__ = ["UnitFailure", "Executor", "RAY_MISSING", "RAY_CLIENT_PORT"]

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


