"""Multi-coil Cartesian MRI (SENSE): ``y_c = P_Omega F (S_c x)`` for every receive coil ``c``.

- :class:`SubsampledMultiCoilFourier`: the SENSE forward model, its exact adjoint and CG-SENSE
  (conjugate gradient on the regularised normal equations) as ``A_dagger``;
- :func:`rss`: the root-sum-of-squares coil combination;
- :func:`check_maps`: validation of coil sensitivity maps.

Simulated maps come from :func:`stablerecon.operators.coils.birdcage_maps`; Cartesian line masks
with a calibration region from :func:`stablerecon.operators.masks.cartesian_lines`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..validation import positive_float, positive_int
from .base import LinearOperator
from .cg import conjugate_gradient
from .fourier import SubsampledFourier
from .masks import check_mask
from .tensors import (
    SUPPORTED_DTYPES,
    all_finite,
    check_tensor,
    complex_dtype_of,
    gather_last,
    scatter_last,
    skip_finite_checks,
)

__all__ = ["SubsampledMultiCoilFourier", "rss", "check_maps", "COIL_CHUNK_ELEMENTS"]

COIL_CHUNK_ELEMENTS = 1 << 21
"""Largest number of coil-image values ``B' x Ncoils x H x W`` one pass of ``A`` or ``A^*``
works on (16 MiB in complex64); larger batches run in groups of items. Measured with
``benchmarks/operators.py`` (12 coils, 320 x 320, batch 8): whole-batch temporaries of 78 MB
are fresh ``mmap`` allocations whose page faults cost as much as the FFTs (A + A* 1.9x the bare
batched FFTs in one pass, 0.8x in groups of one item). CPU only: on a GPU the batch runs at once."""


def check_maps(maps: object, name: str = "maps") -> torch.Tensor:
    """Validate coil sensitivity maps: a finite, not all-zero tensor of shape ``(Ncoils, H, W)``.

    Real (float32/float64) and complex (complex64/complex128) maps are accepted, and NumPy
    arrays are converted. Raises ``TypeError``/``ValueError`` naming ``name`` otherwise.
    """
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(maps)
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"argument '{name}' must be a torch.Tensor of shape (Ncoils, H, W), "
                        f"got {type(maps).__name__}")
    if maps.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"argument '{name}' must have dtype float32, float64, complex64 or complex128, "
                        f"got {maps.dtype}")
    if maps.ndim != 3:
        raise ValueError(f"argument '{name}' must have shape (Ncoils, H, W), got {tuple(maps.shape)}")
    if maps.numel() == 0:
        raise ValueError(f"argument '{name}' is empty (shape {tuple(maps.shape)})")
    if not all_finite(maps):
        raise ValueError(f"argument '{name}' contains NaN or Inf values")
    if not bool((maps != 0).any()):
        raise ValueError(f"argument '{name}' is all zero: no coil sees the object")
    return maps


def rss(coil_images: torch.Tensor, dim: int = 1, keepdim: bool = True) -> torch.Tensor:
    r"""Root-sum-of-squares coil combination ``sqrt(sum_c |x_c|^2)`` over the coil axis ``dim``.

    For coil images ``x_c = S_c x`` of maps normalised so that ``sum_c |S_c|^2 = 1`` this is
    ``|x|``; for zero-filled coil images it is the classic magnitude reconstruction.

    Parameters
    ----------
    coil_images:
        Tensor of coil images, typically ``(B, Ncoils, H, W)``, real or complex.
    dim:
        The coil axis (default 1).
    keepdim:
        Keep the coil axis with size 1 (default), so that ``(B, Ncoils, H, W) -> (B, 1, H, W)``.

    Returns
    -------
    torch.Tensor
        Real tensor (float32 for float32/complex64 input, float64 otherwise); differentiable
        (the gradient at a zero magnitude is taken as 0).

    References
    ----------
    Roemer, Edelstein, Hayes, Souza, Mueller, "The NMR phased array", Magn. Reson. Med. 16 (1990).
    """
    if not isinstance(coil_images, torch.Tensor):
        raise TypeError(f"argument 'coil_images' must be a torch.Tensor, got {type(coil_images).__name__}")
    if coil_images.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"argument 'coil_images' must have dtype float32, float64, complex64 or "
                        f"complex128, got {coil_images.dtype}")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -coil_images.ndim <= dim < coil_images.ndim:
        raise ValueError(f"argument 'dim' must be an axis of 'coil_images' (shape "
                         f"{tuple(coil_images.shape)}), got {dim!r}")
    return torch.linalg.vector_norm(coil_images, dim=dim, keepdim=keepdim)


class SubsampledMultiCoilFourier(LinearOperator):
    r"""Multi-coil Cartesian MRI, the SENSE model ``y_c = P_\Omega F (S_c x)``, ``c = 1..Ncoils``.

    ``S_c`` multiplies the image by the sensitivity map of coil ``c``, ``F`` is the unitary
    centred 2-D DFT and ``P_Omega`` keeps the k-space samples where ``mask`` is ``True``, with
    the conventions of :class:`SubsampledFourier` (which this operator applies to the stack of
    coil images). The exact adjoint is ``A^* y = sum_c conj(S_c) F^* P_Omega^T y_c``.

    ``A_dagger`` is CG-SENSE: ``cg_iter`` conjugate-gradient steps (fewer once every residual
    ``||A^* y - (A^* A + eps I) x||`` is below ``cg_tol ||A^* y||``) on the regularised normal
    equations ``(A^* A + eps I) x = A^* y`` from ``x = 0``, written as a plain torch loop so
    that it is differentiable; :meth:`cg_sense` takes other settings per call.

    ``norm()``: when the mask samples all of k-space, ``P^T P = I`` and ``A^* A`` is the
    pixelwise multiplication by ``sum_c |S_c|^2``, so ``||A|| = max_pixels sqrt(sum_c |S_c|^2)``
    (1 for normalised maps); otherwise there is no closed form and power iteration runs.

    Shapes: images ``(B, 1, H, W)`` real or complex; measurements ``(B, Ncoils, m)`` complex,
    ``m = mask.sum()`` samples per coil ordered as ``mask.nonzero()`` (row-major over centred
    k-space). The adjoint and ``A_dagger`` return complex images.

    Parameters
    ----------
    mask:
        Boolean tensor ``(H, W)`` in centred k-space coordinates (e.g.
        :func:`~stablerecon.operators.masks.cartesian_lines`); must sample at least one
        coefficient.
    maps:
        Coil sensitivity maps ``(Ncoils, H, W)``, complex or real, finite, not all zero (e.g.
        :func:`~stablerecon.operators.coils.birdcage_maps`). Kept in double precision.
    eps:
        Tikhonov weight of CG-SENSE (``>= 0``; default ``1e-6``).
    cg_iter:
        Number of conjugate-gradient steps of ``A_dagger`` (default 10).
    cg_tol:
        Relative residual at which CG-SENSE stops early (``>= 0``; default ``1e-6``).

    Examples
    --------
    >>> import torch
    >>> from stablerecon.operators import SubsampledMultiCoilFourier, birdcage_maps, masks
    >>> mask = masks.cartesian_lines(32, rate=0.5, acs=6, seed=0)
    >>> op = SubsampledMultiCoilFourier(mask, birdcage_maps(4, 32))
    >>> y = op.A(torch.rand(2, 1, 32, 32))
    >>> y.shape, y.dtype
    (torch.Size([2, 4, 512]), torch.complex64)
    >>> op.A_dagger(y).shape
    torch.Size([2, 1, 32, 32])

    References
    ----------
    Pruessmann, Weiger, Scheidegger, Boesiger, "SENSE: sensitivity encoding for fast MRI",
    Magn. Reson. Med. 42 (1999); Pruessmann, Weiger, Boernert, Boesiger, "Advances in sensitivity
    encoding with arbitrary k-space trajectories", Magn. Reson. Med. 46 (2001) (CG-SENSE).
    """

    adjoint_backward = True

    out_complex = True

    def __init__(self, mask: torch.Tensor, maps: torch.Tensor, eps: float = 1e-6, cg_iter: int = 10,
                 cg_tol: float = 1e-6) -> None:
        mask = check_mask(mask, "mask").cpu()
        maps = check_maps(maps, "maps").detach().cpu()
        if tuple(maps.shape[-2:]) != tuple(mask.shape):
            raise ValueError(f"argument 'maps' must have shape (Ncoils, {mask.shape[0]}, {mask.shape[1]}) "
                             f"to match 'mask', got {tuple(maps.shape)}")
        where = "SubsampledMultiCoilFourier"
        eps = positive_float(eps, "eps", allow_zero=True, where=where)
        cg_iter = positive_int(cg_iter, "cg_iter", where=where)
        cg_tol = positive_float(cg_tol, "cg_tol", allow_zero=True, where=where)
        n_coils, h, w = maps.shape
        fourier = SubsampledFourier(mask)
        super().__init__((1, h, w), (n_coils, fourier.out_shape[-1]))
        self.fourier = fourier
        self.eps, self.cg_iter, self.cg_tol = eps, cg_iter, cg_tol
        # Real maps keep the real-image path real (half-spectrum FFT in SubsampledFourier).
        self._real_maps = not maps.is_complex()
        self.register_buffer("maps", maps.to(torch.complex128), persistent=False)
        # Complex maps: the centring shifts move onto the maps once, so that each call shifts
        # only the one-channel image: F(S_c x) = fftshift(fft2(ifftshift(S_c) ifftshift(x)))
        # is sampled at the un-shifted FFT positions of the mask (no per-sample phase), and
        # sum_c conj(S_c) F^*(z_c) = fftshift(sum_c conj(ifftshift(S_c)) ifft2(z_c)).
        shifted = torch.fft.ifftshift(self.maps, dim=(-2, -1))
        self.register_buffer("maps_shifted", shifted.contiguous(), persistent=False)
        self.register_buffer("maps_shifted_conj", shifted.conj().resolve_conj(), persistent=False)

    # ------------------------------------------------------------------ properties
    @property
    def coils(self) -> int:
        """Number of receive coils ``Ncoils``."""
        return int(self.maps.shape[0])

    @property
    def mask(self) -> torch.Tensor:
        """The sampling mask ``(H, W)``."""
        return self.fourier.mask

    @property
    def rate(self) -> float:
        """Actual sampling rate ``m / (H W)`` (per coil)."""
        return self.fourier.rate

    # ------------------------------------------------------------------ the maps
    def _maps_like(self, t: torch.Tensor) -> torch.Tensor:
        maps = self._buffer_as("maps", complex_dtype_of(t.dtype), t.device)
        return maps.real if (self._real_maps and not t.is_complex()) else maps

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._maps_like(x)  # (B, 1, H, W) * (Nc, H, W) -> (B, Nc, H, W)

    def _combine(self, z: torch.Tensor) -> torch.Tensor:
        maps = self._buffer_as("maps", complex_dtype_of(z.dtype), z.device)
        return (maps.conj() * z).sum(dim=1, keepdim=True)

    # ------------------------------------------------------------------ operator
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._in_chunks(self._forward_items, x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._in_chunks(self._adjoint_items, y)

    def _in_chunks(self, fn: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor) -> torch.Tensor:
        # On the CPU, batch items in groups whose coil images hold at most COIL_CHUNK_ELEMENTS
        # values: the temporaries stay small enough to be reused from the heap (large ones are
        # fresh mmaps, faulted in page by page) and in cache. GPU allocators cache blocks.
        items = max(1, COIL_CHUNK_ELEMENTS // (self.coils * self.in_shape[-2] * self.in_shape[-1]))
        if t.shape[0] <= items or t.device.type != "cpu":
            return fn(t)
        return torch.cat([fn(part) for part in t.split(items)])

    def _forward_items(self, x: torch.Tensor) -> torch.Tensor:
        if self._real_maps:
            return self.fourier._forward(self._expand(x))
        cdt = complex_dtype_of(x.dtype)
        maps = self._buffer_as("maps_shifted", cdt, x.device)                    # (Nc, H, W)
        z = torch.fft.ifftshift(x, dim=(-2, -1)) * maps                          # (B, Nc, H, W)
        k = torch.fft.fft2(z, norm="ortho").flatten(-2)
        return gather_last(k, self.fourier._buffer_as("indices", torch.long, k.device))

    def _adjoint_items(self, y: torch.Tensor) -> torch.Tensor:
        if self._real_maps:
            return self._combine(self.fourier._adjoint(y))
        cdt = complex_dtype_of(y.dtype)
        h, w = self.in_shape[-2], self.in_shape[-1]
        idx = self.fourier._buffer_as("indices", torch.long, y.device)
        u = torch.fft.ifft2(scatter_last(y.to(cdt), idx, h * w).unflatten(-1, (h, w)), norm="ortho")
        conj_maps = self._buffer_as("maps_shifted_conj", cdt, y.device)
        return torch.fft.fftshift((u * conj_maps).sum(dim=1, keepdim=True), dim=(-2, -1))

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self._cg(y, self.cg_iter, self.cg_tol, self.eps)

    def _exact_norm(self) -> float | None:
        if not bool(self.mask.all()):
            return None
        return float(self.maps.abs().square().sum(dim=0).max().sqrt())

    # ------------------------------------------------------------------ public helpers
    def cg_sense(self, y: torch.Tensor, max_iter: int | None = None, tol: float | None = None,
                 eps: float | None = None) -> torch.Tensor:
        """CG-SENSE: ``x`` approximately solving ``(A^* A + eps I) x = A^* y``.

        ``max_iter`` conjugate-gradient steps from ``x = 0``, fewer once every item's residual
        is at most ``tol`` times its right-hand side ``||A^* y||``; ``None`` takes the
        operator's ``cg_iter``, ``cg_tol`` and ``eps``. Differentiable (a plain torch loop).

        Parameters
        ----------
        y:
            Measurements ``(B, Ncoils, m)``.

        Returns
        -------
        torch.Tensor
            Complex images ``(B, 1, H, W)``.
        """
        check_tensor(y, "y", self.out_shape, "any", where=f"{self.name}.cg_sense")
        where = f"{self.name}.cg_sense"
        max_iter = self.cg_iter if max_iter is None else positive_int(max_iter, "max_iter", where=where)
        tol = self.cg_tol if tol is None else positive_float(tol, "tol", allow_zero=True, where=where)
        eps = self.eps if eps is None else positive_float(eps, "eps", allow_zero=True, where=where)
        return self._cg(y, max_iter, tol, eps)

    def _cg(self, y: torch.Tensor, max_iter: int, tol: float, eps: float) -> torch.Tensor:
        # Public A / A_adjoint so that a traced call is differentiated by the exact adjoint;
        # y was validated once, so the inner loop skips the NaN/Inf scans.
        with skip_finite_checks():
            return conjugate_gradient(lambda p: self.A_adjoint(self.A(p)), self.A_adjoint(y), max_iter, tol,
                                      eps)

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        """Coil images ``S_c x``: ``(B, 1, H, W) -> (B, Ncoils, H, W)`` (real for real ``x`` and maps)."""
        check_tensor(x, "x", self.in_shape, "any", where=f"{self.name}.expand")
        return self._expand(x)

    def combine(self, coil_images: torch.Tensor) -> torch.Tensor:
        """Sensitivity-weighted coil combination ``sum_c conj(S_c) x_c`` (the adjoint of :meth:`expand`).

        ``(B, Ncoils, H, W) -> (B, 1, H, W)`` complex; ``combine(expand(x)) = x`` for maps with
        ``sum_c |S_c|^2 = 1``.
        """
        check_tensor(coil_images, "coil_images", self.maps.shape, "any", where=f"{self.name}.combine")
        return self._combine(coil_images)

    def coil_images(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled coil images ``F^* P_Omega^T y_c``: ``(B, Ncoils, m) -> (B, Ncoils, H, W)`` complex.

        ``rss(op.coil_images(y))`` is the root-sum-of-squares magnitude reconstruction.
        """
        check_tensor(y, "y", self.out_shape, "any", where=f"{self.name}.coil_images")
        return self.fourier._adjoint(y)

    def kspace(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled centred k-space ``(B, Ncoils, H, W)`` of measurements ``y`` (for display)."""
        check_tensor(y, "y", self.out_shape, "any", where=f"{self.name}.kspace")
        return self.fourier.kspace(y)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, coils={self.coils}, rate={self.rate:.4f}, eps={self.eps:g}, "
                f"cg_iter={self.cg_iter}, cg_tol={self.cg_tol:g}")
