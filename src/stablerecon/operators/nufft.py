r"""Non-Cartesian MRI: the non-uniform Fourier transform (NUFFT) on radial, spiral or any trajectory.

- :class:`NonCartesianFourier`: ``y_c = F_omega (S_c x)``, single coil (no maps) or SENSE with coil
  sensitivity maps, its exact adjoint, the density-compensated gridding reconstruction as
  ``A_dagger`` and (density-weighted) CG as :meth:`NonCartesianFourier.cg`;
- :func:`density_compensation`: Pipe-Menon iterative density compensation, in Nyquist cells;
- :func:`nudft_matrix`: the dense non-uniform DFT, the reference the tests check against.

Trajectories (``omega``, shape ``(2, K)``, radians per pixel in ``[-pi, pi)``) come from
:mod:`stablerecon.operators.trajectories`.

Which library computes the NUFFT (measured by ``benchmarks/nufft_choice.py``, 2 CPU threads):
FINUFFT (through pytorch-finufft) is about 10x faster than torchkbnufft's table interpolation
(6x faster than its sparse-matrix interpolation) at 128x128 and 256x256 with 100-400 radial
spokes, 1 and 8 coils, and reaches the NUDFT to ``~1e-12`` in double precision against
torchkbnufft's ``~7e-4`` (table with ``2^10`` entries per unit; ``~5e-5`` with ``2^14``, ``~7e-6``
with the sparse matrix). Both are exact transposes of themselves (float64 dot test ``< 1e-17``). So
``backend="finufft"`` is the default; ``backend="torchkbnufft"`` is pure torch and runs on any
device (FINUFFT needs the ``cufinufft`` package for CUDA tensors).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from typing import Literal

import torch

from ..validation import boolean, choice, positive_float, positive_int
from .base import LinearOperator
from .cg import conjugate_gradient
from .multicoil import check_maps
from .tensors import (
    as_hw,
    check_tensor,
    complex_dtype_of,
    real_dtype_of,
    real_float_tensor,
    skip_finite_checks,
)
from .trajectories import check_trajectory

__all__ = ["NonCartesianFourier", "density_compensation", "nudft_matrix", "check_dcf", "BACKENDS"]

Backend = Literal["finufft", "torchkbnufft"]
BACKENDS: tuple[str, ...] = ("finufft", "torchkbnufft")

#: Smallest tolerance FINUFFT honours in single precision (machine epsilon is ~1.2e-7).
_SINGLE_EPS = 1e-6
#: torchkbnufft settings: 6 x 6 Kaiser-Bessel neighbours on a twice oversampled grid (the
#: library's defaults) and a finer interpolation table than its default 2^10 (16x smaller
#: table-lookup error, same speed; see benchmarks/nufft_choice.py).
_KB_NUMPOINTS = 6
_KB_TABLE_OVERSAMP = 2**14
_KB_SETTINGS = {"numpoints": _KB_NUMPOINTS, "table_oversamp": _KB_TABLE_OVERSAMP}


def _image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    return as_hw(size, "size")


def nudft_matrix(traj: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    r"""The dense non-uniform DFT ``E[k, n] = exp(-i omega_k . (n - c)) / sqrt(H W)`` (small sizes only).

    ``n = (row, column)`` runs over the ``H x W`` pixels in row-major order and
    ``c = (H // 2, W // 2)`` is the image origin, the centring of
    :class:`~stablerecon.operators.SubsampledFourier`: on the Cartesian frequencies
    ``omega = 2 pi (k - c) / (H, W)`` this is its unitary centred DFT. Complex128, shape
    ``(K, H W)``; computed by direct summation, independently of any NUFFT.
    """
    traj = check_trajectory(traj, "traj")
    h, w = _image_size(size)
    if traj.shape[1] * h * w > 1 << 26:
        raise ValueError(f"nudft_matrix: {traj.shape[1]} x {h * w} entries are too many for a dense matrix")
    rows = torch.arange(h, dtype=torch.float64) - h // 2
    cols = torch.arange(w, dtype=torch.float64) - w // 2
    phase = traj[0][:, None, None] * rows[None, :, None] + traj[1][:, None, None] * cols[None, None, :]
    return torch.polar(torch.full_like(phase, 1.0 / math.sqrt(h * w)), -phase).reshape(traj.shape[1], h * w)


def check_dcf(dcf: object, samples: int, name: str = "dcf") -> torch.Tensor:
    """Validate density-compensation weights: finite, non-negative, not all zero, shape ``(K,)``.

    NumPy arrays are converted; returns a detached float64 tensor. Raises ``TypeError`` /
    ``ValueError`` naming ``name``.
    """
    dcf = real_float_tensor(dcf, name, f"({samples},)")
    if tuple(dcf.shape) != (samples,):
        raise ValueError(f"argument '{name}' must have shape ({samples},), one weight per trajectory sample, "
                         f"got {tuple(dcf.shape)}")
    if not bool(torch.isfinite(dcf).all()):
        raise ValueError(f"argument '{name}' contains NaN or Inf values")
    if bool((dcf < 0).any()):
        raise ValueError(f"argument '{name}' must be non-negative, got a minimum of {float(dcf.min()):.6g}")
    if not bool((dcf > 0).any()):
        raise ValueError(f"argument '{name}' is all zero")
    return dcf.detach().to(torch.float64)


def density_compensation(traj: torch.Tensor, size: int | tuple[int, int],
                         iterations: int = 10) -> torch.Tensor:
    r"""Pipe-Menon iterative density compensation of a trajectory, in Nyquist cells.

    Pipe and Menon's fixed-point iteration ``w <- w / |C * w|`` (``C * w`` the weights gridded
    with the Kaiser-Bessel kernel and interpolated back to the samples) converges to weights
    proportional to the k-space area each sample stands for; it is run by torchkbnufft's
    ``calc_density_compensation_function`` (``iterations`` steps, 6 x 6 kernel on the twice
    oversampled grid). The proportionality constant depends only on the kernel, so it is
    calibrated on the fully sampled Cartesian grid of the same image size, whose samples each
    stand for exactly one Nyquist cell ``(2 pi / H)(2 pi / W)``: the result is in Nyquist cells
    (``1`` = one Cartesian sample), the unit :class:`NonCartesianFourier` expects, and for a
    radial trajectory it agrees with the analytic ramp :func:`~stablerecon.operators.trajectories.radial_dcf`
    away from the rim.

    Parameters
    ----------
    traj:
        Trajectory ``(2, K)`` in ``[-pi, pi)`` (see
        :func:`~stablerecon.operators.trajectories.check_trajectory`).
    size:
        Image size ``N`` or ``(H, W)``.
    iterations:
        Pipe-Menon iterations (default 10).

    Returns
    -------
    torch.Tensor
        Non-negative float64 weights of shape ``(K,)`` on the trajectory's device.

    References
    ----------
    Pipe, Menon, "Sampling density compensation in MRI: rationale and an iterative numerical
    solution", Magn. Reson. Med. 41 (1999).
    """
    import torchkbnufft as tkbn

    traj = check_trajectory(traj, "traj")
    h, w = _image_size(size)
    iterations = positive_int(iterations, "iterations", where="density_compensation")
    weights = tkbn.calc_density_compensation_function(traj, (h, w), num_iterations=iterations,
                                                      **_KB_SETTINGS)
    return (weights.reshape(-1).real / _pipe_menon_unit(h, w)).to(torch.float64)


@functools.lru_cache(maxsize=32)
def _pipe_menon_unit(h: int, w: int) -> float:
    """Pipe-Menon weight of a sample of the full Cartesian ``H x W`` grid (one Nyquist cell each)."""
    import torchkbnufft as tkbn

    rows = 2.0 * math.pi * (torch.arange(h, dtype=torch.float64) - h // 2) / h
    cols = 2.0 * math.pi * (torch.arange(w, dtype=torch.float64) - w // 2) / w
    cartesian = torch.stack(torch.meshgrid(rows, cols, indexing="ij")).reshape(2, -1)
    # Every sample of the periodic grid sees the same neighbourhood: one iteration is the fixed point.
    unit = tkbn.calc_density_compensation_function(cartesian, (h, w), num_iterations=1, **_KB_SETTINGS)
    return float(unit.real.mean())


def _cufinufft_available() -> bool:
    return importlib.util.find_spec("cufinufft") is not None


class NonCartesianFourier(LinearOperator):
    r"""Non-Cartesian MRI: ``y_c = F_omega (S_c x)``, the non-uniform DFT of the (coil-weighted) image.

    ``F_omega`` evaluates the Fourier transform of the ``H x W`` image at the ``K`` trajectory
    frequencies ``omega_k`` (radians per pixel):

    .. math::

        (F_\omega z)_k = \frac{1}{\sqrt{HW}} \sum_{n} z[n]\, e^{-i\,\omega_k \cdot (n - c)},
        \qquad c = (\lfloor H/2 \rfloor, \lfloor W/2 \rfloor),

    with ``omega_k[0]`` along the rows and ``omega_k[1]`` along the columns: the centring and
    the unitary scaling of :class:`~stablerecon.operators.SubsampledFourier`, which this operator
    equals on the Cartesian frequencies ``omega = 2 pi (k - c) / (H, W)``. Without ``maps`` there
    is one coil (``S = 1``); with maps ``S_c`` of shape ``(Ncoils, H, W)`` it is the SENSE model
    of :class:`~stablerecon.operators.SubsampledMultiCoilFourier` with ``F_omega`` in place of the
    Cartesian ``P_Omega F``. The exact adjoint is ``A^* y = sum_c conj(S_c) F_omega^* y_c`` with
    ``(F_omega^* v)[n] = (HW)^{-1/2} sum_k v_k exp(+i omega_k . (n - c))``.

    **Precision.** ``F_omega`` is computed by a NUFFT (``backend``), not by the sum above: the
    image is scaled, zero-padded to a twice oversampled grid and FFT-ed, and the grid values are
    interpolated to ``omega_k`` with a compact kernel. The adjoint runs the same steps in
    reverse (spreading with the same kernel values, inverse FFT, crop, same scaling): FINUFFT's
    type-1 transform with ``isign=+1`` against its type-2 transform with ``isign=-1`` (same
    points, tolerance and upsampling factor, pinned to 2), torchkbnufft's table spreading
    against its table interpolation (same table entries). So ``A`` and ``A_adjoint`` are
    transposes of each other *as computed*: the dot-product test holds to rounding (``~1e-17``
    in float64, ``~1e-9`` in float32) and ``A_adjoint`` equals the conjugate transpose of
    ``to_matrix()``. The distance to the true NUDFT is the kernel's approximation error: FINUFFT
    widens its "exponential of semicircle" kernel until the requested tolerance ``eps`` is met
    (measured relative error ``~1e-12`` in float64 for the default ``eps=1e-12``; ``~1e-5`` in
    float32, where ``max(eps, 1e-6)`` is requested because single precision cannot do better);
    torchkbnufft's 6 x 6 Kaiser-Bessel kernel read from a table by nearest entry stays at
    ``~5e-5`` in either precision.

    **A_dagger** is the gridding reconstruction: the density-compensated adjoint
    ``x = A^* (w .* y)``, divided for multi-coil data by ``sum_c |S_c|^2`` (zero where no coil
    sees the pixel). The weights ``w`` (``dcf``) are in Nyquist cells: ``w_k`` is the k-space area
    sample ``k`` stands for divided by ``(2 pi / H)(2 pi / W)``, so that ``A^* W A ~ I`` on images
    whose spectrum lies in the sampled region and ``A_dagger(A x) ~ x`` for smooth images (about
    2-3% relative error for a smooth phantom sampled by a Nyquist radial or spiral trajectory).
    On the full Cartesian grid ``w = 1`` and ``A_dagger`` is the exact inverse. By default they
    are Pipe-Menon weights (:func:`density_compensation`); pass analytic ones (e.g.
    :func:`~stablerecon.operators.trajectories.radial_dcf`) to skip that computation.
    :meth:`cg` solves the (density-weighted) least-squares problem instead.

    Shapes: images ``(B, 1, H, W)`` real or complex; measurements ``(B, Ncoils, K)`` complex
    (``Ncoils = 1`` without maps), in trajectory order. The adjoint and ``A_dagger`` return
    complex images. Constants (trajectory, weights, maps, kernel tables) are buffers kept in
    double precision: ``.to(device)`` moves them and float64/complex128 inputs are computed in
    double precision throughout.

    Parameters
    ----------
    traj:
        Trajectory ``omega`` of shape ``(2, K)``, radians per pixel in ``[-pi, pi)`` (see
        :mod:`~stablerecon.operators.trajectories`).
    size:
        Image size ``N`` or ``(H, W)``.
    maps:
        Coil sensitivity maps ``(Ncoils, H, W)``, real or complex, finite, not all zero (e.g.
        :func:`~stablerecon.operators.coils.birdcage_maps`), or ``None`` for a single coil.
    dcf:
        Density-compensation weights ``(K,)`` in Nyquist cells (non-negative, finite), or
        ``None`` (default) for Pipe-Menon weights with ``dcf_iter`` iterations.
    backend:
        ``"finufft"`` (default; FINUFFT on the CPU, cuFINUFFT for CUDA tensors, through
        pytorch-finufft) or ``"torchkbnufft"`` (pure torch, any device).
    eps:
        Requested relative precision of FINUFFT in double precision (default ``1e-12``; single
        precision uses ``max(eps, 1e-6)``). Ignored by torchkbnufft.
    dcf_iter:
        Pipe-Menon iterations when ``dcf`` is ``None`` (default 10).

    Examples
    --------
    >>> import torch
    >>> from stablerecon.operators import trajectories
    >>> from stablerecon.operators.nufft import NonCartesianFourier
    >>> traj = trajectories.radial(32, spokes=trajectories.nyquist_spokes(32))
    >>> op = NonCartesianFourier(traj, 32)
    >>> y = op.A(torch.rand(2, 1, 32, 32))
    >>> y.shape, y.dtype
    (torch.Size([2, 1, 3264]), torch.complex64)
    >>> op.adjointness_error(torch.complex128) < 1e-12
    True

    References
    ----------
    Fessler, Sutton, "Nonuniform fast Fourier transforms using min-max interpolation", IEEE
    Trans. Signal Process. 51 (2003); Barnett, Magland, af Klinteberg, "A parallel nonuniform
    fast Fourier transform library based on an 'exponential of semicircle' kernel", SIAM J. Sci.
    Comput. 41 (2019) (FINUFFT); Muckley, Stern, Murrell, Knoll, "TorchKbNufft: a high-level,
    hardware-agnostic non-uniform fast Fourier transform", ISMRM Workshop on Data Sampling and
    Image Reconstruction (2020); Jackson, Meyer, Nishimura, Macovski, "Selection of a
    convolution function for Fourier inversion using gridding", IEEE Trans. Med. Imaging 10
    (1991); Pruessmann, Weiger, Boernert, Boesiger, "Advances in sensitivity encoding with
    arbitrary k-space trajectories", Magn. Reson. Med. 46 (2001).
    """

    adjoint_backward = True

    out_complex = True

    def __init__(self, traj: torch.Tensor, size: int | tuple[int, int], maps: torch.Tensor | None = None,
                 dcf: torch.Tensor | None = None, *, backend: Backend = "finufft", eps: float = 1e-12,
                 dcf_iter: int = 10) -> None:
        where = "NonCartesianFourier"
        traj = check_trajectory(traj, "traj").cpu()
        h, w = _image_size(size)
        k = int(traj.shape[1])
        backend = choice(backend, "backend", BACKENDS, where=where)  # type: ignore[assignment]
        eps = positive_float(eps, "eps", where=where)
        if eps >= 1.0:
            raise ValueError(f"{where}: argument 'eps' must be a relative tolerance in (0, 1), got {eps!r}")
        dcf_iter = positive_int(dcf_iter, "dcf_iter", where=where)
        if maps is not None:
            maps = check_maps(maps, "maps").detach().cpu()
            if tuple(maps.shape[-2:]) != (h, w):
                raise ValueError(f"argument 'maps' must have shape (Ncoils, {h}, {w}) to match 'size', "
                                 f"got {tuple(maps.shape)}")
        coils = 1 if maps is None else int(maps.shape[0])
        super().__init__((1, h, w), (coils, k))
        self.backend: str = backend
        self.eps = eps
        self.register_buffer("traj", traj, persistent=False)
        if maps is not None:
            maps = maps.to(torch.complex128)
            sens = maps.abs().square().sum(dim=0)
            inv = torch.where(sens > 0, 1.0 / torch.where(sens > 0, sens, torch.ones_like(sens)),
                              torch.zeros_like(sens))
            self.register_buffer("maps", maps, persistent=False)
            self.register_buffer("inv_sensitivity", inv, persistent=False)
        else:
            self.register_buffer("maps", None, persistent=False)
            self.register_buffer("inv_sensitivity", None, persistent=False)
        if backend == "torchkbnufft":
            self._init_kb(h, w)
        if dcf is None:
            dcf = density_compensation(traj, (h, w), iterations=dcf_iter)
        else:
            dcf = check_dcf(dcf, k, "dcf").cpu()
        self.register_buffer("dcf", dcf, persistent=False)

    # ------------------------------------------------------------------ dtype handling
    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # Keep the real float64 master buffers (trajectory, weights, kernel settings) in double
        # precision under Module.to(dtype) / .float(): only their device follows (the complex
        # ones are kept by LinearOperator._apply).
        doubles = {name: b for name, b in self._buffers.items() if b is not None and b.dtype == torch.float64}
        out = super()._apply(fn, recurse)
        device = fn(torch.empty(0)).device
        for name, buf in doubles.items():
            self._buffers[name] = buf.to(device)
        return out

    # ------------------------------------------------------------------ properties
    @property
    def coils(self) -> int:
        """Number of receive coils (1 without maps)."""
        return int(self.out_shape[0])

    @property
    def samples(self) -> int:
        """Number of trajectory samples ``K``."""
        return int(self.out_shape[1])

    # ------------------------------------------------------------------ the NUFFT pair
    def _init_kb(self, h: int, w: int) -> None:
        import torchkbnufft as tkbn

        kb = tkbn.KbNufft(im_size=(h, w), dtype=torch.complex128, **_KB_SETTINGS)
        for name in ("table_0", "table_1", "scaling_coef", "im_size", "grid_size", "n_shift", "numpoints",
                     "offsets", "table_oversamp"):
            self.register_buffer(f"kb_{name}", getattr(kb, name).detach().clone(), persistent=False)

    def _kb_args(self, cdt: torch.dtype, device: torch.device) -> dict:
        rdt = real_dtype_of(cdt)
        return {
            "scaling_coef": self._buffer_as("kb_scaling_coef", cdt, device),
            "im_size": self.kb_im_size,
            "grid_size": self.kb_grid_size,
            "omega": self._buffer_as("traj", rdt, device),
            "tables": [self._buffer_as(f"kb_table_{d}", cdt, device) for d in (0, 1)],
            "n_shift": self._buffer_as("kb_n_shift", rdt, device),
            "numpoints": self.kb_numpoints,
            "table_oversamp": self.kb_table_oversamp,
            "offsets": self.kb_offsets,
        }

    def _finufft_kwargs(self, cdt: torch.dtype, device: torch.device) -> dict:
        if device.type != "cpu" and not _cufinufft_available():
            raise RuntimeError(f"{self.name}: backend='finufft' needs the 'cufinufft' package for "
                               f"{device.type} tensors; install it or use backend='torchkbnufft'")
        eps = self.eps if cdt == torch.complex128 else max(self.eps, _SINGLE_EPS)
        # upsampfac=2 pinned: the forward (type 2) and adjoint (type 1) transforms then use the
        # same kernel, whatever FINUFFT's automatic choice would be for each.
        kwargs: dict = {"eps": eps, "modeord": 0, "upsampfac": 2.0}
        if device.type == "cpu":
            kwargs["nthreads"] = torch.get_num_threads()
        return kwargs

    def _nufft(self, z: torch.Tensor) -> torch.Tensor:
        """``F_omega`` on complex coil images ``(B, C, H, W)`` -> ``(B, C, K)``."""
        z = z.resolve_conj().resolve_neg().contiguous()
        scale = 1.0 / math.sqrt(self.in_shape[-2] * self.in_shape[-1])
        if self.backend == "finufft":
            from pytorch_finufft.functional import finufft_type2

            points = self._buffer_as("traj", real_dtype_of(z.dtype), z.device)
            out = finufft_type2(points, z, isign=-1, **self._finufft_kwargs(z.dtype, z.device))
        else:
            import torchkbnufft.functional as tkbnF

            out = tkbnF.kb_table_nufft(z, **self._kb_args(z.dtype, z.device))
        return out * scale

    def _nufft_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``F_omega^*`` on complex samples ``(B, C, K)`` -> ``(B, C, H, W)``."""
        y = y.resolve_conj().resolve_neg().contiguous()
        h, w = self.in_shape[-2], self.in_shape[-1]
        scale = 1.0 / math.sqrt(h * w)
        if self.backend == "finufft":
            from pytorch_finufft.functional import finufft_type1

            points = self._buffer_as("traj", real_dtype_of(y.dtype), y.device)
            out = finufft_type1(points, y, (h, w), isign=1, **self._finufft_kwargs(y.dtype, y.device))
        else:
            import torchkbnufft.functional as tkbnF

            out = tkbnF.kb_table_nufft_adjoint(y, **self._kb_args(y.dtype, y.device))
        return out * scale

    # ------------------------------------------------------------------ operator
    def _maps_like(self, t: torch.Tensor) -> torch.Tensor:
        return self._buffer_as("maps", complex_dtype_of(t.dtype), t.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.to(complex_dtype_of(x.dtype))
        if self.maps is not None:
            z = z * self._maps_like(z)  # (B, 1, H, W) * (C, H, W) -> (B, C, H, W)
        return self._nufft(z)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        z = self._nufft_adjoint(y.to(complex_dtype_of(y.dtype)))
        if self.maps is not None:
            z = (self._maps_like(z).conj() * z).sum(dim=1, keepdim=True)
        return z

    def _weighted(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._buffer_as("dcf", real_dtype_of(y.dtype), y.device)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        # Public A_adjoint so that gradients flow by the exact adjoint (y was validated by A_dagger).
        with skip_finite_checks():
            x = self.A_adjoint(self._weighted(y))
        if self.maps is not None:
            x = x * self._buffer_as("inv_sensitivity", real_dtype_of(x.dtype), x.device)
        return x

    # ------------------------------------------------------------------ public helpers
    def gridding(self, y: torch.Tensor) -> torch.Tensor:
        """The gridding reconstruction ``A_dagger(y)`` (density-compensated, coil-combined adjoint)."""
        return self.A_dagger(y)

    def coil_images(self, y: torch.Tensor) -> torch.Tensor:
        """Density-compensated coil images ``F_omega^* (w .* y_c)``: ``(B, Ncoils, K) -> (B, Ncoils, H, W)``.

        ``rss(op.coil_images(y))`` (:func:`~stablerecon.operators.rss`) is the root-sum-of-squares
        gridding reconstruction.
        """
        check_tensor(y, "y", self.out_shape, "any", where=f"{self.name}.coil_images")
        return self._nufft_adjoint(self._weighted(y.to(complex_dtype_of(y.dtype))))

    def cg(self, y: torch.Tensor, max_iter: int = 10, tol: float = 1e-6, eps: float = 0.0,
           weighted: bool = True) -> torch.Tensor:
        r"""Conjugate gradient on the (density-weighted) normal equations.

        Solves ``(A^* W A + eps I) x = A^* W y`` with ``W = diag(dcf)`` (``weighted=True``,
        default: density-weighted least squares, whose normal matrix is close to the identity
        on the sampled band, so that CG converges in a few steps for images whose spectrum lies
        there; its first iterate is a multiple of the gridding reconstruction) or ``W = I``
        (``weighted=False``: plain least squares, slower for radial sampling, whose density
        peaks at the centre). ``max_iter`` steps from
        ``x = 0``, fewer once every item's residual is at most ``tol`` times its right-hand
        side. With coil maps this is non-Cartesian CG-SENSE (Pruessmann et al. 2001).
        Differentiable (a plain torch loop).

        Parameters
        ----------
        y:
            Measurements ``(B, Ncoils, K)``.
        max_iter:
            Maximum number of CG steps (``>= 1``; default 10).
        tol:
            Relative residual at which an item stops (``>= 0``; default ``1e-6``).
        eps:
            Tikhonov weight (``>= 0``; default 0).
        weighted:
            Use the density weights (default) or not.

        Returns
        -------
        torch.Tensor
            Complex images ``(B, 1, H, W)``.
        """
        where = f"{self.name}.cg"
        check_tensor(y, "y", self.out_shape, "any", where=where)
        max_iter = positive_int(max_iter, "max_iter", where=where)
        tol = positive_float(tol, "tol", allow_zero=True, where=where)
        eps = positive_float(eps, "eps", allow_zero=True, where=where)
        weighted = boolean(weighted, "weighted", where=where)
        weigh = self._weighted if weighted else (lambda t: t)
        with skip_finite_checks():
            b = self.A_adjoint(weigh(y.to(complex_dtype_of(y.dtype))))
            return conjugate_gradient(lambda p: self.A_adjoint(weigh(self.A(p))), b, max_iter, tol, eps)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, samples={self.samples}, coils={self.coils}, "
                f"backend={self.backend!r}, eps={self.eps:g}")
