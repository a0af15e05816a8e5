"""Files of an audit run folder: the arrays of each unit (method, test, chunk of images), the
ground truths of each chunk, and the method names' file-name form.

``arrays/<slug(method)>.<test>.<start>-<stop>.safetensors`` holds the tensors a unit returns
(reconstructions, perturbations; first axis: the images ``start .. stop - 1``) for the report,
``truth/<start>-<stop>.safetensors`` the images themselves; each file is written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..files import write_atomic

__all__ = ["slug", "arrays_path", "truth_path", "save_arrays", "load_arrays", "save_truth", "load_truth"]


def slug(name: str) -> str:
    """File-name form of a method name: ``"U-Net (jitter 2%)"`` -> ``"u-net-jitter-2"``."""
    out = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return out or "method"


def arrays_path(folder: Path, method: str, test: str, start: int, stop: int) -> Path:
    """Where the arrays of ``method`` x ``test`` on images ``start .. stop - 1`` live in run
    folder ``folder``."""
    return folder / "arrays" / f"{slug(method)}.{test}.{start}-{stop}.safetensors"


def truth_path(folder: Path, start: int, stop: int) -> Path:
    """Where the images ``start .. stop - 1`` of the audit in ``folder`` are kept."""
    return folder / "truth" / f"{start}-{stop}.safetensors"


def save_arrays(folder: Path, key: Any, arrays: dict[str, Tensor]) -> None:
    """Write the arrays of unit ``key`` (``method``, ``test``, ``start``, ``stop``) atomically
    (nothing for an empty dict)."""
    if not arrays:
        return
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in arrays.items()}
    path = arrays_path(folder, key.method, key.test, key.start, key.stop)
    write_atomic(path, lambda p: save_file(tensors, str(p)))


def load_arrays(folder: Path, key: Any) -> dict[str, Tensor] | None:
    """The arrays of unit ``key``, or ``None`` when the file is missing or unreadable."""
    return _read(arrays_path(folder, key.method, key.test, key.start, key.stop))


def save_truth(folder: Path, start: int, stop: int, x: Tensor) -> None:
    """Write the images ``start .. stop - 1`` atomically."""
    tensor = x.detach().to("cpu").contiguous()
    write_atomic(truth_path(folder, start, stop), lambda p: save_file({"truth": tensor}, str(p)))


def load_truth(folder: Path, start: int, stop: int) -> Tensor | None:
    """The images ``start .. stop - 1`` kept in ``folder`` (``None`` if missing or unreadable)."""
    got = _read(truth_path(folder, start, stop))
    return None if got is None else got.get("truth")


def _read(path: Path) -> dict[str, Tensor] | None:
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except (SafetensorError, OSError):
        return None
