"""The ``multicoil`` operator kind of configs builds the SENSE operator it describes."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from stablerecon.operators import OperatorSpec, SubsampledMultiCoilFourier, birdcage_maps, masks


def test_spec_builds_the_described_operator() -> None:
    spec = OperatorSpec(kind="multicoil", size=32, mask="cartesian_lines", rate=0.3, seed=2, coils=6, acs=6,
                        coil_radius=1.8, cg_iter=7)
    op = spec.build()
    reference = SubsampledMultiCoilFourier(masks.cartesian_lines(32, 0.3, acs=6, seed=2),
                                           birdcage_maps(6, 32, radius=1.8), cg_iter=7)
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(op.A(x), reference.A(x), rtol=0, atol=0)
    torch.testing.assert_close(op.A_dagger(op.A(x)), reference.A_dagger(reference.A(x)), rtol=0, atol=0)
    assert spec.is_complex and spec.sweepable
    assert spec.label() == "multicoil-32-cartesian_lines-0.3-coils6-coil_radius1.8-acs6-cg_iter7"


@pytest.mark.parametrize(
    ("fields", "match"),
    [({"coil_radius": 1.2}, "coil_radius"), ({"acs": 4}, "acs"), ({"coils": 0}, "coils"),
     ({"maps": "espirit"}, "maps")],
)
def test_bad_fields_are_named(fields: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        OperatorSpec(kind="multicoil", size=32, **fields)
