"""Image quality metrics: PSNR, SSIM, NMSE and relative error, batched and differentiable.

Every metric compares a reconstruction ``x_hat`` with a reference ``x`` and returns **one
value per image**: a tensor of shape ``(B,)``.

Conventions shared by all metrics
---------------------------------
- **Shapes.** ``x_hat`` and ``x`` have the same shape, either ``(B, C, H, W)`` (the library's
  image contract) or ``(H, W)`` (a single grayscale image, treated as ``(1, 1, H, W)``; the
  result then has shape ``(1,)``). Three-dimensional inputs are rejected because ``(B, H, W)``
  and ``(C, H, W)`` cannot be told apart; add the missing axis explicitly.
- **Channels.** A multi-channel image gives one number: PSNR, NMSE and relative error pool the
  squared errors over all channels and pixels (the same as scikit-image for a multichannel
  array); SSIM is computed per channel and averaged over channels (as
  ``structural_similarity(..., channel_axis=...)`` does).
- **Complex images** are compared by magnitude: a complex input is replaced by ``|x|`` before
  anything else, so a global (or any) phase does not count as an error.
- **dtype.** Real floating inputs keep their dtype (``float32`` or ``float64``); integer and
  boolean inputs are converted to ``float32``. ``x_hat`` and ``x`` are promoted to a common
  dtype.
- **Differentiable.** Everything is plain torch arithmetic, so gradients flow to ``x_hat``
  (and ``x``); the functions run on whatever device the inputs live on.
- **Errors.** Shape mismatches, NaN/inf values and a non-positive ``data_range`` raise a
  ``ValueError`` naming the argument; non-tensors raise a ``TypeError``.

``data_range``
--------------
PSNR and SSIM depend on the dynamic range ``L`` of the images. Pass it explicitly (``1.0``
for images in ``[0, 1]``): that is what makes numbers comparable across images and papers. If
it is left as ``None`` the range of the **reference** is used, per image:
``L_b = max(|x_b|) - min(|x_b|)`` over that image's channels and pixels. Note that
scikit-image's defaults differ (PSNR uses the dtype range, i.e. ``1`` for non-negative float
images; SSIM requires the argument for float images), which is another reason to pass it.

References
----------
Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment: from error
visibility to structural similarity", IEEE Trans. Image Process. 13(4):600-612, 2004.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["psnr", "ssim", "nmse", "relative_error"]


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _as_real_image(t: object, name: str) -> Tensor:
    """Validate one input and return it as a real floating ``(B, C, H, W)`` tensor."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim != 4:
        raise ValueError(
            f"{name} must have shape (B, C, H, W) or (H, W), got shape {tuple(t.shape)} "
            f"({t.ndim} dimensions)"
        )
    if t.is_complex():
        t = t.abs()
    elif not t.is_floating_point():
        t = t.to(torch.float32)
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        n_nan = int(torch.isnan(t).sum())
        n_inf = int(torch.isinf(t).sum())
        raise ValueError(
            f"{name} must contain only finite values, got {n_nan} NaN and {n_inf} inf entries"
        )
    return t


