"""The orthonormal periodised 2-D discrete wavelet transform as a linear operator.

For an orthogonal wavelet with low-pass analysis filter ``h`` and high-pass filter ``g`` (length
``F``, taken from PyWavelets), one level of the periodised 1-D transform of a signal ``x`` of even
length ``N`` is

.. math::

    a[k] = \\sum_{j=0}^{F-1} h[j]\\, x[(2k + F/2 - j) \\bmod N], \\qquad
    d[k] = \\sum_{j=0}^{F-1} g[j]\\, x[(2k + F/2 - j) \\bmod N], \\qquad k = 0, \\dots, N/2 - 1,

exactly PyWavelets' ``mode="periodization"``. The 2-D transform applies it along both image axes
(tensor-product filters) and recurses on the approximation band (Mallat's pyramid algorithm;
S. Mallat, *A Wavelet Tour of Signal Processing*, 3rd ed., Academic Press 2009, ch. 7.7). Because
the filter bank is orthogonal and the boundary is periodised, the whole map ``W`` is an
orthogonal ``N x N`` matrix on images of ``N = H * W`` pixels: ``W^* W = W W^* = I``.

Why not ``ptwt.wavedec2(mode="periodic")``: in ptwt 1.0.1 ``"periodic"`` means *circular padding
before a full convolution*, which produces ``floor((N + F - 1) / 2)`` coefficients per axis and
level (redundant, not orthogonal, no exact adjoint); ptwt has no ``"periodization"`` mode. This
module therefore implements the periodisation itself with the PyWavelets filters, built in the
input's dtype (float64 stays float64): a periodic extension by ``F/2 - 1`` samples followed by
a stride-2 ``conv2d`` (ptwt's algorithm: one convolution with the four outer-product filters for
``F = 4``, two separable passes for longer filters), and plain 2 x 2 block arithmetic for Haar.
The synthesis is the exact adjoint of these steps (``conv_transpose2d``, then the periodic
extension folded back). Everything is batched over ``B * C`` (and real/imaginary parts) in
single tensor calls, differentiable and device-agnostic.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pywt
import torch
import torch.nn.functional as F

from ..operators.base import LinearOperator
from ..operators.tensors import as_hw, check_tensor

__all__ = ["Wavelet", "orthogonal_wavelets"]


_ORTHO_TOL = 1e-8
"""Largest accepted defect ``max_k |sum_j h[j] h[j + 2k] - delta_k|`` of the stored filters."""


def _orthogonality_defect(wav: pywt.Wavelet) -> float:
    """How far the low-pass filter of ``wav`` is from satisfying ``<h, h(. - 2k)> = delta_k``.

    (The high-pass filter is the alternating flip of the low-pass one, so it adds nothing.)
    """
    h = np.asarray(wav.dec_lo, dtype=np.float64)
    auto = np.correlate(h, h, mode="full")[len(h) - 1 :: 2]
    auto[0] -= 1.0
    return float(np.abs(auto).max())


def orthogonal_wavelets() -> list[str]:
    """Names of the PyWavelets discrete wavelets that :class:`Wavelet` accepts.

    These are the orthogonal families ``haar``, ``db1``-``db38``, ``sym2``-``sym20`` and
    ``coif1``-``coif17``. Rejected are the biorthogonal ``bior*``/``rbio*`` wavelets and ``dmey``,
    whose PyWavelets filter is a truncated approximation of the Meyer wavelet that is orthogonal
    only to about ``2e-3``. (PyWavelets stores ``sym3`` and ``sym16``-``sym20`` to about
    ``1e-11``; their float64 reconstructions are exact to that level only.)
    """
    names = []
    for n in pywt.wavelist(kind="discrete"):
        wav = pywt.Wavelet(n)
        if wav.orthogonal and _orthogonality_defect(wav) <= _ORTHO_TOL:
            names.append(n)
    return names


def _two_adic_order(n: int) -> int:
    """Largest ``k`` with ``2**k`` dividing ``n`` (``n >= 1``)."""
    return (n & -n).bit_length() - 1


def _periodic_pad(x: torch.Tensor, p: int, dim: int) -> torch.Tensor:
    """Extend axis ``dim`` (``-2`` or ``-1``) of the 4-D ``x`` periodically by ``p`` on each side.

    Extended sample ``m`` holds sample ``(m - p) mod n``.
    """
    if p == 0:
        return x
    n = x.shape[dim]
    if p <= n:
        return F.pad(x, (p, p, 0, 0) if dim == -1 else (0, 0, p, p), mode="circular")
    # Filters longer than the signal wrap around several times.
    reps = -(-p // n)
    return torch.cat([x] * (2 * reps + 1), dim=dim).narrow(dim, reps * n - p, n + 2 * p)


def _periodic_fold(z: torch.Tensor, p: int, n: int, dim: int) -> torch.Tensor:
    """Adjoint of :func:`_periodic_pad` along ``dim``: add the extension back onto ``n`` samples."""
    if p == 0:
        return z
    if 2 * p <= n:
        core = z.narrow(dim, p, n)
        head = z.narrow(dim, 0, p)  # extension before sample 0: samples n-p .. n-1
        tail = z.narrow(dim, n + p, p)  # extension after sample n-1: samples 0 .. p-1
        return torch.cat(
            [core.narrow(dim, 0, p) + tail, core.narrow(dim, p, n - 2 * p),
             core.narrow(dim, n - p, p) + head],
            dim=dim,
        )
    return _fold_general(z, p, n, dim)


def _fold_general(z: torch.Tensor, p: int, n: int, dim: int) -> torch.Tensor:
    """:func:`_periodic_fold` for any ``p``: sum the length-``n`` periods, then undo the shift."""
    length = z.shape[dim]
    reps = -(-length // n)
    z = F.pad(z, (0, reps * n - length) if dim == -1 else (0, 0, 0, reps * n - length))
    if dim == -1:
        z = z.reshape(*z.shape[:-1], reps, n).sum(dim=-2)
    else:
        z = z.reshape(*z.shape[:-2], reps, n, z.shape[-1]).sum(dim=-3)
    return torch.roll(z, shifts=-(p % n), dims=dim)


def _haar_analysis_step(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Haar level on ``(M, h, w)`` by 2 x 2 block arithmetic: ``(cA, [cH, cV, cD])``.

    Same values as the convolution path (and PyWavelets), about twice as fast on small images,
    where a convolution call costs more than the arithmetic.
    """
    m, h, w = x.shape
    v = x.reshape(m, h // 2, 2, w // 2, 2)
    s = v[:, :, 0] + v[:, :, 1]  # low-pass along H (unnormalised), (m, h/2, w/2, 2)
    d = v[:, :, 0] - v[:, :, 1]  # high-pass along H
    approx = (s[..., 0] + s[..., 1]) * 0.5
    details = torch.stack([d[..., 0] + d[..., 1], s[..., 0] - s[..., 1], d[..., 0] - d[..., 1]],
                          dim=1) * 0.5
    return approx, details


def _haar_synthesis_step(approx: torch.Tensor, details: torch.Tensor) -> torch.Tensor:
    """Inverse (= adjoint) of :func:`_haar_analysis_step`: ``(M, h, w), (M, 3, h, w)`` ->
    ``(M, 2h, 2w)``."""
    m, h, w = approx.shape
    ch, cv, cd = details.unbind(1)
    s0, s1 = approx + cv, approx - cv
    d0, d1 = ch + cd, ch - cd
    even = torch.stack([s0 + d0, s1 + d1], dim=-1)
    odd = torch.stack([s0 - d0, s1 - d1], dim=-1)
    return (torch.stack([even, odd], dim=2) * 0.5).reshape(m, 2 * h, 2 * w)


class Wavelet(LinearOperator):
    """Orthonormal periodised 2-D discrete wavelet transform ``c = W x`` (analysis).

    Maps images ``(B, C, H, W)`` (real or complex; complex images are transformed in their real
    and imaginary parts) to one flat coefficient tensor ``(B, C, N)`` with ``N = H * W``. The
    adjoint is the synthesis ``x = W^* c``, which is also the exact inverse (``A_dagger`` is the
    adjoint and ``norm()`` is exactly 1). The coefficients agree with
    ``pywt.wavedec2(x, name, mode="periodization", level=levels)``.

    **Flattening order** (fixed): the PyWavelets / ptwt band order, each band row-major::

        [cA_L | cH_L, cV_L, cD_L | cH_{L-1}, cV_{L-1}, cD_{L-1} | ... | cH_1, cV_1, cD_1]

    where ``L = levels``, ``cA_L`` is the coarsest approximation (shape ``(H/2^L, W/2^L)``) and
    ``cH_s, cV_s, cD_s`` are the horizontal, vertical and diagonal details of decomposition
    scale ``s`` (shape ``(H/2^s, W/2^s)``; ``s = 1`` is the finest). ``cH`` is high-pass along the
    rows axis ``H`` (it responds to horizontal edges), ``cV`` along the columns axis ``W``.

    **Level numbering** used by :attr:`level_index`, :attr:`level_sizes`, :attr:`level_slices`
    and :meth:`expand_level_weights` runs from coarse to fine: level ``0`` is the approximation
    band ``cA_L``, level ``j`` (``1 <= j <= L``) holds the three detail bands of scale
    ``s = L - j + 1`` (level ``1`` = coarsest details, level ``L`` = finest). The levels occupy
    consecutive slices of the flat axis in this order.

    Parameters
    ----------
    name:
        An orthogonal PyWavelets wavelet: ``haar``, ``dbK``, ``symK``, ``coifK`` (see
        :func:`orthogonal_wavelets`). Biorthogonal wavelets and ``dmey`` (not orthogonal to
        float precision in PyWavelets) raise ``ValueError``.
    levels:
        Number of decomposition levels ``L >= 1``; ``H`` and ``W`` must be divisible by
        ``2**L``. ``None`` picks the largest useful ``L``: the deepest level PyWavelets
        recommends for the filter length (``pywt.dwtn_max_level``, at least 1), capped by the
        number of factors of two in ``H`` and ``W``.
    size:
        Image size ``H`` (square) or ``(H, W)``; default 128. Any ``H, W`` divisible by
        ``2**levels`` work, also non-square and non-power-of-two ones (e.g. ``(48, 80)`` with
        ``levels <= 4``): periodisation keeps the transform exactly orthonormal, even when a
        coarse band is shorter than the filter (the filter then wraps around several times).
    channels:
        Number of channels, or ``None`` to accept any.

    Examples
    --------
    >>> import torch
    >>> W = Wavelet("db2", levels=3, size=32)
    >>> x = torch.randn(4, 1, 32, 32)
    >>> c = W.A(x)
    >>> c.shape
    torch.Size([4, 1, 1024])
    >>> bool(torch.allclose(W.A_adjoint(c), x, atol=1e-5))
    True
    """

    adjoint_backward = True

    def __init__(
        self,
        name: str = "haar",
        levels: int | None = None,
        size: int | tuple[int, int] = 128,
        channels: int | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(
                f"argument 'name' must be a wavelet name (str), got {type(name).__name__}"
            )
        try:
            wav = pywt.Wavelet(name)
        except ValueError as err:
            raise ValueError(
                f"argument 'name' must name an orthogonal discrete PyWavelets wavelet "
                f"(e.g. 'haar', 'db4', 'sym8', 'coif2'), got {name!r}: {err}"
            ) from None
        if not wav.orthogonal:
            raise ValueError(
                f"argument 'name' must be an orthogonal wavelet (haar, dbK, symK, coifK), "
                f"got the non-orthogonal {name!r}"
            )
        defect = _orthogonality_defect(wav)
        if defect > _ORTHO_TOL:
            raise ValueError(
                f"argument 'name': the PyWavelets filters of {name!r} are orthogonal only to "
                f"{defect:.1e} (> {_ORTHO_TOL:g}), so the transform would not be orthonormal; "
                f"use haar, dbK, symK or coifK"
            )
        h, w = as_hw(size, "size")
        if channels is not None and (
            isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0
        ):
            raise ValueError(
                f"argument 'channels' must be a positive int or None, got {channels!r}"
            )
        two_adic = min(_two_adic_order(h), _two_adic_order(w))
        if levels is None:
            if two_adic == 0:
                raise ValueError(
                    f"argument 'size' must be even in both dimensions for a periodised wavelet "
                    f"transform, got {(h, w)}"
                )
            useful = max(1, pywt.dwtn_max_level((h, w), wav))
            levels = min(useful, two_adic)
        elif isinstance(levels, bool) or not isinstance(levels, int):
            raise TypeError(f"argument 'levels' must be an int or None, got {levels!r}")
        elif levels < 1:
            raise ValueError(f"argument 'levels' must be >= 1, got {levels}")
        elif levels > two_adic:
            raise ValueError(
                f"argument 'size' {(h, w)} must be divisible by 2**levels = {2**levels} "
                f"(levels={levels}); the largest possible levels for this size is {two_adic}"
            )

        n = h * w
        super().__init__((channels, h, w), (channels, n))
        self.in_kind = "any"
        self.out_complex = False
        self.wavelet_name = name
        self.levels = int(levels)
        self.size = (h, w)
        self.channels = channels
        self.filter_length = wav.dec_len
        self._pad = wav.dec_len // 2 - 1

        # conv2d is a cross-correlation, so the analysis filters are flipped; channel order
        # aa, da (cH: detail along H), ad (cV: detail along W), dd (cD).
        lo = torch.tensor(wav.dec_lo[::-1], dtype=torch.float64)
        hi = torch.tensor(wav.dec_hi[::-1], dtype=torch.float64)
        # Short filters: one conv2d with the four outer-product filters (as ptwt does); longer
        # ones: two separable passes (F^2 vs 2F multiplications per coefficient). The float64
        # masters are plain attributes, not buffers, so that ``module.float()`` cannot degrade
        # them; copies in each input's dtype and device are cached on first use.
        self._haar = wav.dec_len == 2  # haar, db1: block arithmetic, no filters needed
        self._separable = wav.dec_len > 4
        f = wav.dec_len
        if self._separable:
            masters = (torch.stack([lo, hi]).reshape(2, 1, 1, f),
                       torch.stack([lo, hi, lo, hi]).reshape(4, 1, f, 1))
        else:
            masters = (torch.stack([torch.outer(lo, lo), torch.outer(hi, lo),
                                    torch.outer(lo, hi), torch.outer(hi, hi)]).unsqueeze(1),)
        self._filters64: tuple[torch.Tensor, ...] = masters
        self._filter_cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, ...]] = {}

        # Band bookkeeping, coarse to fine.
        self.band_shapes: list[tuple[int, int]] = [
            (h >> (self.levels - j), w >> (self.levels - j)) for j in range(self.levels)
        ]
        """``band_shapes[j - 1]`` is the shape of each of the three detail bands of level ``j``
        (``1..L``); ``band_shapes[0]`` is also the shape of the approximation band."""
        hs, ws = self.band_shapes[0]
        self.level_sizes: list[int] = [hs * ws] + [3 * bh * bw for bh, bw in self.band_shapes]
        """Number of coefficients of each level ``0..L`` (they sum to ``N = H * W``)."""
        offsets = [0, *itertools.accumulate(self.level_sizes)]
        self.level_slices: list[slice] = [
            slice(offsets[i], offsets[i + 1]) for i in range(self.levels + 1)
        ]
        """Slice of the flat coefficient axis occupied by each level ``0..L``."""
        index = torch.repeat_interleave(
            torch.arange(self.levels + 1), torch.tensor(self.level_sizes)
        )
        self.register_buffer("level_index", index, persistent=False)

    # ------------------------------------------------------------------ helpers
    level_index: torch.Tensor
    """LongTensor ``(N,)``: the level (``0`` = approximation, ``1..L`` coarse-to-fine details)
    of each flat coefficient."""

    @property
    def num_coefficients(self) -> int:
        """``N = H * W``."""
        return self.size[0] * self.size[1]

    def extra_repr(self) -> str:
        return f"name={self.wavelet_name!r}, levels={self.levels}, " + super().extra_repr()

    def _filters_for(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The analysis filters in the dtype and on the device of ``x`` (cached)."""
        key = (x.dtype, x.device)
        filt = self._filter_cache.get(key)
        if filt is None:
            filt = tuple(m.to(device=x.device, dtype=x.dtype) for m in self._filters64)
            self._filter_cache[key] = filt
        return filt

    # ------------------------------------------------------------------ the transform
    def _analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Real ``(M, H, W)`` -> ``(M, N)`` in the documented flat order."""
        if self._haar:
            pieces = []
            for _ in range(self.levels):
                x, det = _haar_analysis_step(x)
                pieces.append(det.reshape(det.shape[0], -1))
            pieces.append(x.reshape(x.shape[0], -1))
            return torch.cat(pieces[::-1], dim=1)
        filt = self._filters_for(x)
        p = self._pad
        ll = x.unsqueeze(1)
        details: list[torch.Tensor] = []
        for _ in range(self.levels):
            if self._separable:
                z = F.conv2d(_periodic_pad(ll, p, -1), filt[0], stride=(1, 2))
                out = F.conv2d(_periodic_pad(z, p, -2), filt[1], stride=(2, 1), groups=2)
            else:
                out = F.conv2d(_periodic_pad(_periodic_pad(ll, p, -1), p, -2), filt[0], stride=2)
            ll = out[:, :1]
            details.append(out[:, 1:].reshape(out.shape[0], -1))
        details.append(ll.reshape(ll.shape[0], -1))
        return torch.cat(details[::-1], dim=1)

    def _synthesis(self, c: torch.Tensor) -> torch.Tensor:
        """Real ``(M, N)`` -> ``(M, H, W)``; the adjoint (and inverse) of :meth:`_analysis`."""
        m = c.shape[0]
        bh, bw = self.band_shapes[0]
        if self._haar:
            x = c[:, self.level_slices[0]].reshape(m, bh, bw)
            for j in range(1, self.levels + 1):
                bh, bw = self.band_shapes[j - 1]
                x = _haar_synthesis_step(x, c[:, self.level_slices[j]].reshape(m, 3, bh, bw))
            return x
        filt = self._filters_for(c)
        p = self._pad
        ll = c[:, self.level_slices[0]].reshape(m, 1, bh, bw)
        for j in range(1, self.levels + 1):
            bh, bw = self.band_shapes[j - 1]
            bands = torch.cat([ll, c[:, self.level_slices[j]].reshape(m, 3, bh, bw)], dim=1)
            if self._separable:
                z = F.conv_transpose2d(bands, filt[1], stride=(2, 1), groups=2)
                z = F.conv_transpose2d(_periodic_fold(z, p, 2 * bh, -2), filt[0], stride=(1, 2))
                ll = _periodic_fold(z, p, 2 * bw, -1)
            else:
                z = F.conv_transpose2d(bands, filt[0], stride=2)
                ll = _periodic_fold(_periodic_fold(z, p, 2 * bh, -2), p, 2 * bw, -1)
        return ll.squeeze(1)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ch = x.shape[:2]
        h, w = self.size
        if x.is_complex():
            flat = torch.cat([x.real, x.imag], dim=0).reshape(2 * b * ch, h, w)
            c = self._analysis(flat).reshape(2, b, ch, -1)
            return torch.complex(c[0], c[1])
        return self._analysis(x.reshape(b * ch, h, w)).reshape(b, ch, -1)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        b, ch = y.shape[:2]
        h, w = self.size
        if y.is_complex():
            flat = torch.cat([y.real, y.imag], dim=0).reshape(2 * b * ch, -1)
            x = self._synthesis(flat).reshape(2, b, ch, h, w)
            return torch.complex(x[0], x[1])
        return self._synthesis(y.reshape(b * ch, -1)).reshape(b, ch, h, w)

    def _dagger(self, y: torch.Tensor) -> torch.Tensor:
        return self._adjoint(y)

    def _exact_norm(self) -> float:
        return 1.0

    # ------------------------------------------------------------------ coefficient structure
    def split(self, c: torch.Tensor) -> list:
        """Split flat coefficients ``(B, C, N)`` into bands in PyWavelets/ptwt structure.

        Returns ``[cA_L, (cH_L, cV_L, cD_L), ..., (cH_1, cV_1, cD_1)]`` (coarse to fine) where
        each band has shape ``(B, C, h_s, w_s)``; the detail triples are
        ``ptwt.constants.WaveletDetailTuple2d(horizontal, vertical, diagonal)``. The bands are
        views of ``c`` where possible.
        """
        from ptwt.constants import WaveletDetailTuple2d

        c = check_tensor(c, "c", self.out_shape, "any", where=f"{self.name}.split")
        lead = c.shape[:2]
        bh, bw = self.band_shapes[0]
        bands: list = [c[..., self.level_slices[0]].reshape(*lead, bh, bw)]
        for j in range(1, self.levels + 1):
            bh, bw = self.band_shapes[j - 1]
            det = c[..., self.level_slices[j]].reshape(*lead, 3, bh, bw)
            bands.append(WaveletDetailTuple2d(det[:, :, 0], det[:, :, 1], det[:, :, 2]))
        return bands

    def join(self, bands: Sequence) -> torch.Tensor:
        """Inverse of :meth:`split`: bands in PyWavelets/ptwt structure -> flat ``(B, C, N)``."""
        if len(bands) != self.levels + 1:
            raise ValueError(
                f"{self.name}.join: argument 'bands' must have {self.levels + 1} entries "
                f"(approximation + {self.levels} detail triples), got {len(bands)}"
            )
        pieces = [torch.as_tensor(bands[0]).flatten(-2)]
        for j, triple in enumerate(bands[1:], start=1):
            if len(triple) != 3:
                raise ValueError(
                    f"{self.name}.join: detail level {j} of 'bands' must be a triple "
                    f"(horizontal, vertical, diagonal), got {len(triple)} entries"
                )
            pieces.extend(t.flatten(-2) for t in triple)
        out = torch.cat(pieces, dim=-1)
        return check_tensor(out, "bands", self.out_shape, "any", where=f"{self.name}.join")

    def expand_level_weights(
        self, weights: Sequence[float] | torch.Tensor, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Per-coefficient weights ``(..., N)`` from per-level weights ``(..., L + 1)``.

        ``weights[..., j]`` is the weight of level ``j`` (``0`` = approximation, ``1..L`` details
        coarse to fine); the result is ``weights[..., level_index]``, ready to broadcast against
        coefficients ``(B, C, N)`` in a weighted l1 norm ``||c||_{1,w} = sum_i w_i |c_i|`` and to
        pass as the threshold of :func:`~stablerecon.sparsity.soft_threshold`. Differentiable in
        ``weights``. A sequence becomes a tensor of ``dtype`` (default: torch's default dtype) on
        the operator's device; a tensor keeps its dtype and device unless ``dtype`` is given.
        """
        if not isinstance(weights, torch.Tensor):
            try:
                weights = torch.tensor(
                    [float(v) for v in weights],
                    dtype=dtype or torch.get_default_dtype(),
                    device=self.level_index.device,
                )
            except (TypeError, ValueError) as err:
                raise TypeError(
                    f"{self.name}.expand_level_weights: argument 'weights' must be a sequence "
                    f"of numbers or a tensor, got {weights!r}"
                ) from err
        elif dtype is not None:
            weights = weights.to(dtype)
        if weights.ndim == 0 or weights.shape[-1] != self.levels + 1:
            raise ValueError(
                f"{self.name}.expand_level_weights: argument 'weights' must have last dimension "
                f"levels + 1 = {self.levels + 1}, got shape {tuple(weights.shape)}"
            )
        if weights.is_complex():
            raise TypeError(
                f"{self.name}.expand_level_weights: argument 'weights' must be real, "
                f"got {weights.dtype}"
            )
        if not bool(torch.isfinite(weights).all()):
            raise ValueError(
                f"{self.name}.expand_level_weights: argument 'weights' contains NaN or Inf"
            )
        if bool((weights < 0).any()):
            raise ValueError(
                f"{self.name}.expand_level_weights: argument 'weights' must be non-negative, "
                f"got min {float(weights.min())}"
            )
        return weights[..., self.level_index.to(weights.device)]
