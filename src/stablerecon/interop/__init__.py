"""Adapters to other libraries, each imported only on use.

- :mod:`stablerecon.interop.deepinv`: DeepInverse physics and models in stablerecon, stablerecon
  operators in DeepInverse (needs the optional ``deepinv`` extra);
- :mod:`stablerecon.interop.channels`: complex tensors and the two-channel real representation
  DeepInverse uses for them.

This package imports nothing of stablerecon but the contracts, the validation helpers and the
target resolver; the libraries it adapts are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["deepinv", "channels"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
