r"""Complex tensors and DeepInverse's two-channel real representation of them, both ways.

DeepInverse stores a complex image (MRI) as a real tensor ``(B, 2, *S)``: channel 0 the real
part, channel 1 the imaginary part; its k-space likewise as ``(B, 2, *R)`` (``*R`` is ``(H, W)``
for single-coil MRI, ``(N, H, W)`` for ``N`` coils). stablerecon uses complex dtypes with a
channel axis first (images ``(B, C, H, W)``, measurements ``(B, C, ...)``), so

    ``(B, 1, *S)`` complex  <->  ``(B, 2, *S)`` real:

the channel axis of size 1 becomes the (real, imaginary) axis of size 2, for images and
measurements alike.

Both maps are exact (a view or a copy of the same numbers, no rounding) and differentiable, and
the real inner product of the two-channel tensors is the real part of the complex inner product,
so an adjoint stays an adjoint through them. A real tensor given where a complex one is expected
counts as complex with zero imaginary part.

>>> import torch
>>> z = torch.tensor([[[[1 + 2j, 3 - 4j]]]])          # (B, C, H, W) = (1, 1, 1, 2)
>>> to_channels(z).tolist()
[[[[1.0, 3.0]], [[2.0, -4.0]]]]
>>> torch.equal(from_channels(to_channels(z)), z)
True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["to_channels", "from_channels"]


def to_channels(z: Tensor, name: str = "x") -> Tensor:
    """Complex ``(B, 1, *S)`` -> real ``(B, 2, *S)`` (real part, imaginary part)."""
    if not isinstance(z, Tensor):
        raise TypeError(f"argument '{name}' must be a torch.Tensor, got {type(z).__name__}")
    if z.ndim < 2 or z.shape[1] != 1:
        raise ValueError(f"argument '{name}' must have one (complex) channel, (B, 1, ...), "
                         f"got shape {tuple(z.shape)}")
    z = z[:, 0]
    z = z.resolve_conj() if z.is_complex() else torch.complex(z, torch.zeros_like(z))
    return torch.view_as_real(z).movedim(-1, 1)


def from_channels(t: Tensor, name: str = "x") -> Tensor:
    """Real ``(B, 2, *S)`` -> complex ``(B, 1, *S)``."""
    if not isinstance(t, Tensor):
        raise TypeError(f"argument '{name}' must be a torch.Tensor, got {type(t).__name__}")
    if t.is_complex() or not t.is_floating_point():
        raise TypeError(f"argument '{name}' must be a real floating-point tensor (B, 2, ...), got {t.dtype}")
    if t.ndim < 2 or t.shape[1] != 2:
        raise ValueError(f"argument '{name}' must have 2 channels (real, imaginary) on axis 1, "
                         f"got shape {tuple(t.shape)}")
    last = t.movedim(1, -1)
    if last.is_contiguous():  # a view of complex numbers (as DeepInverse's from_torch_complex makes)
        return torch.view_as_complex(last).unsqueeze(1)
    return torch.complex(t[:, :1], t[:, 1:])  # one pass over (B, 2, ...) storage
