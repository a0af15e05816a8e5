r"""Invertible networks for posterior estimation.

- :class:`AffineCoupling`: the GLOW-style double affine coupling block of Ardizzone et al.
  (ICLR 2019, Sec. 3.1) with soft-clamped scales ``s -> (2 / pi) * clamp * atan(s / clamp)``, so
  that ``|log scale| < clamp`` and the inverse stays well conditioned; optionally conditioned
  on ``c`` (the cINN of Ardizzone et al., "Guided image generation with conditional invertible
  neural networks", 2019), whose sub-networks see ``[u, c]``.
- :class:`Permutation`: a fixed random permutation of the features between blocks.
- :class:`LearnedPermutation`: a learned invertible linear mixing ``v = W u`` between blocks,
  LU-parametrised as GLOW's invertible 1x1 convolution (Kingma & Dhariwal, NeurIPS 2018), so
  that ``log |det W|`` is the sum of ``log |s|`` of its diagonal; started at a random rotation.
- :class:`InvertibleNetwork`: blocks and permutations, ``forward(x, c) -> (out, log|det J|)``
  and ``inverse(out, c)``.

The blocks are written here rather than taken from FrEIA: they are a few dozen lines, need no
extra dependency, and are tested against autograd's Jacobian (inverse and log-determinant).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["AffineCoupling", "Permutation", "LearnedPermutation", "InvertibleNetwork", "INN", "soft_clamp"]


def soft_clamp(s: torch.Tensor, clamp: float) -> torch.Tensor:
    """``(2 / pi) * clamp * atan(s / clamp)``: ``0.64 s`` near 0, and smaller than ``clamp`` in size."""
    return (2 / math.pi) * clamp * torch.atan(s / clamp)


def register_moments(module: nn.Module, dim_x: int, dim_y: int) -> None:
    """Give ``module`` the standardisation buffers ``x_mean``, ``x_std`` ``(dim_x,)`` and
    ``y_mean``, ``y_std`` ``(dim_y,)`` (set from training data by
    :func:`~stablerecon.posterior.training.batches`)."""
    for name, dim in (("x_mean", dim_x), ("y_mean", dim_y)):
        module.register_buffer(name, torch.zeros(dim))
    for name, dim in (("x_std", dim_x), ("y_std", dim_y)):
        module.register_buffer(name, torch.ones(dim))


def _subnet(cin: int, cout: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = cin
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    last = nn.Linear(width, cout)
    nn.init.zeros_(last.weight)  # every block starts as the identity
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


class AffineCoupling(nn.Module):
    r"""Double affine coupling: with ``u = [u_1, u_2]``,

    .. math:: v_1 = u_1 \odot e^{s_2(u_2, c)} + t_2(u_2, c), \qquad
              v_2 = u_2 \odot e^{s_1(v_1, c)} + t_1(v_1, c),

    ``s`` soft-clamped (:func:`soft_clamp`). Exactly invertible; ``log |det J|`` is the sum of
    the clamped scales. Shapes: ``u`` ``(N, dim)``, ``c`` ``(N, cond_dim)`` or ``None``.
    """

    def __init__(self, dim: int, cond_dim: int = 0, hidden: int = 128, layers: int = 2,
                 clamp: float = 2.0) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"argument 'dim' must be >= 2 (a coupling splits the features), got {dim}")
        if not clamp > 0:
            raise ValueError(f"argument 'clamp' must be positive, got {clamp}")
        self.dim, self.cond_dim, self.clamp = dim, cond_dim, float(clamp)
        self.d1 = dim // 2
        self.d2 = dim - self.d1
        self.net2 = _subnet(self.d2 + cond_dim, 2 * self.d1, hidden, layers)  # acts on u_1 from u_2
        self.net1 = _subnet(self.d1 + cond_dim, 2 * self.d2, hidden, layers)  # acts on u_2 from v_1

    def _st(self, net: nn.Module, h: torch.Tensor,
            c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        out = net(h if c is None else torch.cat([h, c], dim=1))
        s, t = out.chunk(2, dim=1)
        return soft_clamp(s, self.clamp), t

    def forward(self, u: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v, log|det J|)`` with ``log|det J|`` of shape ``(N,)``."""
        u1, u2 = u[:, : self.d1], u[:, self.d1 :]
        s2, t2 = self._st(self.net2, u2, c)
        v1 = u1 * s2.exp() + t2
        s1, t1 = self._st(self.net1, v1, c)
        v2 = u2 * s1.exp() + t1
        return torch.cat([v1, v2], dim=1), s2.sum(1) + s1.sum(1)

    def inverse(self, v: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The ``u`` with ``forward(u, c)[0] == v``."""
        v1, v2 = v[:, : self.d1], v[:, self.d1 :]
        s1, t1 = self._st(self.net1, v1, c)
        u2 = (v2 - t1) * (-s1).exp()
        s2, t2 = self._st(self.net2, u2, c)
        u1 = (v1 - t2) * (-s2).exp()
        return torch.cat([u1, u2], dim=1)


class Permutation(nn.Module):
    """A fixed random permutation of ``dim`` features (seeded; ``log|det J| = 0``)."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        perm = torch.randperm(dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, u: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return u[:, self.perm], u.new_zeros(u.shape[0])

    def inverse(self, v: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return v[:, self.inv]


class LearnedPermutation(nn.Module):
    r"""A learned invertible linear map ``v = W u`` of ``dim`` features, ``W = P L (U + diag(s))``
    with ``P`` a fixed permutation, ``L`` unit lower and ``U`` strictly upper triangular, so that
    ``log |det W| = sum log |s|`` (GLOW's LU-decomposed invertible 1x1 convolution, Kingma &
    Dhariwal 2018). Started at a random rotation (seeded); ``s`` is kept away from 0 through
    ``s = sign * exp(log_s)``.
    """

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        self.register_buffer("p", p.float())
        self.register_buffer("sign", diag.sign().float())
        self.register_buffer("mask", torch.triu(torch.ones(dim, dim), 1))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(upper.float())
        self.log_s = nn.Parameter(diag.abs().log().float())

    def weight(self) -> torch.Tensor:
        """``W`` ``(dim, dim)``."""
        eye = torch.eye(self.p.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.mask.T + eye
        upper = self.upper * self.mask + torch.diag(self.sign * self.log_s.exp())
        return self.p @ lower @ upper

    def forward(self, u: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return u @ self.weight().T, self.log_s.sum().expand(u.shape[0])

    def inverse(self, v: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return torch.linalg.solve(self.weight(), v.T).T


class InvertibleNetwork(nn.Module):
    """``blocks`` affine couplings, each followed by a fixed random permutation
    (``permutation="fixed"``) or a learned invertible linear mixing (``"learned"``,
    :class:`LearnedPermutation`).

    ``forward(x, c) -> (out, log|det J|)`` and ``inverse(out, c) -> x`` on ``(N, dim)`` tensors;
    ``c`` (``(N, cond_dim)``) conditions every block when ``cond_dim > 0``.
    """

    def __init__(self, dim: int, cond_dim: int = 0, blocks: int = 8, hidden: int = 128, layers: int = 2,
                 clamp: float = 2.0, seed: int = 0, permutation: str = "fixed") -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError(f"argument 'blocks' must be >= 1, got {blocks}")
        if permutation not in ("fixed", "learned"):
            raise ValueError(f"argument 'permutation' must be 'fixed' or 'learned', got {permutation!r}")
        self.dim, self.cond_dim = int(dim), int(cond_dim)
        mix = Permutation if permutation == "fixed" else LearnedPermutation
        mods: list[nn.Module] = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for k in range(blocks):
                mods += [AffineCoupling(dim, cond_dim, hidden, layers, clamp), mix(dim, seed + 1 + k)]
        self.layers = nn.ModuleList(mods)

    def _check(self, u: torch.Tensor, c: torch.Tensor | None, name: str) -> None:
        if not isinstance(u, torch.Tensor) or u.ndim != 2 or u.shape[1] != self.dim:
            got = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
            raise ValueError(f"argument '{name}' must have shape (N, {self.dim}), got {got}")
        if self.cond_dim:
            if c is None or c.ndim != 2 or c.shape != (u.shape[0], self.cond_dim):
                got = None if c is None else tuple(c.shape)
                raise ValueError(f"argument 'c' must have shape ({u.shape[0]}, {self.cond_dim}), got {got}")
        elif c is not None:
            raise ValueError("argument 'c' is only for conditional networks (cond_dim > 0)")

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(out, log|det d out / d x|)``, shapes ``(N, dim)`` and ``(N,)``."""
        self._check(x, c, "x")
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x, c)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, out: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The ``x`` with ``forward(x, c)[0] == out``."""
        self._check(out, c, "out")
        for layer in reversed(self.layers):
            out = layer.inverse(out, c)
        return out


class INN(nn.Module):
    r"""The invertible network of Ardizzone et al. (ICLR 2019): ``f(x) = [y, z]``.

    ``x`` (``dim_x``) is padded with zeros to ``dim = max(dim_x, dim_y + dim_z)``; the output
    is read as ``[y (dim_y), z (dim_z), padding]``. Trained bidirectionally
    (:func:`~stablerecon.posterior.training.train_inn`), the forward direction learns the
    simulator and the latent ``z ~ N(0, I)`` carries what ``y`` loses, so that
    :meth:`sample` (``x = f^{-1}(y, z)``, ``z ~ N(0, I)``) draws from ``p(x | y)``.
    Inputs and observations are standardised with training moments (buffers).
    """

    def __init__(self, dim_x: int, dim_y: int, dim_z: int, blocks: int = 8, hidden: int = 128,
                 layers: int = 2, clamp: float = 2.0, seed: int = 0, permutation: str = "fixed") -> None:
        super().__init__()
        for name, value in (("dim_x", dim_x), ("dim_y", dim_y), ("dim_z", dim_z)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"argument '{name}' must be an integer >= 1, got {value!r}")
        self.dim_x, self.dim_y, self.dim_z = dim_x, dim_y, dim_z
        self.dim = max(dim_x, dim_y + dim_z, 2)
        self.flow = InvertibleNetwork(self.dim, 0, blocks, hidden, layers, clamp, seed, permutation)
        register_moments(self, dim_x, dim_y)
        # noise levels of training (standardised units), set by train_inn; sampling uses them
        self.register_buffer("y_noise", torch.zeros(()))
        self.register_buffer("pad_noise", torch.zeros(()))

    def pad_x(self, x: torch.Tensor, noise: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """Standardised ``x`` padded to ``dim`` (padding: zeros, or ``N(0, noise^2)``)."""
        x = (x.to(self.x_mean.dtype) - self.x_mean) / self.x_std
        pad = x.new_zeros(x.shape[0], self.dim - self.dim_x)
        if noise and pad.numel():
            pad = noise * torch.randn(pad.shape, generator=generator, dtype=x.dtype, device=x.device)
        return torch.cat([x, pad], dim=1)

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(y, z, padding)`` parts of a forward output (``y`` standardised)."""
        dy, dz = self.dim_y, self.dim_z
        return out[:, :dy], out[:, dy : dy + dz], out[:, dy + dz :]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The learned forward model: ``y`` ``(N, dim_y)`` of ``x`` ``(N, dim_x)``."""
        if x.ndim != 2 or x.shape[1] != self.dim_x:
            raise ValueError(f"INN: argument 'x' must have shape (N, {self.dim_x}), got {tuple(x.shape)}")
        y = self.split(self.flow(self.pad_x(x))[0])[0]
        return y * self.y_std + self.y_mean

    def inverse_of(self, y_std: torch.Tensor, z: torch.Tensor, pad_noise: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` (standardised, ``dim_x`` features) of standardised ``y`` and latent ``z``."""
        pad = y_std.new_zeros(y_std.shape[0], self.dim - self.dim_y - self.dim_z)
        if pad_noise and pad.numel():
            pad = pad_noise * torch.randn(pad.shape, generator=generator, dtype=pad.dtype, device=pad.device)
        return self.flow.inverse(torch.cat([y_std, z, pad], dim=1))[:, : self.dim_x]

    @torch.no_grad()
    def latent(self, x: torch.Tensor, seed: int | None = 0) -> torch.Tensor:
        """The latent part ``z`` ``(N, dim_z)`` of the forward output of ``x`` ``(N, dim_x)``,
        with the padding drawn as in training (``pad_noise``): after training, ``z ~ N(0, I)``
        independent of ``y``."""
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.dim_x:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"INN: argument 'x' must have shape (N, {self.dim_x}), got {got}")
        g = torch.Generator(device=x.device)
        g.manual_seed(seed) if seed is not None else g.seed()
        return self.split(self.flow(self.pad_x(x, float(self.pad_noise), g))[0])[1]

    @torch.no_grad()
    def sample(self, y: torch.Tensor, n: int, seed: int | None = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` posterior samples per observation ``y`` ``(N, dim_y)``: ``(N, n, dim_x)``.

        ``x = f^{-1}([y + e_y, z, e_pad])`` with ``z ~ N(0, temperature^2 I)`` and the
        observation and padding noise ``e_y``, ``e_pad`` of training (buffers ``y_noise``,
        ``pad_noise``, standardised units), so that the model's conditional is sampled as trained.
        Both are zero after training with the paper's losses alone (clean ``y``, zero padding).
        """
        if not isinstance(y, torch.Tensor) or y.ndim != 2 or y.shape[1] != self.dim_y:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"INN: argument 'y' must have shape (N, {self.dim_y}), got {got}")
        if not torch.isfinite(y).all():
            raise ValueError("INN: argument 'y' contains NaN or Inf values")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"INN: argument 'n' must be an integer >= 1, got {n!r}")
        g = torch.Generator(device=y.device)
        g.manual_seed(seed) if seed is not None else g.seed()
        ys = ((y.to(self.y_mean.dtype) - self.y_mean) / self.y_std).repeat_interleave(n, dim=0)
        z = temperature * torch.randn(ys.shape[0], self.dim_z, generator=g, dtype=ys.dtype, device=ys.device)
        if float(self.y_noise):
            noise = torch.randn(ys.shape, generator=g, dtype=ys.dtype, device=ys.device)
            ys = ys + float(self.y_noise) * noise
        x = self.inverse_of(ys, z, float(self.pad_noise), g) * self.x_std + self.x_mean
        return x.reshape(y.shape[0], n, self.dim_x)
