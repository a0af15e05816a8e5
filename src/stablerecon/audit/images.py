"""The images of an audit, held or read one chunk at a time.

:class:`ImageSet` is what :func:`stablerecon.audit.run` audits: named images of one shape
``(C, H, W)``, real, finite. It is built from a tensor ``(B, C, H, W)`` or a mapping of names
to images (held in memory), or from ``(name, load)`` pairs (:meth:`ImageSet.lazy`, e.g.
:func:`stablerecon.recipes.image_sources` for globs of files and ranges of phantoms), in which
case an image is produced only when a chunk that holds it is audited, so the memory an audit
needs does not grow with the number of images. Every image is checked when it is produced; an
image that is not real, finite or of the set's shape is refused naming it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["ImageSet", "as_image_set", "chunks"]


def _one(name: str, img: object, where: str) -> Tensor:
    if not isinstance(img, Tensor):
        raise TypeError(f"{where}[{name!r}] must be a torch.Tensor, got {type(img).__name__}")
    while img.ndim < 4:
        img = img.unsqueeze(0)
    if img.ndim != 4 or img.shape[0] != 1:
        raise ValueError(f"{where}[{name!r}] must be one image (C, H, W) or (1, C, H, W), "
                         f"got shape {tuple(img.shape)}")
    if img.is_complex() or not img.is_floating_point():
        raise TypeError(f"{where}[{name!r}] must be real floating point, got {img.dtype}")
    if not bool(torch.isfinite(img).all()):
        raise ValueError(f"{where}[{name!r}] holds NaN or Inf")
    return img


class ImageSet:
    """Named images of one shape ``(C, H, W)``: ``names``, ``len()``, :meth:`load` of any
    indices as a batch ``(n, C, H, W)``.

    Build with :meth:`from_tensor`, :meth:`from_mapping` (held in memory) or :meth:`lazy`
    (produced on demand); :func:`as_image_set` accepts any of a tensor, a mapping or a set."""

    def __init__(self, names: Sequence[str], loaders: Sequence[Callable[[], Tensor]],
                 held: Tensor | None = None, where: str = "argument 'images'") -> None:
        if len(names) == 0:
            raise ValueError(f"{where} must hold at least one image")
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: image names must be unique, got {list(names)}")
        self.names = [str(n) for n in names]
        self._loaders = list(loaders)
        self._held = held
        self._where = where
        self._shape: tuple[int, ...] | None = tuple(held.shape[1:]) if held is not None else None
        self._dtype: torch.dtype | None = held.dtype if held is not None else None

    @classmethod
    def from_tensor(cls, x: Tensor, names: Sequence[str] | None = None,
                    where: str = "argument 'images'") -> ImageSet:
        """Images ``x`` ``(B, C, H, W)``, named ``names`` (default ``image0``, ``image1``, ...)."""
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise ValueError(f"{where} must be a (B, C, H, W) tensor, got shape "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        if x.shape[0] == 0:
            raise ValueError(f"{where} must hold at least one image")
        if x.is_complex() or not x.is_floating_point():
            raise TypeError(f"{where} must be real floating point, got {x.dtype}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{where} holds NaN or Inf")
        names = [f"image{i}" for i in range(x.shape[0])] if names is None else list(names)
        if len(names) != x.shape[0]:
            raise ValueError(f"{where}: {len(names)} names for {x.shape[0]} images")
        return cls(names, [], held=x.detach(), where=where)

    @classmethod
    def from_mapping(cls, images: Mapping[str, Tensor], where: str = "argument 'images'") -> ImageSet:
        """Images from ``{name: (C, H, W) or (1, C, H, W)}``, all of one shape."""
        if not images:
            raise ValueError(f"{where} must hold at least one image")
        items = [_one(str(n), img, where) for n, img in images.items()]
        shapes = {tuple(i.shape) for i in items}
        if len(shapes) > 1:
            raise ValueError(f"{where} must hold images of one shape, got {sorted(shapes)}")
        return cls([str(n) for n in images], [], held=torch.cat(items).detach(), where=where)

    @classmethod
    def lazy(cls, sources: Sequence[tuple[str, Callable[[], Tensor]]],
             where: str = "argument 'images'") -> ImageSet:
        """Images produced on demand by ``load()`` of each ``(name, load)`` pair."""
        return cls([n for n, _ in sources], [f for _, f in sources], where=where)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def held(self) -> bool:
        """Whether the images are in memory (not produced on demand)."""
        return self._held is not None

    def load(self, ids: Sequence[int] | range) -> Tensor:
        """The images ``ids`` as one batch ``(len(ids), C, H, W)``, each checked."""
        ids = list(ids)
        if self._held is not None:
            return self._held[ids]
        out = []
        for i in ids:
            img = _one(self.names[i], self._loaders[i](), self._where)
            if self._shape is None:
                self._shape, self._dtype = tuple(img.shape[1:]), img.dtype
            elif tuple(img.shape[1:]) != self._shape:
                raise ValueError(f"{self._where}[{self.names[i]!r}] has shape {tuple(img.shape[1:])}, "
                                 f"the others {self._shape}")
            out.append(img)
        return torch.cat(out)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` (reads the first image of a lazy set if none was read yet)."""
        if self._shape is None:
            self.load([0])
        assert self._shape is not None
        return self._shape

    def iter_chunks(self, size: int) -> Iterator[tuple[range, Tensor]]:
        """``(ids, images)`` for consecutive chunks of at most ``size`` images."""
        for ids in chunks(len(self), size):
            yield ids, self.load(ids)

    def digest(self, size: int = 64) -> str:
        """SHA-256 of all images in float32 (read a chunk at a time): what identifies the set in
        an audit's fingerprint."""
        h = hashlib.sha256()
        for _, x in self.iter_chunks(size):
            h.update(x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()


def chunks(n: int, size: int) -> list[range]:
    """``range(0, size), range(size, 2 size), ...`` covering ``0 .. n - 1``."""
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def as_image_set(images: Tensor | Mapping[str, Tensor] | ImageSet,
                 where: str = "argument 'images'") -> ImageSet:
    """An :class:`ImageSet` from a tensor ``(B, C, H, W)``, a mapping of names to images, or a
    set (returned as is)."""
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, Tensor):
        return ImageSet.from_tensor(images, where=where)
    if isinstance(images, Mapping):
        return ImageSet.from_mapping(images, where=where)
    raise TypeError(f"{where} must be a tensor, a mapping of names to tensors or an ImageSet, "
                    f"got {type(images).__name__}")
