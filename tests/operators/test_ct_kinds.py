"""The ``fanbeam`` operator kind of configs builds the fan-beam operator it describes."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from stablerecon.operators import FanBeam, OperatorSpec
from stablerecon.operators.projector import nyquist_views


def test_fanbeam_spec_builds_the_described_operator() -> None:
    spec = OperatorSpec(kind="fanbeam", size=32, angles=24, source_distance=3.0, detector_distance=0.5)
    op = spec.build()
    ref = FanBeam(32, angles=24, source_distance=96.0, detector_distance=16.0)
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(op.A(x), ref.A(x), rtol=0, atol=0)
    y = ref.A(x)
    torch.testing.assert_close(op.A_dagger(y), ref.A_dagger(y), rtol=0, atol=0)
    assert spec.label() == "fanbeam-32-24angles-source_distance3-detector_distance0.5"
    assert not spec.is_complex


@pytest.mark.parametrize(("fields", "match"), [({"source_distance": 0.3}, "source_distance"),
                                               ({"detector_distance": -1.0}, "detector_distance"),
                                               ({"angles": 0}, "angles")])
def test_fanbeam_bad_fields_are_named(fields: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        OperatorSpec(kind="fanbeam", size=32, **fields)


@pytest.mark.parametrize(("kind", "full"), [("radon", 51), ("fanbeam", 101)])
def test_ct_kinds_sweep_their_views(kind: str, full: int) -> None:
    # a full scan of 32 pixels: ceil(pi 32 / 2) = 51 parallel views over 180 degrees, twice the
    # angular range (ceil(pi 32) = 101 views) for a full fan-beam scan
    spec = OperatorSpec(kind=kind, size=32, angles=24)
    assert spec.sweepable
    for rate, views in ((0.25, round(0.25 * full)), (1.0, full), (0.001, 1)):
        swept = spec.at_rate(rate)
        assert swept.angles == views and swept.kind == kind and swept.size == 32
        op = swept.build()
        assert op.n_angles == views and op.rate == pytest.approx(views / full)
    assert spec.build().rate == pytest.approx(24 / full)
    for bad in (0.0, 1.5, True):
        with pytest.raises(ValueError, match="rate"):
            spec.at_rate(bad)


def test_nyquist_views_and_kinds_without_a_sweep() -> None:
    assert nyquist_views(128) == 202 and nyquist_views(128, 360.0) == 403  # ceil(64 pi), ceil(128 pi)
    for bad, name in (({"size": 0}, "size"), ({"size": 8, "scan_degrees": -1.0}, "scan_degrees")):
        with pytest.raises(ValueError, match=name):
            nyquist_views(**bad)
    with pytest.raises(ValueError, match="no sampling rate"):
        OperatorSpec(kind="blur", size=32).at_rate(0.5)
