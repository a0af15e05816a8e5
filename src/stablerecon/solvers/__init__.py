"""Classical sparse-regularisation solvers (plain, batched, differentiable functions).

- :func:`primal_dual`: Chambolle-Pock for the weighted square-root LASSO;
- :func:`restarted_primal_dual`: FIRENET's restarted, rescaled primal-dual scheme;
- :func:`level_weights`, :func:`level_sparsities`: FIRENET's per-level l1 weights.
"""

from .primal_dual import PrimalDualInfo, SqrtLassoProblem, cp_steps, primal_dual, sqrt_lasso_objective
from .restart import level_sparsities, level_weights, restarted_primal_dual

__all__ = [
    "primal_dual",
    "sqrt_lasso_objective",
    "SqrtLassoProblem",
    "PrimalDualInfo",
    "cp_steps",
    "restarted_primal_dual",
    "level_weights",
    "level_sparsities",
]
