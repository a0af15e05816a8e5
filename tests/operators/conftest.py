"""Small instances of every operator, shared by the generic operator tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stablerecon.operators import (
    Blur,
    Downsample,
    FanBeam,
    GaussianMatrix,
    Identity,
    Inpainting,
    LinearOperator,
    NonCartesianFourier,
    Radon,
    SubsampledFourier,
    SubsampledMultiCoilFourier,
    SubsampledWalshHadamard,
    birdcage_maps,
    gaussian_kernel,
    masks,
    trajectories,
)
from stablerecon.sparsity import FiniteDifference, Wavelet

N = 16

FACTORIES: dict[str, Callable[[], LinearOperator]] = {
    "fourier-vd": lambda: SubsampledFourier(masks.variable_density(N, 0.3, seed=0)),
    "fourier-lines": lambda: SubsampledFourier(masks.variable_density_lines(N, 0.4, seed=1)),
    "fourier-radial": lambda: SubsampledFourier(masks.radial(N, 0.3, seed=2)),
    "fourier-odd": lambda: SubsampledFourier(masks.uniform_random((15, 13), 0.3, seed=3)),
    "hadamard": lambda: SubsampledWalshHadamard(
        masks.variable_density(N, 0.3, seed=0, origin="corner")
    ),
    "radon": lambda: Radon(N, angles=12),
    "fanbeam": lambda: FanBeam(N, angles=12),
    "gaussian": lambda: GaussianMatrix(64, N * N, seed=0),
    "blur": lambda: Blur(gaussian_kernel(1.2), N),
    "inpainting": lambda: Inpainting(masks.uniform_random(N, 0.5, seed=0)),
    "downsample-box": lambda: Downsample(2, N),
    "downsample-none": lambda: Downsample(4, N, filter="none"),
    "identity": lambda: Identity(N),
    "composed": lambda: SubsampledFourier(masks.uniform_random(N, 0.5, seed=0))
    @ Blur(gaussian_kernel(1.0), N),
    "scaled": lambda: 2.5 * Inpainting(masks.uniform_random(N, 0.5, seed=4)),
    "wavelet-haar": lambda: Wavelet("haar", levels=3, size=N),
    "wavelet-db4": lambda: Wavelet("db4", levels=2, size=N),
    "finite-difference": lambda: FiniteDifference(N),
    "finite-difference-periodic": lambda: FiniteDifference((N, 12), boundary="periodic"),
    "multicoil": lambda: SubsampledMultiCoilFourier(masks.cartesian_lines(N, 0.4, acs=4, seed=0),
                                                    birdcage_maps(4, N)),
    "multicoil-real-maps": lambda: SubsampledMultiCoilFourier(masks.variable_density(N, 0.3, seed=1),
                                                              birdcage_maps(3, N).abs()),
    "nufft-radial": lambda: NonCartesianFourier(trajectories.radial(N, 8), N),
    "nufft-spiral": lambda: NonCartesianFourier(trajectories.spiral(N, 4), N),
    "nufft-radial-multicoil": lambda: NonCartesianFourier(trajectories.radial(N, 8, golden=True), N,
                                                          maps=birdcage_maps(4, N)),
    "nufft-spiral-multicoil-kb": lambda: NonCartesianFourier(
        trajectories.spiral(N, 4), N, maps=birdcage_maps(3, N), backend="torchkbnufft"),
    "fourier-after-wavelet-synthesis": lambda: SubsampledFourier(masks.variable_density(N, 0.3))
    @ Wavelet("haar", levels=2, size=N).adjoint(),
}


@pytest.fixture(params=sorted(FACTORIES))
def op_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def op(op_name: str) -> LinearOperator:
    return FACTORIES[op_name]()
