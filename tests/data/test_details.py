"""Detail insertion: exact contrast on the solid part, nothing outside the mask, exact areas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stablerecon.data import FONT_CHARACTERS, image, insert_detail


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    cam = image("camera", size=64, dtype=torch.float64)
    return torch.cat([cam, cam.flip(-1)], dim=0).repeat(1, 2, 1, 1)  # (2, 2, 64, 64)


def _distance(shape: tuple[int, int], centre: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(rows - centre[0], cols - centre[1])


@pytest.mark.parametrize("contrast", [0.25, -0.1])
def test_hard_blob_is_a_disc_of_exact_contrast(x, contrast):
    out, mask = insert_detail(x, "blob", contrast, position=(30, 20), size=9, soft=False)
    assert mask.dtype == torch.bool and mask.shape == x.shape
    disc = torch.as_tensor(_distance((64, 64), (30, 20)) <= 4.5)
    assert torch.equal(mask, disc.expand(x.shape))
    delta = out - x
    torch.testing.assert_close(delta[mask], torch.full_like(delta[mask], contrast), rtol=0,
                               atol=1e-15)
    assert torch.equal(out[~mask], x[~mask])
    # lattice-point count of a radius-4.5 disc: pi r^2 up to the boundary
    assert int(disc.sum()) == pytest.approx(math.pi * 4.5**2, rel=0.1)


def test_soft_blob_profile(x):
    contrast, size, centre = 0.3, 12, (40, 33)
    out, mask = insert_detail(x, "blob", contrast, position=centre, size=size)
    r = torch.as_tensor(_distance((64, 64), centre))
    radius = size / 2
    assert torch.equal(mask[0, 0], r < radius)
    delta = (out - x)[0, 0]
    core = r <= radius / 2
    torch.testing.assert_close(delta[core], torch.full_like(delta[core], contrast), rtol=0,
                               atol=1e-15)
    rim = mask[0, 0] & ~core
    assert bool((delta[rim] > 0).all()) and bool((delta[rim] < contrast).all())
    # the taper decreases with the distance from the centre
    order = torch.argsort(r[rim])
    assert bool((delta[rim][order].diff() <= 1e-12).all())
    assert torch.equal(out[~mask], x[~mask])
    # identical in every image and channel
    torch.testing.assert_close((out - x)[1, 1], delta, rtol=0, atol=1e-15)


def test_text_mask_is_the_scaled_bitmap(x):
    contrast = 0.2
    out, mask = insert_detail(x, "text", contrast, position=(32, 32), size=14, text="I")
    # glyph I: 3 + 5 * 1 + 3 = 11 font pixels, each 2 x 2 pixels
    assert int(mask[0, 0].sum()) == 11 * 4
    rows = torch.nonzero(mask[0, 0].any(1)).flatten()
    assert rows.max() - rows.min() + 1 == 14  # glyph height 7 * 2
    torch.testing.assert_close((out - x)[mask], torch.full((int(mask.sum()),), contrast,
                                                          dtype=x.dtype), rtol=0, atol=1e-15)
    assert torch.equal(out[~mask], x[~mask])


def test_text_areas_add_up(x):
    _, m_e = insert_detail(x, "text", 0.1, position=(32, 32), size=7, text="E")
    _, m_ee = insert_detail(x, "text", 0.1, position=(32, 32), size=7, text="EE")
    assert int(m_ee[0, 0].sum()) == 2 * int(m_e[0, 0].sum()) == 2 * 18  # E: 5+1+1+4+1+1+5
    cols = torch.nonzero(m_ee[0, 0].any(0)).flatten()
    assert cols.max() - cols.min() + 1 == 11  # 5 + 1 gap + 5
    _, m_lower = insert_detail(x, "text", 0.1, position=(32, 32), size=7, text="ee")
    assert torch.equal(m_lower, m_ee)


def test_random_position_is_reproducible_and_inside(x):
    a, ma = insert_detail(x, "blob", 0.1, seed=5)
    b, mb = insert_detail(x, "blob", 0.1, seed=5)
    assert torch.equal(a, b) and torch.equal(ma, mb)
    positions = {
        tuple(torch.nonzero(insert_detail(x, "text", 0.1, seed=s)[1][0, 0])[0].tolist())
        for s in range(10)
    }
    assert len(positions) > 1
    for s in range(20):
        _, m = insert_detail(x, "blob", 0.1, size=15, seed=s, soft=False)
        # the whole disc (area as for a centred one) stays inside the image
        assert int(m[0, 0].sum()) == int((_distance((64, 64), (32, 32)) <= 7.5).sum())


def test_complex_images_get_a_real_detail():
    z = torch.zeros(1, 1, 16, 16, dtype=torch.complex64)
    out, mask = insert_detail(z, "blob", 0.5, position=(8, 8), size=5, soft=False)
    assert out.dtype == torch.complex64
    assert torch.equal(out.imag, torch.zeros_like(out.imag))
    assert torch.equal(out.real[mask], torch.full((int(mask.sum()),), 0.5))


def test_font_covers_digits_and_letters():
    for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert ch in FONT_CHARACTERS


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"position": (64, 3)}, ValueError, "position must lie inside the image"),
        ({"position": (1, 30)}, ValueError, "partly outside"),
        ({"position": (3.0, 3)}, TypeError, "position must be a pair of ints"),
        ({"contrast": float("nan")}, ValueError, "contrast must be finite"),
        ({"contrast": "0.1"}, TypeError, "contrast must be a real number"),
        ({"kind": "square"}, ValueError, "kind must be 'blob' or 'text'"),
        ({"kind": "text", "text": "a~b"}, ValueError, r"characters \['~'\] not in the font"),
        ({"kind": "text", "size": 6}, ValueError, "size .* must be >= 7"),
        ({"kind": "text", "text": "TOOLONGTEXT", "size": 14}, ValueError, "does not fit"),
        ({"size": 0}, ValueError, "size .* must be >= 1"),
    ],
)
def test_validation(x, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        insert_detail(x, **kwargs)


def test_bad_x():
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\)"):
        insert_detail(torch.zeros(16, 16))
    with pytest.raises(TypeError, match="x must have a floating or complex dtype"):
        insert_detail(torch.zeros(1, 1, 16, 16, dtype=torch.int64))
