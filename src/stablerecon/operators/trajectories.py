r"""Non-Cartesian k-space trajectories for :class:`~stablerecon.operators.nufft.NonCartesianFourier`.

A trajectory is a float64 tensor ``omega`` of shape ``(2, K)``: the ``K`` sampled spatial
frequencies in radians per pixel, in ``[-pi, pi)`` (the convention of torchkbnufft and FINUFFT).
Row 0 is the frequency along the image rows (the vertical axis ``H``, "``k_y``"), row 1 along
the columns (``W``, "``k_x``"). A measurement at ``omega_k`` is the Fourier sum
``sum_n x[n] exp(-i omega_k . (n - c))`` with the origin ``c = (H // 2, W // 2)``, so the
Cartesian frequencies of the centred DFT of :class:`~stablerecon.operators.SubsampledFourier` are
``omega = 2 pi (k - c) / (H, W)``, and the Nyquist cell (the area of k-space one Cartesian
sample stands for) is ``(2 pi / H) (2 pi / W)``.

- :func:`radial`: straight spokes through the centre (uniform or golden-angle ordered);
- :func:`radial_dcf`: their analytic density compensation (the |k| ramp, in Nyquist cells);
- :func:`spiral`: Archimedean spiral interleaves sampled at constant linear velocity;
- :func:`check_trajectory`: validation of a user trajectory.

Both generators cover the disk ``|omega| < pi`` inscribed in the Cartesian k-space square; the
defaults sample it at the Nyquist rate of a ``size x size`` image (twice denser along each
readout, as scanners do), so that a gridding reconstruction of a smooth image is accurate.

>>> radial(16, spokes=26).shape
torch.Size([2, 832])
>>> spiral(16, interleaves=4).shape
torch.Size([2, 412])
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..validation import boolean, positive_int
from .tensors import real_float_tensor

__all__ = ["radial", "radial_dcf", "spiral", "check_trajectory", "nyquist_spokes", "GOLDEN_ANGLE_RADIAL",
           "GOLDEN_ANGLE_SPIRAL"]

_GOLDEN_RATIO = (1.0 + math.sqrt(5.0)) / 2.0
GOLDEN_ANGLE_RADIAL = math.pi / _GOLDEN_RATIO
"""Golden-angle increment of diameter spokes, ``pi / phi ~ 111.246 degrees`` (Winkelmann et al. 2007)."""
GOLDEN_ANGLE_SPIRAL = 2.0 * math.pi * (1.0 - 1.0 / _GOLDEN_RATIO)
"""Golden-angle increment of spiral interleaves, ``2 pi (1 - 1/phi) ~ 137.508 degrees``."""


def nyquist_spokes(size: int) -> int:
    """Number of diameter spokes that samples the disk ``|omega| < pi`` at the Nyquist rate.

    Adjacent spokes are ``pi * pi / spokes`` apart at the rim; the Nyquist spacing of a
    ``size``-pixel field of view is ``2 pi / size``, so ``spokes >= pi * size / 2``.
    """
    size = positive_int(size, "size", where="nyquist_spokes")
    return math.ceil(math.pi * size / 2.0)


def _radial_angles(spokes: int, golden: bool) -> torch.Tensor:
    index = torch.arange(spokes, dtype=torch.float64)
    if golden:
        return torch.remainder(index * GOLDEN_ANGLE_RADIAL, math.pi)
    return index * (math.pi / spokes)


def _radii(samples: int) -> tuple[torch.Tensor, float]:
    """Positions along a spoke: ``(j - samples // 2) * 2 pi / samples``, in ``[-pi, pi)``, 0 included."""
    step = 2.0 * math.pi / samples
    return (torch.arange(samples, dtype=torch.float64) - samples // 2) * step, step


def radial(size: int, spokes: int, samples: int | None = None, golden: bool = False) -> torch.Tensor:
    r"""Radial (projection-reconstruction) trajectory: ``spokes`` diameters through the k-space centre.

    Spoke ``s`` at angle ``theta_s`` (from the column axis ``k_x`` towards the row axis ``k_y``)
    carries ``samples`` equispaced readout points

    .. math::

        \omega_{s,j} = r_j\,(\sin\theta_s, \cos\theta_s), \qquad
        r_j = \frac{2\pi}{\text{samples}}\Big(j - \Big\lfloor\frac{\text{samples}}{2}\Big\rfloor\Big),
        \quad j = 0, \dots, \text{samples} - 1,

    so ``r`` runs from ``-pi`` to ``pi - 2 pi / samples`` (even ``samples``; symmetric about 0 for
    odd) and the centre ``r = 0`` is sampled by every spoke. With uniform ordering
    ``theta_s = pi s / spokes``; with ``golden=True`` ``theta_s = s * 111.246... deg mod 180 deg``
    (the golden angle ``pi / phi``), which fills the angles nearly uniformly for *any* number of
    consecutive spokes (Winkelmann et al. 2007). All angles lie in ``[0, pi)``, so every
    coordinate lies in ``[-pi, pi)``.

    Parameters
    ----------
    size:
        Image size ``N`` (pixels) the trajectory is meant for; sets the default readout length.
    spokes:
        Number of diameters, ``>= 1``. :func:`nyquist_spokes` (``ceil(pi N / 2)``) samples the
        disk at the Nyquist rate; fewer spokes undersample its rim (streak artefacts).
    samples:
        Readout points per spoke, ``>= 2``; default ``2 N`` (readout oversampled twice, spacing
        ``pi / N``, half the Nyquist spacing ``2 pi / N``).
    golden:
        Golden-angle ordering instead of uniformly spaced angles.

    Returns
    -------
    torch.Tensor
        ``omega`` of shape ``(2, spokes * samples)``, float64, radians per pixel, spoke after
        spoke (``omega.reshape(2, spokes, samples)`` recovers the spokes).

    References
    ----------
    Lauterbur, "Image formation by induced local interactions", Nature 242 (1973);
    Block, Uecker, Frahm, "Undersampled radial MRI with multiple coils. Iterative image
    reconstruction using a total variation constraint", Magn. Reson. Med. 57 (2007);
    Winkelmann, Schaeffter, Koehler, Eggers, Doessel, "An optimal radial profile order based on
    the golden ratio for time-resolved MRI", IEEE Trans. Med. Imaging 26 (2007).
    """
    where = "radial"
    size = positive_int(size, "size", where=where)
    spokes = positive_int(spokes, "spokes", where=where)
    samples = 2 * size if samples is None else positive_int(samples, "samples", minimum=2, where=where)
    golden = boolean(golden, "golden", where=where)
    r, _ = _radii(samples)
    theta = _radial_angles(spokes, golden)
    ky = torch.sin(theta)[:, None] * r[None, :]
    kx = torch.cos(theta)[:, None] * r[None, :]
    return torch.stack((ky.reshape(-1), kx.reshape(-1)))


def radial_dcf(size: int | tuple[int, int], spokes: int, samples: int | None = None,
               golden: bool = False) -> torch.Tensor:
    r"""Analytic density compensation of :func:`radial` (the ramp ``|k|``), in Nyquist cells.

    Each sample is weighted by the area of k-space closest to it: a sample at radius
    ``|r| > 0`` on spoke ``s`` stands for the annular sector ``|r| dr dtheta_s`` (the spoke
    crosses the annulus of radius ``|r|`` twice, at ``+r`` and ``-r``), and the centre sample of
    spoke ``s`` for the share ``dtheta_s / pi`` of the central disk of radius ``dr / 2``:

    .. math::

        w_{s,j} = \frac{\Delta\theta_s}{(2\pi/H)(2\pi/W)}
        \begin{cases} |r_j|\,\Delta r & r_j \neq 0 \\ \Delta r^2 / 4 & r_j = 0 \end{cases}

    with ``dr = 2 pi / samples`` and ``dtheta_s`` half the angular gap between the two
    neighbouring spokes (``pi / spokes`` for uniform ordering; golden-angle spokes get their own
    gaps). Dividing by the Nyquist cell area makes ``w = 1`` mean "one Cartesian sample's worth",
    which is what :class:`~stablerecon.operators.nufft.NonCartesianFourier` expects; the weights
    sum to about ``pi H W / 4``, the number of Cartesian cells in the disk.

    Parameters
    ----------
    size:
        Image size ``N`` or ``(H, W)``; the weights scale with ``H W``.
    spokes, samples, golden:
        As in :func:`radial`; ``samples`` defaults to ``2 max(H, W)`` (``2 N``, the default of
        :func:`radial`).

    Returns
    -------
    torch.Tensor
        Non-negative float64 weights of shape ``(spokes * samples,)``, ordered as :func:`radial`.

    References
    ----------
    Hoge, Kwan, Pike, "Density compensation functions for spiral MRI", Magn. Reson. Med. 38
    (1997); Pipe, Menon, "Sampling density compensation in MRI: rationale and an iterative
    numerical solution", Magn. Reson. Med. 41 (1999).
    """
    where = "radial_dcf"
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"{where}: argument 'size' must be an int or a pair (H, W), got {size!r}")
        h = positive_int(size[0], "size", where=where)
        w = positive_int(size[1], "size", where=where)
    else:
        h = w = positive_int(size, "size", where=where)
    spokes = positive_int(spokes, "spokes", where=where)
    samples = 2 * max(h, w) if samples is None else positive_int(samples, "samples", minimum=2, where=where)
    golden = boolean(golden, "golden", where=where)
    theta = _radial_angles(spokes, golden)
    if spokes == 1:
        dtheta = torch.full((1,), math.pi, dtype=torch.float64)
    else:
        order = torch.argsort(theta)
        sorted_theta = theta[order]
        # Neighbours on the half circle of spoke directions (angles are defined modulo pi).
        nxt = torch.roll(sorted_theta, -1)
        nxt[-1] += math.pi
        prev = torch.roll(sorted_theta, 1)
        prev[0] -= math.pi
        dtheta = torch.empty_like(theta)
        dtheta[order] = (nxt - prev) / 2.0
    r, dr = _radii(samples)
    radial_area = torch.where(r == 0, torch.full_like(r, dr * dr / 4.0), r.abs() * dr)
    cell = (2.0 * math.pi / h) * (2.0 * math.pi / w)
    return (dtheta[:, None] * radial_area[None, :]).reshape(-1) / cell


def _arc_length(phi: torch.Tensor, a: float) -> torch.Tensor:
    """Arc length of the Archimedean spiral ``r = a phi`` from 0 to ``phi``."""
    return 0.5 * a * (phi * torch.sqrt(1.0 + phi * phi) + torch.asinh(phi))


def _angle_at_arc_length(s: torch.Tensor, a: float) -> torch.Tensor:
    """Invert :func:`_arc_length` by Newton's method (monotone convergence from above)."""
    # s(phi) >= a phi^2 / 2, so this start lies at or above the root; s is convex and
    # increasing, hence the Newton iterates decrease monotonically to it.
    phi = torch.sqrt(2.0 * s / a)
    for _ in range(60):
        step = (_arc_length(phi, a) - s) / (a * torch.sqrt(1.0 + phi * phi))
        phi = phi - step
        if float(step.abs().max()) <= 1e-15 * max(1.0, float(phi.abs().max())):
            break
    return phi


def spiral(size: int, interleaves: int, samples: int | None = None, turns: int | float | None = None,
           golden: bool = False) -> torch.Tensor:
    r"""Archimedean spiral trajectory: ``interleaves`` rotated copies of one spiral arm.

    Arm ``l`` is the Archimedean spiral ``r = (pi / (2 pi T)) phi``, ``0 <= phi < 2 pi T``
    (``T = turns``), from the k-space centre out to the Nyquist radius ``pi``, rotated by
    ``alpha_l = 2 pi l / interleaves`` (or by ``l`` golden angles ``2 pi (1 - 1/phi_g) ~ 137.5
    deg`` with ``golden=True``):

    .. math::

        \omega_{l,j} = r_j\,(\sin(\varphi_j + \alpha_l), \cos(\varphi_j + \alpha_l)),
        \qquad r_j = \frac{\varphi_j}{2T},

    sampled at constant linear velocity (equal arc length between consecutive samples, the
    gradient-amplitude-limited regime of Glover's analytic spiral): ``phi_j`` solves
    ``s(phi_j) = (j / samples) s(2 pi T)`` with the arc length
    ``s(phi) = (a / 2)(phi sqrt(1 + phi^2) + asinh(phi))``, ``a = 1 / (2 T)``. Adjacent arms
    (uniform rotation) are ``pi / (T * interleaves)`` apart radially, so
    ``T >= size / (2 interleaves)`` samples the disk ``|omega| < pi`` at the Nyquist rate
    ``2 pi / size``. Every sample has ``|omega| < pi``, so every coordinate lies in
    ``[-pi, pi)``; the outermost one is at radius ``>= pi (1 - 1 / samples)``.

    Parameters
    ----------
    size:
        Image size ``N`` (pixels) the trajectory is meant for.
    interleaves:
        Number of arms, ``>= 1``.
    samples:
        Samples per arm, ``>= 2``; default ``ceil(N s(2 pi T) / pi)``, i.e. a spacing of
        ``pi / N`` along the arm (half the Nyquist spacing, as the default readout of
        :func:`radial`).
    turns:
        Turns ``T > 0`` of each arm; default ``ceil(N / (2 interleaves))``, the fewest whole
        turns that sample at the Nyquist rate. Fewer turns undersample the outer k-space.
    golden:
        Rotate the arms by golden-angle increments instead of ``2 pi / interleaves``.

    Returns
    -------
    torch.Tensor
        ``omega`` of shape ``(2, interleaves * samples)``, float64, radians per pixel, arm after
        arm (``omega.reshape(2, interleaves, samples)`` recovers the arms), each from the centre
        outwards.

    References
    ----------
    Ahn, Kim, Cho, "High-speed spiral-scan echo planar NMR imaging - I", IEEE Trans. Med.
    Imaging 5 (1986); Glover, "Simple analytic spiral k-space algorithm", Magn. Reson. Med. 42
    (1999).
    """
    where = "spiral"
    size = positive_int(size, "size", where=where)
    interleaves = positive_int(interleaves, "interleaves", where=where)
    golden = boolean(golden, "golden", where=where)
    if turns is None:
        turns = float(math.ceil(size / (2.0 * interleaves)))
    else:
        if isinstance(turns, bool) or not isinstance(turns, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(turns)) or float(turns) <= 0:
            raise ValueError(f"{where}: argument 'turns' must be a finite number > 0, got {turns!r}")
        turns = float(turns)
    a = 1.0 / (2.0 * turns)  # r = a phi reaches pi at phi = 2 pi T
    total = float(_arc_length(torch.tensor(2.0 * math.pi * turns, dtype=torch.float64), a))
    if samples is None:
        samples = max(2, math.ceil(size * total / math.pi))
    else:
        samples = positive_int(samples, "samples", minimum=2, where=where)
    s = torch.arange(samples, dtype=torch.float64) * (total / samples)
    phi = _angle_at_arc_length(s, a)
    r = a * phi
    step = GOLDEN_ANGLE_SPIRAL if golden else 2.0 * math.pi / interleaves
    alpha = torch.arange(interleaves, dtype=torch.float64) * step
    angle = phi[None, :] + alpha[:, None]
    ky = r[None, :] * torch.sin(angle)
    kx = r[None, :] * torch.cos(angle)
    return torch.stack((ky.reshape(-1), kx.reshape(-1)))


def check_trajectory(traj: object, name: str = "traj") -> torch.Tensor:
    """Validate a k-space trajectory: a finite real tensor of shape ``(2, K)``, ``K >= 1``, in ``[-pi, pi)``.

    NumPy arrays are converted. The range is checked in the trajectory's own precision (a
    float32 ``-pi`` is accepted). Returns the trajectory as a detached float64 tensor on its
    device.

    Raises
    ------
    TypeError
        If ``traj`` is not a tensor/array or not real floating point.
    ValueError
        If the shape is wrong, an entry is NaN/Inf, or an entry lies outside ``[-pi, pi)``;
        the message names ``name``.
    """
    traj = real_float_tensor(traj, name, "(2, K)", ", radians per pixel")
    if traj.ndim != 2 or traj.shape[0] != 2 or traj.shape[1] == 0:
        raise ValueError(f"argument '{name}' must have shape (2, K) with K >= 1 (row 0: k_y, row 1: k_x), "
                         f"got {tuple(traj.shape)}")
    if not bool(torch.isfinite(traj).all()):
        raise ValueError(f"argument '{name}' contains NaN or Inf values")
    low, high = float(traj.min()), float(traj.max())
    if not (bool((traj >= -math.pi).all()) and bool((traj < math.pi).all())):
        raise ValueError(f"argument '{name}' must lie in [-pi, pi) (radians per pixel), got values in "
                         f"[{low:.6g}, {high:.6g}]")
    return traj.detach().to(torch.float64)
