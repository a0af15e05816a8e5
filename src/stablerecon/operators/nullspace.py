"""Null-space ("kernel") parts of images: the split of a detail ``d`` into the part that a
forward operator cannot see and the part it measures.

For a linear operator ``A``, ``z0 = d - A^+ A d`` is the orthogonal projection of ``d`` onto
``ker A``: ``A z0 = 0``, so no method can tell ``x`` from ``x + z0`` from noiseless
measurements. Mixing a little of the range part back in gives near-kernel perturbations ``z``
with a chosen ratio ``||A z|| / ||z||``, the objects of the troublesome-kernel theorem
(Gottschling, Antun, Hansen, Adcock, SIAM Review 2025), used by the audit and by the
near-kernel training pairs of :mod:`stablerecon.training`.

The projection is computed in float64 (complex128) whatever the dtype of ``d`` and is checked
before it is returned: a kernel part with ``||A z0|| > target ||z0||`` raises an error that
names the operator and the ratio reached, never a silent wrong answer (see
:func:`kernel_projection` for the method and the criterion).

>>> from stablerecon.operators import Inpainting
>>> op = Inpainting(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
>>> kernel_projection(torch.ones(1, 1, 2, 2), op)
tensor([[[[0., 1.],
          [1., 0.]]]])
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from ..contracts import check_operator
from .adapter import as_linear_operator
from .base import LinearOperator
from .tensors import check_tensor, skip_finite_checks

__all__ = ["KernelSplit", "kernel_split", "kernel_projection"]

DENSE_LIMIT = 4096
"""Default most unknowns per item (``C H W``) for which the dense solve is tried."""

_PASSES = 10
"""Most refinement passes (restarted LSQR/CGLS solves) after the first solve."""

_FLOOR = 1e3
"""``z0`` counts as numerically zero when ``||z0|| <= sqrt(eps) ||d||`` and
``||A z0|| <= _FLOOR eps ||A|| ||d||`` (``eps`` of the working precision)."""

_ERRORS = (TypeError, RuntimeError, ValueError)


def _norms(t: Tensor) -> Tensor:
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Real inner product per batch item (complex numbers as pairs of reals), shape ``(B,)``."""
    prod = a.conj() * b if a.is_complex() else a * b
    return prod.reshape(a.shape[0], -1).sum(dim=1).real


def _view(t: Tensor, like: Tensor) -> Tensor:
    return t.reshape(-1, *[1] * (like.ndim - 1))


