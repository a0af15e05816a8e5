"""The ``fanbeam`` operator kind of configs builds the fan-beam operator it describes."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from stablerecon.operators import FanBeam, OperatorSpec


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
