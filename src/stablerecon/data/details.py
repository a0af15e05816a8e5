"""Insert a small known detail (a blob or a few letters) into images.

Used to test whether a reconstruction method recovers small features it has never seen, or
loses them (the "lost small details" test of the instability literature). The detail is
*added* to the image: ``x_detail = x + contrast * profile`` with a profile in ``[0, 1]`` that is
exactly 1 on the solid part of the detail; the returned mask marks where ``profile > 0``.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["FONT_CHARACTERS", "insert_detail"]

# A hand-made 5x7 bitmap font ('#' = on). Each glyph is 7 rows of 5 columns.
_FONT: dict[str, tuple[str, ...]] = {
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": (".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    " ": (".....",) * 7,
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "+": (".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
    "!": ("..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."),
    "?": (".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
}
_GLYPH_H, _GLYPH_W = 7, 5

#: Characters :func:`insert_detail` can render (letters are case-insensitive).
FONT_CHARACTERS: str = "".join(sorted(_FONT))


def _text_bitmap(text: str) -> np.ndarray:
    """Boolean bitmap of ``text``: shape ``(7, 6 * len(text) - 1)`` (1 blank column between)."""
    cols: list[np.ndarray] = []
    for i, ch in enumerate(text.upper()):
        glyph = np.array([[c == "#" for c in row] for row in _FONT[ch]], dtype=bool)
        if i > 0:
            cols.append(np.zeros((_GLYPH_H, 1), dtype=bool))
        cols.append(glyph)
    return np.concatenate(cols, axis=1)


def _blob_profile(radius: float, soft: bool) -> np.ndarray:
    """Profile on a ``(2 m + 1)^2`` grid around the centre pixel, ``m = floor(radius)``."""
    m = math.floor(radius)
    t = np.arange(-m, m + 1, dtype=np.float64)
    r = np.hypot(t[:, None], t[None, :])
    if not soft:
        return (r <= radius).astype(np.float64)
    core = radius / 2.0
    taper = 0.5 * (1.0 + np.cos(np.pi * (r - core) / (radius - core)))
    return np.where(r <= core, 1.0, np.where(r < radius, taper, 0.0))


def insert_detail(
    x: Tensor,
    kind: Literal["text", "blob"] = "blob",
    contrast: float = 0.1,
    position: tuple[int, int] | None = None,
    size: int | None = None,
    text: str = "OK",
    seed: int | np.random.Generator | None = None,
    *,
    soft: bool = True,
) -> tuple[Tensor, Tensor]:
    """Add a small detail of known shape and contrast to every image of a batch.

    ``x_detail = x + contrast * profile`` where ``profile`` (one ``H x W`` map, the same for
    every batch element and channel) lies in ``[0, 1]``:

    - ``kind="blob"``: a disc of diameter ``size`` pixels (radius ``R = size / 2``, distances
      measured between pixel centres) around ``position``. With ``soft=True`` (default) it is
      Gaussian-like: solid (profile exactly 1) for ``r <= R / 2`` and a raised-cosine taper to 0
      at ``r = R``; with ``soft=False`` it is a solid disc ``r <= R``.
    - ``kind="text"``: ``text`` rendered in a built-in 5x7 pixel bitmap font (no font files),
      each font pixel a ``s x s`` square with ``s = size // 7`` (glyph height ``7 s`` pixels),
      one font-pixel gap between characters; solid (profile exactly 1 on every stroke pixel).

    The result is not clipped, so ``x_detail`` may leave ``[0, 1]`` by up to ``|contrast|``.

    Args:
        x: images, shape ``(B, C, H, W)``, real floating (complex: the detail is added to the
            real part).
        kind: ``"blob"`` or ``"text"``.
        contrast: intensity added on the solid part of the detail (any finite real; negative
            darkens). Same units as ``x``.
        position: ``(row, col)`` pixel of the detail's centre (for text: the centre of its
            bounding box, rounded down). The whole detail must fit inside the image. ``None``
            draws a position uniformly among those where it fits, using ``seed``.
        size: blob diameter in pixels (default ``max(5, min(H, W) // 16)``) or text height in
            pixels (``>= 7``; default ``7 * max(1, min(H, W) // 128)``).
        text: the characters to render for ``kind="text"`` (see :data:`FONT_CHARACTERS`;
            lower-case letters are drawn as capitals).
        seed: integer seed or ``numpy.random.Generator`` for the random position; ``None``
            uses fresh OS entropy. Ignored when ``position`` is given.
        soft: blob only: tapered (True) or hard-edged (False) disc.

    Returns:
        ``(x_detail, mask)``: ``x_detail`` with the shape, dtype and device of ``x``; ``mask`` a
        ``bool`` tensor of the same shape, True where the detail's profile is positive (its
        support), identical for every image and channel.

    Raises:
        ValueError: bad ``kind``, non-finite ``contrast``, ``size`` too small, characters not
            in the font, or a ``position`` where the detail does not fit in the image.
        TypeError: ``x`` not a 4-D floating/complex tensor, wrong argument types.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"x must have a floating or complex dtype, got {x.dtype}")
    if kind not in ("blob", "text"):
        raise ValueError(f"kind must be 'blob' or 'text', got {kind!r}")
    if isinstance(contrast, bool) or not isinstance(contrast, Real):
        raise TypeError(f"contrast must be a real number, got {type(contrast).__name__}")
    if not math.isfinite(float(contrast)):
        raise ValueError(f"contrast must be finite, got {contrast}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))):
        raise TypeError(f"size must be an int or None, got {type(size).__name__}")
    height, width = x.shape[-2:]

    if kind == "blob":
        if size is None:
            size = max(5, min(height, width) // 16)
        if size < 1:
            raise ValueError(f"size (blob diameter in pixels) must be >= 1, got {size}")
        patch = _blob_profile(size / 2.0, soft)
    else:
        if not isinstance(text, str) or len(text) == 0:
            raise ValueError(f"text must be a non-empty string, got {text!r}")
        unknown = sorted({c for c in text.upper() if c not in _FONT})
        if unknown:
            raise ValueError(
                f"text contains characters {unknown} not in the font; "
                f"available: {FONT_CHARACTERS!r} (letters case-insensitive)"
            )
        if size is None:
            size = _GLYPH_H * max(1, min(height, width) // 128)
        if size < _GLYPH_H:
            raise ValueError(f"size (text height in pixels) must be >= {_GLYPH_H}, got {size}")
        scale = int(size) // _GLYPH_H
        bitmap = _text_bitmap(text)
        patch = np.kron(bitmap, np.ones((scale, scale), dtype=bool)).astype(np.float64)

    ph, pw = patch.shape
    # centre offsets: the patch covers rows row - ph // 2 ... row - ph // 2 + ph - 1
    lo_r, hi_r = ph // 2, height - ph + ph // 2
    lo_c, hi_c = pw // 2, width - pw + pw // 2
    if hi_r < lo_r or hi_c < lo_c:
        raise ValueError(
            f"the {kind} detail ({ph} x {pw} pixels) does not fit in an image of "
            f"H x W = {height} x {width}; use a smaller size"
        )
    if position is None:
        rng = np.random.default_rng(seed)
        row = int(rng.integers(lo_r, hi_r + 1))
        col = int(rng.integers(lo_c, hi_c + 1))
    else:
        if (
            not isinstance(position, (tuple, list))
            or len(position) != 2
            or not all(
                isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in position
            )
        ):
            raise TypeError(f"position must be a pair of ints (row, col), got {position!r}")
        row, col = int(position[0]), int(position[1])
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(
                f"position must lie inside the image (0 <= row < {height}, "
                f"0 <= col < {width}), got {position!r}"
            )
        if not (lo_r <= row <= hi_r and lo_c <= col <= hi_c):
            raise ValueError(
                f"position {position!r} puts the {ph} x {pw} {kind} partly outside the "
                f"{height} x {width} image; the centre must satisfy {lo_r} <= row <= {hi_r} "
                f"and {lo_c} <= col <= {hi_c}"
            )

    profile = np.zeros((height, width), dtype=np.float64)
    top, left = row - ph // 2, col - pw // 2
    profile[top : top + ph, left : left + pw] = patch

    real_dtype = x.real.dtype if x.is_complex() else x.dtype
    prof = torch.as_tensor(profile, dtype=real_dtype, device=x.device)
    x_detail = x + float(contrast) * prof
    mask = (prof > 0).expand(x.shape).clone()
    return x_detail, mask
