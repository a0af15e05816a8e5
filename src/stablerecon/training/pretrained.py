"""Shipped weights of the training presets (trained with this package, configs beside them)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from torch import nn

from .checkpoint import load

__all__ = ["available_pretrained", "pretrained", "pretrained_path"]


def _folder() -> Path:
    return Path(str(resources.files("stablerecon") / "weights"))


def available_pretrained() -> list[str]:
    """Names of the shipped trained methods (e.g. ``unet_fourier128``, ``itnet_fourier128``)."""
    return sorted(p.name.removesuffix(".json") for p in _folder().glob("*.json"))


def pretrained_path(name: str) -> Path:
    """Path of the checkpoint JSON of the shipped method ``name``."""
    names = available_pretrained()
    if name not in names:
        raise ValueError(f"argument 'name' must be one of the shipped methods {names}, got {name!r}")
    return _folder() / f"{name}.json"


def pretrained(name: str, op: nn.Module | None = None) -> nn.Module:
    """The shipped trained method ``name`` in eval mode, callable as ``method(y, op)``.

    Its config (``<name>.yaml`` beside the weights) reproduces it with
    ``stablerecon train``; ``op`` replaces the operator built from the recorded spec.
    """
    return load(pretrained_path(name), op)
