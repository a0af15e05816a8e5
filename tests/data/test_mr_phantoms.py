"""MR phantoms: tissue contrasts against the spin-echo equation on the standard's values."""

from __future__ import annotations

import math

import pytest
import torch

from stablerecon.data import MR_CONTRASTS, mr_phantom
from stablerecon.recipes import build_images, check_image_names
from stablerecon.training import TrainingData
from stablerecon.training.config import DataConfig

N = 128
B0 = 3.0
# Tissues of the MR Shepp-Logan standard (Gach et al. 2008, table 1): M0, T1 (s), T2 (s).
CSF = (0.98, 4.2, 1.99)
GREY = (0.745, 0.857 * B0**0.376, 0.1)


def _pixel(x: float, y: float) -> tuple[int, int]:
    """Row and column of the point (x, y) of the field of view [-1, 1]^2 (y along the rows)."""
    return round((y + 1) / 2 * (N - 1)), round((x + 1) / 2 * (N - 1))


def _spin_echo(tissue: tuple[float, float, float], tr: float, te: float) -> float:
    m0, t1, t2 = tissue
    return m0 * (1 - math.exp(-tr / t1)) * math.exp(-te / t2)


@pytest.mark.parametrize("contrast", sorted(MR_CONTRASTS))
def test_contrast_between_fluid_and_grey_matter_follows_the_spin_echo_equation(contrast: str) -> None:
    x = mr_phantom(N, contrast, dtype=torch.float64)[0, 0]
    tr, te = MR_CONTRASTS[contrast]
    ventricle = x[_pixel(-0.22, 0.0)]   # centre of the left ventricle (CSF)
    grey = x[_pixel(0.0, -0.4)]        # grey matter, away from every smaller structure
    expected = _spin_echo(CSF, tr, te) / _spin_echo(GREY, tr, te)
    assert float(ventricle / grey) == pytest.approx(expected, rel=1e-9)


def test_weightings_order_the_tissues_as_in_clinical_images() -> None:
    ratio = {c: float(mr_phantom(N, c)[0, 0][_pixel(-0.22, 0.0)] / mr_phantom(N, c)[0, 0][_pixel(0.0, -0.4)])
             for c in MR_CONTRASTS}
    assert ratio["t1"] < 1 < ratio["t2"]    # fluid dark on T1, bright on T2
    assert ratio["t1"] < ratio["pd"] < ratio["t2"]


def test_standard_phantom_is_piecewise_constant_and_normalised() -> None:
    x = mr_phantom(N, "t2")
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert x[0, 0, 0, 0] == 0  # background
    assert len(torch.unique(x)) < 20


def test_seeded_phantoms_are_reproducible_textured_and_distinct() -> None:
    a, b, c = mr_phantom(64, seed=1), mr_phantom(64, seed=1), mr_phantom(64, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float(a.max()) == 1.0 and float(a.min()) >= 0.0
    assert len(torch.unique(a)) > 500                       # textured
    flat = mr_phantom(64, seed=1, texture=0.0)
    assert len(torch.unique(flat)) < 30                     # without texture: a few tissues
    # The texture is a relative modulation of about the requested size inside the head.
    inside = flat[0, 0] > 0.05
    rel = (a[0, 0][inside] / a[0, 0][inside].mean()) / (flat[0, 0][inside] / flat[0, 0][inside].mean())
    assert 0.05 < float(rel.std()) < 0.2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"contrast": "flair"}, "contrast"), ({"size": 0}, "size"), ({"seed": -1}, "seed"),
     ({"texture": -0.1}, "texture"), ({"field": 0.0}, "field"), ({"texture_scale": 0.0}, "texture_scale")],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        mr_phantom(**({"size": 32} | kwargs))


def test_audit_image_names_and_training_source() -> None:
    names = check_image_names(["mr:0-2", "mr_t1", "shepp_logan"])
    images = build_images(names, 32)
    assert list(images) == ["mr:0", "mr:1", "mr:2", "mr_t1", "shepp_logan"]
    assert torch.equal(images["mr:1"], mr_phantom(32, seed=1))
    assert torch.equal(images["mr_t1"], mr_phantom(32, "t1"))
    with pytest.raises(ValueError, match="listed twice"):
        check_image_names(["mr:1", "mr:0-2"])
    with pytest.raises(ValueError, match="unknown image 'mr_t1:3'"):
        check_image_names(["mr_t1:3"])

    from stablerecon.operators import Identity

    data = TrainingData(DataConfig(source="mr", n_val=3), Identity(32), seed=0)
    first = data.images(3, 0, 5)
    assert torch.equal(first, data.images(3, 0, 5))
    assert not torch.equal(first, data.images(3, 0, 6))
    assert float(first.amax(dim=(1, 2, 3)).min()) == 1.0