def _wide(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype.is_complex else torch.float64


def _narrow(dtype: torch.dtype) -> torch.dtype:
    return torch.complex64 if dtype.is_complex else torch.float32


class _Maps:
    """``A`` and ``A^*`` of the operator, ``A^*`` followed by the real part when ``d`` is real,
    so that ``x + z0`` stays a real image (``A`` as a real-linear map of real images)."""

    def __init__(self, op: LinearOperator, real: bool) -> None:
        self.op, self.real = op, real

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 - the field's name
        return self.op.A(x)

    def back(self, u: Tensor) -> Tensor:
        v = self.op.A_adjoint(u)
        return v.real if self.real and v.is_complex() else v


def _integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_d(d: object) -> Tensor:
    if not isinstance(d, Tensor) or d.ndim < 2:
        shape = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
        raise ValueError(f"argument 'd' must be a batched real or complex tensor (B, C, H, W), got {shape}")
    try:
        return check_tensor(d, "d", (None,) * (d.ndim - 1), where="kernel_projection")
    except TypeError as exc:  # an unsupported dtype: a bad value of 'd'
        raise ValueError(str(exc)) from None


def _adapt(op: object, d: Tensor) -> tuple[LinearOperator, _Maps, Tensor, Tensor, str | None]:
    """The operator as a :class:`LinearOperator` (:func:`as_linear_operator`), its maps, ``d``
    in the working dtype and ``A d``. The working dtype is float64/complex128; when the
    operator does not keep that precision (it raises, or answers in single precision), it is
    its single precision, and the reason is returned too (else ``None``)."""
    name = type(op).__name__
    wide = d.to(_wide(d.dtype))
    try:
        lin = as_linear_operator(op, image=wide[:1])
    except ValueError as exc:  # A failed on a float64 probe: try its single precision
        lin, reason = None, f"{name} does not accept {wide.dtype} input ({exc})"
    if lin is not None:
        if d.is_complex() and lin.in_kind == "real":
            raise ValueError(f"argument 'd' is complex but {name} accepts only real images")
        maps = _Maps(lin, not d.is_complex())
        try:
            b = maps.A(wide)
            if b.dtype in (torch.float64, torch.complex128) and maps.back(b).dtype in (torch.float64,
                                                                                      torch.complex128):
                return lin, maps, wide, b, None
            reason = f"{name} answers {wide.dtype} input in {b.dtype}"
        except _ERRORS as exc:
            reason = f"{name} does not accept {wide.dtype} input ({type(exc).__name__}: {exc})"
    low = d.to(_narrow(d.dtype))
    try:
        lin = as_linear_operator(op, image=low[:1])
        maps = _Maps(lin, not d.is_complex())
        b = maps.A(low)
        maps.back(b)
    except _ERRORS as exc:
        raise TypeError(f"argument 'op': {reason}, and fails on {low.dtype} input too "
                        f"({type(exc).__name__}: {exc})") from exc
    return lin, maps, low, b, reason


def _cg(maps: _Maps, d: Tensor, b: Tensor, max_iter: int, tol: float) -> Tensor:
    """The first solve: ``d - A^* u`` with ``u`` from at most ``max_iter`` conjugate-gradient
    steps on the normal equations ``A A^* u = b`` (``b = A d``), stopped when every residual
    ``||b - A A^* u|| <= tol ||b||``."""
    b_norm = _norms(b)
    u = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = _dot(r, r)
    for _ in range(max_iter):
        if bool((rs.sqrt() <= tol * b_norm).all()):
            break
        ap = maps.A(maps.back(p))
        curv = _dot(p, ap)
        ok = (rs > 0) & (curv > 0)
        alpha = torch.where(ok, rs / curv.clamp_min(1e-300), torch.zeros_like(rs))
        u = u + _view(alpha, u).to(u.dtype) * p
        r = r - _view(alpha, r).to(r.dtype) * ap
        rs_new = _dot(r, r)
        beta = torch.where(ok, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        p = r + _view(beta, r).to(r.dtype) * p
        rs = rs_new
    return d - maps.back(u)


def _lsqr(maps: _Maps, s: Tensor, max_iter: int, goal: float, floor: Tensor, small: Tensor) -> Tensor:
    """A refinement pass: ``s - A^+ A s`` by at most ``max_iter`` steps of CGLS (LSQR's
    conjugate-gradient twin) on ``min ||A (s - w)||``, ``w`` in the range of ``A^*``, which
    updates ``s`` itself and its residual ``A s`` (not the normal equations' ``u``); stopped
    per item when ``||A s|| <= 0.1 goal ||s||``, or ``||A s|| <= 0.1 floor`` and
    ``||s|| <= small`` (numerically zero)."""
    tiny = torch.finfo(floor.dtype).tiny
    r = maps.A(s)
    g = maps.back(r)
    p = g
    gg = _dot(g, g)
    for _ in range(max_iter):
        rn, sn = _norms(r), _norms(s)
        active = (rn > 0.1 * goal * sn) & ((rn > 0.1 * floor) | (sn > small)) & (gg > 0)
        if not bool(active.any()):
            break
        q = maps.A(p)
        qq = _dot(q, q)
        ok = active & (qq > 0)
        alpha = torch.where(ok, gg / qq.clamp_min(tiny), torch.zeros_like(gg))
        s = s - _view(alpha, s) * p
        r = r - _view(alpha, r) * q
        g = maps.back(r)
        gg_new = _dot(g, g)
        beta = torch.where(ok, gg_new / gg.clamp_min(tiny), torch.zeros_like(gg))
        p = g + _view(beta, p) * p
        gg = gg_new
    return s


def _row_basis(maps: _Maps, like: Tensor, measurements: Tensor) -> Tensor:
    """A basis ``V`` ``(n, r)`` (float64/complex128), orthonormal up to rounding, of the range
    of ``A^*`` (the row space of the dense matrix ``M`` of ``A``, real and imaginary parts of
    the measurements stacked for real images), from the eigendecomposition of the smaller Gram
    matrix: ``M^* M`` (eigenvectors) or ``M M^*`` (``V = M^* U Lambda^(-1/2)``); eigenvalues
    below ``1e-13`` times the largest count as zero."""
    shape, n = like.shape[1:], math.prod(like.shape[1:])
    m = math.prod(measurements.shape[1:]) * (2 if measurements.is_complex() and not like.is_complex() else 1)
    wide = _wide(like.dtype)
    chunk = max(1, min(n, (1 << 22) // max(n, m)))

    def units(start: int) -> Tensor:
        k = min(chunk, n - start)
        e = torch.zeros(k, n, dtype=like.dtype, device=like.device)
        e[torch.arange(k), torch.arange(start, start + k)] = 1
        return e.reshape(k, *shape)

    if m >= n:  # image side: G = A^* A, n x n, its eigenvectors span the row space
        gram = torch.cat([maps.back(maps.A(units(j))).reshape(-1, n) for j in range(0, n, chunk)])
        gram = gram.to(wide).T  # column j = A^* A e_j
        seen = (gram.diagonal().real > 0).nonzero().flatten()  # A e_j = 0: e_j is in the kernel
        gram = gram[seen][:, seen]
        lam, vec = torch.linalg.eigh(0.5 * (gram + gram.conj().T))
        keep = lam > 1e-13 * lam[-1].clamp_min(torch.finfo(lam.dtype).tiny)
        basis = torch.zeros(n, int(keep.sum()), dtype=wide, device=like.device)
        basis[seen] = vec[:, keep]
        return basis
    rows = []
    for j in range(0, n, chunk):
        cols = maps.A(units(j)).reshape(-1, math.prod(measurements.shape[1:]))
        if cols.is_complex() and not like.is_complex():
            cols = torch.cat((cols.real, cols.imag), dim=1)
        rows.append(cols.to(wide))
    mat = torch.cat(rows).T  # (m, n): column j = A e_j
    lam, vec = torch.linalg.eigh(mat @ mat.conj().T)
    keep = lam > 1e-13 * lam[-1].clamp_min(torch.finfo(lam.dtype).tiny)
    # M^* U Lambda^(-1/2): the right singular vectors, orthonormal to about eps / (smallest kept
    # eigenvalue / largest); the projection is applied more than once (refinement)
    return mat.conj().T @ (vec[:, keep] / lam[keep].sqrt())


def _dense(maps: _Maps, s: Tensor, basis: Tensor) -> Tensor:
    """``s - V V^* s`` with the orthonormal row-space basis ``V``, in float64/complex128."""
    flat = s.reshape(s.shape[0], -1).to(basis.dtype).T
    out = flat - basis @ (basis.conj().T @ flat)
    return out.T.reshape(s.shape).to(s.dtype)


@dataclass
class _Projection:
    z0: Tensor  # in the working dtype
    ratio: Tensor  # ||A z0|| / ||z0|| per item
    resolved: Tensor  # ||A z0|| <= goal ||z0|| per item (else numerically zero)
    goal: float
    maps: _Maps
    name: str


def _project(d: Tensor, op: object, max_iter: int, tol: float, target: float,
             dense_limit: int) -> _Projection:
    """The kernel part of ``d`` in the working dtype, checked (see :func:`kernel_projection`)."""
    check_operator(op, "op", where="kernel_projection")
    d = _check_d(d)
    if not _integer(max_iter) or max_iter < 1:
        raise ValueError(f"argument 'max_iter' must be a positive int, got {max_iter!r}")
    if not _integer(dense_limit) or dense_limit < 0:
        raise ValueError(f"argument 'dense_limit' must be an int >= 0, got {dense_limit!r}")
    for arg, value in (("tol", tol), ("target", target)):
        if not (_real(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"argument '{arg}' must be a finite number > 0, got {value!r}")
    max_iter, dense_limit, tol, target = int(max_iter), int(dense_limit), float(tol), float(target)
    name = type(op).__name__
    with torch.no_grad():
        lin, maps, work, b, reason = _adapt(op, d)
        eps = torch.finfo(work.real.dtype if work.is_complex() else work.dtype).eps
        norm = float(lin.norm())
        goal = target * min(1.0, norm) if norm > 0 else target
        floor = _FLOOR * eps * norm * _norms(work)  # numerically zero: see _FLOOR
        small = math.sqrt(eps) * _norms(work)
        n = math.prod(work.shape[1:])
        with skip_finite_checks():
            z = _cg(maps, work, b, max_iter, max(tol, 10 * eps))
            done, ratio, passes, dense, best = None, None, 0, "", math.inf
            while True:
                az = _norms(maps.A(z))
                zn = _norms(z)
                ratio = az / zn.clamp_min(torch.finfo(zn.dtype).tiny)
                resolved = az <= goal * zn
                done = resolved | ((az <= floor) & (zn <= small))
                if bool(done.all()):
                    break
                worst = float(torch.where(done, torch.zeros_like(ratio), ratio).max())
                if not math.isfinite(worst):
                    break
                todo = (~done).nonzero().flatten()
                can_dense = not dense and n <= dense_limit
                if passes < _PASSES and worst <= 0.1 * best and not (can_dense and passes > 0):
                    # refinement (one short pass before the dense solve, when there is one)
                    best, passes = worst, passes + 1
                    z = z.clone()
                    z[todo] = _lsqr(maps, z[todo], min(max_iter, 100) if can_dense else max_iter, goal,
                                    floor[todo], small[todo])
                elif can_dense:  # a slow or stalled solve: the dense projector
                    try:
                        basis = _row_basis(maps, work[:1], b[:1])
                    except (RuntimeError, torch.linalg.LinAlgError) as exc:
                        dense = f"; the dense solve failed ({type(exc).__name__}: {exc})"
                        break
                    dense = f"; the dense solve ({n} unknowns, rank {basis.shape[1]}) did not either"
                    z = z.clone()
                    z[todo] = _dense(maps, _dense(maps, _dense(maps, z[todo], basis), basis), basis)
                else:
                    if not dense:
                        dense = (f"; no dense solve: {n} unknowns per item, above dense_limit = "
                                 f"{dense_limit}")
                    break
        if not bool(done.all()):
            item = int(torch.where(done, torch.zeros_like(ratio), torch.nan_to_num(ratio, nan=math.inf))
                       .argmax())
            low = f", computed in {work.dtype} ({reason})" if reason else ""
            m = math.prod(b.shape[1:]) * (2 if b.is_complex() and not work.is_complex() else 1)
            if m >= (n * 2 if work.is_complex() else n):
                dense += (f"; note: A has {m} real measurements per item for {n} "
                          f"{'complex' if work.is_complex() else 'real'} unknowns, so it may be injective "
                          f"(kernel {{0}}, nothing to project onto): leave out the kernel test for it")
            raise RuntimeError(
                f"kernel projection for {name} did not converge{low}: ||A z0|| / ||z0|| = "
                f"{float(ratio[item]):.3g} for batch item {item}, above the target {goal:.3g}, after "
                f"{passes + 1} solves of at most max_iter = {max_iter} iterations{dense}; raise max_iter "
                f"or dense_limit")
        if reason is not None:
            warnings.warn(f"kernel projection for {name} computed in {work.dtype}: {reason}; "
                          f"||A z0|| / ||z0|| reached {float(ratio.max()):.3g} (target {goal:.3g})",
                          RuntimeWarning, stacklevel=3)
        return _Projection(z, ratio, resolved, goal, maps, name)


def kernel_projection(d: Tensor, op: object, max_iter: int = 500, tol: float = 1e-9,
                      target: float = 1e-6, dense_limit: int = DENSE_LIMIT) -> Tensor:
    """Orthogonal projection ``d - A^+ A d`` of ``d`` ``(B, C, H, W)`` onto ``ker A``, within
    the real images when ``d`` is real (so that ``x + z0`` stays a real image) and within the
    complex images otherwise; returned in the dtype of ``d`` (any batched shape ``(B, ...)``
    that ``op`` accepts works).

    Method, in float64 (complex128) whatever the dtype of ``d``:

    1. normal equations: conjugate gradients on ``A A^* u = A d`` in measurement space (real
       inner product; ``A^*`` followed by the real part for real ``d``), ``z0 = d - A^* u``,
       stopped when ``||A A^* u - A d|| <= tol ||A d||`` or after ``max_iter`` iterations;
    2. iterative refinement while ``||A z0|| > target ||z0||`` (rounding lost in step 1): ``z0``
       is projected again by LSQR (its CGLS form, which updates ``z0`` and ``A z0`` directly),
       at most ``max_iter`` iterations a pass and 10 passes, while each pass gains a factor 10
       (a single pass of at most 100 iterations when step 3 is available);
    3. for operators too ill-conditioned for step 2 (a Radon transform: singular values down
       to ``1e-5 ||A||``), when an item has at most ``dense_limit`` unknowns (``C H W``): the
       dense projector ``I - V V^*``, ``V`` a basis (orthonormal up to rounding) of the range of ``A^*``
       from the eigendecomposition of the smaller Gram matrix (``A^* A`` or ``A A^*``, built by
       applying the operator to unit vectors; eigenvalues below ``1e-13`` of the largest count
       as zero), applied three times (refinement); an item of 64 x 64 unknowns takes seconds.

    Criterion: an item is accepted when ``||A z0|| <= target min(1, ||A||) ||z0||`` (``||A||``
    from ``op.norm()`` or a power iteration, :func:`~stablerecon.operators.as_linear_operator`;
    the factor keeps the test meaningful for operators of small norm), or when the kernel part is
    numerically zero: ``d`` lies in the range of ``A^*`` up to rounding (then ``||A z0|| / ||z0||``
    is a ratio of rounding errors), and the criterion is taken relative to the input instead,
    ``||z0|| <= sqrt(eps) ||d||`` and ``||A z0|| <= 1e3 eps ||A|| ||d||`` (``eps`` of the working precision);
    such a ``z0`` is ``0`` up to rounding, and :func:`kernel_split` refuses it.

    Needs only ``op.A`` and ``op.A_adjoint``. An operator that does not work in float64 (it
    raises, or answers in single precision) is solved in its single precision instead, with the
    same criterion and a ``RuntimeWarning`` stating the ratio reached.

    Raises ``RuntimeError`` naming the operator's class and the ratio reached when some item
    is not accepted, ``ValueError`` naming the argument for a bad ``d`` (wrong shape or dtype,
    NaN or Inf) or bad numbers, and ``TypeError`` for an object that is not an operator.
    """
    return _project(d, op, max_iter, tol, target, dense_limit).z0.to(d.dtype)


@dataclass
class KernelSplit:
    """A detail ``d`` split into its kernel part ``z0`` (``A z0 ~ 0``) and range part
    ``d - z0``, and ``z = z0 + t (d - z0)`` with ``||A z|| / ||z|| = ratio`` (``z = z0`` for
    ratio 0). Ratios are per item, ``(B,)``."""

    z: Tensor
    z0: Tensor
    kernel_ratio: Tensor
    ratio: Tensor


def kernel_split(d: Tensor, op: object, ratio: float = 0.0, max_iter: int = 500,
                 tol: float = 1e-9, target: float = 1e-6, dense_limit: int = DENSE_LIMIT) -> KernelSplit:
    """Split a detail ``d`` ``(B, C, H, W)`` against the kernel of ``op`` and build the
    near-kernel perturbation ``z`` with ``||A z|| / ||z|| = ratio``.

    ``z0 = d - A^+ A d`` (:func:`kernel_projection`, within the real images when ``d``
    is real, so that ``x + z0`` stays a real image; ``max_iter``, ``tol``, ``target`` and
    ``dense_limit`` are passed on, and an error names the operator when the projection does not
    reach ``||A z0|| <= target ||z0||``); the range part ``d - z0`` is orthogonal to it, so
    ``z = z0 + t (d - z0)`` has ``||A z|| = t ||A d||`` and
    ``||z||^2 = ||z0||^2 + t^2 ||d - z0||^2``, which fixes ``t``. Computed in float64
    (complex128); ``z`` and ``z0`` come back in the dtype of ``d``, ``kernel_ratio`` and
    ``ratio`` are measured (in float64) on the returned ``z0`` and ``z``, so for float32 input
    they include its rounding (about ``1e-7 ||A||``).

    Raises ``ValueError`` when ``d`` has no component in the kernel that float64 resolves
    (``z0`` numerically zero, see :func:`kernel_projection`) or ``ratio`` is not reachable.
    """
    if not isinstance(d, Tensor) or d.ndim < 2:
        raise ValueError("argument 'd' must be a (B, C, H, W) tensor")
    if not (_real(ratio) and math.isfinite(ratio) and ratio >= 0):
        raise ValueError(f"argument 'ratio' must be a finite number >= 0, got {ratio!r}")
    with torch.no_grad():
        proj = _project(d, op, max_iter, tol, target, dense_limit)
        z0w, maps = proj.z0, proj.maps
        dw = d.to(z0w.dtype)
        z0_norm, d_norm = _norms(z0w), _norms(dw)
        empty = (z0_norm <= 1e-12 * d_norm.clamp_min(1e-30)) | ~proj.resolved
        if bool(empty.any()):
            item = int(empty.nonzero()[0])
            raise ValueError(f"argument 'd' has no component in the kernel of {proj.name} (batch item "
                             f"{item}: ||z0|| = {float(z0_norm[item] / d_norm[item]):.3g} ||d||, at the "
                             f"rounding level of d)")
        rest = dw - z0w
        a_d, rest_norm = _norms(maps.A(dw)), _norms(rest)
        if ratio > 0:
            top = a_d / rest_norm.clamp_min(1e-30)
            if bool((ratio >= top).any()):
                raise ValueError(f"argument 'ratio' = {ratio} is not reachable: the range part of 'd' "
                                 f"has ||A r|| / ||r|| = {float(top.min()):.3g}")
            t = ratio * z0_norm / torch.sqrt(a_d**2 - ratio**2 * rest_norm**2)
            zw = z0w + _view(t, rest) * rest
        else:
            zw = z0w
        z0, z = z0w.to(d.dtype), zw.to(d.dtype)
        z0w, zw = z0.to(dw.dtype), z.to(dw.dtype)  # the ratios of what is returned
        out = d.real.dtype if d.is_complex() else d.dtype
        return KernelSplit(z, z0, (_norms(maps.A(z0w)) / _norms(z0w)).to(out),
                           (_norms(maps.A(zw)) / _norms(zw)).to(out))
