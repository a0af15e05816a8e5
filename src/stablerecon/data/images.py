"""Test images shipped inside scikit-image, as ``(1, 1, H, W)`` tensors in ``[0, 1]``.

Only images whose files are part of the scikit-image wheel are offered, so nothing is ever
downloaded (scikit-image's ``brain``, ``cells3d``, ``eagle``, ``kidney``, ``lily``, ... need
``pooch`` and a network connection and are deliberately left out). Colour images are converted
to grayscale with :func:`skimage.color.rgb2gray` (ITU-R BT.709 luma).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

__all__ = ["available_images", "image"]


# name -> (skimage.data function, one-line description). All of these read a file bundled in
# the scikit-image package (checked: they work with no network access).
_IMAGES: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut", "portrait of astronaut Eileen Collins (RGB, 512x512)"),
    "brick": ("brick", "brick wall texture (512x512)"),
    "camera": ("camera", "the cameraman (512x512)"),
    "cat": ("chelsea", "Chelsea the cat (RGB, 300x451)"),
    "cell": ("cell", "cell under a microscope (660x550)"),
    "checkerboard": ("checkerboard", "black and white checkerboard (200x200)"),
    "clock": ("clock", "motion-blurred clock (300x400)"),
    "coffee": ("coffee", "cup of coffee (RGB, 400x600)"),
    "coins": ("coins", "Greek coins from Pompeii (303x384)"),
    "grass": ("grass", "grass texture (512x512)"),
    "gravel": ("gravel", "gravel texture (512x512)"),
    "horse": ("horse", "binary horse silhouette (328x400)"),
    "hubble_deep_field": ("hubble_deep_field", "Hubble deep field (RGB, 872x1000)"),
    "immunohistochemistry": ("immunohistochemistry", "IHC stained tissue (RGB, 512x512)"),
    "microaneurysms": ("microaneurysms", "retinal microaneurysms (102x102)"),
    "moon": ("moon", "surface of the moon (512x512)"),
    "page": ("page", "scanned page of text (191x384)"),
    "retina": ("retina", "human retina fundus image (RGB, 1411x1411)"),
    "rocket": ("rocket", "Falcon 9 rocket launch (RGB, 427x640)"),
    "shepp_logan_phantom": ("shepp_logan_phantom", "Shepp-Logan phantom (400x400)"),
    "text": ("text", "hand-written text on a board (172x448)"),
}


def available_images() -> list[str]:
    """Return the sorted names accepted by :func:`image` (all offline, shipped with skimage)."""
    return sorted(_IMAGES)


@lru_cache(maxsize=8)
def _load_gray(name: str) -> np.ndarray:
    """Load ``name`` as a read-only float64 grayscale array in ``[0, 1]`` (cached)."""
    from skimage import data
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float

    arr = getattr(data, _IMAGES[name][0])()
    arr = img_as_float(np.asarray(arr))
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = rgba2rgb(arr)
    if arr.ndim == 3:
        arr = rgb2gray(arr)
    arr = np.clip(np.asarray(arr, dtype=np.float64), 0.0, 1.0)
    arr.setflags(write=False)
    return arr


def _parse_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
    ):
        hw = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"size must be an int or a pair of ints (H, W), got {size!r}")
    if min(hw) < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return hw


def _centre_crop_to_aspect(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Largest centred crop of ``arr`` with aspect ratio ``height / width``."""
    h, w = arr.shape
    target = height / width
    if h / w > target:  # too tall: crop rows
        new_h = max(1, min(h, round(w * target)))
        top = (h - new_h) // 2
        return arr[top : top + new_h, :]
    new_w = max(1, min(w, round(h / target)))
    left = (w - new_w) // 2
    return arr[:, left : left + new_w]


def image(
    name: str,
    size: int | tuple[int, int] = 128,
    *,
    crop: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Load a shipped test image as a grayscale tensor of shape ``(1, 1, H, W)`` in ``[0, 1]``.

    The image is converted to grayscale (``skimage.color.rgb2gray`` for colour images),
    centre-cropped to the aspect ratio of ``size`` (a square for an int ``size``), and resized
    with :func:`skimage.transform.resize` (bilinear, with Gaussian anti-aliasing when
    downsampling). Intensities are the file's, scaled to ``[0, 1]`` (``uint8 / 255``); they are
    not stretched to fill the range.

    Args:
        name: one of :func:`available_images` (e.g. ``"camera"``, ``"shepp_logan_phantom"``).
        size: output side ``N`` (giving ``N x N``) or ``(H, W)`` in pixels.
        crop: centre-crop to the target aspect ratio first (default). If False the whole image
            is resized, distorting its aspect ratio when it differs.
        dtype: floating dtype of the result (default ``torch.float32``).
        device: device of the result.

    Returns:
        Tensor of shape ``(1, 1, H, W)``, values in ``[0, 1]``.

    Raises:
        ValueError: unknown ``name`` (the message lists the available names), non-positive
            ``size``.
        TypeError: ``size`` not an int or pair of ints, ``dtype`` not floating.

    Example:
        >>> image("camera", size=64).shape
        torch.Size([1, 1, 64, 64])
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in _IMAGES:
        raise ValueError(
            f"name must be one of the shipped images {available_images()}, got {name!r}"
        )
    height, width = _parse_size(size)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")

    from skimage.transform import resize

    arr = _load_gray(name)
    if crop:
        arr = _centre_crop_to_aspect(arr, height, width)
    if arr.shape != (height, width):
        arr = resize(arr, (height, width), order=1, mode="reflect", anti_aliasing=True)
    arr = np.clip(arr, 0.0, 1.0)
    return torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype, device=device)[None, None]
