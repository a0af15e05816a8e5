"""The operator a network's ``forward(y, op)`` uses."""

from __future__ import annotations

from ..contracts import Operator


def resolve_operator(op: Operator | None, default: Operator | None, name: str) -> Operator:
    """``op`` if given, else the network's constructor operator ``default``; a clear error
    naming the network ``name`` if neither exists."""
    op = op if op is not None else default
    if op is None:
        raise ValueError(f"{name} needs an operator: pass 'op' to the constructor or to forward")
    return op
