"""Images from files: exact value rules against NumPy / scikit-image references, clear refusals."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from skimage import io, transform

from stablerecon.data import is_image_path, read_image, read_images

# ITU-R BT.709 luma weights, written here independently of the code under test
BT709 = np.array([0.2125, 0.7154, 0.0721])


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    assert x.ndim == 4 and x.shape[:2] == (1, 1)
    return x[0, 0].numpy()


def test_uint8_png_reads_back_as_array_over_255(tmp_path):
    arr = _rng().integers(0, 256, size=(16, 24), dtype=np.uint8)
    io.imsave(tmp_path / "a.png", arr, check_contrast=False)
    x = read_image(tmp_path / "a.png")
    assert x.dtype == torch.float32 and x.shape == (1, 1, 16, 24)
    np.testing.assert_array_equal(_as_numpy(x), (arr / 255.0).astype(np.float32))


def test_uint16_tiff_reads_back_as_array_over_65535(tmp_path):
    arr = _rng(1).integers(0, 65536, size=(16, 16), dtype=np.uint16)
    io.imsave(tmp_path / "a.tif", arr, check_contrast=False)
    x = read_image(str(tmp_path / "a.tif"), size=16)
    np.testing.assert_array_equal(_as_numpy(x), (arr / 65535.0).astype(np.float32))


@pytest.mark.parametrize("channels", [3, 4])
def test_rgb_png_becomes_bt709_luminance_alpha_dropped(tmp_path, channels):
    arr = _rng(2).integers(0, 256, size=(16, 16, channels), dtype=np.uint8)
    if channels == 4:
        arr[..., 3] = _rng(3).integers(1, 256, size=(16, 16))  # alpha must not change the result
    io.imsave(tmp_path / "rgb.png", arr, check_contrast=False)
    expected = (arr[..., :3] / 255.0) @ BT709
    np.testing.assert_allclose(_as_numpy(read_image(tmp_path / "rgb.png")), expected, atol=1e-6)
    mean = read_image(tmp_path / "rgb.png", grey="mean")
    np.testing.assert_allclose(_as_numpy(mean), (arr[..., :3] / 255.0).mean(axis=-1), atol=1e-6)
    with pytest.raises(ValueError, match="colour image"):
        read_image(tmp_path / "rgb.png", grey="refuse")


@pytest.mark.parametrize("shape", [(12, 10), (1, 12, 10), (1, 1, 12, 10)])
def test_npy_real_in_unit_range(tmp_path, shape):
    arr = _rng(4).random(shape)
    np.save(tmp_path / "a.npy", arr)
    x = read_image(tmp_path / "a.npy")
    assert x.shape == (1, 1, 12, 10)
    np.testing.assert_array_equal(_as_numpy(x), arr.reshape(12, 10).astype(np.float32))


def test_npy_complex_needs_complex_ok(tmp_path):
    rng = _rng(5)
    arr = (rng.random((8, 8)) * np.exp(2j * np.pi * rng.random((8, 8)))) / np.sqrt(2)
    np.save(tmp_path / "mri.npy", arr)
    with pytest.raises(ValueError, match=r"mri\.npy.*complex"):
        read_image(tmp_path / "mri.npy")
    x = read_image(tmp_path / "mri.npy", complex_ok=True)
    assert x.dtype == torch.complex64
    np.testing.assert_array_equal(_as_numpy(x), arr.astype(np.complex64))
    np.save(tmp_path / "big.npy", 3 * arr + 3)  # modulus above 1
    with pytest.raises(ValueError, match=r"big\.npy.*\|values\|"):
        read_image(tmp_path / "big.npy", complex_ok=True)
    scaled = read_image(tmp_path / "big.npy", complex_ok=True, value_range="rescale")
    ref = (3 * arr + 3) / np.abs(3 * arr + 3).max()
    np.testing.assert_allclose(_as_numpy(scaled), ref, atol=1e-6)


def test_npz_single_array_and_key(tmp_path):
    a, b = _rng(6).random((8, 8)), _rng(7).random((8, 8))
    np.savez(tmp_path / "one.npz", img=a)
    np.testing.assert_array_equal(_as_numpy(read_image(tmp_path / "one.npz")), a.astype(np.float32))
    np.savez(tmp_path / "two.npz", first=a, second=b)
    got = read_image(f"{tmp_path}/two.npz:second")
    np.testing.assert_array_equal(_as_numpy(got), b.astype(np.float32))
    with pytest.raises(ValueError, match=r"two\.npz.*2 arrays.*'first', 'second'"):
        read_image(tmp_path / "two.npz")
    with pytest.raises(ValueError, match=r"no array 'third'"):
        read_image(f"{tmp_path}/two.npz:third")


def test_size_mismatch_is_an_error_naming_file_and_sizes(tmp_path):
    np.save(tmp_path / "a.npy", _rng(8).random((12, 10)))
    with pytest.raises(ValueError, match=r"images\[0\].*a\.npy.*12x10.*16x16.*resize"):
        read_image(tmp_path / "a.npy", size=16, where="images[0]")
    assert read_image(tmp_path / "a.npy", size=(12, 10)).shape == (1, 1, 12, 10)


@pytest.mark.parametrize("size", [(8, 8), (24, 20)])
def test_resize_matches_skimage_antialiased_bilinear(tmp_path, size):
    arr = _rng(9).random((16, 12))
    np.save(tmp_path / "a.npy", arr)
    expected = transform.resize(arr, size, order=1, mode="reflect", anti_aliasing=True)
    got = read_image(tmp_path / "a.npy", size=size, resize=True)
    assert got.shape == (1, 1, *size)
    np.testing.assert_allclose(_as_numpy(got), expected, atol=1e-6)


def test_float_outside_unit_range_refused_unless_a_rule_is_asked(tmp_path):
    arr = np.linspace(-0.5, 2.0, 64).reshape(8, 8)
    np.save(tmp_path / "wide.npy", arr)
    with pytest.raises(ValueError, match=r"wide\.npy.*\[-0\.5, 2\].*not in \[0, 1\]"):
        read_image(tmp_path / "wide.npy")
    np.testing.assert_allclose(_as_numpy(read_image(tmp_path / "wide.npy", value_range="clip")),
                               np.clip(arr, 0, 1), atol=1e-7)
    np.testing.assert_allclose(_as_numpy(read_image(tmp_path / "wide.npy", value_range="rescale")),
                               (arr + 0.5) / 2.5, atol=1e-7)
    np.save(tmp_path / "signed.npy", np.arange(64, dtype=np.int16).reshape(8, 8))
    for rule in ("error", "clip"):
        with pytest.raises(ValueError, match=r"signed\.npy.*signed integers"):
            read_image(tmp_path / "signed.npy", value_range=rule)
    np.testing.assert_allclose(_as_numpy(read_image(tmp_path / "signed.npy", value_range="rescale")),
                               np.arange(64).reshape(8, 8) / 63, atol=1e-7)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_refused(tmp_path, bad):
    arr = _rng(10).random((8, 8))
    arr[3, 4] = bad
    np.save(tmp_path / "bad.npy", arr)
    with pytest.raises(ValueError, match=r"bad\.npy.*NaN or Inf"):
        read_image(tmp_path / "bad.npy", value_range="clip")


def test_unreadable_missing_empty_and_misshapen_files_refused(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(_rng(11).integers(0, 256, 300, dtype=np.uint8).tobytes())
    expected = r"^images\[1\]: image file '.*corrupt\.png': its contents are not a PNG file"
    with pytest.raises(ValueError, match=expected):
        read_image(tmp_path / "corrupt.png", where="images[1]")
    good = tmp_path / "good.png"
    io.imsave(good, np.zeros((16, 16), dtype=np.uint8), check_contrast=False)
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"truncated\.png': it cannot be read as \.png"):
        read_image(tmp_path / "truncated.png")
    with pytest.raises(ValueError, match=r"missing\.png.*no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npy.*empty"):
        read_image(tmp_path / "empty.npy")
    np.save(tmp_path / "stack.npy", np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"stack\.npy.*shape \(3, 8, 8\)"):
        read_image(tmp_path / "stack.npy")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt.*unsupported file type '\.txt'"):
        read_image(tmp_path / "notes.txt")


def test_pickled_arrays_are_never_loaded(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy.*cannot be read"):
        read_image(tmp_path / "obj.npy")


def test_read_images_globs_sorted_relative_names_and_values(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    arrays = {}
    for name in ("b.png", "a.png", "c.png"):
        arrays[name] = _rng(len(arrays)).integers(0, 256, size=(16, 16), dtype=np.uint8)
        io.imsave(folder / name, arrays[name], check_contrast=False)
    (folder / "README.txt").write_text("not an image")
    np.save(tmp_path / "x.npy", _rng(12).random((16, 16)))
    out = read_images(["scans/*.png", "x.npy"], size=16, base_dir=tmp_path)
    assert list(out) == ["scans/a.png", "scans/b.png", "scans/c.png", "x.npy"]
    for name, arr in arrays.items():
        np.testing.assert_array_equal(_as_numpy(out[f"scans/{name}"]), (arr / 255.0).astype(np.float32))
    # an absolute entry below base_dir is named relative to it; one outside keeps its path
    out = read_images([str(folder / "a.png")], size=16, base_dir=folder)
    assert list(out) == ["a.png"]
    out = read_images(["../x.npy"], size=16, base_dir=folder)
    assert list(out) == ["../x.npy"]


def test_read_images_working_directory_default(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", _rng(13).random((8, 8)))
    monkeypatch.chdir(tmp_path)
    assert list(read_images("*.npy", size=None)) == ["x.npy"]


def test_read_images_refusals_name_the_field(tmp_path):
    np.save(tmp_path / "x.npy", _rng(14).random((8, 8)))
    with pytest.raises(ValueError, match=r"images\[1\].*'none/\*\.png' matches no image file"):
        read_images(["x.npy", "none/*.png"], size=8, base_dir=tmp_path, where="images")
    with pytest.raises(ValueError, match=r"images\[1\].*'x\.npy' is listed twice.*images\[0\]"):
        read_images(["x.npy", "*.npy"], size=8, base_dir=tmp_path, where="images")
    with pytest.raises(ValueError, match=r"images\[0\].*x\.npy.*8x8.*4x4"):
        read_images(["x.npy"], size=4, base_dir=tmp_path, where="images")
    with pytest.raises(ValueError, match=r"^images\[3\]: the pattern 'none/\*\.png'"):
        read_images("none/*.png", size=8, base_dir=tmp_path, where="images[3]")
    with pytest.raises(ValueError, match="non-empty list"):
        read_images([], size=8, base_dir=tmp_path)
    with pytest.raises(ValueError, match="base_dir"):
        read_images(["x.npy"], size=8, base_dir=tmp_path / "nowhere")


def test_bad_arguments_name_the_argument(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="'grey'"):
        read_image(tmp_path / "x.npy", grey="green")
    with pytest.raises(ValueError, match="'value_range'"):
        read_image(tmp_path / "x.npy", value_range="stretch")
    with pytest.raises(TypeError, match="'resize'"):
        read_image(tmp_path / "x.npy", size=4, resize=1)
    with pytest.raises(TypeError, match="'size'"):
        read_image(tmp_path / "x.npy", size=(4, 4, 1))
    with pytest.raises(TypeError, match="'path'"):
        read_image(3)


def test_is_image_path():
    for shipped in ("camera", "shepp_logan", "ellipses", "ellipses:3", "shepp_logan_phantom"):
        assert not is_image_path(shipped)
    for path in ("a.png", "A.JPG", "scan.tiff", "x.npy", "brain.npz:kspace", "data/x",
                 f"data{os.sep}x", "*.png", "slice_??", "img[0-9]"):
        assert is_image_path(path)
