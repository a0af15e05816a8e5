"""Every YAML config of stablerecon, validated before any work starts.

Every model forbids unknown keys, so a typo fails loudly with the offending field named, e.g.
``train.lrr: Extra inputs are not permitted``. :func:`load_yaml` reads and validates a file
and raises :class:`ConfigError` (a ``ValueError``) listing every problem as ``field: message``.

- audit configs (``stablerecon audit CONFIG.yaml``): :class:`AuditConfig` with its
  :class:`MethodSpec` s (kinds from :data:`stablerecon.recipes.METHODS`), operators
  (:class:`OperatorSpec`, kinds from :data:`stablerecon.operators.kinds.OPERATOR_KINDS`) and
  options (:class:`AuditOptions`, tests from :data:`stablerecon.audit.TESTS`);
- training configs (``stablerecon train``, ``stablerecon train-classifier``):
  :class:`TrainingConfig`, :class:`ClassifierConfig` and their parts, defined in
  :mod:`stablerecon.training.config`;
- the machinery (:class:`StrictModel`, :func:`validate`, :func:`load_yaml`, field types) in
  :mod:`stablerecon.config_base`.

This module sits above what it configures: it may import every part but ``runner`` and ``cli``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from torch import Tensor

from .audit import TESTS, AuditOptions, DetailTestConfig, ImageSet, KernelTestConfig
from .audit.registry import default_tests
from .config_base import (
    ConfigError,
    FieldErrors,
    NonNegativeFloat,
    OddInt,
    PositiveFloat,
    PositiveInt,
    RunName,
    StrictModel,
    config_of,
    load_yaml,
    validate,
)
from .data import is_image_path
from .operators.kinds import OperatorSpec
from .recipes import METHODS, build_images, check_image_names, image_sources
from .registry import KindSpec
from .training import config as _training_config
from .training.config import *  # noqa: F403 - re-exported: TrainingConfig, ClassifierConfig, ...

__all__ = [
    "ConfigError",
    "FieldErrors",
    "StrictModel",
    "PositiveInt",
    "PositiveFloat",
    "NonNegativeFloat",
    "OddInt",
    "AuditOptions",
    "AuditConfig",
    "MethodSpec",
    "KernelTestConfig",
    "DetailTestConfig",
    "load_yaml",
    "config_of",
    "validate",
    *_training_config.__all__,  # TrainingConfig, ClassifierConfig and their parts, OperatorSpec
]


def check_test_name(name: str) -> str:
    """``name`` if it is a registered audit test."""
    if name not in TESTS:
        raise ValueError(TESTS.unknown(name))
    return name


class MethodSpec(KindSpec):
    """A method of an audit config: ``name`` (its label in the report), ``kind`` (an entry of
    :data:`stablerecon.recipes.METHODS`; ``stablerecon list`` shows them with their fields) and
    the fields of that kind, e.g.

    - ``zero_filled``: ``A_dagger(y)`` (real part);
    - ``fista`` (l1-wavelet LASSO), ``tv``, ``primal_dual`` (square-root LASSO, plain
      Chambolle-Pock): a :class:`~stablerecon.solvers.SparseReconstructor`, optional ``lam`` and
      ``max_iter``;
    - ``firenet``: :class:`~stablerecon.nets.FIRENet`, optional ``lam``, ``restarts``, ``inner``;
    - ``dip``: the Deep Image Prior in its cheap audit setting
      (:meth:`~stablerecon.nets.DeepImagePrior.cheap`), optional ``steps`` (default 300);
    - ``pretrained``: shipped weights ``weights`` (e.g. ``unet_fourier128``);
    - ``checkpoint``: a trained checkpoint or run folder at path ``weights``.

    A field that does not apply to the kind is an error naming it.
    """

    registry = METHODS

    name: str = Field(min_length=1)
    kind: str


class AuditConfig(StrictModel):
    """An audit (``stablerecon audit CONFIG.yaml``): operators x methods x images x tests.

    ``operators``: one or more :class:`OperatorSpec` (each is audited into its own subfolder
    when there are several). ``methods``: :class:`MethodSpec` s. ``images``: shipped image names
    (``camera``), ``shepp_logan``, ``ellipses:SEED`` (a random-ellipse phantom), or your own
    files: paths and globs (``scans/*.png``, ``phantom.npy``, ``set.npz:KEY``; PNG, JPEG, TIFF,
    BMP, ``.npy``, ``.npz``) relative to the config file, all at the operator's size. Files are
    read under explicit rules (see :mod:`stablerecon.data.files`): ``grey`` (colour to grey:
    ``luminance``, ``mean`` or ``refuse``), ``value_range`` (``error``: values must lie in
    ``[0, 1]`` after integer scaling; ``clip``; ``rescale``) and ``resize`` (``false``: a file of
    another size is an error; ``true``: resized). Every file is read when the config is
    validated, so a missing or bad file stops the audit before any work.
    ``tests``: names from :data:`stablerecon.audit.TESTS` (default: all;
    ``sampling`` sweeps ``options.rates`` of the operator's sampling: its mask's rate, or for
    ``radon`` and ``fanbeam`` the views, ``rate`` times those of a fully sampled scan). Example::

        name: my-audit
        operators: [{kind: fourier, size: 64, rate: 0.25}]
        methods:
          - {name: FIRENET, kind: firenet}
          - {name: TV, kind: tv}
        images: [shepp_logan, "ellipses:3", camera]
        tests: [accuracy, worst_case, random_noise, detail]
        options: {budgets: [0.01, 0.02, 0.05], steps: 20, restarts: 1}
    """

    name: RunName = "audit"
    operators: list[OperatorSpec] = Field(default_factory=lambda: [OperatorSpec()], min_length=1)
    methods: list[MethodSpec] = Field(min_length=1)
    images: list[str] = Field(default_factory=lambda: ["shepp_logan", "ellipses:0", "camera"], min_length=1)
    tests: list[Annotated[str, AfterValidator(check_test_name)]] = Field(default_factory=default_tests,
                                                                          min_length=1)
    options: AuditOptions = AuditOptions()
    resize: bool = False
    grey: Literal["luminance", "mean", "refuse"] = "luminance"
    value_range: Literal["error", "clip", "rescale"] = "error"
    _base_dir: Path | None = PrivateAttr(default=None)

    @field_validator("images")
    @classmethod
    def _known_images(cls, value: list[str]) -> list[str]:
        return check_image_names(value)

    @model_validator(mode="after")
    def _read_files(self, info: ValidationInfo) -> AuditConfig:
        base = (info.context or {}).get("base_dir")
        self._base_dir = Path(base).absolute() if base is not None else None
        if any(is_image_path(name) for name in self.images):
            for size in sorted({o.size for o in self.operators}):
                try:
                    for _, load in self.image_sources(size):  # read and check one file at a time
                        load()
                except ValueError as err:  # "images[i]: reason" -> field images.i
                    field, sep, reason = str(err).partition(": ")
                    match = re.fullmatch(r"images\[(\d+)\]", field)
                    if not sep or match is None:
                        raise
                    raise FieldErrors([(f"images.{match.group(1)}", reason)]) from None
        return self

    @property
    def base_dir(self) -> Path | None:
        """The folder relative image paths start from (the config file's; ``None``: the
        working directory)."""
        return self._base_dir

    def load_images(self, size: int) -> dict[str, Tensor]:
        """The images of this audit at ``size`` (:func:`stablerecon.recipes.build_images`):
        ``{name: (1, 1, size, size)}``, files named by their path relative to the config."""
        return build_images(self.images, size, base_dir=self._base_dir, resize=self.resize,
                            grey=self.grey, value_range=self.value_range)

    def image_sources(self, size: int) -> list[tuple[str, Callable[[], Tensor]]]:
        """``(name, load)`` per image of this audit at ``size``, nothing read yet
        (:func:`stablerecon.recipes.image_sources`: ranges and globs expanded)."""
        return image_sources(self.images, size, base_dir=self._base_dir, resize=self.resize,
                             grey=self.grey, value_range=self.value_range)

    def image_set(self, size: int) -> ImageSet:
        """The images of this audit at ``size`` as an :class:`~stablerecon.audit.ImageSet` that
        reads one chunk at a time."""
        return ImageSet.lazy(self.image_sources(size), where="images")


    @model_validator(mode="after")
    def _consistent(self) -> AuditConfig:
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"methods: names must be unique, got {names}")
        unknown = [t for t in self.options.tradeoff if t not in names]
        if unknown:
            raise ValueError(f"options.tradeoff names methods that are not audited: {unknown}")
        for test in self.tests:
            fixed = sorted({o.kind for o in self.operators if not o.sweepable})
            if TESTS.entry(test).meta.get("needs_sweep") and fixed:
                raise ValueError(f"tests: {test!r} sweeps sampling rates and does not apply to "
                                 f"operator kind {fixed[0]!r}")
        return self
