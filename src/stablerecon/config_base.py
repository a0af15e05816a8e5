"""The machinery of every YAML config: a strict pydantic base, field types, validation with
errors that name each field, and YAML loading.

Every model derives from :class:`StrictModel`, which forbids unknown keys, so a typo fails
loudly with the offending field named, e.g. ``train.lrr: Extra inputs are not permitted``.
:func:`validate` and :func:`load_yaml` raise :class:`ConfigError` (a ``ValueError``) listing
every problem as ``field: message``. The models themselves live next to what they configure
(:mod:`stablerecon.config` gathers them all).

This module imports nothing of stablerecon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ConfigError",
    "FieldErrors",
    "StrictModel",
    "PositiveInt",
    "NonNegativeInt",
    "NonNegativeFloat",
    "PositiveFloat",
    "NonzeroFloat",
    "Rate",
    "OddInt",
    "RunName",
    "validate",
    "config_of",
    "load_yaml",
    "format_errors",
]

#: Tags of discriminated unions that :func:`format_errors` drops from error paths
#: (``model.itnet.unet.width`` reads ``model.unet.width``); models register theirs here.
UNION_TAGS: dict[str, set[str]] = {}

class ConfigError(ValueError):
    """An invalid config; the message lists each offending field as ``path: problem``."""


class FieldErrors(ValueError):
    """Errors of nested fields found inside a validator, as ``(path, message)`` pairs; pydantic
    reports it at the validator's location and :func:`format_errors` appends each ``path``."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.errors))


class StrictModel(BaseModel):
    """Base of all configs: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
Rate = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
RunName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
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


M = TypeVar("M", bound=BaseModel)


def format_errors(err: ValidationError) -> str:
    """One line ``  path: message`` per error of ``err``."""
    lines = []
    for e in err.errors():
        # drop the union tag pydantic inserts after a union field (model.itnet.unet.width ->
        # model.unet.width); a tag is always followed by a field, so a field named like a tag stays
        parts = [str(p) for p in e["loc"]]
        if len(parts) > 2 and parts[1] in UNION_TAGS.get(parts[0], ()):
            del parts[1]
        nested = (e.get("ctx") or {}).get("error")
        if isinstance(nested, FieldErrors):
            for path, msg in nested.errors:
                lines.append(f"  {'.'.join([*parts, path] if path else parts) or '(config)'}: {msg}")
            continue
        loc = ".".join(parts) or "(config)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def validate(model: type[M], data: Any, source: str = "config", base_dir: str | Path | None = None) -> M:
    """Validate ``data`` (a mapping) as ``model``; raise :class:`ConfigError` naming every bad
    field. ``base_dir``: the folder relative paths in the config are taken from (the config
    file's folder; default the current folder), passed to validators as the context
    ``{"base_dir": ...}``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return model.model_validate(data, context={"base_dir": Path(base_dir) if base_dir else Path(".")})
    except ValidationError as err:
        raise ConfigError(f"invalid {source}:\n{format_errors(err)}") from None


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
    return validate(model, data, source=f"config {str(path)!r}", base_dir=path.parent)
