"""JSON results shared by the benchmark scripts: atomic writes (:func:`stablerecon.files.write_json`,
re-exported here), the machine record, and resumable runs (a rerun with the same settings keeps the
finished tasks; other settings start afresh)."""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from stablerecon.files import write_json

__all__ = ["write_json", "machine", "resumable", "run_tasks"]


def machine() -> dict:
    """Platform, torch version and torch threads of this run."""
    return {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__}


def resumable(path: Path, args: argparse.Namespace,
              ignore: tuple[str, ...] = ("tasks", "out", "threads")) -> dict:
    """The results payload at ``path`` to resume: kept when it was written with the same settings
    (``vars(args)`` less ``ignore``), else a fresh one; ``machine`` is refreshed and ``tasks``
    (finished tasks by name) is present."""
    payload = json.loads(path.read_text()) if path.exists() else {}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ignore}
    if payload.get("settings") != settings:
        payload = {"settings": settings}
    payload["machine"] = machine()
    payload.setdefault("tasks", {})
    return payload


def run_tasks(path: Path, args: argparse.Namespace,
              tasks: Mapping[str, Callable[[argparse.Namespace], dict]]) -> dict:
    """Run the tasks named in ``args.tasks`` in order, ``tasks[name](args)`` each, and write each
    result (with its ``seconds``) to ``path`` as soon as it finishes; a task already finished in
    a payload with the same settings (:func:`resumable`) is skipped. Returns the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = resumable(path, args)
    for task in args.tasks:
        if task in payload["tasks"]:
            print(f"{task}: done (in {path}; delete it to rerun)")
            continue
        print(f"{task}:")
        t = time.perf_counter()
        payload["tasks"][task] = tasks[task](args) | {"seconds": round(time.perf_counter() - t, 1)}
        write_json(path, payload)
    print(f"wrote {path}")
    return payload
