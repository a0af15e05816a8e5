"""The FIRENET test problems shared by ``benchmarks/firenet.py`` and
``benchmarks/firenet_parameters.py``.

Two regimes (Colbrook, Antun, Hansen, PNAS 2022):

* **sparse** -- an image that is exactly sparse in the Haar basis (constant on a dyadic grid of
  ``size / 16`` pixel squares, 256 non-zero coefficients at every size), noiseless: no floor,
  the restarts should converge exponentially;
* **noisy** -- Shepp-Logan, random ellipses and the shipped ``camera`` photo with 2% relative
  Gaussian noise: the error stops at a floor set by the noise and by how far the image is from
  sparse; the floor is the error of the square-root LASSO minimiser (a long plain
  Chambolle-Pock run, last iterate).

Operators: a 25% variable-density subsampled Fourier mask and a 25% Walsh-Hadamard mask that
samples the coarse ``16 x 16`` sequency block in full (where the sparse image lives).
"""

from __future__ import annotations

import math

import torch

import stablerecon as sr
from stablerecon.operators import LinearOperator
from stablerecon.solvers import SqrtLassoProblem, cp_steps, restarted_primal_dual

RATE = 0.25
NOISE = 0.02
NATURAL = ("shepp_logan", "ellipses", "camera")


def operator(kind: str, size: int) -> LinearOperator:
    """``"fourier"`` or ``"hadamard"`` sampling of 25% at ``size x size``."""
    if kind == "fourier":
        return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(size, RATE, seed=0))
    if kind == "hadamard":
        radius = 1.45 * 16 / size  # the coarse 16 x 16 sequency block lies inside this disc
        mask = sr.operators.masks.variable_density(size, RATE, seed=0, origin="corner",
                                                   center_radius=radius)
        return sr.operators.SubsampledWalshHadamard(mask)
    raise ValueError(f"unknown operator kind {kind!r}")


def image(name: str, size: int) -> torch.Tensor:
    """Ground truth ``(1, 1, size, size)`` float64."""
    if name == "sparse":
        return sr.data.haar_sparse(size, block=size // 16, seed=0, dtype=torch.float64)
    if name == "shepp_logan":
        return sr.data.shepp_logan(size).double()
    if name == "ellipses":
        return sr.data.ellipses(1, size, seed=0).double()
    return sr.data.image(name, size).double()


def measurements(op: LinearOperator, x: torch.Tensor, noisy: bool) -> torch.Tensor:
    y = op.A(x)
    return sr.operators.noise.add_gaussian(y, rel=NOISE, seed=1) if noisy else y


def relative_error(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(x_hat - x) / torch.linalg.vector_norm(x))


def firenet_curve(y: torch.Tensor, op: LinearOperator, x: torch.Tensor, lam: float,
                  inner: int, layers: int) -> list[float]:
    """Relative error to ``x`` after each block of FIRENET (``ceil(layers / inner)`` blocks)."""
    errors: list[float] = []
    wavelet = sr.sparsity.Wavelet("haar", size=x.shape[-1])
    restarted_primal_dual(y, op, wavelet, lam, restarts=math.ceil(layers / inner), inner=inner,
                          callback=lambda k, xk: errors.append(relative_error(xk, x)))
    return errors


def plain_curve(y: torch.Tensor, op: LinearOperator, x: torch.Tensor, lam: float,
                iterations: int, every: int = 1) -> tuple[list[float], list[float]]:
    """Relative errors of plain Chambolle-Pock (``tau = sigma = 1 / ||A||``) every ``every``
    steps: (ergodic average, last iterate)."""
    problem = SqrtLassoProblem(op, sr.sparsity.Wavelet("haar", size=x.shape[-1]), lam)
    norm = op.norm()
    c = problem.initial_coefficients(y, None)
    z = torch.zeros_like(y)
    total = torch.zeros_like(c)
    ergodic, last = [], []
    for k in range(1, iterations + 1):
        c, z, _ = cp_steps(problem, y, c, z, 1, 1.0 / norm, 1.0 / norm)
        total = total + c
        if k % every == 0:
            ergodic.append(relative_error(problem.image(total / k), x))
            last.append(relative_error(problem.image(c), x))
    return ergodic, last


def floor(y: torch.Tensor, op: LinearOperator, x: torch.Tensor, lam: float,
          iterations: int = 3000) -> float:
    """Error to ``x`` of the square-root LASSO minimiser (last iterate of a long plain run)."""
    problem = SqrtLassoProblem(op, sr.sparsity.Wavelet("haar", size=x.shape[-1]), lam)
    norm = op.norm()
    c = problem.initial_coefficients(y, None)
    c, _, _ = cp_steps(problem, y, c, torch.zeros_like(y), iterations, 1.0 / norm, 1.0 / norm)
    return relative_error(problem.image(c), x)


def first_reaching(values: list[float], target: float, step: int) -> int | None:
    """``step * (i + 1)`` for the first ``values[i] <= target`` (layers or iterations)."""
    return next((step * (i + 1) for i, v in enumerate(values) if v <= target), None)
