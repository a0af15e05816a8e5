"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Run a module's tiny convolutions on one thread: fastest, and unaffected by other jobs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def ray_session(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One local Ray instance (2 CPUs, a 100 MB object store) for the requesting module, whose
    functions and classes are pickled by value (the workers need not import ``tests/``); skipped
    without the ``ray`` package."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray already initialised in this process")
    quiet = {"RAY_USAGE_STATS_ENABLED": "0"}
    saved = {name: os.environ.get(name) for name in quiet}
    os.environ.update({name: value for name, value in quiet.items() if saved[name] is None})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    module = request.module
    ray.cloudpickle.register_pickle_by_value(module)
    try:
        yield ray
    finally:
        ray.cloudpickle.unregister_pickle_by_value(module)
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
