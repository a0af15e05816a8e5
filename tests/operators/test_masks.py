"""Sampling masks: rates, reproducibility, variable density, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stablerecon.operators import masks

EXACT = ["variable_density", "uniform_random", "variable_density_lines", "cartesian_lines"]


@pytest.mark.parametrize("name", sorted(masks.MASKS))
@pytest.mark.parametrize("target", [0.1, 0.25, 0.5])
def test_rate_and_type(name: str, target: float) -> None:
    mask = masks.MASKS[name](64, target, seed=0)
    assert mask.dtype == torch.bool and mask.shape == (64, 64)
    achieved = masks.rate(mask)
    if name in EXACT:
        assert achieved == pytest.approx(target, abs=1 / 64)
    else:  # radial: the smallest number of lines reaching the target
        assert target <= achieved < target + 0.05


@pytest.mark.parametrize("name", sorted(masks.MASKS))
def test_seeded(name: str) -> None:
    a, b = masks.MASKS[name](32, 0.3, seed=1), masks.MASKS[name](32, 0.3, seed=1)
    c = masks.MASKS[name](32, 0.3, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def _radial_profile(mask: torch.Tensor, origin: str) -> tuple[float, float]:
    h, w = mask.shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = (h // 2, w // 2) if origin == "center" else (0, 0)
    r = np.hypot(yy - cy, xx - cx) / max(h, w)
    m = mask.numpy()
    return float(m[r < 0.1].mean()), float(m[(r > 0.3) & (r < 0.5)].mean())


@pytest.mark.parametrize("name", ["variable_density", "variable_density_lines", "radial"])
def test_variable_density_is_denser_near_zero_frequency(name: str) -> None:
    inner, outer = _radial_profile(masks.MASKS[name](128, 0.2, seed=0), "center")
    assert inner > 2.5 * outer
    if name == "variable_density":
        assert inner > 0.9 and outer < 0.1
    uniform_inner, uniform_outer = _radial_profile(masks.uniform_random(128, 0.2, seed=0), "center")
    assert abs(uniform_inner - uniform_outer) < 0.05


def test_corner_origin_for_hadamard() -> None:
    mask = masks.variable_density(64, 0.2, seed=0, origin="corner")
    inner, outer = _radial_profile(mask, "corner")
    assert mask[0, 0] and inner > 0.9 and outer < 0.75
    far = mask[48:, 48:].float().mean()  # the highest sequencies
    assert far < 0.1


def test_lines_are_full_lines_with_sampled_centre() -> None:
    mask = masks.variable_density_lines(64, 0.25, seed=0, center_fraction=0.1)
    rows = mask.all(dim=1)
    assert torch.equal(rows, mask.any(dim=1))
    assert rows[32 - 2 : 32 + 3].all()
    cols = masks.variable_density_lines(64, 0.25, seed=0, axis=1)
    assert torch.equal(cols.all(dim=0), cols.any(dim=0))


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, float("nan")])
def test_rejects_bad_rate(rate: float) -> None:
    with pytest.raises((ValueError, TypeError), match="'rate'"):
        masks.variable_density(32, rate)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'origin'"):
        masks.radial(32, 0.2, origin="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'axis'"):
        masks.variable_density_lines(32, 0.2, axis=2)
    with pytest.raises(ValueError, match="'size'"):
        masks.uniform_random(-4, 0.2)
    with pytest.raises(ValueError, match="samples nothing"):
        masks.rate(torch.zeros(4, 4, dtype=torch.bool))
