"""Joining the values of one test over chunks of images.

A unit of an audit runs one test for one method on a chunk of images (``options.batch_size``)
and returns JSON values whose per-image lists have the image axis last (``[image]``,
``[budget][image]``, ``[rate][image]``). :func:`merge_values` puts the chunks of a
(method, test) back together in image order: lists of numbers are concatenated, lists of lists
are merged element by element, dicts key by key, and everything else (and the keys a test
declares ``constants``, such as the ``rates`` of the sampling sweep) is the same in every
chunk and kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["merge_values"]


def _is_leaf_list(v: Any) -> bool:
    return isinstance(v, list) and all(not isinstance(e, (list, dict)) for e in v)


def _merge(parts: list[Any], constants: frozenset[str], path: str) -> Any:
    first = parts[0]
    if isinstance(first, dict):
        if any(not isinstance(p, dict) for p in parts):
            raise ValueError(f"values at {path or 'top'} are a dict in one chunk and not in another")
        out = {}
        for key in first:
            sub = f"{path}.{key}" if path else key
            if key in constants or any(p.get(key) is None for p in parts):
                out[key] = first[key]
            else:
                out[key] = _merge([p[key] for p in parts], constants, sub)
        return out
    if isinstance(first, list):
        if any(not isinstance(p, list) for p in parts):
            raise ValueError(f"values at {path} are a list in one chunk and not in another")
        if all(_is_leaf_list(p) for p in parts):
            return [v for p in parts for v in p]
        if len({len(p) for p in parts}) != 1:
            raise ValueError(f"values at {path} have different outer lengths across chunks")
        return [_merge([p[i] for p in parts], constants, f"{path}[{i}]") for i in range(len(first))]
    return first


def merge_values(parts: Sequence[dict[str, Any]], constants: Sequence[str] = ()) -> dict[str, Any]:
    """The values of consecutive chunks ``parts`` (in image order) as the values of all their
    images; ``constants``: keys whose lists are not per image (kept from the first chunk)."""
    if not parts:
        raise ValueError("argument 'parts' must hold at least one chunk")
    if len(parts) == 1:
        return parts[0]
    return _merge(list(parts), frozenset(constants), "")
