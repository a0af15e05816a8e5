"""Fixtures shared by the checkpoint tests of reconstruction and classifier training."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def copy(result: Any, tmp_path: Path) -> Path:
    """model.json and model.safetensors of the module's trained ``result`` alone in a fresh
    folder (to be damaged by a test)."""
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("model.json", "model.safetensors"):
        shutil.copyfile(result.run_dir / name, folder / name)
    return folder
