"""What the DeepInverse adapters share: the lazy import of deepinv and the conversions between
stablerecon tensors and the tensors a DeepInverse physics takes (:mod:`.channels`)."""

from __future__ import annotations

from types import ModuleType

from torch import Tensor

from .channels import from_channels, to_channels

__all__ = ["MISSING_DEEPINV", "require_deepinv", "Conversions"]

MISSING_DEEPINV = ("deepinv is not installed: pip install 'stablerecon[deepinv]' "
                   "(needs torchvision; see README)")


def require_deepinv() -> ModuleType:
    """The ``deepinv`` package, imported on first use; an ``ImportError`` that says how to
    install it when it is missing."""
    try:
        import deepinv
    except ImportError as err:
        raise ImportError(MISSING_DEEPINV) from err
    return deepinv


class Conversions:
    """Tensor conventions of one pairing of a stablerecon operator with a DeepInverse physics.

    ``complex_images``: stablerecon images ``(B, 1, *S)`` complex are DeepInverse images
    ``(B, 2, *S)``; otherwise both sides use the same ``(B, C, *S)`` tensors.
    ``complex_measurements``: likewise for measurements.
    """

    complex_images: bool = False
    complex_measurements: bool = False

    def image_to_physics(self, x: Tensor) -> Tensor:
        """stablerecon image -> the physics' image."""
        return to_channels(x, "x") if self.complex_images else x

    def image_from_physics(self, x: Tensor, name: str = "x") -> Tensor:
        """The physics' image -> stablerecon image."""
        return from_channels(x, name) if self.complex_images else x

    def measurements_to_physics(self, y: Tensor) -> Tensor:
        """stablerecon measurements -> the physics' measurements."""
        return to_channels(y, "y") if self.complex_measurements else y

    def measurements_from_physics(self, y: Tensor, name: str = "y") -> Tensor:
        """The physics' measurements -> stablerecon measurements."""
        return from_channels(y, name) if self.complex_measurements else y
