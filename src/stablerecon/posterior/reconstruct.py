r"""Posterior samplers as reconstruction methods ``method(y, op) -> x_hat``.

A posterior estimator (:class:`~stablerecon.posterior.ConditionalINN`,
:class:`~stablerecon.posterior.INN`, or anything with ``sample(y, n, seed) -> (N, n, dim_x)``)
returns samples of ``p(x | y)``; their mean is the minimum-mean-squared-error estimate
``E[x | y]`` and their spread the uncertainty (Ardizzone et al., "Analyzing inverse problems
with invertible neural networks", ICLR 2019; Ardizzone et al., "Guided image generation with
conditional invertible neural networks", 2019). :class:`PosteriorMean` wraps such a sampler in
the reconstruction contract of the design guide, so that the stability audit
(:func:`stablerecon.audit.run`) can test it next to solvers and trained networks.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import torch
from torch import nn

from ..contracts import Operator, capabilities, check_operator
from ..operators.base import all_finite
from ..validation import positive_float, positive_int

__all__ = ["PosteriorMean"]


class PosteriorMean(nn.Module):
    r"""The posterior mean of a sampler as a reconstruction method, ``forward(y, op) -> x_hat``.

    For measurements ``y`` ``(B, C, m)`` of an operator on images ``(B, C, H, W)``, each of
    the ``B * C`` channel measurements is passed to ``model.sample`` (which must accept
    ``(N, m)`` and return ``(N, n_samples, H * W)``), and the image is

    .. math:: \hat x(y) = \frac1n \sum_{s=1}^n x_s, \qquad x_s = g(z_s; y),\ z_s \sim N(0, I),

    ``(B, C, H, W)`` in the dtype of ``y``; :meth:`std` gives the per-pixel standard deviation
    and :meth:`samples` the samples themselves. Every observation is sampled with the same
    ``seed`` (common random numbers), so ``x_hat`` is a deterministic function of ``y`` alone,
    not of the batch it comes in: the audit's finite differences and worst-case search then
    measure the method, not the Monte Carlo noise (whose size is the std over
    ``sqrt(n_samples)``).

    Sampling runs under ``torch.no_grad`` (``differentiable = False``): the audit attacks this
    method with its gradient-free search and flags the result.

    Parameters
    ----------
    model:
        A posterior sampler with ``sample(y, n, seed)``; its ``dim_x`` / ``dim_y``, when it has
        them, are checked against the images and measurements.
    n_samples:
        Samples per observation (``>= 2``).
    seed:
        Seed of the samples (the same for every observation and call).
    op:
        The operator the model was trained for (e.g. ``DigitsProblem.op``): the default of
        ``forward``, and a call with another operator fails unless it has the same shapes and,
        for images of at most 4096 pixels, the same dense matrix.
    image_shape:
        ``(H, W)`` of the images when the operator does not declare it (``op.in_shape``);
        default: the square of side ``sqrt(dim_x)``.
    temperature:
        Passed to samplers whose ``sample`` accepts it (1: the trained posterior).

    Examples
    --------
    >>> from stablerecon.posterior import ConditionalINN
    >>> from stablerecon.posterior.digits import DigitsProblem
    >>> problem = DigitsProblem("inpainting", observed=0.5)
    >>> method = PosteriorMean(ConditionalINN(64, problem.dim_y, blocks=2, hidden=16), n_samples=8,
    ...                        op=problem.op)
    >>> x = problem.image(problem.sample_prior(2, seed=0)).float()
    >>> method(problem.op.A(x), problem.op).shape
    torch.Size([2, 1, 8, 8])
    """

    differentiable = False
    name = "posterior mean"

    def __init__(self, model: Any, n_samples: int = 64, seed: int = 0, op: Operator | None = None,
                 image_shape: tuple[int, int] | None = None, temperature: float = 1.0) -> None:
        super().__init__()
        if not callable(getattr(model, "sample", None)):
            raise TypeError(f"argument 'model' must be a posterior sampler with sample(y, n, seed), "
                            f"got {type(model).__name__}")
        self.model = model
        self.n_samples = positive_int(n_samples, "n_samples", minimum=2)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"argument 'seed' must be an int, got {type(seed).__name__}")
        self.seed = seed
        self.temperature = positive_float(temperature, "temperature")
        if op is not None:
            check_operator(op)
        self.op = op
        if image_shape is not None:
            if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2:
                raise ValueError(f"argument 'image_shape' must be (H, W) with positive ints, "
                                 f"got {image_shape!r}")
            image_shape = (positive_int(image_shape[0], "image_shape"),
                           positive_int(image_shape[1], "image_shape"))
        self.image_shape = image_shape
        self._checked: weakref.WeakKeyDictionary[Operator, bool] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ checks
    @property
    def dim_x(self) -> int | None:
        value = getattr(self.model, "dim_x", None)
        return int(value) if value is not None else None

    @property
    def dim_y(self) -> int | None:
        value = getattr(self.model, "dim_y", None)
        return int(value) if value is not None else None

    def _resolve_op(self, op: Operator | None) -> Operator:
        if op is None:
            if self.op is None:
                raise ValueError("PosteriorMean needs an operator: pass 'op' to the constructor "
                                 "or to forward")
            return self.op
        check_operator(op, where="PosteriorMean")
        if self.op is not None and op is not self.op:
            try:
                known = self._checked.get(op)
            except TypeError:  # not weak-referenceable: check every time
                known = None
            if known is None:
                known = self._same_operator(op)
                try:
                    self._checked[op] = known
                except TypeError:
                    pass
            if not known:
                raise ValueError(f"PosteriorMean: argument 'op' ({_describe(op)}) is not the operator the "
                                 f"model was trained for ({_describe(self.op)})")
        return op

    def _same_operator(self, op: Operator) -> bool:
        mine, other = self.op, op
        for attr in ("in_shape", "out_shape"):
            a, b = getattr(mine, attr, None), getattr(other, attr, None)
            if a is not None and b is not None and tuple(a)[-2:] != tuple(b)[-2:]:
                return False
        if callable(getattr(mine, "to_matrix", None)) and callable(getattr(other, "to_matrix", None)):
            size = self._image_shape(mine)
            if size[0] * size[1] <= 4096:
                try:
                    a = mine.to_matrix(torch.float64).cpu()
                    b = other.to_matrix(torch.float64).cpu()
                except (ValueError, RuntimeError, TypeError):
                    return True  # no dense form: the shapes agree, trust them
                return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-6, atol=1e-9))
        return True

    def _image_shape(self, op: Operator) -> tuple[int, int]:
        in_shape = capabilities(op).in_shape
        if in_shape is not None and len(in_shape) >= 2 and all(s is not None for s in tuple(in_shape)[-2:]):
            shape = (int(in_shape[-2]), int(in_shape[-1]))
        elif self.image_shape is not None:
            shape = self.image_shape
        elif self.dim_x is not None and math.isqrt(self.dim_x) ** 2 == self.dim_x:
            shape = (math.isqrt(self.dim_x),) * 2
        else:
            raise ValueError("PosteriorMean: cannot tell the image shape; pass 'image_shape' (H, W)")
        if self.dim_x is not None and shape[0] * shape[1] != self.dim_x:
            raise ValueError(f"PosteriorMean: argument 'op' takes {shape[0]}x{shape[1]} images but the model "
                             f"samples dim_x = {self.dim_x} values")
        return shape

    def _check_y(self, y: object) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"PosteriorMean: argument 'y' must be a torch.Tensor, got {type(y).__name__}")
        if y.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"PosteriorMean: argument 'y' must be real (float32/float64), got {y.dtype}")
        if y.ndim < 2 or y.shape[0] == 0:
            raise ValueError(f"PosteriorMean: argument 'y' must have shape (B, C, m) or (B, m) with B >= 1, "
                             f"got {tuple(y.shape)}")
        if self.dim_y is not None and y.shape[-1] != self.dim_y:
            raise ValueError(f"PosteriorMean: argument 'y' must have shape (B, C, {self.dim_y}) (the model's "
                             f"dim_y), got {tuple(y.shape)}")
        if not all_finite(y):
            raise ValueError("PosteriorMean: argument 'y' contains NaN or Inf values")
        return y

    # ------------------------------------------------------------------ sampling
    def _draw(self, y: torch.Tensor, op: Operator | None) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Samples ``(B * C, n, H * W)`` in ``y``'s dtype and the image shape ``(B, C, H, W)``."""
        y = self._check_y(y)
        op = self._resolve_op(op)
        h, w = self._image_shape(op)
        channels = math.prod(y.shape[1:-1])
        flat = y.detach().reshape(-1, y.shape[-1])
        kwargs = {} if self.temperature == 1.0 else {"temperature": self.temperature}
        with torch.no_grad():
            rows = []
            for row in flat:  # one call per observation: the same z for each (see the class notes)
                s = self.model.sample(row.unsqueeze(0), self.n_samples, seed=self.seed, **kwargs)
                if not isinstance(s, torch.Tensor) or tuple(s.shape) != (1, self.n_samples, h * w):
                    got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                    raise ValueError(f"PosteriorMean: model.sample returned {got}, expected "
                                     f"(1, {self.n_samples}, {h * w})")
                rows.append(s[0])
            samples = torch.stack(rows).to(device=y.device, dtype=y.dtype)
        if not all_finite(samples):
            raise ValueError("PosteriorMean: the model's samples contain NaN or Inf values")
        return samples, (y.shape[0], channels, h, w)

    def forward(self, y: torch.Tensor, op: Operator | None = None) -> torch.Tensor:
        """The posterior mean ``(B, C, H, W)`` of measurements ``y`` ``(B, C, m)``."""
        samples, shape = self._draw(y, op)
        return samples.mean(dim=1).reshape(shape)

    def std(self, y: torch.Tensor, op: Operator | None = None) -> torch.Tensor:
        """The per-pixel posterior standard deviation ``(B, C, H, W)`` of ``y`` ``(B, C, m)``."""
        samples, shape = self._draw(y, op)
        return samples.std(dim=1).reshape(shape)

    def samples(self, y: torch.Tensor, op: Operator | None = None) -> torch.Tensor:
        """The samples ``(B, n_samples, C, H, W)`` behind :meth:`forward` and :meth:`std`."""
        samples, (b, c, h, w) = self._draw(y, op)
        return samples.reshape(b, c, self.n_samples, h, w).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"n_samples={self.n_samples}, seed={self.seed}"


def _describe(op: Operator) -> str:
    caps = capabilities(op)
    name = getattr(op, "name", type(op).__name__)
    return f"{name}, in_shape={caps.in_shape or '?'}, out_shape={caps.out_shape or '?'}"
