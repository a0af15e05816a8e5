"""Data: shipped test images, phantoms, detail insertion and noise corruptions.

Everything returns ``torch`` tensors of shape ``(B, C, H, W)`` with values in ``[0, 1]`` and
nothing is downloaded:

- :func:`image`, :func:`available_images`: images bundled with scikit-image, grayscale,
  cropped and resized (``image("camera", size=128)`` has shape ``(1, 1, 128, 128)``);
- :func:`shepp_logan`, :func:`ellipses`: the Shepp-Logan phantom at any size and random-ellipse
  training phantoms (seeded); :func:`haar_sparse`: exactly Haar-sparse block images;
- :func:`mr_phantom`: MR images with tissue contrasts (T1, T2, proton density) of the MR
  Shepp-Logan standard, and seeded random members of its family with tissue texture;
- :func:`insert_detail`: add a small blob or text of known contrast, with its mask;
- :func:`gaussian`, :func:`shot`, :func:`speckle`, :func:`impulse`, :func:`corrupt`: ImageNet-C
  noise corruptions with severities 1..5;
- :func:`read_image`, :func:`read_images`: the user's own files (PNG, JPEG, TIFF, BMP,
  ``.npy``, ``.npz``; paths and globs) with explicit rules for colour, value range and size;
- :func:`classification_data`: small labelled image sets (``digits``, ``mnist5k``) split,
  stratified and seeded, into train / validation / test (:class:`ClassificationData`).

Modules: :mod:`~stablerecon.data.images` (shipped images), :mod:`~stablerecon.data.phantoms`,
:mod:`~stablerecon.data.mr_phantoms`,
:mod:`~stablerecon.data.details` (detail insertion), :mod:`~stablerecon.data.corruptions`,
:mod:`~stablerecon.data.files` (image files) and :mod:`~stablerecon.data.classification`.

Imports: this package may import nothing of stablerecon but :mod:`stablerecon.contracts`,
:mod:`stablerecon.validation` and :mod:`stablerecon.files`.
"""

from .classification import CLASSIFICATION_DATASETS, ClassificationData, classification_data
from .corruptions import (
    CORRUPTIONS,
    SEVERITY_PARAMETERS,
    corrupt,
    gaussian,
    impulse,
    shot,
    speckle,
)
from .details import FONT_CHARACTERS, insert_detail
from .files import IMAGE_SUFFIXES, is_image_path, list_images, read_image, read_images
from .images import available_images, image
from .mr_phantoms import MR_CONTRASTS, mr_phantom
from .phantoms import ellipses, haar_sparse, shepp_logan

__all__ = [
    "CLASSIFICATION_DATASETS",
    "CORRUPTIONS",
    "ClassificationData",
    "FONT_CHARACTERS",
    "IMAGE_SUFFIXES",
    "SEVERITY_PARAMETERS",
    "available_images",
    "classification_data",
    "corrupt",
    "ellipses",
    "gaussian",
    "haar_sparse",
    "image",
    "impulse",
    "insert_detail",
    "is_image_path",
    "read_image",
    "read_images",
    "list_images",
    "shepp_logan",
    "mr_phantom",
    "MR_CONTRASTS",
    "shot",
    "speckle",
]
