"""The stability audit: how accurate and how stable is a reconstruction method?

Each test is a function of a method ``method(y, op) -> x_hat``, measurements or images, and
the operator, returning a dataclass; they use nothing but that contract, so any callable and
any operator with ``A`` / ``A_adjoint`` can be audited.

- :func:`accuracy`: PSNR, SSIM, NMSE on clean and noisy measurements;
- :func:`worst_case`: worst perturbation of the measurements within relative budgets
  (projected gradient ascent with restarts, or a gradient-free search);
- :func:`random_noise`: the same budgets drawn at random; :func:`not_rare`: how much damage
  survives noise added to the worst perturbation;
- :func:`penalised_perturbation`: the image-space attack of Antun et al. (PNAS 2020);
- :func:`kernel_split` / :func:`kernel_test`: near-kernel details, hallucination and the
  troublesome-kernel Lipschitz bound;
- :func:`detail_test`: the fraction of a small inserted detail a method recovers;
- :func:`sampling_sweep`: accuracy at sampling rates other than the one a method was built for.
"""

from .accuracy import AccuracyResult, accuracy
from .detail import DetailResult, SamplingResult, detail_test, sampling_sweep
from .kernel import KernelResult, KernelSplit, kernel_split, kernel_test
from .perturbation import (
    PenalisedResult,
    RandomNoiseResult,
    WorstCaseResult,
    batch_norm,
    is_differentiable,
    not_rare,
    penalised_perturbation,
    random_noise,
    worst_case,
)

__all__ = [
    "accuracy",
    "AccuracyResult",
    "worst_case",
    "WorstCaseResult",
    "random_noise",
    "RandomNoiseResult",
    "penalised_perturbation",
    "PenalisedResult",
    "kernel_split",
    "KernelSplit",
    "kernel_test",
    "KernelResult",
    "detail_test",
    "DetailResult",
    "sampling_sweep",
    "SamplingResult",
    "not_rare",
    "is_differentiable",
    "batch_norm",
]