def _prepare(x_hat: object, x: object) -> tuple[Tensor, Tensor]:
    """Validate a pair of images; return both as real ``(B, C, H, W)`` tensors of one dtype."""
    if isinstance(x_hat, Tensor) and isinstance(x, Tensor) and x_hat.shape != x.shape:
        raise ValueError(
            f"x_hat and x must have the same shape, got x_hat {tuple(x_hat.shape)} "
            f"and x {tuple(x.shape)}"
        )
    a = _as_real_image(x_hat, "x_hat")
    b = _as_real_image(x, "x")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def _data_range(data_range: float | Tensor | None, x: Tensor) -> Tensor:
    """Return the dynamic range as a ``(B,)`` tensor (dtype/device of ``x``), validated."""
    batch = x.shape[0]
    if data_range is None:
        flat = x.detach().reshape(batch, -1)
        rng = flat.amax(dim=1) - flat.amin(dim=1)
        if not bool((rng > 0).all()):
            bad = [i for i, r in enumerate(rng.tolist()) if not r > 0]
            raise ValueError(
                "data_range could not be inferred: the reference x is constant "
                f"(max - min = 0) for image(s) {bad}; pass data_range explicitly "
                "(e.g. data_range=1.0 for images in [0, 1])"
            )
        return rng
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, Tensor)):
        raise TypeError(
            "data_range must be a positive number, a tensor of shape () or (B,), or None, "
            f"got {type(data_range).__name__}"
        )
    rng = torch.as_tensor(data_range, dtype=x.dtype, device=x.device)
    if rng.is_complex():
        raise TypeError(f"data_range must be real, got dtype {rng.dtype}")
    if rng.shape not in ((), (batch,)):
        raise ValueError(
            f"data_range must be a scalar or have shape ({batch},) (one value per image), "
            f"got shape {tuple(rng.shape)}"
        )
    rng = rng.expand(batch)
    if not bool((torch.isfinite(rng) & (rng > 0)).all()):
        shown = rng.tolist() if rng.numel() <= 8 else f"tensor with min {float(rng.min())}"
        raise ValueError(f"data_range must be positive and finite, got {shown}")
    return rng


# --------------------------------------------------------------------------------------------
# pixel-wise error metrics
# --------------------------------------------------------------------------------------------


def psnr(x_hat: Tensor, x: Tensor, data_range: float | Tensor | None = None) -> Tensor:
    r"""Peak signal-to-noise ratio in decibels, one value per image.

    .. math:: \mathrm{PSNR}(\hat x, x) = 10 \log_{10} \frac{L^2}{\mathrm{MSE}(\hat x, x)},
              \qquad \mathrm{MSE} = \frac{1}{CHW}\sum_{c,h,w} (\hat x_{chw} - x_{chw})^2 .

    Equal to ``skimage.metrics.peak_signal_noise_ratio(x, x_hat, data_range=L)`` per image.

    Args:
        x_hat: reconstruction, shape ``(B, C, H, W)`` or ``(H, W)``; complex -> magnitude.
        x: reference, same shape as ``x_hat``.
        data_range: dynamic range ``L`` (same units as the images): a positive number, or a
            tensor of shape ``(B,)`` with one range per image. ``None`` uses the per-image range
            ``max(x) - min(x)`` of the reference (see the module notes; prefer passing it).

    Returns:
        Tensor of shape ``(B,)`` in dB (``inf`` where ``x_hat == x`` exactly).

    Raises:
        ValueError: shape mismatch, NaN/inf input, non-positive ``data_range``.
        TypeError: non-tensor input.

    Example:
        >>> x = torch.zeros(1, 1, 8, 8)
        >>> psnr(x + 0.1, x, data_range=1.0)
        tensor([20.])
    """
    a, b = _prepare(x_hat, x)
    rng = _data_range(data_range, b)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(rng.pow(2) / mse)


def nmse(x_hat: Tensor, x: Tensor) -> Tensor:
    r"""Normalised mean squared error, one value per image.

    .. math:: \mathrm{NMSE}(\hat x, x) = \frac{\|\hat x - x\|_2^2}{\|x\|_2^2},

    norms taken over each image's channels and pixels (complex inputs by magnitude).

    Args:
        x_hat: reconstruction, shape ``(B, C, H, W)`` or ``(H, W)``.
        x: reference, same shape; every image must be nonzero.

    Returns:
        Tensor of shape ``(B,)``, dimensionless, ``>= 0``.

    Raises:
        ValueError: shape mismatch, NaN/inf input, or a reference image that is all zeros.
    """
    diff, ref_sq = _difference_and_reference_norm(x_hat, x)
    return diff.pow(2).sum(dim=1) / ref_sq


