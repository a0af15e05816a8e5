"""Kernel projections and near-kernel splits, checked against the orthogonal projector onto the
kernel computed from the dense matrix of each operator (applied to unit vectors) by an SVD."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stablerecon.operators import (
    Blur,
    Downsample,
    GaussianMatrix,
    Identity,
    Inpainting,
    Radon,
    SubsampledFourier,
    SubsampledWalshHadamard,
    box_kernel,
    centered_fft2,
    centered_ifft2,
    masks,
)
from stablerecon.operators.nullspace import kernel_projection, kernel_split

N = 16


class DenseGaussian:
    """A foreign operator: ``y = G vec(x)`` with a Gaussian ``G`` ``(m, prod(shape))``, only
    ``A`` and ``A_adjoint``; images ``(B, *shape)``; ``cast=False`` keeps ``G`` in float32 and
    so refuses other dtypes."""

    def __init__(self, m: int, shape: tuple[int, ...] = (1, N, N), seed: int = 0, cast: bool = True) -> None:
        g = torch.Generator().manual_seed(seed)
        dtype = torch.float64 if cast else torch.float32
        self.matrix = torch.randn(m, int(np.prod(shape)), generator=g, dtype=dtype) / m**0.5
        self.shape, self.cast = shape, cast

    def _m(self, t: torch.Tensor) -> torch.Tensor:
        return self.matrix.to(t.dtype) if self.cast else self.matrix

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the contract's name
        return x.reshape(x.shape[0], -1) @ self._m(x).T

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return (y @ self._m(y)).reshape(y.shape[0], *self.shape)


class ValidBlur:
    """A foreign operator: "valid" convolution with a non-square kernel (no padding), images
    ``(B, 1, H, W)`` -> ``(B, 1, H - kh + 1, W - kw + 1)``; the adjoint is the transposed
    convolution. ``single=True``: the kernel stays float32, so float64 input fails."""

    def __init__(self, single: bool = False) -> None:
        g = torch.Generator().manual_seed(5)
        self.kernel = torch.rand(1, 1, 3, 5, generator=g, dtype=torch.float64)
        self.single = single

    def _k(self, t: torch.Tensor) -> torch.Tensor:
        return self.kernel.float() if self.single else self.kernel.to(t.dtype)

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return F.conv2d(x, self._k(x))

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return F.conv_transpose2d(y, self._k(y))


FACTORIES: dict[str, Callable[[], object]] = {
    "fourier": lambda: SubsampledFourier(masks.variable_density(N, 0.3, seed=0)),
    "hadamard": lambda: SubsampledWalshHadamard(masks.variable_density(N, 0.3, seed=0, origin="corner")),
    "radon": lambda: Radon(N, angles=8),
    "gaussian": lambda: GaussianMatrix(100, N * N, seed=0),
    "blur": lambda: Blur(box_kernel(4), N),
    "inpainting": lambda: Inpainting(masks.uniform_random(N, 0.5, seed=0)),
    "downsample": lambda: Downsample(2, N),
    "foreign-gaussian": lambda: DenseGaussian(100),
    "foreign-blur": ValidBlur,
}


def norms(t: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)


def detail(batch: int = 2, n: int = N) -> torch.Tensor:
    """A disk and a random image, float64 ``(batch, 1, n, n)``."""
    yy, xx = np.mgrid[:n, :n]
    disk = torch.from_numpy(((yy - 6) ** 2 + (xx - 9) ** 2 <= 9).astype(np.float64))
    rand = torch.rand(n, n, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return torch.stack([disk, rand])[:batch, None]


def dense_projection(op: object, d: torch.Tensor) -> torch.Tensor:
    """``(I - V V^T) d``: the projection onto the kernel of ``A`` as a real-linear map of real
    images, from the dense matrix of ``A`` (``A`` applied to the unit images; real and imaginary
    parts of the measurements stacked) and its SVD."""
    shape, n = d.shape[1:], int(np.prod(d.shape[1:]))
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    cols = op.A(basis).reshape(n, -1)  # type: ignore[attr-defined]
    if cols.is_complex():
        cols = torch.cat((cols.real, cols.imag), dim=1)
    _, s, vt = np.linalg.svd(cols.T.numpy())
    rank = int((s > 1e-9 * s[0]).sum())
    flat = d.reshape(d.shape[0], -1).numpy()
    return torch.from_numpy(flat - (flat @ vt[:rank].T) @ vt[:rank]).reshape(d.shape)


def ratios(op: object, z: torch.Tensor) -> torch.Tensor:
    """``||A z|| / ||z||`` per item, measured in float64."""
    z = z.to(torch.complex128 if z.is_complex() else torch.float64)
    return norms(op.A(z)) / norms(z)  # type: ignore[attr-defined]


def relative_error(z: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    return norms(z.to(expected.dtype) - expected) / norms(expected)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_kernel_part_is_the_dense_svd_projection(name: str) -> None:
    """float64 and float32 input: z0 is (I - V V^T) d to 1e-6 relative and ||A z0|| <= 1e-6
    ||z0||, in the input's dtype (float32: measured on the returned, rounded values)."""
    op = FACTORIES[name]()
    d = detail()
    expected = dense_projection(op, d)
    for dtype in (torch.float64, torch.float32):
        z0 = kernel_projection(d.to(dtype), op)
        assert z0.dtype == dtype
        assert torch.all(relative_error(z0, expected) <= 1e-6), (name, dtype, relative_error(z0, expected))
        assert torch.all(ratios(op, z0) <= 1e-6), (name, dtype, ratios(op, z0))
        split = kernel_split(d.to(dtype), op)
        assert split.z0.dtype == split.z.dtype == dtype and split.kernel_ratio.dtype == dtype
        assert torch.equal(split.z0, z0) and torch.equal(split.z, z0)
        assert torch.all(split.kernel_ratio <= 1e-6)
        assert torch.allclose(split.kernel_ratio.double(), ratios(op, z0), rtol=1e-5)


