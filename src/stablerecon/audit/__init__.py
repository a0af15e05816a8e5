"""The stability audit: how accurate and how stable is a reconstruction method?

What lives here: one module per test (``accuracy``, ``perturbation``, ``kernel``, ``detail``),
the test registry ``TESTS`` (``registry``), the audit's options (``options``), the suite
``run`` (``suite``), the result record with its summary and verdicts (``result``), and its files
(``arrays``, ``store``). It may import ``contracts``, ``validation``, ``config_base``,
``operators``, ``metrics``, ``data``, ``files`` and (to draw the report) ``report``; never a
particular method (``solvers``, ``nets``, ...), never ``config``, ``recipes`` or ``cli``.

Each test is a function of a method ``method(y, op) -> x_hat``, measurements or images, and
the operator, returning a dataclass; they use nothing but that contract, so any callable and
any operator with ``A`` / ``A_adjoint`` can be audited.

- :func:`accuracy`: PSNR, SSIM, NMSE on clean and noisy measurements;
- :func:`worst_case`: worst perturbation of the measurements within relative budgets
  (projected gradient ascent with restarts, or a gradient-free search);
- :func:`random_noise`: the same budgets drawn at random; :func:`not_rare`: how much damage
  survives noise added to the worst perturbation;
- :func:`penalised_perturbation`: the image-space attack of Antun et al. (PNAS 2020);
- :func:`kernel_split` / :func:`kernel_test` / :func:`pair_bound`: near-kernel details,
  hallucination and the troublesome-kernel Lipschitz bound;
- :func:`detail_test`: the fraction of a small inserted detail a method recovers;
- :func:`sampling_sweep`: accuracy at sampling rates other than the one a method was built for;
- :func:`run`: all of them for several methods side by side, saved incrementally (resumable)
  with an HTML report; :func:`load` reads a saved audit back.

Example
-------
>>> import stablerecon as sr
>>> op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(32, 0.25, seed=0))
>>> methods = {"zero-filled": sr.nets.ZeroFilled(),        # an nn.Module: gradient search
...            "plain": lambda y, op: op.A_dagger(y).real}    # a plain function: gradient-free
>>> result = sr.audit.run(methods, op, sr.data.ellipses(2, 32, seed=0), tests=["worst_case"],
...                       options={"steps": 10, "restarts": 1}, progress=False)
>>> rows = result.summary()
>>> 0.99 < rows[0]["amplification"] <= 1.0 + 1e-6  # zero-filling of a unitary-row operator: 1
True
>>> rows[1]["gradient_free"], rows[1]["amplification"] <= 1.0 + 1e-6
(True, True)
"""

from .accuracy import AccuracyResult, accuracy
from .arrays import slug
from .detail import DetailResult, SamplingResult, detail_test, sampling_sweep
from .kernel import KernelResult, KernelSplit, PairBoundResult, kernel_split, kernel_test, pair_bound
from .options import AuditOptions, DetailTestConfig, KernelTestConfig
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
from .registry import TESTS, UnitContext
from .result import RESULTS_SCHEMA, AuditResult
from .store import load
from .suite import run

__all__ = [
    "run",
    "load",
    "AuditResult",
    "TESTS",
    "UnitContext",
    "AuditOptions",
    "KernelTestConfig",
    "DetailTestConfig",
    "RESULTS_SCHEMA",
    "slug",
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
    "pair_bound",
    "PairBoundResult",
    "detail_test",
    "DetailResult",
    "sampling_sweep",
    "SamplingResult",
    "not_rare",
    "is_differentiable",
    "batch_norm",
]
