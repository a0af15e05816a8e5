"""Foreign operators (only ``A`` and ``A_adjoint``, no stablerecon class) through the adapter,
the solvers, FIRENET, zero-filling and the audit, against dense matrices, closed forms and the
same problem on an equivalent stablerecon operator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import stablerecon as sr
from stablerecon.nets import FIRENet, ZeroFilled
from stablerecon.operators import AdaptedOperator, LinearOperator, as_linear_operator
from stablerecon.solvers import SparseReconstructor

SIZE, M = 16, 100


class DenseGaussian:
    """``A x = G vec(x)`` per channel, float64 only; no norm, no shapes, no A_dagger."""

    def __init__(self, matrix: torch.Tensor) -> None:
        self.G = matrix

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return x.flatten(-2) @ self.G.T

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return (y @ self.G).unflatten(-1, (SIZE, SIZE))


class ValidBlur:
    """'valid' correlation with a 5x5 kernel: 16x16 images -> 12x12 measurements; the adjoint
    is the transposed convolution. Any dtype, complex included; nothing else."""

    def __init__(self, kernel: torch.Tensor) -> None:
        self.kernel = kernel

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return F.conv2d(x, self.kernel.to(x.dtype))

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return F.conv_transpose2d(y, self.kernel.to(y.dtype))


class NativeValidBlur(LinearOperator):
    """The same blur as a stablerecon operator (the reference for the adapted one)."""

    def __init__(self, kernel: torch.Tensor) -> None:
        super().__init__((1, SIZE, SIZE), (1, SIZE - 4, SIZE - 4))
        self.kernel = kernel

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(y, self.kernel.to(y.dtype))


def _kernel() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    k = torch.rand(1, 1, 5, 5, generator=g, dtype=torch.float64) + 0.2
    return k / k.sum()


def _dense(op: object) -> np.ndarray:
    """The matrix of ``op.A`` on one 16x16 channel, column j = A e_j (float64)."""
    eye = torch.eye(SIZE * SIZE, dtype=torch.float64).reshape(-1, 1, SIZE, SIZE)
    return op.A(eye).reshape(SIZE * SIZE, -1).T.numpy()


@pytest.fixture(scope="module")
def gaussian() -> tuple[DenseGaussian, sr.operators.GaussianMatrix]:
    native = sr.operators.GaussianMatrix(M, SIZE * SIZE, seed=0, channels=1)
    return DenseGaussian(native.matrix.clone()), native


@pytest.fixture(scope="module")
def blur() -> tuple[ValidBlur, NativeValidBlur]:
    return ValidBlur(_kernel()), NativeValidBlur(_kernel())


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    sparse = sr.data.haar_sparse(SIZE, block=4, dtype=torch.float64)
    return torch.cat([sr.data.shepp_logan(SIZE).double(), sparse])


def _pair(request: pytest.FixtureRequest, kind: str) -> tuple[object, LinearOperator]:
    return request.getfixturevalue(kind)


@pytest.mark.parametrize(("kind", "in_kind", "out_shape"), [("gaussian", "real", (1, M)),
                                                             ("blur", "any", (1, 12, 12))])
def test_adapter_dot_product_norm_and_conventions(request, kind: str, in_kind: str, out_shape) -> None:
    foreign, _ = _pair(request, kind)
    y = foreign.A(torch.ones(2, 1, SIZE, SIZE, dtype=torch.float64))
    op = as_linear_operator(foreign, example=y)
    assert isinstance(op, AdaptedOperator)
    assert op.in_shape == (1, SIZE, SIZE) and op.out_shape == out_shape
    assert op.in_kind == in_kind and not op.out_complex  # the float64 G refuses complex images
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, SIZE, SIZE, generator=g, dtype=torch.float64)
    z = torch.randn(3, *out_shape, generator=g, dtype=torch.float64)
    lhs = (op.A(x) * z).sum(dim=(1, 2) if len(out_shape) == 2 else (1, 2, 3))
    rhs = (x * op.A_adjoint(z)).sum(dim=(1, 2, 3))
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)
    assert op.adjointness_error() < 1e-12
    dense = torch.from_numpy(_dense(foreign))
    np.testing.assert_allclose(op.norm(), float(torch.linalg.matrix_norm(dense, 2)), rtol=1e-6)
    # A_dagger falls back to the adjoint; the object is adapted once (same facts next time)
    torch.testing.assert_close(op.A_dagger(z), foreign.A_adjoint(z))
    assert as_linear_operator(foreign, example=y)._facts is op._facts
    # validation of the base class: wrong shapes and NaN are refused, naming the argument
    with pytest.raises(ValueError, match="'x'"):
        op.A(x[..., :-1])
    with pytest.raises(ValueError, match="'y'.*NaN"):
        op.A_adjoint(z * math.nan)
    if in_kind == "real":
        with pytest.raises(TypeError, match="'x'"):
            op.A(x.to(torch.complex128))


def test_adapter_uses_what_the_operator_has(gaussian) -> None:
    foreign, native = gaussian

    class WithExtras(DenseGaussian):
        in_shape = (1, SIZE, SIZE)
        out_shape = (1, M)

        def A_dagger(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
            return (y @ torch.linalg.pinv(self.G).T).unflatten(-1, (SIZE, SIZE))

        def norm(self) -> float:
            return 7.0

    op = as_linear_operator(WithExtras(foreign.G))  # declared shapes: no example needed
    y = foreign.A(sr.data.shepp_logan(SIZE).double())
    pinv = np.linalg.pinv(foreign.G.numpy())
    np.testing.assert_allclose(op.A_dagger(y).reshape(-1).numpy(), pinv @ y.reshape(-1).numpy(), rtol=1e-9)
    assert op.norm() == 7.0
    assert as_linear_operator(native) is native  # stablerecon operators pass through


def test_adapter_errors_name_the_problem(gaussian) -> None:
    foreign, _ = gaussian
    with pytest.raises(TypeError, match="'op'.*A_adjoint"):
        as_linear_operator(object())
    with pytest.raises(ValueError, match="shapes of DenseGaussian are unknown"):
        as_linear_operator(foreign)
    with pytest.raises(TypeError, match="'example'"):
        as_linear_operator(foreign, example=[1.0, 2.0])
    with pytest.raises(ValueError, match="DenseGaussian.A_adjoint failed"):
        as_linear_operator(foreign, example=torch.ones(1, 1, M + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="fista: argument 'op'.*unknown"):
        sr.solvers.fista(None, foreign, sr.sparsity.Wavelet("haar", size=SIZE), 0.01)
    with pytest.raises(TypeError, match="'op'"):
        SparseReconstructor("tv", op=object())


@pytest.mark.parametrize("kind", ["gaussian", "blur"])
@pytest.mark.parametrize("method", ["fista", "tv", "primal_dual"])
def test_solvers_match_the_equivalent_stablerecon_operator(request, kind: str, method: str) -> None:
    foreign, native = _pair(request, kind)
    x = request.getfixturevalue("images")
    y = sr.operators.noise.add_gaussian(native.A(x), rel=0.01, seed=0)
    steps = 600 if method == "primal_dual" else 150  # plain Chambolle-Pock is slow
    out = SparseReconstructor(method, foreign, max_iter=steps)(y)
    reference = SparseReconstructor(method, native, max_iter=steps)(y)
    torch.testing.assert_close(out, reference, rtol=1e-6, atol=1e-6)
    assert not out.is_complex() and out.shape == x.shape
    # one operator per call also works, and the result fits the data
    torch.testing.assert_close(SparseReconstructor(method, max_iter=steps)(y, foreign), out)
    assert _relative(foreign.A(out), y) < 0.1


def test_fista_on_a_foreign_operator_meets_the_lasso_optimality_conditions(gaussian) -> None:
    """KKT of ``min_c 0.5 ||G W^T c - y||^2 + lam ||c||_1`` in NumPy with the dense matrices."""
    foreign, _ = gaussian
    wavelet = sr.sparsity.Wavelet("haar", size=SIZE)
    x = sr.data.shepp_logan(SIZE).double()
    y = foreign.A(x)
    lam = 0.01
    x_hat = sr.solvers.fista(y, foreign, wavelet, lam, max_iter=3000, tol=0.0)
    w = wavelet.to_matrix().numpy()  # coefficients = W vec(x)
    g = foreign.G.numpy()
    c = w @ x_hat.reshape(-1).numpy()
    grad = w @ (g.T @ (g @ x_hat.reshape(-1).numpy() - y.reshape(-1).numpy()))
    active = np.abs(c) > 1e-8
    assert active.any() and not active.all()
    np.testing.assert_allclose(grad[active], -lam * np.sign(c[active]), atol=1e-5)
    assert np.abs(grad[~active]).max() <= lam * (1 + 1e-5)


@pytest.mark.parametrize("kind", ["gaussian", "blur"])
def test_zero_filling_is_the_adjoint(request, kind: str) -> None:
    foreign, _ = _pair(request, kind)
    x = request.getfixturevalue("images")
    y = foreign.A(x)
    out = ZeroFilled()(y, foreign)
    dense = _dense(foreign)
    expected = (y.reshape(2, -1).numpy() @ dense).reshape(x.shape)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


def _relative(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(x_hat - x) / torch.linalg.vector_norm(x))


def test_firenet_on_a_foreign_operator_converges_geometrically(gaussian) -> None:
    """Exactly Haar-sparse image (16 coefficients), noiseless Gaussian measurements (m = 100 of
    n = 256): the error falls by at least a factor 2 at every restart until it reaches 1e-6,
    as on Fourier, and exactly as on the stablerecon GaussianMatrix with the same matrix. The
    window of (lam, p) is not the Fourier one: the old Fourier defaults (2e-3, 8) stall at 0.8,
    lam = 0.1 with p = 16 divides the error by about e per restart."""
    foreign, native = gaussian
    x = sr.data.haar_sparse(SIZE, block=4, dtype=torch.float64)
    y = foreign.A(x)
    wavelet = sr.sparsity.Wavelet("haar", size=SIZE)
    net = FIRENet(foreign, wavelet, lam=0.1, inner=16, restarts=16)
    errors: dict[str, list[float]] = {"foreign": [], "native": []}
    for key, op in (("foreign", foreign), ("native", native)):
        sr.solvers.restarted_primal_dual(y, op, wavelet, net.lam, restarts=net.restarts, inner=net.inner,
                                         callback=lambda k, xk, key=key: errors[key].append(_relative(xk, x)))
    curve = errors["foreign"]
    reached = next(k for k, e in enumerate(curve) if e <= 1e-6)
    assert all(curve[k + 1] <= 0.5 * curve[k] for k in range(reached))
    np.testing.assert_allclose(curve, errors["native"], rtol=1e-3)
    torch.testing.assert_close(net(y), sr.solvers.restarted_primal_dual(
        y, foreign, wavelet, net.lam, restarts=net.restarts, inner=net.inner))
    torch.testing.assert_close(FIRENet(restarts=3)(y, foreign),
                               FIRENet(restarts=3)(y, as_linear_operator(foreign, example=y)))


@pytest.mark.parametrize("kind", ["gaussian", "blur"])
def test_audit_runs_on_a_foreign_operator(request, kind: str, images: torch.Tensor) -> None:
    """accuracy, worst_case, random_noise and detail for zero-filling, TV and FIRENET; the
    linear zero-filling B = A^T checked against the dense matrix: PSNR of B A x, worst-case
    amplification at most ||B|| and within 3% of it, mean random amplification
    ||B||_F / sqrt(m), the detail's recovered fraction."""
    foreign, _ = _pair(request, kind)
    dense = _dense(foreign)
    sigma = np.linalg.svd(dense, compute_uv=False)
    methods = {"zero-filled": ZeroFilled(), "TV": SparseReconstructor("tv", max_iter=20),
               "FIRENET": FIRENet(restarts=1, inner=4)}
    options = {"budgets": [0.02], "report_budget": 0.02, "steps": 3, "restarts": 1, "draws": 200,
               "not_rare_draws": 1}
    tests = ["accuracy", "worst_case", "random_noise", "detail"]
    result = sr.audit.run(methods, foreign, images, tests=tests, options=options, report=False,
                          progress=False)
    for name in methods:
        for test in tests:
            assert (name, test) in result.entries
    entries = {test: result.entries[("zero-filled", test)] for test in tests}
    flat = images.reshape(2, -1).numpy()
    rec = flat @ dense.T @ dense
    psnr = 10 * np.log10(1.0 / ((rec - flat) ** 2).mean(axis=1))
    np.testing.assert_allclose(entries["accuracy"]["clean"]["psnr"], psnr, rtol=1e-6)
    amp = np.asarray(entries["worst_case"]["amplification"])
    assert (amp <= sigma[0] * (1 + 1e-9)).all()
    m = dense.shape[0]
    np.testing.assert_allclose(entries["random_noise"]["mean_amplification"],
                               np.full((1, 2), np.sqrt((sigma**2).sum() / m)), rtol=0.05)
    # the detail: (B A d) restricted to the mask, projected on d
    x_d, mask = sr.data.insert_detail(images, kind="blob", contrast=30 / 255,
                                      position=(SIZE // 2, SIZE // 2), seed=0)
    mask = mask.reshape(2, -1).numpy()
    d = (x_d - images).reshape(2, -1).numpy()
    truth, found = d * mask, (d @ dense.T @ dense) * mask
    np.testing.assert_allclose(entries["detail"]["recovered"], (found * truth).sum(1) / (truth**2).sum(1),
                               rtol=1e-6)
    # with a longer search the worst case reaches the largest singular value
    y = foreign.A(images)
    search = sr.audit.worst_case(ZeroFilled(), y, foreign, [0.02], steps=40, restarts=1)
    assert (search.amplification >= 0.97 * sigma[0]).all()
    assert (search.amplification <= sigma[0] * (1 + 1e-9)).all()


@pytest.mark.parametrize("kind", ["gaussian", "blur"])
def test_kernel_audit_on_a_foreign_operator(request, kind: str, images: torch.Tensor) -> None:
    """The kernel test's exact-kernel detail ``z0`` is the projection of the detail onto the
    null space of the dense matrix (SVD), and zero-filling cannot see it."""
    foreign, _ = _pair(request, kind)
    dense = _dense(foreign)
    result = sr.audit.run({"zero-filled": ZeroFilled()}, foreign, images, tests=["kernel"],
                          report=False, progress=False)
    values, arrays = result.entries[("zero-filled", "kernel")], result.arrays[("zero-filled", "kernel")]
    assert max(values["kernel_ratio"]) <= 1e-6
    x_d, _ = sr.data.insert_detail(images, kind="blob", contrast=1.0, position=(SIZE // 2, SIZE // 2),
                                   size=9, soft=False)
    d = (x_d - images).reshape(2, -1).numpy()
    _, s, vt = np.linalg.svd(dense)
    null = vt[int((s > 1e-10 * s[0]).sum()):]
    expected = d @ null.T @ null
    np.testing.assert_allclose(arrays["z0"].reshape(2, -1).numpy(), expected, atol=1e-6)


def test_the_dip_on_a_foreign_operator_matches_the_equivalent_stablerecon_operator(gaussian) -> None:
    """Same seed, same data, the same linear map: the same fit, step by step."""
    foreign, native = gaussian
    x = sr.data.shepp_logan(SIZE).double()
    y = native.A(x)
    generator = sr.nets.dip.SkipNet(depth=2, channels_down=8, channels_up=8)
    dip = sr.nets.DeepImagePrior.cheap(steps=15, generator=generator, early_stopping=None, seed=0)
    out, reference = dip(y, foreign), dip(y, native)
    assert out.shape == x.shape and not out.is_complex()
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)


def test_the_sampling_test_on_a_foreign_operator_family(images: torch.Tensor) -> None:
    """``make_operator(rate)`` returns foreign Gaussian matrices of round(rate n) rows: the
    zero-filling PSNR at each rate is that of the dense ``G^T G x``."""
    n = SIZE * SIZE

    def matrix(rate: float) -> torch.Tensor:
        return sr.operators.GaussianMatrix(round(rate * n), n, seed=1, channels=1).matrix.clone()

    def make_operator(rate: float) -> DenseGaussian:
        return DenseGaussian(matrix(rate))

    rates = [0.25, 0.5]
    result = sr.audit.run({"zero-filled": ZeroFilled()}, make_operator(0.4), images, tests=["sampling"],
                          make_operator=make_operator, options={"rates": rates, "noise": 0.0},
                          report=False, progress=False)
    values = result.entries[("zero-filled", "sampling")]
    assert values["rates"] == rates
    flat = images.reshape(2, -1).numpy()
    for i, rate in enumerate(rates):
        g = matrix(rate).numpy()
        rec = flat @ g.T @ g
        psnr = 10 * np.log10(1.0 / ((rec - flat) ** 2).mean(axis=1))
        np.testing.assert_allclose(np.asarray(values["psnr"])[i], psnr, rtol=1e-6)  # (rates, images)
