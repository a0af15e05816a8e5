"""Images from the user's own files, as ``(1, 1, H, W)`` tensors, with explicit rules.

Readers: PNG, JPEG, TIFF and BMP through :func:`skimage.io.imread`; ``.npy`` and ``.npz``
through :func:`numpy.load` (``allow_pickle=False``: nothing is ever unpickled). Nothing is
downloaded. The rules, the same for every file:

- **grey**: a colour image ``(H, W, 3)`` becomes ITU-R BT.709 luminance
  ``0.2125 R + 0.7154 G + 0.0721 B`` (:func:`skimage.color.rgb2gray`), computed on the values
  scaled to ``[0, 1]`` below; an alpha channel (``(H, W, 4)`` RGBA, ``(H, W, 2)`` grey + alpha)
  is dropped, not composited. ``grey="mean"`` takes the plain channel mean instead and
  ``grey="refuse"`` refuses colour files.
- **value range**: unsigned integers are divided by their dtype's maximum (``uint8 / 255``,
  ``uint16 / 65535``, exactly), booleans give 0 and 1. Floating values must already lie in
  ``[0, 1]`` (a rounding slack of ``1e-6`` is clipped); anything else is an error unless
  ``value_range="clip"`` (clip to ``[0, 1]``) or ``value_range="rescale"`` (affine map of the
  image's own minimum and maximum to 0 and 1) is asked for. Signed integers have no defined
  range: they are refused unless ``value_range="rescale"``. Never a silent rescale. Complex
  arrays (MRI) are kept complex only with ``complex_ok=True``; their rule applies to the
  modulus (``|z| <= 1``; ``clip`` projects ``|z|`` onto ``[0, 1]``, ``rescale`` divides by
  ``max |z|``).
- **size**: ``size`` is the required ``(H, W)``. A file of another size is an error unless
  ``resize=True``, which resizes with :func:`skimage.transform.resize` (``order=1``, bilinear;
  ``anti_aliasing=True``, a Gaussian pre-filter when shrinking; ``mode="reflect"``), real and
  imaginary parts separately for complex arrays. The aspect ratio is not preserved: a file of
  another aspect ratio is stretched, so crop it beforehand if that matters.
- **bad files**: a missing, empty, unreadable, multi-frame, NaN/Inf-containing or wrongly
  shaped file is a ``ValueError`` that names the file (and ``where``, the config field, when
  given) and the reason, raised before any further work.

>>> is_image_path("camera"), is_image_path("ellipses:3"), is_image_path("scans/*.png")
(False, False, True)
>>> import tempfile, numpy as np
>>> folder = tempfile.mkdtemp()
>>> np.save(f"{folder}/ramp.npy", np.linspace(0, 1, 12).reshape(3, 4))
>>> read_image(f"{folder}/ramp.npy").shape
torch.Size([1, 1, 3, 4])
>>> sorted(read_images(["*.npy"], size=(6, 8), resize=True, base_dir=folder))
['ramp.npy']
>>> import shutil; shutil.rmtree(folder)
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from stablerecon.validation import boolean, choice

__all__ = ["IMAGE_SUFFIXES", "is_image_path", "read_image", "read_images", "list_images"]

#: File suffixes accepted by :func:`read_image` (lower case; the match ignores case).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy", ".npz")
_ARRAY_SUFFIXES = (".npy", ".npz")
_GLOB_CHARACTERS = ("*", "?", "[")
_GREY_RULES = ("luminance", "mean", "refuse")
_RANGE_RULES = ("error", "clip", "rescale")
_SLACK = 1e-6  # floating values this far outside [0, 1] are rounding, clipped


def _split_key(path: str) -> tuple[str, str | None]:
    """``"a.npz:key"`` -> ``("a.npz", "key")``; any other path -> ``(path, None)``."""
    head, sep, key = path.rpartition(":")
    if sep and head.lower().endswith(".npz") and key and "/" not in key and "\\" not in key:
        return head, key
    return path, None


def is_image_path(name: str) -> bool:
    """Whether a config image entry names a file or a glob rather than a shipped image.

    True when ``name`` ends with one of :data:`IMAGE_SUFFIXES` (ignoring case; ``.npz:KEY``
    included), contains a path separator, or contains a glob character (``*``, ``?``, ``[``).
    Names such as ``camera``, ``shepp_logan`` and ``ellipses:3`` are not paths.

    >>> [is_image_path(n) for n in ("camera", "shepp_logan", "ellipses:3", "brain.npz:kspace",
    ...                             "scan.PNG", "data/x", "slice_??")]
    [False, False, False, True, True, True, True]
    """
    if not isinstance(name, str):
        raise TypeError(f"argument 'name' must be a str, got {type(name).__name__}")
    path, _ = _split_key(name)
    if path.lower().endswith(IMAGE_SUFFIXES):
        return True
    return "/" in name or "\\" in name or os.sep in name or any(c in name for c in _GLOB_CHARACTERS)


def _parse_size(size: object, where: str) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)):
        hw = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{where}argument 'size' must be an int or a pair of ints (H, W), got {size!r}")
    if min(hw) < 1:
        raise ValueError(f"{where}argument 'size' must be positive, got {size!r}")
    return hw


class _Refused(ValueError):
    """A reason a file is refused (the caller adds the file's name)."""


def _read_array(path: Path, key: str | None) -> np.ndarray:
    """The raw array stored in ``path`` (``key`` for ``.npz``); :class:`_Refused` otherwise."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise _Refused("no such file")
    if not path.is_file():
        raise _Refused("not a regular file")
    if path.stat().st_size == 0:
        raise _Refused("the file is empty")
    if key is not None and suffix != ".npz":
        raise _Refused(f"an array key (':{key}') is only meaningful for .npz files")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if key is None:
                    if len(names) != 1:
                        raise _Refused(f"it holds {len(names)} arrays {names}; name one as 'FILE.npz:KEY'")
                    key = names[0]
                if key not in names:
                    raise _Refused(f"it has no array {key!r}; its arrays are {names}")
                return archive[key]
        _check_signature(path, suffix)
        from skimage.io import imread

        with warnings.catch_warnings():  # imageio's plugin search warns about legacy plugins
            warnings.simplefilter("ignore", DeprecationWarning)
            return np.asarray(imread(path))
    except _Refused:
        raise
    except Exception as err:  # any reader failure becomes one clear message
        reason = (str(err).strip().splitlines() or [""])[0]
        raise _Refused(f"it cannot be read as {suffix} ({type(err).__name__}: {reason})") from None


# the first bytes of each picture format: a file whose contents do not match its suffix is
# refused by name rather than through the reader's plugin search
_SIGNATURES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".png": ("PNG", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("JPEG", (b"\xff\xd8\xff",)),
    ".jpeg": ("JPEG", (b"\xff\xd8\xff",)),
    ".bmp": ("BMP", (b"BM",)),
    ".tif": ("TIFF", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
    ".tiff": ("TIFF", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
}


def _check_signature(path: Path, suffix: str) -> None:
    kind, starts = _SIGNATURES[suffix]
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head.startswith(starts):
        raise _Refused(f"its contents are not a {kind} file (it starts with {head!r})")


def _to_plane(arr: np.ndarray, is_array_file: bool, grey: str) -> np.ndarray:
    """The 2-D image of ``arr`` in its own dtype (colour reduced later, see :func:`_to_unit`)."""
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise _Refused(f"its values have dtype {arr.dtype}, not numbers")
    if arr.size == 0:
        raise _Refused(f"it holds an empty array of shape {arr.shape}")
    shape = arr.shape
    if is_array_file:
        while arr.ndim > 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2:
            raise _Refused(f"the array has shape {shape}; expected (H, W), (1, H, W) or (1, 1, H, W)")
        return arr
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] in (2, 3, 4):
        if grey == "refuse":
            raise _Refused(f"it is a colour image (shape {shape}) and grey='refuse'")
        return arr
    if arr.ndim != 2:
        raise _Refused(f"the image has shape {shape}; expected a single grey or colour frame")
    return arr


def _to_unit(arr: np.ndarray, value_range: str, grey: str) -> np.ndarray:
    """``arr`` (2-D, or ``(H, W, C)`` colour) as float64 (complex128) by the value-range rule,
    then reduced to grey (complex arrays are always 2-D: only array files hold them)."""
    kind = arr.dtype.kind
    if kind == "b":
        out = arr.astype(np.float64)
    elif kind == "u":
        out = arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
    elif kind == "i" and value_range != "rescale":
        raise _Refused(f"its values are signed integers ({arr.dtype}), with no defined range; "
                       "store unsigned integers or floats in [0, 1], or use value_range 'rescale'")
    else:
        out = arr.astype(np.complex128 if kind == "c" else np.float64)
    if not np.all(np.isfinite(out)):
        raise _Refused("it contains NaN or Inf values")
    if out.ndim == 3:  # colour: the alpha channel is dropped before anything else
        out = out[..., :3] if out.shape[-1] >= 3 else out[..., 0]
    if kind not in "bu":
        out = _apply_range(out, value_range)
    if out.ndim == 3:  # luminance (or mean) of the values in [0, 1]
        if grey == "luminance":
            from skimage.color import rgb2gray

            out = rgb2gray(out)
        else:
            out = out.mean(axis=-1)
    return out


def _apply_range(out: np.ndarray, value_range: str) -> np.ndarray:
    modulus = np.abs(out) if np.iscomplexobj(out) else None
    low, high = (0.0, float(modulus.max())) if modulus is not None else (float(out.min()), float(out.max()))
    if value_range == "rescale":
        if modulus is not None:
            if high == 0:
                raise _Refused("value_range 'rescale' cannot rescale an all-zero complex image")
            return out / high
        if high == low:
            raise _Refused(f"value_range 'rescale' cannot rescale a constant image (all {low})")
        return (out - low) / (high - low)
    inside = low >= -_SLACK and high <= 1 + _SLACK
    if value_range == "error" and not inside:
        what = "|values|" if modulus is not None else "values"
        raise _Refused(f"its {what} lie in [{low:.6g}, {high:.6g}], not in [0, 1]; scale the data, or use "
                       "value_range 'clip' or 'rescale'")
    if modulus is not None:
        return out * np.minimum(1.0, 1.0 / np.maximum(modulus, 1e-300))
    return np.clip(out, 0.0, 1.0)


def _fit_size(arr: np.ndarray, size: tuple[int, int] | None, resize: bool) -> np.ndarray:
    if size is None or arr.shape == size:
        return arr
    if not resize:
        raise _Refused(f"its size is {arr.shape[0]}x{arr.shape[1]} (H x W) but the required size is "
                       f"{size[0]}x{size[1]}; resize the file or set resize: true")
    from skimage.transform import resize as sk_resize

    def fit(a: np.ndarray) -> np.ndarray:
        return sk_resize(a, size, order=1, mode="reflect", anti_aliasing=True)

    if np.iscomplexobj(arr):
        return fit(arr.real) + 1j * fit(arr.imag)
    return np.clip(fit(arr), 0.0, 1.0)


def read_image(
    path: str | os.PathLike[str],
    *,
    size: int | tuple[int, int] | None = None,
    resize: bool = False,
    grey: str = "luminance",
    value_range: str = "error",
    complex_ok: bool = False,
    where: str | None = None,
) -> Tensor:
    """Read one image file as a tensor ``(1, 1, H, W)`` by the rules of this module.

    Args:
        path: a PNG / JPEG / TIFF / BMP file, a ``.npy`` array ``(H, W)``, ``(1, H, W)`` or
            ``(1, 1, H, W)``, or a ``.npz`` archive holding exactly one such array, or
            ``FILE.npz:KEY`` naming one of its arrays.
        size: the required size ``N`` (``N x N``) or ``(H, W)`` in pixels; ``None`` keeps the
            file's size.
        resize: resize a file of another size (anti-aliased bilinear) instead of refusing it.
        grey: colour rule, ``"luminance"`` (BT.709, default), ``"mean"`` or ``"refuse"``.
        value_range: ``"error"`` (default: floats outside ``[0, 1]`` are refused), ``"clip"``
            or ``"rescale"`` (see the module docstring; signed integers need ``"rescale"``).
        complex_ok: keep complex arrays (``.npy`` / ``.npz`` only) as ``complex64``; refused
            otherwise.
        where: put in front of every message, e.g. the config field ``"images[2]"``.

    Returns:
        ``float32`` tensor in ``[0, 1]`` (``complex64`` with ``|z| <= 1`` for a complex array
        and ``complex_ok``), shape ``(1, 1, H, W)``.

    Raises:
        ValueError: the file is missing, empty, unreadable, of the wrong shape or size, holds
            NaN / Inf, values outside the range rule, or a complex array without
            ``complex_ok``; the message names the file and the reason. Bad arguments are a
            ``ValueError`` / ``TypeError`` naming the argument.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{prefix}argument 'path' must be a str or a path, got {type(path).__name__}")
    hw = _parse_size(size, prefix)
    resize = boolean(resize, "resize", where=where)
    complex_ok = boolean(complex_ok, "complex_ok", where=where)
    grey = choice(grey, "grey", _GREY_RULES, where=where)
    value_range = choice(value_range, "value_range", _RANGE_RULES, where=where)
    text = os.fspath(path)
    file, key = _split_key(text)
    file_path = Path(file)
    try:
        suffix = file_path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            raise _Refused(f"unsupported file type {file_path.suffix or '(no suffix)'!r}; "
                           f"supported: {list(IMAGE_SUFFIXES)}")
        arr = _read_array(file_path, key)
        arr = _to_plane(arr, suffix in _ARRAY_SUFFIXES, grey)
        if arr.dtype.kind == "c" and not complex_ok:
            raise _Refused("it holds a complex array, refused here (real images only): store its "
                           "modulus, or read it with complex_ok=True")
        arr = _fit_size(_to_unit(arr, value_range, grey), hw, resize)
    except _Refused as err:
        raise ValueError(f"{prefix}image file {text!r}: {err}") from None
    dtype = torch.complex64 if np.iscomplexobj(arr) else torch.float32
    return torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype)[None, None]


def _expand(entry: str, base: Path | None, label: str) -> list[tuple[str, Path, str | None]]:
    """``(display name, file, key)`` for one entry of :func:`read_images`.

    The name is the file's path relative to ``base`` when it lies below it; otherwise relative
    to the starting folder for a relative entry (``../x.png``), absolute for an absolute one."""
    file, key = _split_key(entry)
    given = Path(file).expanduser()
    root = base if base is not None else Path(os.path.abspath(os.curdir))
    full = given if given.is_absolute() else root / given

    def name(path: Path) -> str:
        resolved = Path(os.path.normpath(path))
        if base is not None and resolved.is_relative_to(base):
            text = resolved.relative_to(base).as_posix()
        elif not given.is_absolute():
            text = Path(os.path.relpath(resolved, root)).as_posix()
        else:
            text = resolved.as_posix()
        return text + (f":{key}" if key else "")

    if not any(c in file for c in _GLOB_CHARACTERS):
        return [(name(full), full, key)]
    matches = sorted(
        p for p in (Path(m) for m in glob.glob(str(full), recursive=True))
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not matches:
        raise ValueError(f"{label}: the pattern {entry!r} matches no image file "
                         f"(searched {full.as_posix()!r}; suffixes {list(IMAGE_SUFFIXES)})")
    return [(name(m), m, key) for m in matches]


def list_images(
    spec: Sequence[str | os.PathLike[str]] | str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    where: str | None = None,
) -> list[tuple[str, str, str]]:
    """The files that :func:`read_images` would read, without reading them:
    ``[(name, target, label)]`` in order, ``target`` the path (``FILE.npz:KEY`` for an archive
    key) to give :func:`read_image` and ``label`` the entry that named it (``where[i]``), for
    callers that read a large set one image at a time. Globs are expanded and duplicates refused
    as in :func:`read_images`."""
    field = where or "argument 'spec'"
    single = isinstance(spec, (str, os.PathLike))
    if single:
        spec = [spec]  # type: ignore[list-item]
    if not isinstance(spec, Sequence) or not spec:
        raise ValueError(f"{field} must be a non-empty list of image paths or globs, got {spec!r}")
    base = None
    if base_dir is not None:
        if not isinstance(base_dir, (str, os.PathLike)):
            raise TypeError(f"argument 'base_dir' must be a str or a path, got {type(base_dir).__name__}")
        base = Path(os.path.normpath(Path(base_dir).expanduser().absolute()))
        if not base.is_dir():
            raise ValueError(f"argument 'base_dir' must be an existing folder, got {os.fspath(base_dir)!r}")
    entries: list[tuple[str, Path, str | None, str]] = []
    for i, item in enumerate(spec):
        label = field if single else f"{where}[{i}]" if where else f"argument 'spec' entry {i}"
        if not isinstance(item, (str, os.PathLike)) or not os.fspath(item):
            raise ValueError(f"{label} must be a non-empty path or glob, got {item!r}")
        for name, file, key in _expand(os.fspath(item), base, label):
            entries.append((name, file, key, label))
    seen: dict[tuple[str, str | None], str] = {}
    for name, file, key, label in entries:
        ident = (os.path.normcase(os.path.realpath(file)), key)
        if ident in seen:
            raise ValueError(f"{label}: the image {name!r} is listed twice (also by {seen[ident]})")
        seen[ident] = label
    return [(name, f"{file}:{key}" if key else str(file), label) for name, file, key, label in entries]


def read_images(
    spec: Sequence[str | os.PathLike[str]] | str,
    *,
    size: int | tuple[int, int] | None,
    resize: bool = False,
    base_dir: str | os.PathLike[str] | None = None,
    grey: str = "luminance",
    value_range: str = "error",
    complex_ok: bool = False,
    where: str | None = None,
) -> dict[str, Tensor]:
    """Read the images listed in ``spec`` (paths and globs), each by :func:`read_image`.

    Relative entries are taken from ``base_dir`` (e.g. the folder of the config file; the
    working directory when ``None``). A glob (``*``, ``?``, ``[...]``; ``**`` recursive) must
    match at least one file with a suffix of :data:`IMAGE_SUFFIXES` (other files it matches,
    such as a README, are skipped); its matches are taken in sorted order. ``FILE.npz:KEY`` and
    ``PATTERN.npz:KEY`` name one array of each archive. Every file is read and checked before
    this returns, so a bad file stops the caller before any long work.

    Args:
        spec: a list of paths / globs (a single string is one entry).
        size: the required size ``N`` or ``(H, W)`` of every image; ``None`` keeps each file's.
        resize, grey, value_range, complex_ok: as in :func:`read_image`.
        base_dir: folder that relative entries start from.
        where: the config field, put in front of messages as ``"{where}[i]"`` for the ``i``-th
            entry of a list, as ``where`` itself for a single-string ``spec`` (so a caller that
            reads the entries of a config list one by one passes ``where="images[3]"``).

    Returns:
        ``{name: tensor (1, 1, H, W)}`` in the order of ``spec``; ``name`` is where the image
        came from: the file's path relative to ``base_dir`` (or the working directory) when it
        lies below it, else relative to it for a relative entry (``../x.png``) and absolute
        for an absolute one, with ``:KEY`` for an ``.npz`` array.

    Raises:
        ValueError: an empty ``spec``, a glob with no match, the same file listed twice (also
            through two globs), or any refusal of :func:`read_image`; the message names the
            entry (``where[i]``) and the file.
    """
    _parse_size(size, f"{where}: " if where else "")
    files = list_images(spec, base_dir=base_dir, where=where)
    return {name: read_image(target, size=size, resize=resize, grey=grey, value_range=value_range,
                             complex_ok=complex_ok, where=label)
            for name, target, label in files}
