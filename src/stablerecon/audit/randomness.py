"""Random draws that belong to an image, not to a batch.

An audit splits its images into chunks (``options.batch_size``) and may run the chunks in any
order, in several processes or on several machines (:mod:`stablerecon.audit.executors`). For
its numbers not to depend on how the images were grouped, every random draw of a test (noise,
random starts, search directions, random perturbations) comes from a generator of its own per
image: :func:`item_generators` seeds one ``torch.Generator`` from ``(seed, stream, id)`` with
NumPy's ``SeedSequence`` (independent, well-mixed streams), where ``id`` is the image's index
in the whole audit and ``stream`` names the use. :func:`item_randn` draws a batch item by item
on the device of the tensors it will be added to (no host-device copy), so the same seed gives
the same numbers on the same machine for any batch size.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..operators.noise import noise_sigma

__all__ = ["item_generators", "item_randn", "item_noise", "default_ids"]


def default_ids(batch: int, ids: Sequence[int] | None) -> list[int]:
    """``ids`` checked against the batch size, or ``0 .. batch - 1``."""
    if ids is None:
        return list(range(batch))
    ids = [int(i) for i in ids]
    if len(ids) != batch:
        raise ValueError(f"argument 'ids' must give one image index per item ({batch}), got {len(ids)}")
    return ids


def item_generators(seed: int, ids: Sequence[int], stream: str,
                    device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One generator per image ``id`` for the named ``stream`` (e.g. ``"worst_case"``), seeded
    from ``(seed, crc32(stream), id)``."""
    tag = zlib.crc32(stream.encode("utf-8"))
    gens = []
    for i in ids:
        state = np.random.SeedSequence([int(seed), tag, int(i)]).generate_state(2, dtype=np.uint32)
        gens.append(torch.Generator(device=device).manual_seed(int(state[0]) << 31 | int(state[1]) >> 1))
    return gens


def item_randn(gens: Sequence[torch.Generator], shape: Sequence[int], dtype: torch.dtype,
               device: torch.device | str) -> Tensor:
    """Standard normal draws of shape ``(len(gens), *shape)``, item ``b`` from ``gens[b]``;
    complex ``dtype`` gives circular complex normals (real and imaginary parts each
    ``N(0, 1/2)``)."""
    if dtype.is_complex:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        parts = [torch.randn((*shape, 2), generator=g, dtype=real, device=device) for g in gens]
        return torch.view_as_complex(torch.stack(parts)) / math.sqrt(2.0)
    return torch.stack([torch.randn(tuple(shape), generator=g, dtype=dtype, device=device) for g in gens])


def item_noise(y: Tensor, rel: float, seed: int, ids: Sequence[int] | None = None,
               stream: str = "noise") -> Tensor:
    """White Gaussian noise of relative level ``rel`` per item (``E ||n_b||^2 = rel^2
    ||y_b||^2``; complex ``y``: circular), each item from its image's own generator."""
    ids = default_ids(y.shape[0], ids)
    gens = item_generators(seed, ids, stream, y.device)
    sigma = noise_sigma(y, rel=rel)
    n = item_randn(gens, y.shape[1:], y.dtype, y.device)
    return n * sigma.to(n.real.dtype if n.is_complex() else n.dtype).reshape(-1, *[1] * (y.ndim - 1))
