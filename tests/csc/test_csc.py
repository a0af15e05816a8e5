"""The CSC layer against independent references: a long-run solve, the explicit convolution
matrix, finite differences; SDNet's options and bad input."""

from __future__ import annotations

import pytest
import torch

import stablerecon as sr
from stablerecon.csc import CSCDenoiser, CSCLayer, SDNet, csc_layers


def _explicit_synthesis(layer: CSCLayer, height: int, width: int) -> torch.Tensor:
    """The matrix of ``D`` ``(C H W, K H' W')``, column by column from unit codes."""
    hc, wc = layer.code_size(height, width)
    m = layer.out_channels * hc * wc
    eye = torch.eye(m, dtype=torch.float64).reshape(m, layer.out_channels, hc, wc)
    with torch.no_grad():
        return layer.synthesis(eye, (height, width)).reshape(m, -1).T


def _patch() -> torch.Tensor:
    return sr.data.image("camera", size=64).double()[:, :, 20:36, 20:36]


@pytest.mark.parametrize("shape", [(1, 32, 3, 1, 0.1), (1, 16, 5, 1, 0.1), (3, 16, 3, 2, 0.1)])
def test_200_steps_reach_the_long_run_objective(shape: tuple) -> None:
    """FISTA with 200 steps is within 1e-4 (relative) of a 2000-step solve, codes >= 0, and
    the long run satisfies the optimality conditions of the non-negative lasso (so it is the
    reference it is taken for)."""
    cin, cout, k, stride, lam = shape
    layer = CSCLayer(cin, cout, k, stride, lam=lam, steps=200, seed=1).double()
    x = _patch().repeat(1, cin, 1, 1) * torch.linspace(0.6, 1.0, cin, dtype=torch.float64).view(1, -1, 1, 1)
    with torch.no_grad():
        c = layer(x)
        layer.steps = 2000
        ref = layer(x)
        f, f_ref = layer.objective(x, c), layer.objective(x, ref)
    assert bool((c >= 0).all())
    assert float(((f - f_ref) / f_ref).max()) < 1e-4
    # KKT of min lam 1'c + 1/2 ||x - Dc||^2, c >= 0: g = D^T(Dc - x) + lam >= 0, and g = 0 where c > 0
    d = _explicit_synthesis(layer, 16, 16)
    cv = ref.reshape(-1)
    g = d.T @ (d @ cv - x.reshape(-1)) + lam
    assert float(g.min()) > -1e-6
    assert float(g[cv > 1e-8].abs().max()) < 1e-6