def relative_error(x_hat: Tensor, x: Tensor) -> Tensor:
    r"""Relative l2 error :math:`\|\hat x - x\|_2 / \|x\|_2`, one value per image.

    The square root of :func:`nmse`; the error measure used in the instability literature
    (e.g. the FIRENET / "can stable and accurate neural networks be computed" papers).

    Args:
        x_hat: reconstruction, shape ``(B, C, H, W)`` or ``(H, W)``.
        x: reference, same shape; every image must be nonzero.

    Returns:
        Tensor of shape ``(B,)``, dimensionless, ``>= 0``.

    Raises:
        ValueError: shape mismatch, NaN/inf input, or a reference image that is all zeros.
    """
    diff, ref_sq = _difference_and_reference_norm(x_hat, x)
    # norm of the difference via torch.linalg.vector_norm: well-defined gradient except at 0
    return torch.linalg.vector_norm(diff, dim=1) / ref_sq.sqrt()


def _difference_and_reference_norm(x_hat: object, x: object) -> tuple[Tensor, Tensor]:
    """Validate a pair of images; return ``x_hat - x`` flattened per image, shape ``(B, C*H*W)``,
    and the squared norms ``||x_b||_2^2``, shape ``(B,)``, which must all be positive."""
    a, b = _prepare(x_hat, x)
    sq_norms = b.pow(2).flatten(1).sum(dim=1)
    if not bool((sq_norms > 0).all()):
        bad = [i for i, v in enumerate(sq_norms.tolist()) if not v > 0]
        raise ValueError(
            f"x must have a nonzero norm for every image, got all-zero image(s) at index {bad}"
        )
    return (a - b).flatten(1), sq_norms


# --------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------