def test_ill_conditioned_radon_is_solved_densely_or_refused() -> None:
    """Radon 32 x 32 with 16 angles (nonzero singular values down to 1e-4 ||A||): conjugate
    gradients and LSQR stall far above the target, the dense projector reaches it; without
    the dense solve the error names the operator and the ratio reached."""
    op = Radon(32, angles=16)
    d = detail(n=32)
    expected = dense_projection(op, d)
    z0 = kernel_projection(d, op)
    assert torch.all(ratios(op, z0) <= 1e-6), ratios(op, z0)
    assert torch.all(relative_error(z0, expected) <= 1e-6), relative_error(z0, expected)
    z32 = kernel_projection(d.float(), op)
    assert z32.dtype == torch.float32 and torch.all(ratios(op, z32) <= 1e-6)
    message = r"Radon did not converge: \|\|A z0\|\| / \|\|z0\|\| = .*no dense solve.*dense_limit"
    with pytest.raises(RuntimeError, match=message):
        kernel_projection(d, op, dense_limit=0)


@pytest.mark.parametrize("scale", [1e-6, 1e3])
def test_the_criterion_scales_with_the_operator(scale: float) -> None:
    """c A has the kernel of A: for c = 1e-6, ||A z0|| <= 1e-6 ||z0|| would accept the first
    (stalled) solve of Radon 32 x 32; the criterion is target min(1, ||A||), so the same
    projection comes out for every c."""
    op = scale * Radon(32, angles=16)
    d = detail(n=32)
    z0 = kernel_projection(d, op)
    assert torch.all(ratios(op, z0) <= 1e-6 * min(1.0, op.norm())), ratios(op, z0) / op.norm()
    assert torch.all(relative_error(z0, dense_projection(Radon(32, angles=16), d)) <= 1e-6)


@pytest.mark.parametrize("name", ["fourier", "radon", "foreign-blur"])
@pytest.mark.parametrize("ratio", [0.2, 0.01])
def test_near_kernel_detail_has_the_requested_ratio(name: str, ratio: float) -> None:
    """z = z0 + t (d - z0) with ||A z|| / ||z|| = ratio, checked directly; z - z0 is along the
    range part d - z0 of the dense projector; float32 input gives the same ratio to 1e-4."""
    op = FACTORIES[name]()
    d = detail()
    split = kernel_split(d, op, ratio=ratio)
    assert torch.allclose(ratios(op, split.z), torch.full((2,), ratio, dtype=torch.float64), rtol=1e-6)
    assert torch.allclose(split.ratio, ratios(op, split.z), rtol=1e-12)
    rest = (d - dense_projection(op, d)).reshape(2, -1).numpy()
    step = (split.z - split.z0).reshape(2, -1).numpy()
    t = (step * rest).sum(1) / (rest * rest).sum(1)
    assert np.allclose(step, t[:, None] * rest, atol=1e-6 * np.abs(step).max())
    split32 = kernel_split(d.float(), op, ratio=ratio)
    assert split32.z.dtype == torch.float32 and split32.ratio.dtype == torch.float32
    assert torch.allclose(split32.ratio.double(), split.ratio, rtol=1e-4)


