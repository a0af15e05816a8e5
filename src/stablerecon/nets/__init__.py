"""Reconstruction networks obeying ``forward(y, op) -> x_hat``.

- :class:`FIRENet`: restarted primal-dual iterations unrolled into a provably stable network.
"""

from .firenet import FIRENet

__all__ = ["FIRENet"]
