"""The unit of work of an audit: one test, for one method, on one chunk of images.

:class:`UnitKey` names a unit (method, test, images ``start .. stop - 1``); :class:`AuditJob`
holds what every unit needs (methods, operator, images, options, run folder, device) and is
what an executor ships to its workers (:mod:`stablerecon.audit.executors`): either the objects
themselves (Ray serialises them) or a ``builder`` that rebuilds them from a config on the
worker. :func:`execute_unit` runs one unit anywhere: it rebuilds (once per process) what the
job describes, moves it to the job's device, runs the test from
:data:`~stablerecon.audit.registry.TESTS` on the chunk, writes the unit's arrays into the run
folder and returns the JSON values. Its result depends only on the key and the job (random
draws are per image, :mod:`~stablerecon.audit.randomness`), so units can run in any order and
on any worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..contracts import Operator, Reconstructor
from .arrays import save_arrays
from .images import ImageSet
from .options import AuditOptions
from .registry import TESTS, UnitContext

__all__ = ["UnitKey", "AuditJob", "UnitOutcome", "execute_unit", "unit_context", "resolve", "release",
           "to_device"]


@dataclass(frozen=True, order=True)
class UnitKey:
    """One unit: ``test`` for ``method`` on images ``start .. stop - 1`` of the audit."""

    method: str
    test: str
    start: int
    stop: int

    @property
    def ids(self) -> range:
        """The images' indices in the audit."""
        return range(self.start, self.stop)

    @property
    def label(self) -> str:
        """``"TV: worst_case [0:8]"``, the unit's name in timings and failures."""
        return f"{self.method}: {self.test} [{self.start}:{self.stop}]"


Built = tuple[Mapping[str, Reconstructor], Operator, Callable[[float], Operator] | None, ImageSet]


@dataclass
class AuditJob:
    """What the units of one audit share.

    Either ``methods``, ``op``, ``make_operator`` and ``images`` are given (shipped as objects),
    or ``builder()`` returns them (e.g. rebuilt from an audit config on a Ray worker); ``token``
    identifies the job in a process's cache, so a worker builds it once. ``folder``: the run
    folder the units write their arrays into (``None``: arrays are returned). ``device``: where
    methods, operator and images run. ``threads``: torch's threads for each unit (set for Ray
    workers to the CPUs of a task: a worker inherits ``OMP_NUM_THREADS`` or all cores from the
    process that started Ray, and two one-CPU tasks on all cores' threads spin against each
    other, 4x slower on 2 cores; ``None``: as they are)."""

    options: AuditOptions
    token: str
    methods: Mapping[str, Reconstructor] | None = None
    op: Operator | None = None
    make_operator: Callable[[float], Operator] | None = None
    images: ImageSet | None = None
    builder: Callable[[], Built] | None = None
    folder: str | None = None
    device: str | None = None
    progress: bool = False
    threads: int | None = None


@dataclass
class UnitOutcome:
    """The JSON ``values`` of a unit, its ``arrays`` (empty when written to the run folder) and
    its run time in ``seconds``."""

    values: dict[str, Any]
    arrays: dict[str, Tensor] = field(default_factory=dict)
    seconds: float = 0.0


def to_device(obj: Any, device: str | None) -> Any:
    """``obj.to(device)`` for modules and tensors; anything else as it is."""
    if device is None:
        return obj
    if isinstance(obj, (torch.nn.Module, Tensor)):
        return obj.to(device)
    return obj


# What this process built per job, and the current chunk's cache per job. A process keeps the
# jobs it last worked for (a Ray worker serves units of several audits; the driver releases its
# job when the audit ends), so memory does not grow with the number of audits.
_BUILT: dict[str, Built] = {}
_CHUNK_CACHE: dict[tuple[str, int], dict[str, Any]] = {}
_KEEP_JOBS = 2


def release(token: str) -> None:
    """Forget what this process built and cached for the job ``token``."""
    _BUILT.pop(token, None)
    for key in [k for k in _CHUNK_CACHE if k[0] == token]:
        del _CHUNK_CACHE[key]


def resolve(job: AuditJob) -> Built:
    """The job's methods, operator, rate -> operator builder and images, on the job's device,
    built once per process."""
    built = _BUILT.get(job.token)
    if built is None:
        if job.builder is not None:
            methods, op, make_operator, images = job.builder()
        else:
            if job.methods is None or job.op is None or job.images is None:
                raise ValueError("an AuditJob needs either 'builder' or methods, op and images")
            methods, op, make_operator, images = job.methods, job.op, job.make_operator, job.images
        device = job.device
        methods = {name: to_device(m, device) for name, m in methods.items()}
        op = to_device(op, device)
        if make_operator is not None and device is not None:
            inner = make_operator

            def make_operator(rate: float, inner: Callable[[float], Operator] = inner) -> Operator:
                return to_device(inner(rate), device)
        built = (methods, op, make_operator, images)
        for old in list(_BUILT)[: max(0, len(_BUILT) - _KEEP_JOBS + 1)]:
            release(old)
        _BUILT[job.token] = built
    return built


def unit_context(job: AuditJob, start: int, stop: int, progress: bool = False) -> UnitContext:
    """The :class:`~stablerecon.audit.registry.UnitContext` of the chunk ``start .. stop - 1``:
    its images on the device, their indices, the neighbour of each (the image before it in the
    audit, for the kernel test's transfer) and the chunk's cache (shared by the methods run on
    that chunk in this process)."""
    _, op, make_operator, images = resolve(job)
    x = images.load(range(start, stop))
    n = len(images)
    neighbour = None
    if n > 1:
        prev = images.load([(start - 1) % n])
        neighbour = torch.cat([prev, x[:-1]]) if stop - start > 1 else prev
        neighbour = to_device(neighbour, job.device)
    key = (job.token, start)
    cache = _CHUNK_CACHE.get(key)
    if cache is None:
        for old in [k for k in _CHUNK_CACHE if k[0] == job.token]:
            del _CHUNK_CACHE[old]  # one chunk at a time per job: memory stays flat
        cache = _CHUNK_CACHE[key] = {}
    return UnitContext(to_device(x, job.device), op, job.options, make_operator, progress, cache,
                       ids=list(range(start, stop)), neighbour=neighbour)


def execute_unit(job: AuditJob, key: UnitKey) -> UnitOutcome:
    """Run one unit: test ``key.test`` for ``key.method`` on images ``key.ids``; write its
    arrays to ``job.folder`` (if any) and return its values (and its arrays when there is no
    folder)."""
    if job.threads is not None and torch.get_num_threads() != job.threads:
        torch.set_num_threads(job.threads)  # whatever an earlier unit or the environment left
    methods, _, _, _ = resolve(job)
    method = methods[key.method]
    ctx = unit_context(job, key.start, key.stop, progress=job.progress)
    was_training = getattr(method, "training", None)
    if was_training:
        method.eval()
    started = time.perf_counter()
    try:
        values, arrays = TESTS[key.test](method, ctx)
    finally:
        if was_training:
            method.train()
    seconds = time.perf_counter() - started
    arrays = {k: v.detach().to("cpu") for k, v in arrays.items()}
    if job.folder is not None:
        save_arrays(Path(job.folder), key, arrays)
        arrays = {}
    return UnitOutcome(values, arrays, round(seconds, 3))