def test_float32_fourier_detail_at_low_sampling() -> None:
    """The reported failure: a float32 detail on Fourier 32 x 32 at 27% sampling stopped with
    "NaN or Inf" (a float32 solve with tol 1e-9); now solved in float64, returned in float32."""
    op = SubsampledFourier(masks.variable_density(32, 0.27, seed=0))
    d = torch.zeros(1, 1, 32, 32)
    d[..., 10:14, 12:16] = 1
    z0 = kernel_projection(d, op)
    assert z0.dtype == torch.float32 and bool(torch.isfinite(z0).all())
    assert float(ratios(op, z0)[0]) <= 1e-6
    assert float(relative_error(z0, dense_projection(op, d.double()))[0]) <= 1e-6
    split = kernel_split(d, op, ratio=0.05)
    assert split.z.dtype == torch.float32 and float(split.ratio[0]) == pytest.approx(0.05, rel=1e-4)


def test_complex_detail_on_fourier_is_the_complex_projection() -> None:
    """A complex detail is projected within complex images: for a subsampled unitary transform,
    z0 = F^* (1 - mask) F d."""
    mask = masks.variable_density(N, 0.3, seed=0)
    op = SubsampledFourier(mask)
    d = torch.complex(detail(), detail().flip(-1))
    expected = centered_ifft2(centered_fft2(d) * (1 - mask.to(torch.float64)))
    z0 = kernel_projection(d, op)
    assert z0.dtype == torch.complex128
    assert torch.allclose(z0, expected, atol=1e-10)
    z64 = kernel_projection(d.to(torch.complex64), op)
    assert z64.dtype == torch.complex64 and torch.allclose(z64.to(torch.complex128), expected, atol=1e-6)
    with pytest.raises(ValueError, match="'d' is complex but Radon accepts only real images"):
        kernel_projection(d, Radon(N, angles=8))


def test_complex_detail_through_the_dense_solve() -> None:
    """max_iter = 1 leaves the iterations far from the target: the dense solve projects a complex
    detail within complex images (GaussianMatrix maps real and imaginary parts alike)."""
    op = GaussianMatrix(100, N * N, seed=0)
    d = torch.complex(detail(), detail().flip(-1))
    _, _, vh = torch.linalg.svd(op.to_matrix(torch.float64))
    row = vh[:100].to(torch.complex128)
    flat = d.reshape(2, -1)
    expected = (flat - (flat @ row.T) @ row).reshape(d.shape)
    z0 = kernel_projection(d, op, max_iter=1)
    assert z0.dtype == torch.complex128 and torch.all(relative_error(z0, expected) <= 1e-9)
    assert torch.all(ratios(op, z0) <= 1e-6)


def test_foreign_operator_on_three_dimensional_images() -> None:
    """Batched (B, H, W) images of a foreign operator: the shapes come from the input."""
    op = DenseGaussian(100, shape=(N, N))
    d = detail()[:, 0]
    split = kernel_split(d, op, ratio=0.1)
    expected = dense_projection(op, d)
    assert split.z0.shape == d.shape and torch.all(relative_error(split.z0, expected) <= 1e-6)
    assert torch.all(split.kernel_ratio <= 1e-6)
    assert torch.allclose(split.ratio, torch.full((2,), 0.1, dtype=torch.float64), rtol=1e-6)


def test_detail_in_the_range_has_a_numerically_zero_kernel_part() -> None:
    """No kernel (Identity, a tall Gaussian matrix) or d = A^* y: z0 is 0 up to rounding (the
    criterion relative to ||d||), and kernel_split refuses to split it."""
    d = detail()
    fourier, radon = FACTORIES["fourier"](), FACTORIES["radon"]()
    cases = ((Identity(N), d), (GaussianMatrix(400, N * N, seed=1), d),
             (fourier, fourier.A_adjoint(fourier.A(d)).real), (radon, radon.A_adjoint(radon.A(d))))
    for op, x in cases:
        z0 = kernel_projection(x, op)
        assert torch.all(norms(z0) <= 1e-8 * norms(x)), (type(op).__name__, norms(z0) / norms(x))
        with pytest.raises(ValueError, match=f"'d' has no component in the kernel of {type(op).__name__}"):
            kernel_split(x, op)


def test_non_convergence_names_the_operator() -> None:
    with pytest.raises(RuntimeError, match=r"Radon did not converge: \|\|A z0\|\| / \|\|z0\|\| = "):
        kernel_projection(detail(), Radon(N, angles=8), max_iter=1, dense_limit=0)
    with pytest.raises(RuntimeError, match="DenseGaussian did not converge"):
        kernel_split(detail(), DenseGaussian(100), max_iter=1, dense_limit=0, target=1e-14)


