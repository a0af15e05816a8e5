r"""An imaging inverse problem for posterior estimators: 8x8 handwritten digits.

:class:`DigitsProblem` draws ``x`` from the 1797 digits of scikit-learn's
:func:`~sklearn.datasets.load_digits` (Alpaydin & Kaynak, UCI optical recognition of
handwritten digits; shipped with scikit-learn, so nothing is downloaded), flattened to 64
values, and observes it through a stablerecon operator,

.. math:: y = A x + \sigma \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I),

with ``A`` a Gaussian compressed-sensing matrix (:class:`~stablerecon.operators.GaussianMatrix`)
or pixel masking (:class:`~stablerecon.operators.Inpainting`). The pixels hold integers
``v in 0..16``; they are dequantised, ``x = (v + u) / 17`` with ``u ~ U(0, 1)``, so that the
prior has a density on ``[0, 1)^64`` and a normalising flow can be trained on it by maximum
likelihood (Theis, van den Oord, Bethge, "A note on the evaluation of generative models",
ICLR 2016). A seeded 80/20 train/test split keeps the test images unseen in training.

This is the imaging counterpart of the toy problems of
:mod:`~stablerecon.posterior.problems` (Ardizzone et al., "Analyzing inverse problems with
invertible neural networks", ICLR 2019; Ardizzone et al., "Guided image generation with
conditional invertible neural networks", 2019): the posterior has no closed form, but the
part of ``x`` that ``A`` cannot see is known exactly, the null space ``ker A``. A posterior
estimator should put its uncertainty there: :meth:`DigitsProblem.null_space_fraction`
measures which fraction of the sample variance does, and :func:`image_figure` draws truth,
``A^+ y``, posterior mean, posterior std and samples for one observation.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import numpy as np
import torch

from ..operators import GaussianMatrix, Inpainting, LinearOperator
from ..operators.masks import check_mask, uniform_random
from .problems import Problem, Seed, _count, _gen

__all__ = ["DigitsProblem", "image_figure", "load_digit_levels"]

SIDE = 8
LEVELS = 17  # pixel values 0..16


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.int64), data.target.astype(np.int64)


def load_digit_levels() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1797 digits of :func:`sklearn.datasets.load_digits`: integer pixel levels
    ``(1797, 64)`` (``int64``, values 0..16, row-major 8x8) and labels ``(1797,)`` (fresh
    copies; the file is read once per process)."""
    levels, labels = _raw_digits()
    return torch.tensor(levels), torch.tensor(labels)


def _fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"argument '{name}' must be a number in (0, 1), got {value!r}")
    return float(value)


def _block_mask(observed: float) -> torch.Tensor:
    """The first ``round(observed * 64)`` pixels in row-major order: the top of the digit is
    seen, the bottom must be completed."""
    k = min(SIDE * SIDE - 1, max(1, round(observed * SIDE * SIDE)))
    mask = torch.zeros(SIDE * SIDE, dtype=torch.bool)
    mask[:k] = True
    return mask.reshape(SIDE, SIDE)


