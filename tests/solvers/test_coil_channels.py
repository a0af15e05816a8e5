"""Solvers on operators whose measurements have other channels than the images (multi-coil)."""

from __future__ import annotations

import math

import pytest
import torch

from stablerecon.nets import FIRENet
from stablerecon.operators import SubsampledFourier, SubsampledMultiCoilFourier, masks
from stablerecon.solvers import SparseReconstructor


@pytest.mark.parametrize("method", ["firenet", "tv", "fista"])
def test_two_identical_coils_pose_the_single_coil_problem(method: str) -> None:
    """Two coils of constant sensitivity 1/sqrt(2) measuring y/sqrt(2) each give exactly the
    least-squares terms (and norm) of one coil measuring y, so every solver must return the
    single-coil reconstruction: the image has 1 channel, the measurements 2."""
    n = 16
    mask = masks.variable_density(n, 0.4, seed=0)
    single = SubsampledFourier(mask)
    double = SubsampledMultiCoilFourier(mask, torch.full((2, n, n), 1 / math.sqrt(2), dtype=torch.complex128))
    x = torch.zeros(1, 1, n, n, dtype=torch.float64)
    x[..., 4:11, 5:12] = 1.0
    y = single.A(x) + 0.01 * torch.randn(1, 1, int(mask.sum()), dtype=torch.complex128,
                                         generator=torch.Generator().manual_seed(0))
    y2 = torch.cat((y, y), dim=1) / math.sqrt(2)
    if method == "firenet":
        make = lambda op: FIRENet(op, lam=1e-2, restarts=3, inner=5)  # noqa: E731
    else:
        # Absolute weights: the relative ones scale with the root-mean-square of y per sample,
        # which halves its square with twice the samples.
        make = lambda op: SparseReconstructor(method, op, lam=1e-2, max_iter=60,  # noqa: E731
                                              absolute=True)
    with torch.no_grad():
        ref = make(single)(y, single)
        out = make(double)(y2, double)
    assert out.shape == (1, 1, n, n)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