def test_non_convergence_on_an_operator_with_more_measurements_says_it_may_be_injective() -> None:
    """Radon 16 x 16 with 8 angles (fewer measurements than pixels): no note; with 64 angles
    (64 x 16 measurements for 256 pixels) the error says the kernel may be {0}."""
    with pytest.raises(RuntimeError) as few:
        kernel_projection(detail(), Radon(N, angles=8), max_iter=1, dense_limit=0)
    assert "may be injective" not in str(few.value)
    many = Radon(N, angles=64)
    assert many.n_angles * many.n_detectors >= N * N
    with pytest.raises(RuntimeError, match=r"real measurements per item for 256 real unknowns, so it may be "
                                           r"injective \(kernel \{0\}"):
        kernel_projection(detail(), many, max_iter=1, dense_limit=0, target=1e-14)


@pytest.mark.parametrize("single", [lambda: DenseGaussian(100, cast=False), lambda: ValidBlur(single=True)])
def test_single_precision_operator_is_solved_in_its_precision_and_says_so(single) -> None:  # type: ignore[no-untyped-def]
    """An operator that refuses float64 is solved in float32 with a warning stating the ratio;
    the result agrees with the float64 solve of the same matrix to float32 precision."""
    op32 = single()
    op64 = DenseGaussian(100) if isinstance(op32, DenseGaussian) else ValidBlur()
    if isinstance(op32, DenseGaussian):
        op64.matrix = op32.matrix.double()
    else:
        op64.kernel = op32.kernel.float().double()
        op32.kernel = op64.kernel
    d = detail()
    name = type(op32).__name__
    with pytest.warns(RuntimeWarning, match=rf"{name} computed in torch.float32: {name} does not accept"):
        z0 = kernel_projection(d, op32, target=1e-5)
    assert z0.dtype == torch.float64
    reference = kernel_projection(d, op64)
    assert torch.all(relative_error(z0, reference) <= 1e-4)
    assert torch.all(ratios(op64, z0) <= 1e-4)


@pytest.mark.parametrize("single", [lambda: DenseGaussian(100, cast=False), lambda: ValidBlur(single=True)])
def test_single_precision_solve_keeps_the_target(single) -> None:  # type: ignore[no-untyped-def]
    """With the default target, a float32 solve either reaches ||A z0|| <= 1e-6 ||z0|| as the
    operator itself measures it, or raises naming the operator and its precision."""
    op = single()
    d = detail()
    try:
        with pytest.warns(RuntimeWarning, match="float32"):
            z0 = kernel_projection(d, op)
    except RuntimeError as exc:
        assert f"{type(op).__name__} did not converge, computed in torch.float32" in str(exc)
    else:
        z32 = z0.float()
        assert torch.equal(z32.double(), z0)
        assert torch.all(norms(op.A(z32)) <= 1e-6 * norms(z32))


def test_bad_arguments_are_named() -> None:
    op = FACTORIES["inpainting"]()
    with pytest.raises(TypeError, match="'op'"):
        kernel_projection(detail(), object())
    bad = (({"max_iter": 0}, "max_iter"), ({"tol": -1.0}, "tol"), ({"target": float("nan")}, "target"),
           ({"dense_limit": -1}, "dense_limit"))
    for kwargs, arg in bad:
        with pytest.raises(ValueError, match=arg):
            kernel_projection(detail(), op, **kwargs)
    with pytest.raises(ValueError, match="'d'"):
        kernel_projection(torch.zeros(4), op)
    with pytest.raises(ValueError, match="'d'"):
        kernel_projection(torch.zeros(1, 1, N, N, dtype=torch.int64), op)
    for value in (float("nan"), float("inf")):
        d = detail()
        d[0, 0, 3, 4] = value
        with pytest.raises(ValueError, match="argument 'd' contains NaN or Inf"):
            kernel_projection(d, op)
        with pytest.raises(ValueError, match="argument 'd' contains NaN or Inf"):
            kernel_split(d, FACTORIES["foreign-blur"](), ratio=0.1)
    with pytest.raises(ValueError, match="ratio"):
        kernel_split(detail(), op, ratio=-0.1)


def test_a_failing_operator_is_named() -> None:
    """An operator that fails in float64 and in float32 is refused with both reasons."""

    class Broken:
        def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
            raise RuntimeError("no")

        def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
            return y

    with pytest.raises(TypeError, match=r"argument 'op': Broken does not accept torch.float64 .*float32"):
        kernel_projection(detail(), Broken())
