"""The linear-operator contract every forward model of stablerecon honours.

A forward model maps an image ``x`` of shape ``(B, C, H, W)`` to measurements
``y = A x`` (plus noise, added separately by :mod:`stablerecon.operators.noise`).
Every operator is a :class:`torch.nn.Module` with

* ``A(x)``          the forward map,
* ``A_adjoint(y)``  the exact adjoint ``A^*`` (the dot-product test holds to float precision),
* ``A_dagger(y)``   a pseudo-inverse or a good cheap inverse (zero-filled adjoint, FBP, ...),
* ``norm()``        the operator norm ``||A||_2`` by power iteration (cached),
* ``adjointness_error()`` the relative dot-product test,

and validates the shape, dtype and finiteness of every argument it receives. These names match
DeepInverse's ``LinearPhysics`` so that operators work in either library by duck typing.

Operators compose with ``@`` (``(op2 @ op1).A(x) == op2.A(op1.A(x))``) and scale with ``*``;
the resulting :class:`ComposedOperator`, :class:`ScaledOperator` and :class:`AdjointOperator`
live here with :class:`LinearOperator` because its operators build them. The tensor checks and
dtype helpers (:func:`check_tensor`, :class:`skip_finite_checks`, ...) live in
:mod:`stablerecon.operators.tensors` and are re-exported here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .tensors import (
    COMPLEX_DTYPES,
    REAL_DTYPES,
    DomainKind,
    Shape,
    all_finite,
    as_hw,
    check_tensor,
    complex_dtype_of,
    finite_checks_enabled,
    format_shape,
    gather_last,
    inner_product,
    real_dtype_of,
    scatter_last,
    shapes_compatible,
    skip_finite_checks,
)

__all__ = [
    "LinearOperator",
    "ComposedOperator",
    "ScaledOperator",
    "AdjointOperator",
    "Identity",
    # re-exported from stablerecon.operators.tensors
    "Shape",
    "DomainKind",
    "REAL_DTYPES",
    "COMPLEX_DTYPES",
    "complex_dtype_of",
    "real_dtype_of",
    "check_tensor",
    "all_finite",
    "inner_product",
    "gather_last",
    "scatter_last",
    "skip_finite_checks",
    "finite_checks_enabled",
]


class _AdjointPair(torch.autograd.Function):
    """``x -> A x`` (``adjoint=False``) or ``x -> A^* x`` whose backward pass is the other one.

    For a linear map the vector-Jacobian product is the adjoint: ``grad_x = A^* grad_y`` (and
    ``A grad_x`` for ``A^*``), real part taken when the input was real. The backward goes through
    this function again, so gradients of any order are available; the operator travels as a
    non-tensor argument, so ``torch.func.grad``/``vjp`` work too.
    """

    @staticmethod
    def forward(x: torch.Tensor, op: LinearOperator, adjoint: bool) -> torch.Tensor:  # type: ignore[override]
        return op._adjoint(x) if adjoint else op._forward(x)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:  # type: ignore[override]
        x, ctx.op, ctx.adjoint = inputs
        ctx.real = not x.is_complex()
        ctx.dtype = x.dtype

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        out = _AdjointPair.apply(grad.resolve_conj().resolve_neg(), ctx.op, not ctx.adjoint)
        if ctx.real and out.is_complex():
            out = out.real
        return out.to(ctx.dtype), None, None


class LinearOperator(nn.Module):
    """Base class of linear forward models ``y = A x``.

    Subclasses set ``in_shape``/``out_shape`` (shapes without batch; ``None`` = any size),
    ``in_kind`` (which images they accept: ``"real"``, ``"complex"`` or ``"any"``) and implement
    ``_forward`` and ``_adjoint``. Optionally they override ``_dagger`` (default: the adjoint)
    and ``_exact_norm`` (default: none, use power iteration).

    Input validation runs on every public call: wrong shapes, dtypes or NaN/Inf values raise a
    ``ValueError``/``TypeError`` naming the argument.

    Attributes
    ----------
    in_shape:
        Shape of one image without the batch dimension, e.g. ``(None, 128, 128)``.
    out_shape:
        Shape of one measurement without the batch dimension.
    in_kind:
        ``"real"`` if only real images are accepted, ``"any"`` if complex images are too.
    out_complex:
        ``True`` if measurements are always complex (e.g. Fourier samples).
    """

    in_shape: Shape
    out_shape: Shape
    in_kind: DomainKind = "any"
    out_complex: bool = False
    #: Differentiate ``A`` and ``A_adjoint`` by the exact adjoint (one ``A^*`` per backward
    #: pass, nothing of the forward's intermediates kept) instead of tracing the operator's
    #: internal tensor ops; set by operators with fixed constants (no trainable parameters).
    adjoint_backward: bool = False

    def __init__(self, in_shape: Shape, out_shape: Shape) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(out_shape)
        self._norm_cache: float | None = None
        self._cast_cache: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def _buffer_as(self, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Buffer ``name`` (kept in float64/complex128) cast to ``dtype`` on ``device``, cached.

        Operators keep their constants in double precision so that float64 computations are
        exact to double precision, and serve float32 copies from this cache in hot paths.
        """
        master: torch.Tensor = getattr(self, name)
        if master.dtype == dtype and master.device == device:
            return master
        key = (name, dtype, device)
        cached = self._cast_cache.get(key)
        if cached is None or cached.device != device:
            cached = master.to(device=device, dtype=dtype)
            self._cast_cache[key] = cached
        return cached

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self._cast_cache = {}  # buffers moved or changed: drop stale copies
        # ``Module.to(torch.float64)`` would cast complex buffers (e.g. Fourier phases) to a
        # real dtype and drop their imaginary parts: keep every buffer's own dtype and let
        # only the device change. Operators cast their constants per call (``_buffer_as``).
        complex_buffers = {name: b for name, b in self._buffers.items() if b is not None and b.is_complex()}
        for name in complex_buffers:
            self._buffers[name] = None
        try:
            out = super()._apply(fn, recurse)
        finally:
            device = fn(torch.empty(0)).device
            for name, buf in complex_buffers.items():
                self._buffers[name] = buf.to(device)
        return out

    # ------------------------------------------------------------------ to implement
    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self._adjoint(y)

    def _exact_norm(self) -> float | None:
        """The operator norm when known in closed form, else ``None``."""
        return None

    # ------------------------------------------------------------------ public API
    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def out_kind(self) -> DomainKind:
        return "complex" if self.out_complex else self.in_kind

    def _traced(self, t: torch.Tensor) -> bool:
        """Whether a call on ``t`` goes through :class:`_AdjointPair` (see ``adjoint_backward``)."""
        return (self.adjoint_backward and t.requires_grad and torch.is_grad_enabled()
                and not any(p.requires_grad for p in self.parameters()))

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the forward operator: ``x`` of shape ``(B, *in_shape)`` -> ``(B, *out_shape)``."""
        check_tensor(x, "x", self.in_shape, self.in_kind, where=f"{self.name}.A")
        if self._traced(x):
            return _AdjointPair.apply(x, self, False)
        return self._forward(x)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the exact adjoint ``A^*``: ``(B, *out_shape)`` -> ``(B, *in_shape)``."""
        check_tensor(y, "y", self.out_shape, self.out_kind if self.out_kind != "complex" else "any",
                     where=f"{self.name}.A_adjoint")
        if self._traced(y):
            return _AdjointPair.apply(y, self, True)
        return self._adjoint(y)

    def A_dagger(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the operator's (pseudo-)inverse ``A^+`` (see the subclass for which one)."""
        check_tensor(y, "y", self.out_shape, self.out_kind if self.out_kind != "complex" else "any",
                     where=f"{self.name}.A_dagger")
        return self._dagger(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``op(x)`` is ``op.A(x)``."""
        return self.A(x)

    def A_normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^* A x``."""
        return self.A_adjoint(self.A(x))

    def probe_shape(self, batch: int = 1) -> tuple[int, ...]:
        """A concrete image shape for this operator (``None`` entries replaced by 1)."""
        return (batch, *(1 if s is None else s for s in self.in_shape))

    def random_input(
        self, batch: int = 1, dtype: torch.dtype = torch.float32, seed: int = 0,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """A seeded standard-normal image in the operator's domain (complex if ``dtype`` is)."""
        g = torch.Generator().manual_seed(seed)
        shape = self.probe_shape(batch)
        x = torch.randn(shape, generator=g, dtype=real_dtype_of(dtype))
        if dtype in COMPLEX_DTYPES:
            x = torch.complex(x, torch.randn(shape, generator=g, dtype=real_dtype_of(dtype)))
        return x.to(device) if device is not None else x

    def random_output(
        self, batch: int = 1, dtype: torch.dtype = torch.float32, seed: int = 1,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """A seeded standard-normal measurement (complex when the operator's range is)."""
        g = torch.Generator().manual_seed(seed)
        shape = (batch, *(1 if s is None else s for s in self.out_shape))
        rdt = real_dtype_of(dtype)
        y = torch.randn(shape, generator=g, dtype=rdt)
        if self.out_complex or dtype in COMPLEX_DTYPES:
            y = torch.complex(y, torch.randn(shape, generator=g, dtype=rdt))
        return y.to(device) if device is not None else y

    def _probe_dtype(self, precision: torch.dtype = torch.float64) -> torch.dtype:
        return complex_dtype_of(precision) if self.in_kind != "real" else real_dtype_of(precision)

    def _probe_device(self) -> torch.device:
        for t in self.buffers():
            return t.device
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def norm(self, max_iter: int = 500, tol: float = 1e-7, seed: int = 0,
             recompute: bool = False) -> float:
        """The spectral norm ``||A||_2`` (largest singular value), cached after the first call.

        Operators with a closed form (subsampled unitary transforms: exactly 1) return it;
        the others run power iteration on ``A^* A`` in float64 over the operator's natural
        domain (complex images where the operator accepts them), stopping when the Rayleigh
        quotient changes by less than ``tol`` relatively.
        """
        # The cache ignores max_iter/tol: pass recompute=True to rerun with other settings.
        if self._norm_cache is not None and not recompute:
            return self._norm_cache
        exact = self._exact_norm()
        if exact is not None:
            self._norm_cache = float(exact)
            return self._norm_cache
        # Rayleigh quotient <x, A^* A x> through the unchecked maps. This is deliberately not
        # stablerecon.contracts.power_iteration, which estimates ||A^* A v||^(1/2) through the
        # validated public maps: both converge to ||A||, but not to the same digits.
        dtype = self._probe_dtype(torch.float64)
        device = self._probe_device()
        with torch.no_grad():
            x = self.random_input(1, dtype=dtype, seed=seed, device=device)
            x = x / torch.linalg.vector_norm(x)
            value = 0.0
            for _ in range(max_iter):
                z = self._adjoint(self._forward(x))
                new = float(inner_product(x, z).real.sum())
                zn = float(torch.linalg.vector_norm(z))
                if zn == 0.0:
                    value = 0.0
                    break
                x = z / zn
                if abs(new - value) <= tol * abs(new):
                    value = new
                    break
                value = new
        self._norm_cache = math.sqrt(max(value, 0.0))
        return self._norm_cache

    def adjointness_error(self, dtype: torch.dtype | None = None, seed: int = 0,
                          batch: int = 2) -> float:
        """Relative dot-product test ``max_b |<A x, y> - <x, A^* y>| / (||A x|| ||y||)``.

        ``x`` and ``y`` are seeded standard-normal; complex where the operator's domain/range
        are (``dtype`` picks the precision and, for the image, real or complex).
        """
        if dtype is None:
            dtype = self._probe_dtype(torch.float32)
        if self.in_kind == "real" and dtype in COMPLEX_DTYPES:
            raise ValueError(f"{self.name} accepts only real images; got dtype={dtype}")
        device = self._probe_device()
        x = self.random_input(batch, dtype=dtype, seed=seed, device=device)
        y = self.random_output(batch, dtype=dtype, seed=seed + 1, device=device)
        with torch.no_grad():
            ax = self.A(x)
            aty = self.A_adjoint(y)
            lhs = inner_product(ax, y)
            rhs = inner_product(x, aty)
            scale = (torch.linalg.vector_norm(ax.reshape(batch, -1), dim=1)
                     * torch.linalg.vector_norm(y.reshape(batch, -1), dim=1))
            # A x = 0 (x in the null space): then <x, A^* y> must vanish too; compare absolutely.
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return float(((lhs - rhs).abs() / scale).max())

    def to_matrix(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense matrix of ``A`` on one channel (small sizes only; for tests).

        Column ``j`` is ``A e_j``; shape ``(prod(out_shape), prod(in_shape))``.
        """
        if dtype is None:
            dtype = self._probe_dtype(torch.float64)
        shape = self.probe_shape(1)
        n = math.prod(shape[1:])
        if n > 1 << 14:
            raise ValueError(f"{self.name}.to_matrix: image size {n} too large for a dense matrix")
        eye = torch.eye(n, dtype=dtype, device=self._probe_device()).reshape(n, *shape[1:])
        with torch.no_grad():
            cols = self._forward(eye)
        return cols.reshape(n, -1).T.contiguous()

    # ------------------------------------------------------------------ algebra
    def adjoint(self) -> AdjointOperator:
        """The adjoint ``A^*`` as an operator (e.g. wavelet synthesis ``W^*``, so that
        ``op @ wavelet.adjoint()`` maps coefficients to measurements)."""
        return AdjointOperator(self)

    def __matmul__(self, other: LinearOperator) -> ComposedOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return ComposedOperator(self, other)

    def __mul__(self, scale: float) -> ScaledOperator:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            return NotImplemented
        return ScaledOperator(self, float(scale))

    __rmul__ = __mul__

    def __neg__(self) -> ScaledOperator:
        return ScaledOperator(self, -1.0)

    def extra_repr(self) -> str:
        return (f"in_shape={format_shape((None, *self.in_shape))}, "
                f"out_shape={format_shape((None, *self.out_shape))}")


class ComposedOperator(LinearOperator):
    """``outer @ inner``: ``A = A_outer A_inner``, ``A^* = A_inner^* A_outer^*``.

    ``A_dagger`` chains the two pseudo-inverses (exact when both factors are, e.g. unitary).
    """

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if not shapes_compatible(inner.out_shape, outer.in_shape):
            raise ValueError(
                f"cannot compose {outer.name} @ {inner.name}: {inner.name} outputs "
                f"{format_shape((None, *inner.out_shape))} but {outer.name} expects "
                f"{format_shape((None, *outer.in_shape))}"
            )
        if outer.in_kind == "real" and inner.out_complex:
            raise ValueError(
                f"cannot compose {outer.name} @ {inner.name}: {outer.name} accepts only real input "
                f"but {inner.name} always produces complex output"
            )
        super().__init__(inner.in_shape, outer.out_shape)
        self.outer = outer
        self.inner = inner
        # A real-only outer factor restricts the composition to real images.
        self.in_kind = "real" if outer.in_kind == "real" else inner.in_kind
        self.out_complex = outer.out_complex or (inner.out_complex and outer.in_kind != "real")

    @property
    def name(self) -> str:
        return f"({self.outer.name} @ {self.inner.name})"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer.A(self.inner._forward(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.A_adjoint(self.outer._adjoint(y))

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.A_dagger(self.outer._dagger(y))


class AdjointOperator(LinearOperator):
    """``A^*`` of an operator ``A``: ``A`` and ``A_adjoint`` swap roles.

    ``A_dagger`` returns ``op.A(y)``, which is the exact pseudo-inverse of ``A^*`` when ``op``
    is a partial isometry (``A A^* = I`` as for subsampled unitary transforms, or
    ``A^* A = I`` as for orthonormal wavelets) and a cheap approximation otherwise.
    """

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(op.out_shape, op.in_shape)
        self.op = op
        self.in_kind = "any" if op.out_complex or op.in_kind != "real" else "real"
        self.out_complex = op.out_complex

    @property
    def name(self) -> str:
        return f"{self.op.name}^*"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op._adjoint(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op._forward(y)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.A(y)

    def _exact_norm(self) -> float:
        return self.op.norm()

    def adjoint(self) -> LinearOperator:
        return self.op


class ScaledOperator(LinearOperator):
    """``scale * op``; the pseudo-inverse is ``op^+ / scale``."""

    def __init__(self, op: LinearOperator, scale: float) -> None:
        if not math.isfinite(scale):
            raise ValueError(f"argument 'scale' must be finite, got {scale}")
        super().__init__(op.in_shape, op.out_shape)
        self.op = op
        self.scale = scale
        self.in_kind = op.in_kind
        self.out_complex = op.out_complex

    @property
    def name(self) -> str:
        return f"{self.scale:g}*{self.op.name}"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op._adjoint(y)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        if self.scale == 0.0:
            return torch.zeros_like(self.op._dagger(y))
        return self.op._dagger(y) / self.scale

    def _exact_norm(self) -> float | None:
        return abs(self.scale) * self.op.norm()


class Identity(LinearOperator):
    """The identity ``A x = x`` on images of shape ``(B, C, H, W)`` (denoising).

    Parameters
    ----------
    size:
        Image size ``H`` (square) or ``(H, W)``.
    channels:
        Number of channels, or ``None`` to accept any.
    """

    def __init__(self, size: int | tuple[int, int], channels: int | None = None) -> None:
        h, w = as_hw(size, "size")
        super().__init__((channels, h, w), (channels, h, w))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def _exact_norm(self) -> float:
        return 1.0