def _gaussian_taps(sigma: float, truncate: float, dtype: torch.dtype, device: torch.device):
    """1-D Gaussian kernel exactly as ``scipy.ndimage.gaussian_filter`` builds it."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return (w / w.sum()).to(dtype=dtype, device=device)


def _reflect_pad(t: Tensor, radius: int) -> Tensor:
    """Pad the last two axes by ``radius`` with half-sample symmetric reflection.

    This is scipy.ndimage's ``mode='reflect'`` (``d c b a | a b c d | d c b a``), which differs
    from torch's ``'reflect'`` (scipy's ``'mirror'``). Implemented by index gathering so it
    works for any radius and stays differentiable.
    """
    if radius == 0:
        return t

    def idx(n: int) -> Tensor:
        i = torch.arange(-radius, n + radius, device=t.device)
        period = 2 * n
        i = torch.remainder(i, period)
        return torch.where(i >= n, period - 1 - i, i)

    h, w = t.shape[-2:]
    return t.index_select(-2, idx(h)).index_select(-1, idx(w))


def _separable_filter(t: Tensor, taps: Tensor) -> Tensor:
    """Filter ``(N, 1, H, W)`` with ``taps`` along H then W, 'same' size, scipy reflect borders."""
    r = (taps.numel() - 1) // 2
    t = _reflect_pad(t, r)
    t = F.conv2d(t, taps.view(1, 1, -1, 1))
    return F.conv2d(t, taps.view(1, 1, 1, -1))


def ssim(
    x_hat: Tensor,
    x: Tensor,
    data_range: float | Tensor | None = None,
    *,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int | None = None,
    use_sample_covariance: bool | None = None,
    K1: float = 0.01,
    K2: float = 0.03,
) -> Tensor:
    r"""Structural similarity index (Wang et al. 2004), one value per image.

    Local means, variances and covariance are computed with a sliding window ``w``,

    .. math::
        \mathrm{SSIM}(p) = \frac{(2\mu_{\hat x}\mu_x + C_1)(2\sigma_{\hat x x} + C_2)}
                               {(\mu_{\hat x}^2 + \mu_x^2 + C_1)(\sigma_{\hat x}^2
                                + \sigma_x^2 + C_2)},
        \qquad C_1 = (K_1 L)^2,\; C_2 = (K_2 L)^2,

    and the map is averaged after cropping ``(win_size - 1) // 2`` pixels from every border
    (scikit-image's border handling; filters use scipy's ``'reflect'`` padding, which only
    matters if ``win_size`` is smaller than the Gaussian's support). Multi-channel images: the
    per-channel means are averaged.

    The defaults are the settings of Wang et al. (2004): an 11x11 Gaussian window with
    ``sigma = 1.5`` (truncated at 3.5 sigma) and population (``1/N``) covariances. They
    reproduce ``skimage.metrics.structural_similarity(x, x_hat, data_range=L,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``. With
    ``gaussian_weights=False`` a ``win_size`` x ``win_size`` uniform window (default 7) with
    sample (``1/(N-1)``) covariances is used, reproducing scikit-image's default
    ``structural_similarity(x, x_hat, data_range=L)``.

    Args:
        x_hat: reconstruction, shape ``(B, C, H, W)`` or ``(H, W)``; complex -> magnitude.
        x: reference, same shape; ``H`` and ``W`` must be at least ``win_size``.
        data_range: dynamic range ``L``: a positive number or a ``(B,)`` tensor; ``None``
            uses ``max(x) - min(x)`` per image (prefer passing it, e.g. ``1.0``).
        gaussian_weights: Gaussian (True, default) or uniform (False) window.
        sigma: standard deviation of the Gaussian window in pixels (Gaussian mode only).
        win_size: odd window side used for cropping (and the uniform window's size). Default:
            ``2 * int(3.5 * sigma + 0.5) + 1`` (= 11) for Gaussian, 7 for uniform.
        use_sample_covariance: normalise (co)variances by ``N - 1`` instead of ``N`` (``N``
            = ``win_size ** 2``). Default ``None`` means False for the Gaussian window (Wang
            et al.) and True for the uniform window (scikit-image's default).
        K1: constant in ``C_1``, ``>= 0``.
        K2: constant in ``C_2``, ``>= 0``.

    Returns:
        Tensor of shape ``(B,)``, values in ``[-1, 1]`` (1 iff the images are equal).

    Raises:
        ValueError: shape mismatch, NaN/inf input, non-positive ``data_range``, even or too
            large ``win_size``, negative ``sigma``/``K1``/``K2``.
        TypeError: non-tensor input.
    """
    a, b = _prepare(x_hat, x)
    rng = _data_range(data_range, b)
    for name, val in (("sigma", sigma), ("K1", K1), ("K2", K2)):
        if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
    if gaussian_weights and sigma == 0:
        raise ValueError("sigma must be > 0 when gaussian_weights=True, got 0")
    truncate = 3.5
    if win_size is None:
        win_size = 2 * int(truncate * sigma + 0.5) + 1 if gaussian_weights else 7
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 1:
        raise ValueError(f"win_size must be a positive odd integer, got {win_size!r}")
    if win_size % 2 != 1:
        raise ValueError(f"win_size must be odd, got {win_size}")
    batch, chans, h, w = b.shape
    if h < win_size or w < win_size:
        raise ValueError(
            f"x must be at least win_size x win_size = {win_size} x {win_size} pixels, got "
            f"H x W = {h} x {w}; pass a smaller odd win_size"
        )
    if use_sample_covariance is None:
        use_sample_covariance = not gaussian_weights
    n_pix = win_size**2
    cov_norm = n_pix / (n_pix - 1) if (use_sample_covariance and n_pix > 1) else 1.0

    dtype, device = b.dtype, b.device
    if gaussian_weights:
        taps = _gaussian_taps(sigma, truncate, dtype, device)
    else:
        taps = torch.full((win_size,), 1.0 / win_size, dtype=dtype, device=device)

    # All five filtered maps in one batched pass: (5 * B * C, 1, H, W).
    p = a.reshape(batch * chans, 1, h, w)
    q = b.reshape(batch * chans, 1, h, w)
    stack = torch.cat([p, q, p * p, q * q, p * q], dim=0)
    ux, uy, uxx, uyy, uxy = _separable_filter(stack, taps).chunk(5, dim=0)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)

    rng_bc = rng.repeat_interleave(chans).view(-1, 1, 1, 1)
    c1 = (K1 * rng_bc) ** 2
    c2 = (K2 * rng_bc) ** 2
    s_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))

    pad = (win_size - 1) // 2
    s_map = s_map[..., pad : h - pad, pad : w - pad]
    return s_map.reshape(batch, chans, -1).mean(dim=2).mean(dim=1)
