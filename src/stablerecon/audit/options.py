"""The settings of the stability audit (:class:`AuditOptions`), validated before any work.

These are the ``options:`` of an audit config (:class:`stablerecon.config.AuditConfig`) and the
``options`` argument of :func:`stablerecon.audit.run`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from ..config_base import (
    FieldErrors,
    NonNegativeFloat,
    NonNegativeInt,
    NonzeroFloat,
    PositiveFloat,
    PositiveInt,
    Rate,
    StrictModel,
)
from ..operators.perturbations import PERTURBATIONS

__all__ = ["AuditOptions", "KernelTestConfig", "DetailTestConfig", "OperatorTestConfig"]


class KernelTestConfig(StrictModel):
    """The kernel test's detail: a solid disc of ``diameter`` pixels and ``contrast`` at
    ``position`` (default: the image centre), split into its kernel part ``z0`` (exact
    hallucination identity) and a near-kernel ``z`` with ``||A z|| / ||z|| = ratio`` (the
    troublesome-kernel bound). ``target``: the accuracy required of the kernel part,
    ``||A z0|| <= target ||z0||`` (below ``ratio``); loosen it for a badly conditioned operator
    whose kernel projection stalls (radial NUFFT, multi-coil SENSE: about ``2e-4`` reached at
    128 x 128), the ratio reached is reported as ``kernel_ratio``."""

    diameter: Annotated[int, Field(ge=1, strict=True)] = 9
    contrast: NonzeroFloat = 1.0
    position: tuple[int, int] | None = None
    ratio: Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)] = 0.1
    target: Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)] = 1e-6

    @model_validator(mode="after")
    def _target_below_ratio(self) -> KernelTestConfig:
        if self.target >= self.ratio:
            raise ValueError(f"kernel.target ({self.target:g}) must be below kernel.ratio ({self.ratio:g}): "
                             f"the kernel part must be closer to the kernel than the near-kernel detail")
        return self


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


class OperatorTestConfig(StrictModel):
    """The ``operator`` test (perturbed forward operators, the inexact-input setting).

    ``family``: a name of :data:`~stablerecon.operators.perturbations.PERTURBATIONS`
    (``kspace_jitter``, ``additive``, ``kernel``, ``angle_offset``, ``kspace_drop``, ...);
    ``None`` picks one per operator (``SubsampledFourier``: ``kspace_jitter`` if its mask samples
    whole lines, else ``additive``; ``Blur``: ``kernel``; ``Radon``: ``angle_offset``; any other:
    ``additive``). The family's own options sit beside it (``{family: additive, rank: 2}``) and
    are validated by the family's params model. ``budgets``: relative operator budgets
    ``||A_E - A|| <= r ||A||``, each in ``(0, 1]`` (default: the audit's ``budgets``, which must
    then lie in ``(0, 1]``). ``cases``: ``given`` (data ``y = A x``, the method given ``A_E``)
    and/or ``mismatch`` (data ``y_E = A_E x``, the method given ``A``). ``steps``, ``restarts``,
    ``draws``: effort of the search and random draws per budget (default: the audit's).
    """

    model_config = ConfigDict(extra="allow")

    family: str | None = None
    budgets: list[Rate] | None = Field(default=None, min_length=1)
    cases: list[Literal["given", "mismatch"]] = Field(default_factory=lambda: ["given", "mismatch"],
                                                        min_length=1)
    steps: PositiveInt | None = None
    restarts: PositiveInt | None = None
    draws: PositiveInt | None = None

    @model_validator(mode="after")
    def _family_options(self) -> OperatorTestConfig:
        extra = dict(self.__pydantic_extra__ or {})
        if len(set(self.cases)) != len(self.cases):
            raise FieldErrors([("cases", f"must be distinct, got {self.cases}")])
        if self.family is None:
            if extra:
                raise FieldErrors([(k, f"is an option of a perturbation family: set 'family' (one of "
                                   f"{list(PERTURBATIONS)})") for k in sorted(extra)])
            return self
        if self.family not in PERTURBATIONS:
            raise FieldErrors([("family", PERTURBATIONS.unknown(self.family))])
        params = PERTURBATIONS.params_of(self.family, extra)
        object.__setattr__(self, "__pydantic_extra__", params.model_dump())
        return self

    @property
    def family_options(self) -> dict[str, Any]:
        """The family's own options (validated, defaults filled in)."""
        return dict(self.__pydantic_extra__ or {})


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
    perturbation. ``operator``: the ``operator`` test (:class:`OperatorTestConfig`). ``rates``:
    sampling rates of the sweep. ``seed``: every random draw (the
    same for every method, so methods see the same noise and starts; each image draws from its
    own generator, so its numbers do not depend on the batch it is in). ``batch_size``: images
    per unit of work and per forward pass (a resumed audit must keep it: it is part of the
    fingerprint). ``worst_images``: how many of the worst images per method the report shows
    in its galleries. ``tradeoff``: method
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
    operator: OperatorTestConfig = OperatorTestConfig()
    rates: list[Rate] = Field(
        default_factory=lambda: [0.125, 0.25, 0.4, 0.55], min_length=1)
    seed: NonNegativeInt = 0
    batch_size: PositiveInt = 8
    worst_images: PositiveInt = 3
    tradeoff: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _report_budget_is_a_budget(self) -> AuditOptions:
        if len(self.tradeoff) == 1 or len(set(self.tradeoff)) != len(self.tradeoff):
            raise ValueError(f"tradeoff must list two or more distinct method names, got {self.tradeoff}")
        if self.report_budget not in self.budgets:
            raise ValueError(f"report_budget = {self.report_budget} must be one of budgets = {self.budgets}")
        return self
