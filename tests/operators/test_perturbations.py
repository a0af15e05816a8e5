"""Operator perturbation families against dense matrices, NumPy and the nominal operator classes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from stablerecon.operators import (
    Blur,
    GaussianMatrix,
    Inpainting,
    LinearOperator,
    Radon,
    SubsampledFourier,
    SubsampledWalshHadamard,
    gaussian_kernel,
    masks,
)
from stablerecon.operators.perturbations import (
    PERTURBATIONS,
    AdditiveLowRank,
    AngleOffset,
    KernelMismatch,
    KSpaceDrop,
    KSpaceJitter,
    PerturbationFamily,
    Rounding,
    WalshDrop,
    build_perturbation,
)

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def line_mask(shape: tuple[int, int], lines: list[int], axis: int = 0) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    if axis == 0:
        mask[lines, :] = True
    else:
        mask[:, lines] = True
    return mask


def dense(op: LinearOperator) -> np.ndarray:
    """The matrix of ``op`` on one image: ``op.A`` applied to the real unit vectors."""
    shape = op.probe_shape(1)[1:]
    n = math.prod(shape)
    cols = op.A(torch.eye(n, dtype=F64).reshape(n, *shape))
    return cols.reshape(n, -1).T.detach().numpy()


# name -> (family factory, theta factory); the thetas are generic (no ties, off pixel centres)
CASES: dict[str, tuple[Callable[[], PerturbationFamily], Callable[[PerturbationFamily], torch.Tensor]]] = {
    "additive-gaussian": (lambda: AdditiveLowRank(GaussianMatrix(40, (8, 8), seed=0), rank=2),
                          lambda f: 0.1 * torch.randn(f.theta_shape, generator=gen(1), dtype=F64)),
    "additive-fourier": (lambda: AdditiveLowRank(SubsampledFourier(masks.uniform_random(8, 0.4, seed=0)), 3),
                         lambda f: 0.1 * torch.randn(f.theta_shape, generator=gen(2), dtype=F64)),
    "additive-radon": (lambda: AdditiveLowRank(Radon(10, angles=5), rank=2),
                       lambda f: torch.randn(f.theta_shape, generator=gen(3), dtype=F64)),
    "additive-fixed-channels": (lambda: AdditiveLowRank(Inpainting(masks.uniform_random(6, 0.5), channels=2)),
                                lambda f: torch.randn(f.theta_shape, generator=gen(4), dtype=F64)),
    "jitter-rows": (lambda: KSpaceJitter(SubsampledFourier(masks.variable_density_lines(12, 0.4, seed=1))),
                    lambda f: 0.6 * torch.rand(f.theta_shape, generator=gen(5), dtype=F64) - 0.3),
    "jitter-cols-odd": (lambda: KSpaceJitter(SubsampledFourier(line_mask((9, 11), [0, 4, 5, 8], axis=1))),
                        lambda f: torch.tensor([0.25, -0.4, 0.1, 1.3], dtype=F64)),
    "kernel-real": (lambda: KernelMismatch(Blur(gaussian_kernel(1.0), (12, 10))),
                    lambda f: 0.01 * torch.randn(f.theta_shape, generator=gen(6), dtype=F64)),
    "kernel-complex": (lambda: KernelMismatch(Blur(torch.randn(3, 2, dtype=torch.complex128), 8)),
                       lambda f: 0.1 * torch.randn(f.theta_shape, generator=gen(7), dtype=F64)),
    "angle-offset": (lambda: AngleOffset(Radon(12, angles=6)),
                     lambda f: torch.tensor([0.37, -0.81, 1.13, 0.52, -0.29, 0.71], dtype=F64)),
    "kspace-drop-lines": (lambda: KSpaceDrop(SubsampledFourier(masks.variable_density_lines(12, 0.5,
                                                                                           axis=1))),
                          lambda f: torch.tensor([1.0, 0, 1, 1, 0, 1], dtype=F64)),
    "kspace-drop-points": (lambda: KSpaceDrop(SubsampledFourier(masks.uniform_random(8, 0.3, seed=2))),
                           lambda f: (torch.arange(f.theta_shape[0]) % 3 != 0).to(F64)),
    "walsh-drop": (lambda: WalshDrop(SubsampledWalshHadamard(masks.uniform_random(8, 0.4, seed=3))),
                   lambda f: (torch.arange(f.theta_shape[0]) % 4 != 1).to(F64)),
    "rounding-gaussian": (lambda: Rounding(GaussianMatrix(30, (6, 6), seed=1)), lambda f: torch.tensor(1.0)),
    "rounding-fourier": (lambda: Rounding(SubsampledFourier(masks.uniform_random(6, 0.5, seed=1))),
                         lambda f: torch.tensor(2.0, dtype=F64)),
    "rounding-radon-bits": (lambda: Rounding(Radon(8, angles=4), base=2), lambda f: torch.tensor(3.0)),
}
CONTINUOUS = [name for name in CASES if name.split("-")[0] in ("additive", "jitter", "kernel", "angle")]


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[PerturbationFamily, torch.Tensor]:
    make_family, make_theta = CASES[request.param]
    family = make_family()
    return family, make_theta(family)


def test_adjoint_is_exact(case: tuple[PerturbationFamily, torch.Tensor]) -> None:
    family, theta = case
    op = family(theta)
    assert op.adjointness_error(F64) <= 1e-10
    if op.in_kind != "real":
        assert op.adjointness_error(torch.complex128) <= 1e-10


def test_distance_against_dense_difference(case: tuple[PerturbationFamily, torch.Tensor]) -> None:
    family, theta = case
    reference = np.linalg.norm(dense(family(theta)) - dense(family.op), 2)
    assert reference > 1e-3
    d = float(family.distance(theta))
    assert family.exact_distance == (family.distance_kind == "exact")
    if family.distance_kind == "exact":
        assert d == pytest.approx(reference, rel=1e-8)
    elif family.distance_kind == "upper_bound":
        assert d >= reference * (1 - 1e-12)
    else:  # power iteration: converges from below
        assert d == pytest.approx(reference, rel=1e-6)
        assert d <= reference * (1 + 1e-10)
    assert family.relative_distance(theta) == pytest.approx(d / family.op.norm())


def test_shapes_and_dtypes_follow_the_nominal(case: tuple[PerturbationFamily, torch.Tensor]) -> None:
    family, theta = case
    nominal, op = family.op, family(theta)
    assert (op.in_shape, op.out_shape, op.in_kind, op.out_complex) == (
        nominal.in_shape, nominal.out_shape, nominal.in_kind, nominal.out_complex)
    for dtype in (torch.float32, F64):
        x = nominal.random_input(2, dtype)
        y, y0 = op.A(x), nominal.A(x)
        assert (y.shape, y.dtype) == (y0.shape, y0.dtype)
        back, back0 = op.A_adjoint(y0), nominal.A_adjoint(y0)
        assert (back.shape, back.dtype) == (back0.shape, back0.dtype)
        assert op.A_dagger(y0).shape == nominal.A_dagger(y0).shape
    assert op.theta is not None and op.nominal is nominal and op.family == family.name


def test_float32_theta_is_promoted(case: tuple[PerturbationFamily, torch.Tensor]) -> None:
    family, theta = case
    x = family.op.random_input(1, F64)
    torch.testing.assert_close(family(theta.float()).A(x), family(theta.float().double()).A(x))


def test_bad_theta_is_refused_naming_it(case: tuple[PerturbationFamily, torch.Tensor]) -> None:
    family, theta = case
    bad = theta.clone().reshape(-1)
    bad[0] = float("nan")
    with pytest.raises(ValueError, match="'theta'.*NaN"):
        family(bad.reshape(theta.shape))
    bad[0] = float("inf")
    with pytest.raises(ValueError, match="'theta'.*NaN or Inf"):
        family.distance(bad.reshape(theta.shape))
    with pytest.raises(ValueError, match="'theta'.*shape"):
        family(torch.zeros(*theta.shape, 1, dtype=F64))
    with pytest.raises(TypeError, match="'theta'"):
        family(theta.to(torch.complex128))
    with pytest.raises(TypeError, match="'theta'"):
        family(theta.tolist())


@pytest.mark.parametrize("name", CONTINUOUS)
@pytest.mark.parametrize("r", [0.01, 0.2])
def test_random_scale_and_project_meet_the_budget(name: str, r: float) -> None:
    family, theta = CASES[name][0](), CASES[name][1](CASES[name][0]())
    target = r * family.op.norm()
    tol = 1e-6 if family.distance_kind == "estimate" else 1e-9
    drawn = family.random(r, gen(9))
    assert float(family.distance(drawn)) == pytest.approx(target, rel=tol)
    assert torch.equal(drawn, family.random(r, gen(9)))  # seeded
    assert float(family.distance(family.scale(theta, r))) == pytest.approx(target, rel=tol)
    outside = family.scale(theta, 2 * r)
    projected = family.project(outside, r)
    assert float(family.distance(projected)) == pytest.approx(target, rel=tol)
    inside = family.scale(theta, r / 2)
    assert torch.equal(family.project(inside, r), inside)
    assert float(family.distance(family.scale(theta, 0.0))) == 0.0
    with pytest.raises(ValueError, match="'r'"):
        family.random(-1.0)
    with pytest.raises(ValueError, match="'theta'"):
        family.scale(family.nominal_theta(), r)


GRAD_CASES: dict[str, Callable[[], PerturbationFamily]] = {
    "additive-real": lambda: AdditiveLowRank(GaussianMatrix(5, (2, 3), seed=0), rank=2),
    "additive-complex": lambda: AdditiveLowRank(SubsampledFourier(masks.uniform_random(4, 0.5, seed=0))),
    "jitter": lambda: KSpaceJitter(SubsampledFourier(line_mask((6, 4), [1, 3, 4]))),
    "kernel": lambda: KernelMismatch(Blur(torch.rand(3, 3, dtype=F64), 5)),
    "angle": lambda: AngleOffset(Radon(6, angles=3)),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients_in_theta(name: str) -> None:
    family = GRAD_CASES[name]()
    theta = (0.3 * torch.rand(family.theta_shape, generator=gen(11), dtype=F64) + 0.1).requires_grad_()
    x = family.op.random_input(1, F64, seed=3)
    y = family.op.random_output(1, F64, seed=4)
    assert torch.autograd.gradcheck(lambda t: family(t).A(x), (theta,))
    assert torch.autograd.gradcheck(lambda t: family(t).A_adjoint(y), (theta,))
    if family.distance_kind == "exact":
        assert torch.autograd.gradcheck(family.distance, (theta,))
    assert family.continuous


# --------------------------------------------------------------------------- kspace_jitter
@pytest.mark.parametrize("axis", [0, 1])
def test_jitter_at_zero_is_the_nominal_operator_bit_for_bit(axis: int) -> None:
    op = SubsampledFourier(masks.variable_density_lines((10, 12), 0.4, seed=0, axis=axis))
    family = KSpaceJitter(op)
    assert family.geometry.axis == axis
    pert = family(family.nominal_theta())
    for dtype in (F64, torch.complex128, torch.float32):
        x = op.random_input(2, dtype)
        assert torch.equal(pert.A(x), op.A(x))
    y = op.random_output(2, F64)
    assert torch.equal(pert.A_adjoint(y), op.A_adjoint(y))
    assert float(family.distance(family.nominal_theta())) == 0.0


@pytest.mark.parametrize(("shape", "axis"), [((12, 10), 0), ((9, 11), 1), ((8, 8), 1)])
def test_integer_offsets_equal_the_shifted_lines(shape: tuple[int, int], axis: int) -> None:
    lines, new = [1, 3, 4, 6], [0, 2, 5, 7]  # distinct lines, order kept
    shifts = [b - a for a, b in zip(lines, new, strict=True)]
    family = KSpaceJitter(SubsampledFourier(line_mask(shape, lines, axis)))
    reference = SubsampledFourier(line_mask(shape, new, axis))
    pert = family(torch.tensor(shifts, dtype=F64))
    x = reference.random_input(2, torch.complex128)
    torch.testing.assert_close(pert.A(x), reference.A(x), rtol=0, atol=1e-12)
    y = reference.random_output(2, F64)
    torch.testing.assert_close(pert.A_adjoint(y), reference.A_adjoint(y), rtol=0, atol=1e-12)
    # one line moved onto a free grid line: two orthonormal rows apart, ||e_a - e_b|| = sqrt(2)
    one = torch.zeros(len(lines), dtype=F64)
    one[1] = 1.0
    assert float(family.distance(one)) == pytest.approx(math.sqrt(2), rel=1e-12)
    # a whole period brings every line back
    torch.testing.assert_close(family(torch.full((4,), float(shape[axis]), dtype=F64)).A(x),
                               family.op.A(x), rtol=0, atol=1e-11)


def test_jitter_refuses_point_masks_and_other_operators() -> None:
    with pytest.raises(TypeError, match="'op'.*lines"):
        KSpaceJitter(SubsampledFourier(masks.uniform_random(8, 0.3)))
    with pytest.raises(TypeError, match="'op'.*SubsampledFourier.*Blur"):
        KSpaceJitter(Blur(gaussian_kernel(1.0), 8))
    with pytest.raises(ValueError, match="'axis'"):
        KSpaceJitter(SubsampledFourier(line_mask((8, 8), [1, 2])), axis=2)


# --------------------------------------------------------------------------- drop families
@pytest.mark.parametrize("axis", [0, 1])
def test_kspace_drop_zeroes_dropped_lines_and_has_unit_distance(axis: int) -> None:
    op = SubsampledFourier(line_mask((8, 6), [1, 2, 4, 5], axis=axis))
    family = KSpaceDrop(op)
    assert family.groups == "lines" and family.theta_shape == (4,) and not family.continuous
    keep = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=F64)
    x = op.random_input(1, torch.complex128)
    k, k0 = op.kspace(family(keep).A(x)), op.kspace(op.A(x))  # zero-filled centred k-space
    dropped = (slice(None), slice(None), 2) if axis == 0 else (slice(None), slice(None), slice(None), 2)
    assert bool((k[dropped] == 0).all()) and bool((k0[dropped] != 0).all())
    k0[dropped] = 0
    assert torch.equal(k, k0)
    assert float(family.distance(keep)) == 1.0 and float(family.distance(family.nominal_theta())) == 0.0
    assert torch.equal(family.project(keep, 0.5), family.nominal_theta())
    assert torch.equal(family.project(keep, 1.0), keep)
    assert torch.equal(family.random(0.5, gen()), family.nominal_theta())
    drawn = family.random(1.0, gen(1))
    assert int((drawn == 0).sum()) == 1 and float(family.distance(drawn)) == 1.0
    with pytest.raises(ValueError, match="'theta'.*0 .*1"):
        family(torch.full((4,), 0.5, dtype=F64))


def test_walsh_drop_and_refusals() -> None:
    op = SubsampledWalshHadamard(masks.uniform_random(8, 0.5, seed=0))
    family = build_perturbation("walsh_drop", op, drop_fraction=0.5)
    drawn = family.random(2.0, gen(0))
    assert int((drawn == 0).sum()) == math.ceil(0.5 * op.out_shape[-1])
    x = op.random_input(1, F64)
    torch.testing.assert_close(family(drawn).A(x), op.A(x) * drawn)
    with pytest.raises(TypeError, match="'op'.*SubsampledWalshHadamard"):
        WalshDrop(SubsampledFourier(masks.uniform_random(8, 0.3)))
    with pytest.raises(TypeError, match="'op'.*SubsampledFourier"):
        KSpaceDrop(op)


# --------------------------------------------------------------------------- kernel
def test_kernel_mismatch_equals_blur_with_the_perturbed_kernel() -> None:
    kernel = gaussian_kernel(1.0, size=5)
    op = Blur(kernel, (12, 10), dagger_eps=1e-2)
    family = KernelMismatch(op)
    dk = 0.02 * torch.randn(5, 5, generator=gen(0), dtype=F64)
    reference = Blur(kernel + dk, (12, 10), dagger_eps=1e-2)
    x = op.random_input(2, F64)
    pert = family(dk)
    torch.testing.assert_close(pert.A(x), reference.A(x), rtol=0, atol=1e-13)
    torch.testing.assert_close(pert.A_dagger(x), reference.A_dagger(x), rtol=0, atol=1e-12)
    assert float(family.distance(dk)) == pytest.approx(float((reference.transfer - op.transfer).abs().max()))
    assert family.homogeneity == 1 and torch.equal(family(torch.zeros(5, 5, dtype=F64)).A(x), op.A(x))
    with pytest.raises(TypeError, match="'op'.*Blur.*SubsampledFourier"):
        KernelMismatch(SubsampledFourier(masks.uniform_random(8, 0.3)))


# --------------------------------------------------------------------------- angle_offset
@pytest.mark.parametrize("circle", [True, False])
def test_angle_offset_equals_radon_at_the_offset_angles(circle: bool) -> None:
    op = Radon(12, angles=8, circle=circle)  # includes 45 and 135 degrees, where the stepping axis switches
    family = AngleOffset(op)
    x = op.random_input(2, F64)
    torch.testing.assert_close(family(family.nominal_theta()).A(x), op.A(x), rtol=0, atol=1e-13)
    theta = torch.tensor([0.3, -1.2, 0.8, 2.5, -0.4, 0.05, 1.7, -2.2], dtype=F64)
    reference = Radon(12, angles=[a + float(t) for a, t in zip(op.angles, theta, strict=True)], circle=circle)
    pert = family(theta)
    torch.testing.assert_close(pert.A(x), reference.A(x), rtol=0, atol=1e-12)
    y = reference.random_output(2, F64)
    torch.testing.assert_close(pert.A_adjoint(y), reference.A_adjoint(y), rtol=0, atol=1e-12)
    torch.testing.assert_close(pert.A_dagger(y), reference.A_dagger(y), rtol=0, atol=1e-12)
    assert float(family.distance(family.nominal_theta())) == 0.0 and not family.exact_distance
    with pytest.raises(TypeError, match="'op'.*Radon.*SubsampledFourier"):
        AngleOffset(SubsampledFourier(masks.uniform_random(8, 0.3)))


# --------------------------------------------------------------------------- rounding
@pytest.mark.parametrize("digits", [-1, 0, 1, 2, 3])
def test_rounding_equals_numpy_round(digits: int) -> None:
    op = GaussianMatrix(20, (5, 5), seed=0)
    k = torch.tensor(float(digits))
    if digits < 0:  # entries large enough for the tens to matter; no 'matrix': densified
        family, a = Rounding(7.0 * op), op.matrix.numpy() * 7.0
    else:
        family, a = Rounding(op), op.matrix.numpy()
    rounded = np.round(a, digits)
    np.testing.assert_array_equal(dense(family(k)), rounded)
    assert float(family.distance(k)) == pytest.approx(np.linalg.norm(rounded - a, 2), rel=1e-12)


def test_rounding_complex_bits_scale_and_project() -> None:
    op = SubsampledFourier(masks.uniform_random(6, 0.5, seed=0))
    family = Rounding(op, base=2)
    matrix = dense(op)
    np.testing.assert_array_equal(dense(family(torch.tensor(4.0))), np.round(matrix * 16) / 16)
    r = 0.05
    k = int(family.scale(torch.tensor(0.0), r))
    assert float(family.distance(torch.tensor(float(k)))) <= r * op.norm()
    assert float(family.distance(torch.tensor(k - 1.0))) > r * op.norm()
    assert int(family.random(r)) == k and int(family.project(torch.tensor(k + 3.0), r)) == k + 3
    assert int(family.project(torch.tensor(0.0), r)) == k
    assert int(family.scale(torch.tensor(0.0), 1.01)) == family.min_digits()  # all entries 0
    with pytest.raises(ValueError, match="'theta'.*integer"):
        family(torch.tensor(1.5))
    with pytest.raises(ValueError, match="'base'"):
        Rounding(op, base=3)
    with pytest.raises(TypeError, match="'op'"):
        Rounding("matrix")


def test_rounding_pinv_and_fixed_channel_matrix() -> None:
    op = GaussianMatrix(10, (4, 4), seed=2, channels=2)  # the same 10 x 16 matrix on each channel
    family = Rounding(op)
    pert = family(torch.tensor(2.0))
    x = op.random_input(2, F64)
    rounded = torch.round(op.matrix * 100) / 100
    torch.testing.assert_close(pert.A(x), x.flatten(-2) @ rounded.T)
    y = op.random_output(2, F64)
    torch.testing.assert_close(pert.A_dagger(y), (y @ torch.linalg.pinv(rounded).T).unflatten(-1, (4, 4)))


# --------------------------------------------------------------------------- registry
def test_registry_names_metadata_and_builder() -> None:
    assert set(PERTURBATIONS) == {"additive", "kspace_jitter", "kspace_drop", "walsh_drop", "kernel",
                                  "angle_offset", "rounding"}
    for entry in PERTURBATIONS.entries():
        assert entry.value.name == entry.name and entry.summary
        assert entry.meta["continuous"] == entry.value.continuous
        assert entry.meta["distance"] == entry.value.distance_kind and entry.meta["operators"]
    assert PERTURBATIONS.entry("kspace_jitter").meta["operators"] == ("SubsampledFourier",)
    family = build_perturbation("additive", GaussianMatrix(8, (4, 4)), rank=3)
    assert isinstance(family, AdditiveLowRank) and family.theta_shape == (24, 3)
    with pytest.raises(ValueError, match="rank"):
        build_perturbation("additive", GaussianMatrix(8, (4, 4)), rank=0)
    with pytest.raises(ValueError, match="colour"):
        build_perturbation("kernel", Blur(gaussian_kernel(1.0), 8), colour=1)
    with pytest.raises(KeyError, match="choose from"):
        build_perturbation("shear", Blur(gaussian_kernel(1.0), 8))
    with pytest.raises(TypeError, match="'op'"):
        AdditiveLowRank(torch.eye(3))
    with pytest.raises(ValueError, match="'rank'"):
        AdditiveLowRank(GaussianMatrix(8, (4, 4)), rank=0)
