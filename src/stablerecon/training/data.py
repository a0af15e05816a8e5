"""Training data generated on the fly: phantoms or image patches, measured with noise.

Every batch is a pure function of ``(seed, stream, step)``: batch ``s`` of a run is the same
whether the run went straight through or was interrupted and resumed, which is what makes
resumed training bitwise identical to an uninterrupted one. The training, validation and
held-out streams use disjoint seeds.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from ..data import ellipses, image, insert_detail, mr_phantom
from ..operators import noise as noise_models
from ..operators.base import LinearOperator
from ..operators.nullspace import KernelSplit, kernel_split
from .config import DataConfig

__all__ = ["TrainingData", "measure", "TRAIN_STREAM", "VALIDATION_STREAM", "HELDOUT_STREAM"]

TRAIN_STREAM, VALIDATION_STREAM, HELDOUT_STREAM = 0, 1, 2


def _seeds(*entropy: int) -> tuple[int, int]:
    """Two independent 63-bit seeds (images, noise) from a seed sequence."""
    state = np.random.SeedSequence(list(entropy)).generate_state(4, dtype=np.uint32).astype(np.uint64)
    return int((state[0] << 31) ^ state[1]), int((state[2] << 31) ^ state[3])


def measure(x: torch.Tensor, op: LinearOperator, levels: tuple[float, ...], seed: int) -> torch.Tensor:
    """Measurements ``A x + sum_i n_i`` with independent Gaussian noises ``n_i`` of relative
    levels ``levels`` (``E ||n_i||^2 = level^2 ||A x||^2`` per item), drawn from ``seed``."""
    y = op.A(x)
    g = torch.Generator(device=y.device).manual_seed(seed)
    clean = y
    for level in levels:
        if level > 0:
            y = y + noise_models.gaussian_like(clean, rel=level, generator=g)
    return y


class TrainingData:
    """Images and measurements for training, validation and held-out evaluation.

    Parameters
    ----------
    config:
        The ``data`` section of a training config.
    op:
        Forward operator; its image size is the size of the generated images.
    seed:
        Run seed; batches depend only on it and on the step.
    """

    def __init__(self, config: DataConfig, op: LinearOperator, seed: int = 0) -> None:
        self.config = config
        self.op = op
        self.seed = int(seed)
        self.size = int(op.in_shape[-1])

    @cached_property
    def _sources(self) -> list[np.ndarray]:
        return [image(name, size=2 * self.size).numpy()[0, 0] for name in self.config.images]

    def images(self, n: int, stream: int, index: int) -> torch.Tensor:
        """``n`` images ``(n, 1, N, N)`` in ``[0, 1]``, a pure function of
        ``(seed, stream, index)``."""
        image_seed, _ = _seeds(self.seed, stream, index)
        if self.config.source == "ellipses":
            return ellipses(n, self.size, seed=image_seed)
        rng = np.random.default_rng(image_seed)
        if self.config.source == "mr":
            seeds = rng.integers(0, 2**62, size=n)
            return torch.cat([mr_phantom(self.size, seed=int(s)) for s in seeds])
        out = np.empty((n, 1, self.size, self.size), dtype=np.float32)
        for i in range(n):
            src = self._sources[rng.integers(len(self._sources))]
            top = rng.integers(src.shape[0] - self.size + 1)
            left = rng.integers(src.shape[1] - self.size + 1)
            patch = src[top:top + self.size, left:left + self.size]
            patch = np.rot90(patch, k=int(rng.integers(4)))
            if rng.integers(2):
                patch = patch[:, ::-1]
            out[i, 0] = patch
        return torch.from_numpy(out)

    @cached_property
    def pair(self) -> tuple[torch.Tensor, torch.Tensor, KernelSplit] | None:
        """The fixed near-kernel pair of ``config.pair``: ``(x*, x* + z, split)`` with images
        ``(1, 1, N, N)`` (float32) and the :class:`~stablerecon.operators.nullspace.KernelSplit`
        of the detail (float64); ``None`` without a pair."""
        spec = self.config.pair
        if spec is None:
            return None
        x_star = ellipses(1, self.size, seed=spec.phantom_seed).double()
        position = spec.position if spec.position is not None else (self.size // 2, self.size // 2)
        x_detail, _ = insert_detail(x_star, kind="blob", contrast=spec.contrast, position=tuple(position),
                                    size=spec.diameter, soft=False)
        split = kernel_split(x_detail - x_star, self.op, ratio=spec.ratio)
        return x_star.float(), (x_star + split.z).float(), split

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Training batch ``step``: images and measurements with noise plus jitter (with a
        ``pair``, its two images take the last ``2 * copies`` places)."""
        pair = self.pair
        if pair is None:
            x = self.images(batch_size, TRAIN_STREAM, step)
        else:
            copies = self.config.pair.copies
            if batch_size <= 2 * copies:
                raise ValueError(f"argument 'batch_size' = {batch_size} leaves no phantoms beside the pair "
                                 f"({2 * copies} images); use batch_size > {2 * copies}")
            x = torch.cat((self.images(batch_size - 2 * copies, TRAIN_STREAM, step),
                           pair[0].expand(copies, -1, -1, -1), pair[1].expand(copies, -1, -1, -1)))
        _, noise_seed = _seeds(self.seed, TRAIN_STREAM, step)
        return x, measure(x, self.op, (self.config.noise, self.config.jitter), noise_seed)

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed validation set: ``n_val`` images, measurements with ``noise`` (no jitter)."""
        return self.heldout(self.config.n_val, stream=VALIDATION_STREAM)

    def heldout(self, n: int, noise: float | None = None,
                stream: int = HELDOUT_STREAM) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` images never seen in training or validation, measured with relative ``noise``
        (default: the config's)."""
        x = self.images(n, stream, 0)
        _, noise_seed = _seeds(self.seed, stream, 0)
        level = self.config.noise if noise is None else noise
        return x, measure(x, self.op, (level,), noise_seed)
