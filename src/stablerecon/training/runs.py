"""Run folders shared by every training loop (reconstruction networks and classifiers).

A run folder holds ``config.yaml`` (what was asked), ``checkpoints/step-*.{json,safetensors,
optim.safetensors}`` (:mod:`stablerecon.training.checkpoint`), ``results.json`` and, when the
run ends, ``model.json`` + ``model.safetensors``. This module names the checkpoints, finds the
newest one, refuses a folder that holds another run, writes the config, prunes old
checkpoints, and defines what every run returns (:class:`RunResult`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from ..config_base import ConfigError, validate
from ..files import write_text

__all__ = ["RunResult", "checkpoint_name", "latest_checkpoint", "check_run_dir", "write_run_config", "prune"]


@dataclass
class RunResult:
    """What every training run produced: ``model``, the best weights (eval mode), read back
    from ``run_dir/model.json``; ``run_dir``, the run folder; ``history``, one entry per
    epoch; ``best``, the best epoch's entry (its ``epoch``, metric and ``checkpoint``)."""

    model: nn.Module
    run_dir: Path
    history: list[dict[str, Any]]
    best: dict[str, Any]


def checkpoint_name(global_step: int) -> str:
    """The name of the checkpoint written after ``global_step`` steps: ``step-00001234``
    (zero-padded, so that names sort as steps do).

    >>> checkpoint_name(1234)
    'step-00001234'
    """
    return f"step-{global_step:08d}"


def latest_checkpoint(folder: Path) -> Path | None:
    """The JSON of the newest checkpoint ``step-*.json`` in ``folder`` (``None``: none)."""
    candidates = sorted(Path(folder).glob("step-*.json"))
    return candidates[-1] if candidates else None


def check_run_dir(run: Path, cfg: Any, resume: bool) -> Path | None:
    """The newest checkpoint in ``run/checkpoints`` (``None``: none), after refusing a folder
    that holds checkpoints when ``resume`` is false, or one whose ``config.yaml`` records a
    different config than ``cfg`` (a pydantic model; an unreadable file counts as different).
    Writes nothing."""
    ckdir, cfg_path = run / "checkpoints", run / "config.yaml"
    latest = latest_checkpoint(ckdir) if ckdir.is_dir() else None
    if latest is not None and not resume:
        raise ValueError(f"run_dir {str(run)!r} already holds checkpoints; pass resume=True to continue "
                         f"or choose another folder")
    if cfg_path.is_file():
        try:
            previous = validate(type(cfg), yaml.safe_load(cfg_path.read_text()))
        except (ConfigError, yaml.YAMLError):
            previous = None
        if previous != cfg:
            raise ValueError(f"run_dir {str(run)!r} holds a run with a different config ({cfg_path}); "
                             f"choose another folder")
    return latest


def write_run_config(run: Path, cfg: Any) -> None:
    """Create ``run`` and write ``cfg`` (a pydantic model) to ``run/config.yaml`` (atomically)."""
    run.mkdir(parents=True, exist_ok=True)
    write_text(run / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=False))


def prune(folder: Path, keep: int, protect: set[str]) -> None:
    """Delete all but the newest ``keep`` checkpoints in ``folder`` (``keep = 0``: all), never
    those named in ``protect``, and the files of checkpoints whose JSON was never written (a
    run killed while saving)."""
    names = sorted(p.name.removesuffix(".json") for p in folder.glob("step-*.json"))
    for name in names[:-keep] if keep else names:
        if name in protect:
            continue
        (folder / f"{name}.json").unlink(missing_ok=True)
        for suffix in (".safetensors", ".optim.safetensors"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
    for orphan in folder.glob("step-*.safetensors"):
        stem = orphan.name.removesuffix(".safetensors").removesuffix(".optim")
        if not (folder / f"{stem}.json").exists():
            orphan.unlink(missing_ok=True)