class DigitsProblem(Problem):
    r"""8x8 digits observed through a linear operator with Gaussian noise.

    ``x`` ``(n, 64)`` (float64, row-major 8x8, values in ``[0, 1)``) is a dequantised digit of
    the chosen split; ``y = A x + noise_std * N(0, I)`` ``(n, dim_y)``.

    Parameters
    ----------
    operator:
        ``"inpainting"`` (default): observe a subset of the pixels (see ``mask`` and
        ``observed``); ``"gaussian"``: ``m`` random projections
        (:class:`~stablerecon.operators.GaussianMatrix`, entries ``N(0, 1/m)``); or any real
        :class:`~stablerecon.operators.LinearOperator` on ``(B, 1, 8, 8)`` images.
    m:
        Rows of the Gaussian matrix (default 32); only for ``operator="gaussian"``.
    observed:
        Fraction of observed pixels for inpainting (default 0.5).
    mask:
        ``"random"`` (default: pixels drawn uniformly by ``seed``), ``"block"`` (the first
        ``observed * 64`` pixels in row-major order, i.e. the top of the digit), or a boolean
        ``(8, 8)`` tensor, ``True`` where observed (then ``observed`` must not be given).
    noise_std:
        Standard deviation ``sigma > 0`` of the observation noise.
    split:
        ``"train"`` (80 % of the digits), ``"test"`` (the other 20 %) or ``"all"``.
    seed:
        Seeds the split, the random mask and the Gaussian matrix: the problems of both splits
        with the same arguments share the same operator.

    Attributes
    ----------
    op:
        The operator ``A`` (acting on ``(B, C, 8, 8)`` images, measurements ``(B, C, dim_y)``).
    levels, labels:
        Integer pixel levels ``(N, 64)`` and digit labels ``(N,)`` of the split.
    null_projector:
        The orthogonal projector ``(64, 64)`` onto ``ker A`` (float64), from the SVD of the
        dense matrix of ``A``.

    Examples
    --------
    >>> problem = DigitsProblem("inpainting", observed=0.5, noise_std=0.01, split="test")
    >>> x, y = problem.sample_joint(3, seed=0)
    >>> x.shape, y.shape, problem.image(x).shape
    (torch.Size([3, 64]), torch.Size([3, 32]), torch.Size([3, 1, 8, 8]))
    >>> int(problem.unobserved.sum()), round(float(problem.information_lost().sum()))
    (32, 32)
    """

    dim_x = SIDE * SIDE
    name = "digits"

    def __init__(self, operator: Literal["inpainting", "gaussian"] | LinearOperator = "inpainting",
                 m: int | None = None, observed: float | None = None,
                 mask: Literal["random", "block"] | torch.Tensor | None = None, noise_std: float = 0.01,
                 split: Literal["train", "test", "all"] = "train", seed: int = 0) -> None:
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) \
                or not (math.isfinite(noise_std) and noise_std > 0):
            raise ValueError(f"argument 'noise_std' must be a positive number, got {noise_std!r}")
        if split not in ("train", "test", "all"):
            raise ValueError(f"argument 'split' must be 'train', 'test' or 'all', got {split!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"argument 'seed' must be an int, got {type(seed).__name__}")
        self.noise_std, self.split, self.seed = float(noise_std), split, int(seed)
        self.op = self._make_operator(operator, m, observed, mask)
        self.operator = operator if isinstance(operator, str) else type(operator).__name__
        with torch.no_grad():
            probe = self.op.A(torch.zeros(1, 1, SIDE, SIDE, dtype=torch.float64))
        self.dim_y = int(probe.numel())
        matrix = self.op.to_matrix(torch.float64).reshape(self.dim_y, self.dim_x).cpu()
        self.matrix = matrix
        _, s, vh = torch.linalg.svd(matrix, full_matrices=True)
        rank = int((s > s.max() * 1e-10).sum()) if s.numel() else 0
        row = vh[:rank]
        self.null_projector = torch.eye(self.dim_x, dtype=torch.float64) - row.T @ row

        levels, labels = load_digit_levels()
        order = torch.from_numpy(np.random.default_rng(self.seed).permutation(levels.shape[0]))
        n_test = round(0.2 * levels.shape[0])
        pick = {"test": order[:n_test], "train": order[n_test:], "all": order}[split]
        self.levels, self.labels = levels[pick], labels[pick]

    def _make_operator(self, operator: object, m: int | None, observed: float | None,
                       mask: object) -> LinearOperator:
        if isinstance(operator, LinearOperator):
            if m is not None or observed is not None or mask is not None:
                raise ValueError("arguments 'm', 'observed' and 'mask' apply only to the named operators, "
                                 f"not to an operator instance ({operator.name})")
            if tuple(operator.in_shape[-2:]) != (SIDE, SIDE) or operator.out_complex \
                    or operator.in_kind == "complex":
                raise ValueError(f"argument 'operator' must act on real (B, 1, 8, 8) images with real "
                                 f"measurements, got {operator.name} with in_shape {operator.in_shape}")
            return operator
        if operator == "gaussian":
            if observed is not None or mask is not None:
                raise ValueError("arguments 'observed' and 'mask' apply only to operator='inpainting'")
            m = 32 if m is None else m
            if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
                raise ValueError(f"argument 'm' must be an integer >= 1, got {m!r}")
            return GaussianMatrix(int(m), (SIDE, SIDE), seed=self.seed)
        if operator == "inpainting":
            if m is not None:
                raise ValueError("argument 'm' applies only to operator='gaussian' "
                                 "(inpainting observes 'observed' * 64 pixels)")
            if isinstance(mask, (torch.Tensor, np.ndarray)):
                if observed is not None:
                    raise ValueError("give either a 'mask' tensor or 'observed', not both")
                tensor = check_mask(mask, "mask")
                if tuple(tensor.shape) != (SIDE, SIDE):
                    raise ValueError(f"argument 'mask' must have shape (8, 8), got {tuple(tensor.shape)}")
                return Inpainting(tensor)
            rate = _fraction(0.5 if observed is None else observed, "observed")
            if mask is None or mask == "random":
                return Inpainting(uniform_random(SIDE, rate, seed=self.seed))
            if mask == "block":
                return Inpainting(_block_mask(rate))
            raise ValueError(f"argument 'mask' must be 'random', 'block' or a boolean (8, 8) tensor, "
                             f"got {mask!r}")
        raise ValueError(f"argument 'operator' must be 'inpainting', 'gaussian' or a LinearOperator, "
                         f"got {operator!r}")

    def __repr__(self) -> str:
        return (f"DigitsProblem(operator={self.operator!r}, dim_y={self.dim_y}, noise_std={self.noise_std}, "
                f"split={self.split!r}, images={self.levels.shape[0]}, seed={self.seed})")

    # ------------------------------------------------------------------ the simulator
    def sample_prior(self, n: int, seed: Seed = None) -> torch.Tensor:
        """``n`` dequantised digits ``(n, 64)`` of the split, drawn with replacement."""
        g = _gen(seed)
        idx = torch.randint(0, self.levels.shape[0], (_count(n),), generator=g)
        u = torch.rand(len(idx), self.dim_x, generator=g, dtype=torch.float64)
        return (self.levels[idx].double() + u) / LEVELS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` ``(n, dim_y)`` of ``x`` ``(n, 64)`` (float64)."""
        x = self._check_x(x)
        if not torch.isfinite(x).all():
            raise ValueError(f"{self.name}: argument 'x' contains NaN or Inf values")
        return self.op.A(self.image(x.double())).reshape(x.shape[0], self.dim_y)

    def simulate(self, x: torch.Tensor, seed: Seed = None) -> torch.Tensor:
        """``A x + noise_std * N(0, I)`` ``(n, dim_y)``."""
        y = self.forward(x)
        return y + self.noise_std * torch.randn(y.shape, generator=_gen(seed), dtype=torch.float64)

    # ------------------------------------------------------------------ images and null space
    def image(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 64)`` vectors as ``(N, 1, 8, 8)`` images (a view; also for samples ``(..., 64)``,
        which become ``(..., 1, 8, 8)``)."""
        if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[-1] != self.dim_x:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{self.name}: argument 'x' must have shape (..., {self.dim_x}), got {got}")
        return x.reshape(*x.shape[:-1], 1, SIDE, SIDE)

    def dagger(self, y: torch.Tensor) -> torch.Tensor:
        """``A^+ y`` ``(n, 64)`` of observations ``y`` ``(n, dim_y)``: the operator's cheap
        inverse (zero-filling for inpainting, the pseudo-inverse for the Gaussian matrix)."""
        y = self._check_y(y)
        return self.op.A_dagger(y.double().reshape(y.shape[0], 1, -1)).reshape(y.shape[0], self.dim_x)

    @property
    def unobserved(self) -> torch.Tensor:
        """Boolean ``(8, 8)``: the pixels ``A`` does not see at all (``A e_j = 0``); for
        inpainting the complement of the mask, for a Gaussian matrix no pixel."""
        return (self.matrix.abs().sum(0) == 0).reshape(SIDE, SIDE)

    def information_lost(self) -> torch.Tensor:
        """Per pixel, the fraction ``||P_ker e_j||^2 = (P_ker)_jj`` of its unit vector that lies
        in ``ker A``, ``(8, 8)`` in ``[0, 1]``: 1 where a pixel is unobserved, 0 where it is
        measured exactly, ``1 - m / 64`` on average for ``m`` generic projections."""
        return self.null_projector.diagonal().clamp(0, 1).reshape(SIDE, SIDE).clone()

    def null_space_fraction(self, samples: torch.Tensor) -> torch.Tensor:
        r"""The fraction of the posterior sample variance that lies in ``ker A``.

        For the samples ``x_1, ..., x_S`` of each observation, with deviations
        ``d_s = x_s - \bar x`` from their mean,

        .. math:: f = \frac{\sum_s \|P_{\ker A}\, d_s\|^2}{\sum_s \|d_s\|^2} \in [0, 1].

        At low noise, the row space of ``A`` is pinned down by ``y`` and ``f`` should be close
        to 1: the uncertainty is what the measurements cannot see.

        Parameters
        ----------
        samples:
            ``(N, S, 64)`` posterior samples of ``N`` observations (``S >= 2``), or ``(S, 64)``.

        Returns
        -------
        torch.Tensor
            ``(N,)`` (float64), or a 0-d tensor for ``(S, 64)`` input.
        """
        if not isinstance(samples, torch.Tensor) or samples.ndim not in (2, 3) \
                or samples.shape[-1] != self.dim_x or samples.shape[-2] < 2:
            got = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
            raise ValueError(f"{self.name}: argument 'samples' must have shape (N, S, {self.dim_x}) or "
                             f"(S, {self.dim_x}) with S >= 2, got {got}")
        if not torch.isfinite(samples).all():
            raise ValueError(f"{self.name}: argument 'samples' contains NaN or Inf values")
        s = samples.double()
        d = s - s.mean(dim=-2, keepdim=True)
        total = d.pow(2).sum(dim=(-2, -1))
        if bool((total == 0).any()):
            raise ValueError(f"{self.name}: argument 'samples' has an observation whose samples are all "
                             "equal; the fraction of zero variance is undefined")
        kernel = (d @ self.null_projector.to(d.device)).pow(2).sum(dim=(-2, -1))
        return kernel / total


def _outline(ax: Any, region: np.ndarray) -> None:
    """Draw the pixel edges between ``region`` (bool ``(H, W)``) and the other pixels."""
    from matplotlib.collections import LineCollection

    h, w = region.shape
    segments = []
    for i in range(h):
        for j in range(w):
            if i + 1 < h and region[i, j] != region[i + 1, j]:
                segments.append([(j - 0.5, i + 0.5), (j + 0.5, i + 0.5)])
            if j + 1 < w and region[i, j] != region[i, j + 1]:
                segments.append([(j + 0.5, i - 0.5), (j + 0.5, i + 0.5)])
    ax.add_collection(LineCollection(segments, colors="cyan", linewidths=0.8))


def image_figure(problem: DigitsProblem, samples: torch.Tensor, y: torch.Tensor | None = None,
                 truth: torch.Tensor | None = None, n_show: int = 4, title: str | None = None) -> Any:
    r"""A matplotlib figure of the posterior of one observation: the truth (if given),
    ``A^+ y`` (if ``y`` is given; zero-filled for inpainting), the posterior mean, the posterior
    standard deviation (own colour scale; the border of the unobserved pixels in cyan) and ``n_show``
    samples.

    Parameters
    ----------
    problem:
        The :class:`DigitsProblem` (for ``A`` and the image shape).
    samples:
        ``(S, 64)`` or ``(1, S, 64)`` posterior samples of the observation, ``S >= 2``.
    y:
        The observation, ``(dim_y,)`` or ``(1, dim_y)``.
    truth:
        The true ``x``, ``(64,)`` or ``(1, 64)``.
    n_show:
        Samples to draw (at most ``S``).

    Returns
    -------
    matplotlib.figure.Figure
        Built with the object-oriented API (no pyplot state); save with ``fig.savefig``.
    """
    from matplotlib.figure import Figure

    if not isinstance(problem, DigitsProblem):
        raise TypeError(f"argument 'problem' must be a DigitsProblem, got {type(problem).__name__}")
    if isinstance(samples, torch.Tensor) and samples.ndim == 3 and samples.shape[0] == 1:
        samples = samples[0]
    if not isinstance(samples, torch.Tensor) or samples.ndim != 2 or samples.shape[1] != problem.dim_x \
            or samples.shape[0] < 2:
        got = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"argument 'samples' must have shape (S, {problem.dim_x}) or "
                         f"(1, S, {problem.dim_x}) with S >= 2, got {got}")
    n_show = _count(n_show, "n_show")
    s = samples.detach().double().cpu()
    panels: list[tuple[str, torch.Tensor, bool]] = []
    if truth is not None:
        if not isinstance(truth, torch.Tensor) or truth.numel() != problem.dim_x:
            got = tuple(truth.shape) if isinstance(truth, torch.Tensor) else type(truth).__name__
            raise ValueError(f"argument 'truth' must have {problem.dim_x} values, got {got}")
        panels.append(("truth", truth.detach().double().cpu().reshape(-1), False))
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.numel() != problem.dim_y:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"argument 'y' must have {problem.dim_y} values, got {got}")
        label = r"$A^\dagger y$" + (" (zero-filled)" if isinstance(problem.op, Inpainting) else "")
        panels.append((label, problem.dagger(y.detach().cpu().reshape(1, -1))[0], False))
    panels.append(("posterior mean", s.mean(0), False))
    panels.append(("posterior std", s.std(0), True))
    for k in range(min(n_show, s.shape[0])):
        panels.append((f"sample {k + 1}", s[k], False))

    fig = Figure(figsize=(1.9 * len(panels), 2.3), constrained_layout=True)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    unobserved = problem.unobserved.numpy()
    for ax, (label, values, is_std) in zip(axes, panels, strict=True):
        img = values.reshape(SIDE, SIDE).numpy()
        if is_std:
            im = ax.imshow(img, cmap="magma", vmin=0)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            if unobserved.any() and not unobserved.all():
                _outline(ax, unobserved)
        else:
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
