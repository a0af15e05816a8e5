"""Classical sparse-regularisation solvers (plain, batched, differentiable functions).

- :func:`fista`: FISTA for the (weighted) l1-wavelet LASSO;
- :func:`primal_dual_tv`: Chambolle-Pock for TV-regularised least squares;
- :func:`primal_dual`: Chambolle-Pock for the weighted square-root LASSO;
- :func:`restarted_primal_dual`: FIRENET's restarted, rescaled primal-dual scheme;
- :func:`level_weights`, :func:`level_sparsities`: FIRENET's per-level l1 weights;
- :func:`pivotal_lam`: FIRENET's default, noise-independent square-root LASSO weight;
- :class:`SparseReconstructor`: the three solvers as reconstruction methods ``method(y, op)``.

What lives here: one module per solver, FIRENET's restart scheme (``restart``), the method
wrapper (``reconstructor``) and what the solvers share (``_common``: diagnostics record and
argument checks). It may import :mod:`stablerecon.contracts`, :mod:`stablerecon.validation`,
:mod:`stablerecon.operators`, :mod:`stablerecon.sparsity` and :mod:`stablerecon.metrics`;
nothing that builds on solvers (nets, training, audit, configs).
"""

from .fista import SolverInfo, fista, lasso_objective
from .primal_dual import SqrtLassoProblem, cp_steps, primal_dual, sqrt_lasso_objective, step_sizes
from .reconstructor import SparseReconstructor, default_sparsifier
from .restart import PIVOTAL_KAPPA, level_sparsities, level_weights, pivotal_lam, restarted_primal_dual
from .tv import primal_dual_tv, total_variation, tv_objective

__all__ = [
    "fista",
    "lasso_objective",
    "SolverInfo",
    "primal_dual_tv",
    "tv_objective",
    "total_variation",
    "primal_dual",
    "sqrt_lasso_objective",
    "SqrtLassoProblem",
    "cp_steps",
    "step_sizes",
    "SparseReconstructor",
    "default_sparsifier",
    "restarted_primal_dual",
    "level_weights",
    "level_sparsities",
    "pivotal_lam",
    "PIVOTAL_KAPPA",
]