@pytest.mark.parametrize("stride", [1, 2])
def test_lipschitz_matches_the_explicit_matrix(stride: int) -> None:
    layer = CSCLayer(2, 12, 3, stride, seed=3).double()
    d = _explicit_synthesis(layer, 10, 9)
    sigma = torch.linalg.matrix_norm(d, 2).item()
    assert layer.lipschitz(10, 9) == pytest.approx(sigma**2, rel=1e-3)
    # analysis is the adjoint of synthesis (the same matrix transposed)
    x = torch.randn(1, 2, 10, 9, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(layer.analysis(x).reshape(-1), d.T @ x.reshape(-1), atol=1e-12)


def test_lipschitz_is_cached_and_follows_weight_changes() -> None:
    layer = CSCLayer(1, 8, 3, seed=0).double()
    first = layer.lipschitz(12, 12)
    assert layer.lipschitz(12, 12) == first
    with torch.no_grad():
        layer.weight[0] += 3 * layer.weight[1]  # atoms renormalised, but no longer the same
    d = _explicit_synthesis(layer, 12, 12)
    assert layer.lipschitz(12, 12) == pytest.approx(torch.linalg.matrix_norm(d, 2).item() ** 2, rel=1e-3)


def test_reset_power_recomputes_from_the_given_warm_start() -> None:
    """Restoring the power iteration's vector reproduces L bit for bit; a wrong shape is refused."""
    layer = CSCLayer(1, 8, 3, seed=0, power_iterations=5)  # few iterations: L depends on the start
    assert layer.power_vector is None
    first = layer.lipschitz(10, 10)
    saved = layer.power_vector.clone()
    second = layer.lipschitz(10, 10)  # cached
    assert second == first
    layer.reset_power()
    moved = layer.lipschitz(10, 10)  # warm-started from the previous vector: a different estimate
    assert moved != first
    layer.reset_power(saved)
    assert layer.lipschitz(10, 10) == moved
    with pytest.raises(ValueError, match="'vector'"):
        layer.reset_power(torch.zeros(1, 3, 10, 10))


@pytest.mark.parametrize("restart", [False, True])
def test_gradcheck_through_the_unrolled_steps(restart: bool) -> None:
    layer = CSCLayer(1, 4, 3, lam=0.05, steps=6, restart=restart, seed=2).double()
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 1, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = layer.dictionary().detach().clone().requires_grad_(True)
    lip = layer.lipschitz(5, 5)
    assert torch.autograd.gradcheck(lambda x, w: layer.solve(x, w, lip), (x, w), eps=1e-6, atol=1e-5)


def test_raising_lam_gives_sparser_codes_and_larger_residuals() -> None:
    layer = CSCLayer(1, 16, 3, steps=100, seed=0).double()
    x = _patch()
    nnz, res = [], []
    for lam in (0.01, 0.05, 0.2):
        layer.lam = lam
        with torch.no_grad():
            c, r = layer(x, return_residual=True)
        nnz.append(int((c > 0).sum()))
        res.append(float(r))
    assert nnz[0] > nnz[1] > nnz[2]
    assert res[0] < res[1] < res[2]


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="lam"):
        CSCLayer(1, 4, lam=-0.1)
    with pytest.raises(ValueError, match="steps"):
        CSCLayer(1, 4, steps=0)
    layer = CSCLayer(1, 4)
    with pytest.raises(ValueError, match="lam"):
        layer.lam = float("nan")
    with pytest.raises(ValueError, match="steps"):
        layer.steps = 0
    with pytest.raises(ValueError, match="kernel_size"):
        CSCLayer(1, 4, kernel_size=4)
    with pytest.raises(ValueError, match=r"'x' must have shape \(B, 1, H, W\)"):
        layer(torch.rand(2, 3, 8, 8))
    with pytest.raises(TypeError, match="'x'"):
        layer(torch.ones(1, 1, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="csc"):
        SDNet(csc="some")
    with pytest.raises(ValueError, match="'x'"):
        SDNet(in_channels=1)(torch.rand(2, 3, 8, 8))


def test_sdnet_options_place_the_csc_layers() -> None:
    assert len(csc_layers(SDNet(csc="none"))) == 0
    assert len(csc_layers(SDNet(csc="first"))) == 1
    assert len(csc_layers(SDNet(csc="all"))) == 5
    net = SDNet(csc="first", lam=0.1, steps=3).eval()
    x = torch.rand(4, 1, 8, 8)
    logits, residual = net(x, return_residual=True)
    assert torch.allclose(logits, net(x))
    # the residual is the stem's ||x - D c||^2 per pixel, computed independently
    with torch.no_grad():
        c = net.first_csc(x)
        expected = (x - net.first_csc.synthesis(c, (8, 8))).pow(2).mean(dim=(1, 2, 3))
    assert torch.allclose(residual, expected, atol=1e-6)


def test_denoiser_reconstructs_from_its_code() -> None:
    den = CSCDenoiser(1, atoms=8, kernel_size=5, lam=0.0, steps=300).double()
    x = _patch()
    with torch.no_grad():
        out = den(x)
    # lam = 0 and many steps: D c approaches the least-squares fit of x - mean (nonneg codes of
    # a redundant dictionary with atoms of both signs after training; here, random atoms)
    assert float((out - x).pow(2).mean()) < float((x - x.mean()).pow(2).mean())
