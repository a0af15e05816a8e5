"""The MRI operator kinds of configs (``multicoil``, ``noncartesian``) build the operators they describe."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from stablerecon.operators import (
    NonCartesianFourier,
    OperatorSpec,
    SubsampledMultiCoilFourier,
    birdcage_maps,
    masks,
    trajectories,
)


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


@pytest.mark.parametrize(
    ("fields", "reference"),
    [
        ({"rate": 0.25}, lambda: NonCartesianFourier(trajectories.radial(32, 13), 32)),
        ({"rate": 0.5, "golden": True, "coils": 3, "dcf": "ramp"},
         lambda: NonCartesianFourier(trajectories.radial(32, 26, golden=True), 32, maps=birdcage_maps(3, 32),
                                     dcf=trajectories.radial_dcf(32, 26, golden=True))),
        ({"trajectory": "spiral", "interleaves": 4, "rate": 0.5},
         lambda: NonCartesianFourier(trajectories.spiral(32, 4, turns=2.0), 32)),
    ],
)
def test_noncartesian_spec_builds_the_described_operator(fields: dict, reference) -> None:
    """``rate`` is the fraction of the Nyquist spokes (ceil(pi 32 / 2) = 51) or spiral turns
    (32 / (2 interleaves)); Python rounds 0.5 x 51 = 25.5 to 26."""
    op = OperatorSpec(kind="noncartesian", size=32, **fields).build()
    ref = reference()
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(op.A(x), ref.A(x), rtol=0, atol=0)
    y = ref.A(x)
    torch.testing.assert_close(op.A_dagger(y), ref.A_dagger(y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("fields", "match"),
    [({"trajectory": "spiral", "dcf": "ramp"}, "ramp"), ({"coils": 2, "coil_radius": 1.0}, "coil_radius"),
     ({"trajectory": "rosette"}, "trajectory"), ({"backend": "cufft"}, "backend")],
)
def test_noncartesian_bad_fields_are_named(fields: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        OperatorSpec(kind="noncartesian", size=32, **fields)
