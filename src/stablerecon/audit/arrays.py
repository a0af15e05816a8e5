"""Files of an audit run folder: the arrays of each (method, test) unit and the method names'
file-name form.

``arrays/<slug(method)>.<test>.safetensors`` holds the tensors a unit returns (reconstructions,
perturbations) for the report; each file is written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..files import write_atomic

__all__ = ["slug", "arrays_path", "save_arrays", "load_arrays"]


def slug(name: str) -> str:
    """File-name form of a method name: ``"U-Net (jitter 2%)"`` -> ``"u-net-jitter-2"``."""
    out = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return out or "method"


def arrays_path(folder: Path, method: str, test: str) -> Path:
    """Where the arrays of ``method`` x ``test`` live in run folder ``folder``."""
    return folder / "arrays" / f"{slug(method)}.{test}.safetensors"


def save_arrays(folder: Path, method: str, test: str, arrays: dict[str, Tensor]) -> None:
    """Write the arrays of one unit atomically (nothing for an empty dict)."""
    if not arrays:
        return
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in arrays.items()}
    write_atomic(arrays_path(folder, method, test), lambda p: save_file(tensors, str(p)))


def load_arrays(folder: Path, method: str, test: str) -> dict[str, Tensor] | None:
    """The arrays of one unit, or ``None`` when the file is missing or unreadable."""
    path = arrays_path(folder, method, test)
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except (SafetensorError, OSError):
        return None
