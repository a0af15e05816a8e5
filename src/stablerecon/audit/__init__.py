"""The stability audit: how accurate and how stable is a reconstruction method?

What lives here: one module per test (``accuracy``, ``perturbation``, ``kernel``, ``detail``,
``inexact``),
the test registry ``TESTS`` (``registry``), the audit's options (``options``), the suite
``run`` (``suite``), the units of work and their executors (``units``, ``executors``,
``randomness``: per-image random streams), the image sets (``images``), the result record with
its summary and verdicts (``result``, ``merge``, ``statistics``), and its files (``arrays``,
``store``). It may import ``contracts``, ``validation``, ``config_base``,
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
- :func:`operator_perturbation` (test ``operator``): the inexact-input setting. The method is
  handed a perturbed operator ``A_E = family(theta)`` of a family of
  :mod:`stablerecon.operators.perturbations` (``options.operator.family``; default per operator:
  ``kspace_jitter`` for Fourier line masks, ``additive`` for other Fourier masks and any other
  operator, ``kernel`` for blur, ``angle_offset`` for Radon) with ``||A_E - A|| <= r ||A||``,
  ``r`` in ``(0, 1]``. Case ``given``: data ``y = A x``, the method given ``A_E``,
  ``||f(y, A_E) - f(y, A)||``; case ``mismatch``: data ``y_E = A_E x``, the method given ``A``,
  ``||f(y_E, A) - f(y, A)||``. Worst case per image by projected gradient ascent over ``theta``
  (gradient-free for non-differentiable methods, greedy for discrete families), random
  ``theta`` of the same size beside it; amplification in units of ``||A_E - A|| ||x||``. A
  method whose output does not change when given ``A_E`` is flagged (``ignores_op``), not called
  stable. Not a default test (``default=False``: about twice the cost of ``worst_case``): name it
  in ``tests``;
- :func:`run`: all of them for several methods side by side on a set of images
  (:class:`ImageSet`; chunks of ``options.batch_size`` images per unit of work, on a ``device``,
  serially or as Ray tasks with ``executor="ray"``), saved incrementally (resumable) with an
  HTML report; the summary states each score as the median over the images with a bootstrap
  95% interval (:func:`median_ci`); :func:`load` reads a saved audit back.

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
from .images import ImageSet, as_image_set
from .inexact import OperatorPerturbationResult, default_family, make_family, operator_perturbation
from .kernel import KernelResult, KernelSplit, PairBoundResult, kernel_split, kernel_test, pair_bound
from .options import AuditOptions, DetailTestConfig, KernelTestConfig, OperatorTestConfig
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
from .statistics import MedianCI, median_ci
from .store import load
from .suite import run
from .units import AuditJob, UnitKey, execute_unit

__all__ = [
    "run",
    "load",
    "AuditResult",
    "ImageSet",
    "as_image_set",
    "UnitKey",
    "AuditJob",
    "execute_unit",
    "median_ci",
    "MedianCI",
    "TESTS",
    "UnitContext",
    "AuditOptions",
    "KernelTestConfig",
    "DetailTestConfig",
    "OperatorTestConfig",
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
    "operator_perturbation",
    "OperatorPerturbationResult",
    "default_family",
    "make_family",
    "not_rare",
    "is_differentiable",
    "batch_norm",
]
