r"""The convolutional sparse coding layer :class:`CSCLayer` and :func:`csc_layers`.

A :class:`CSCLayer` replaces a convolution by the sparse code of its input in a learned
convolutional dictionary ``D`` (Dai, Li, Tang, Yuan, Ma, "Revisiting sparse convolutional
model for visual recognition", NeurIPS 2022):

.. math:: c(x) = \operatorname*{arg\,min}_{c \ge 0}\; \lambda \|c\|_1 + \tfrac12 \|x - D c\|_2^2,

with ``D c = conv_transpose2d(c, W)`` and ``D^T x = conv2d(x, W)`` (the same weights ``W`` of
shape ``(out_channels, in_channels, k, k)``, every atom ``W[j]`` renormalised to unit norm).
The code is computed by ``steps`` FISTA iterations (Beck & Teboulle 2009) with the step ``1 / L``,
``L = ||D||^2`` from a warm-started power iteration, and autograd differentiates through the
unrolled iterations. Because ``lam`` is an argument of the optimisation, not a trained weight,
it can be raised at test time: a larger ``lam`` keeps only the atoms that explain the input
well, which removes noise (the paper's test-time robustness). ``forward(x, return_residual=True)``
also gives the per-pixel reconstruction residual ``||x - D c||^2 / numel``;
:mod:`stablerecon.csc.robust` measures the residual's noise level to choose ``lam`` without labels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import positive_float, positive_int

__all__ = ["CSCLayer", "csc_layers"]

_WHERE = "CSCLayer"


def _odd(value: object, name: str, where: str) -> int:
    """``value`` as an odd ``int >= 1`` (the size of centred atoms)."""
    value = positive_int(value, name, where=where)
    if value % 2 == 0:
        raise ValueError(f"{where}: argument '{name}' must be odd (centred atoms), got {value}")
    return value


class CSCLayer(nn.Module):
    r"""Convolutional sparse coding layer: ``x (B, in_channels, H, W) -> c (B, out_channels, H', W')``.

    ``c`` approximately minimises ``lam ||c||_1 + 1/2 ||x - D c||^2`` over ``c >= 0`` by
    ``steps`` FISTA iterations started at ``c = 0``:

    .. math:: c_{k+1} = \max\big(0,\; v_k - (D^T(D v_k - x) + \lambda) / L\big), \quad
              v_{k+1} = c_{k+1} + \tfrac{t_k - 1}{t_{k+1}} (c_{k+1} - c_k),

    ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``; with ``restart`` (default) the momentum of a
    sample is reset (``t = 1``) when it points uphill, ``(v_k - c_{k+1}) . (c_{k+1} - c_k) > 0``
    (the gradient restart of O'Donoghue & Candes, "Adaptive restart for accelerated gradient
    schemes", 2015), which in practice converges faster once the support has settled (measured
    here: 1000 steps reach 1e-10 relative where plain FISTA is at 1e-7).
    ``H' = floor((H + 2p - k) / stride) + 1`` with ``p = k // 2`` (so ``H' = H`` at stride 1);
    ``D`` pads its output back to ``H``.

    Parameters
    ----------
    in_channels, out_channels:
        Channels of the input and of the code (the number of atoms).
    kernel_size:
        Odd size ``k`` of the atoms.
    stride:
        Stride of ``D^T`` (``D`` is the matching transposed convolution).
    lam:
        Sparsity weight (>= 0, in the input's units); may be changed at any time (``layer.lam = 0.3``).
    steps:
        FISTA iterations (>= 1); one step is ``relu((D^T x - lam) / L)``, a thresholded convolution.
    restart:
        Adaptive momentum restart (see above); ``False`` gives plain FISTA.
    power_iterations, power_tol:
        Most power iterations for ``L = ||D||^2``, and their relative stopping tolerance. The
        estimate is warm-started from the previous vector and recomputed only when the weights
        (or the input size) change.
    seed:
        Seeds the initial atoms (``None``: torch's global generator).

    Examples
    --------
    >>> layer = CSCLayer(1, 8, kernel_size=3, lam=0.05, steps=50, seed=0)
    >>> x = torch.rand(2, 1, 12, 12)
    >>> c, residual = layer(x, return_residual=True)
    >>> tuple(c.shape), bool((c >= 0).all()), tuple(residual.shape)
    ((2, 8, 12, 12), True, (2,))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 lam: float = 0.1, steps: int = 10, restart: bool = True, power_iterations: int = 1000,
                 power_tol: float = 1e-8, seed: int | None = None) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels", where=_WHERE)
        self.out_channels = positive_int(out_channels, "out_channels", where=_WHERE)
        self.kernel_size = _odd(kernel_size, "kernel_size", _WHERE)
        self.stride = positive_int(stride, "stride", where=_WHERE)
        self.padding = self.kernel_size // 2
        self.power_iterations = positive_int(power_iterations, "power_iterations", where=_WHERE)
        self.power_tol = positive_float(power_tol, "power_tol", where=_WHERE)
        self.restart = bool(restart)
        self.lam = lam
        self.steps = steps
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        w = torch.randn(self.out_channels, self.in_channels, self.kernel_size, self.kernel_size, generator=g)
        self.weight = nn.Parameter(w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
        self._power: dict[str, object] = {"key": None, "vector": None, "L": None}

    # ------------------------------------------------------------------ settings
    @property
    def lam(self) -> float:
        """The sparsity weight ``lam >= 0``."""
        return self._lam

    @lam.setter
    def lam(self, value: float) -> None:
        self._lam = positive_float(value, "lam", allow_zero=True, where=_WHERE)

    @property
    def steps(self) -> int:
        """The number of FISTA iterations ``>= 1``."""
        return self._steps

    @steps.setter
    def steps(self, value: int) -> None:
        self._steps = positive_int(value, "steps", where=_WHERE)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, lam={self.lam:g}, steps={self.steps}")

    # ------------------------------------------------------------------ the dictionary
    def dictionary(self) -> torch.Tensor:
        """The atoms ``W`` ``(out_channels, in_channels, k, k)``, each of unit Euclidean norm."""
        norms = self.weight.flatten(1).norm(dim=1).clamp_min(1e-12)
        return self.weight / norms.view(-1, 1, 1, 1)

    def code_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` of the code of an ``H x W`` input."""
        k, s, p = self.kernel_size, self.stride, self.padding
        return (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1

    def analysis(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """``D^T x``: ``(B, in_channels, H, W) -> (B, out_channels, H', W')``."""
        return F.conv2d(x, self.dictionary() if w is None else w, stride=self.stride, padding=self.padding)

    def synthesis(self, c: torch.Tensor, size: tuple[int, int],
                  w: torch.Tensor | None = None) -> torch.Tensor:
        """``D c``: ``(B, out_channels, H', W') -> (B, in_channels, *size)``, the adjoint of
        :meth:`analysis` for inputs of spatial size ``size``."""
        k, s, p = self.kernel_size, self.stride, self.padding
        pad_out = tuple(n - ((m - 1) * s - 2 * p + k) for n, m in zip(size, c.shape[-2:], strict=True))
        return F.conv_transpose2d(c, self.dictionary() if w is None else w, stride=s, padding=p,
                                  output_padding=pad_out)

    @torch.no_grad()
    def lipschitz(self, height: int, width: int) -> float:
        """``L = ||D||^2``, the largest eigenvalue of ``D^T D`` for ``H x W`` inputs, by power
        iteration (warm-started; cached until the weights or the size change)."""
        w = self.dictionary().detach()
        key = (self.weight._version, self.weight.data_ptr(), self.weight.dtype, self.weight.device,
               height, width)
        if self._power["key"] == key:
            return float(self._power["L"])  # type: ignore[arg-type]
        hc, wc = self.code_size(height, width)
        v = self._power["vector"]
        if not isinstance(v, torch.Tensor) or v.shape[-2:] != (hc, wc) or v.dtype != w.dtype \
                or v.device != w.device:
            g = torch.Generator(device="cpu").manual_seed(0)
            v = torch.rand(1, self.out_channels, hc, wc, generator=g, dtype=w.dtype).to(w.device)
        v = v / v.norm()
        est = 0.0
        tol = max(self.power_tol, 8 * torch.finfo(w.dtype).eps)  # changes below rounding never stop
        for _ in range(self.power_iterations):
            u = self.analysis(self.synthesis(v, (height, width), w), w)
            new = float((u * v).sum())  # Rayleigh quotient, increases towards ||D||^2
            v = u / u.norm().clamp_min(1e-30)
            if abs(new - est) <= tol * abs(new):
                est = new
                break
            est = new
        self._power = {"key": key, "vector": v, "L": est}
        return est

    @property
    def power_vector(self) -> torch.Tensor | None:
        """The power iteration's last vector ``(1, out_channels, H', W')`` (its warm start for the
        next ``L``), or ``None`` before the first :meth:`lipschitz`."""
        v = self._power["vector"]
        return v if isinstance(v, torch.Tensor) else None

    def reset_power(self, vector: torch.Tensor | None = None) -> None:
        """Drop the cached ``L`` so that the next call recomputes it; with ``vector``, also set
        the power iteration's warm start (e.g. restored from a checkpoint, so that a resumed
        training recomputes ``L`` to the same last bits as an unbroken one)."""
        self._power["key"] = None
        if vector is None:
            return
        want = (1, self.out_channels)
        if not isinstance(vector, torch.Tensor) or vector.ndim != 4 or tuple(vector.shape[:2]) != want:
            got = tuple(vector.shape) if isinstance(vector, torch.Tensor) else type(vector).__name__
            raise ValueError(f"argument 'vector' must have shape (1, {self.out_channels}, H', W'), got {got}")
        self._power["vector"] = vector

    # ------------------------------------------------------------------ the code
    def _check(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"CSCLayer: argument 'x' must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"CSCLayer: argument 'x' must have shape (B, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"CSCLayer: argument 'x' must be a real floating tensor, got {x.dtype}")
        return x

    def objective(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``lam ||c||_1 + 1/2 ||x - D c||^2`` per sample, shape ``(B,)``."""
        rec = self.synthesis(c, tuple(x.shape[-2:]))
        return self.lam * c.abs().flatten(1).sum(1) + 0.5 * (x - rec).pow(2).flatten(1).sum(1)

    def solve(self, x: torch.Tensor, weight: torch.Tensor | None = None,
              lipschitz: float | None = None) -> torch.Tensor:
        """``steps`` FISTA iterations for the code of ``x`` ``(B, in_channels, H, W)`` in the
        dictionary ``weight`` (default: :meth:`dictionary`) with step ``1 / lipschitz``
        (default: :meth:`lipschitz`). Differentiable in ``x`` and ``weight`` with the step held
        fixed (as in training, where ``L`` is not differentiated)."""
        x = self._check(x)
        size = (x.shape[-2], x.shape[-1])
        w = self.dictionary() if weight is None else weight
        lip = self.lipschitz(*size) if lipschitz is None else float(lipschitz)
        if not (math.isfinite(lip) and lip > 0):
            raise FloatingPointError(f"CSCLayer: ||D||^2 = {lip} is not a positive finite number "
                                     f"(are the weights finite?)")
        step = 1.0 / lip
        dtx = self.analysis(x, w)
        c: torch.Tensor | float = 0.0
        v: torch.Tensor | None = None  # the extrapolated point; c_0 = v_1 = 0
        t = torch.ones(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)
        for _ in range(self.steps):
            if v is None:
                c_next = F.relu((dtx - self.lam) * step)
            else:
                grad = self.analysis(self.synthesis(v, size, w), w) - dtx
                c_next = F.relu(v - (grad + self.lam) * step)
                if self.restart:  # O'Donoghue & Candes: drop the momentum where it points uphill
                    uphill = ((v - c_next) * (c_next - c)).flatten(1).sum(1) > 0
                    t = torch.where(uphill.view(-1, 1, 1, 1), torch.ones_like(t), t)
            t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
            v = c_next + ((t - 1.0) / t_next) * (c_next - c)
            c, t = c_next, t_next
        assert isinstance(c, torch.Tensor)  # steps >= 1
        return c

    def forward(self, x: torch.Tensor, return_residual: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The code ``c`` ``(B, out_channels, H', W')``, all entries ``>= 0``; with
        ``return_residual`` also ``||x - D c||^2 / (C H W)`` per sample ``(B,)``."""
        w = self.dictionary()
        c = self.solve(x, w)
        size = (x.shape[-2], x.shape[-1])
        if not return_residual:
            return c
        residual = (x - self.synthesis(c, size, w)).pow(2).flatten(1).mean(1)
        return c, residual


def csc_layers(model: nn.Module) -> list[CSCLayer]:
    """The :class:`CSCLayer` modules of ``model``, in order of registration."""
    return [m for m in model.modules() if isinstance(m, CSCLayer)]
