"""One table per extension point: a name, the object it stands for, a one-line summary and the
config fields that apply.

stablerecon has three extension points, each a :class:`Registry` of its own:

- operator kinds, :data:`stablerecon.operators.kinds.OPERATOR_KINDS` (``kind:`` of an operator
  in a config), entries build an operator from its validated fields;
- method kinds, :data:`stablerecon.recipes.METHODS` (``kind:`` of a method in an audit config),
  entries build a method ``method(y, op) -> x_hat``;
- audit tests, :data:`stablerecon.audit.TESTS` (``tests:`` of an audit config), entries run one
  test of one method on all images.

Config validation, the builders and ``stablerecon list`` all read the same table, so adding a
kind is one :meth:`Registry.register` call::

    from stablerecon.config_base import PositiveFloat, StrictModel
    from stablerecon.recipes import METHODS

    class ScaledAdjoint(StrictModel):
        factor: PositiveFloat = 1.0

    @METHODS.register("scaled_adjoint", summary="factor * A^* y", params=ScaledAdjoint)
    def _scaled_adjoint(params, op):
        return lambda y, op: params.factor * op.A_adjoint(y).real

after which ``{name: mine, kind: scaled_adjoint, factor: 0.5}`` is a valid method of an audit
config and ``stablerecon list`` shows it.

This module imports nothing of stablerecon but :mod:`stablerecon.config_base`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

from .config_base import FieldErrors, StrictModel

__all__ = ["Entry", "Registry", "NoParams", "KindSpec"]

T = TypeVar("T")


class NoParams(StrictModel):
    """The parameters of a kind that takes none."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One row of a :class:`Registry`: ``name``, the registered ``value`` (a builder or a test
    function), a one-line ``summary``, the pydantic model of its config ``params`` and free
    ``meta`` data the extension point defines (e.g. ``complex=True`` for an operator kind)."""

    name: str
    value: T
    summary: str
    params: type[StrictModel] = NoParams
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fields(self) -> list[str]:
        """The config fields that apply to this kind (besides ``name`` and ``kind``)."""
        return list(self.params.model_fields)


class Registry(Mapping[str, T]):
    """An ordered table ``name -> value`` (``registry[name]``) with a summary and a params
    model per entry (``registry.entry(name)``).

    Parameters
    ----------
    what:
        What an entry is, for messages (``"method kind"``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        value: T | None = None,
        *,
        summary: str,
        params: type[StrictModel] = NoParams,
        replace: bool = False,
        **meta: Any,
    ) -> Any:
        """Add ``name``; used as ``register(name, value, summary=...)`` or as a decorator
        ``@register(name, summary=...)``. ``replace=True`` overwrites an existing entry (an
        existing name is otherwise a ``ValueError``)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{self.what} names must be identifiers (letters, digits, _), got {name!r}")
        if not isinstance(summary, str) or not summary.strip():
            raise ValueError(f"{self.what} {name!r} needs a one-line summary")
        if not (isinstance(params, type) and issubclass(params, StrictModel)):
            raise TypeError(f"{self.what} {name!r}: params must be a StrictModel subclass, got {params!r}")
        if name in self._entries and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered (pass replace=True to overwrite)")

        def add(obj: T) -> T:
            self._entries[name] = Entry(name, obj, summary.strip(), params, dict(meta))
            return obj

        return add(value) if value is not None else add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a ``KeyError`` naming the choices if it is not registered)."""
        self.entry(name)
        del self._entries[name]

    def entry(self, name: str) -> Entry[T]:
        """The :class:`Entry` of ``name``; a ``KeyError`` that lists the choices otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise KeyError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for an unknown ``name``."""
        return f"unknown {self.what} {name!r}; choose from {list(self._entries)}"

    def entries(self) -> list[Entry[T]]:
        """Every entry, in registration order."""
        return list(self._entries.values())

    def params_of(self, name: str, values: Mapping[str, Any], context: Any = None) -> StrictModel:
        """``values`` validated by the params model of ``name``; a
        :class:`~stablerecon.config_base.FieldErrors` (a ``ValueError``) that names each field that
        does not apply or is invalid otherwise."""
        entry = self.entry(name)
        try:
            return entry.params.model_validate(dict(values), context=context)
        except ValidationError as err:
            problems = []
            for e in err.errors():
                loc = ".".join(str(p) for p in e["loc"])
                msg = e["msg"].removeprefix("Value error, ")
                if e["type"] == "extra_forbidden":
                    msg += f" (not a field of {self.what} {name!r}; its fields: {entry.fields})"
                problems.append((loc, msg))
            raise FieldErrors(problems) from None

    def __getitem__(self, name: str) -> T:
        return self.entry(name).value

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self._entries)})"



class KindSpec(StrictModel):
    """Base of a config item chosen by ``kind`` from a :class:`Registry` (operators, methods).

    The fields a subclass declares are common to all kinds; every other key is a parameter of
    the chosen kind, validated by that kind's ``params`` model (unknown keys are errors naming
    the field). The validated parameters, defaults filled in, are attributes of the spec
    (``spec.lam``; a field of another kind of the registry reads as ``None``) and :attr:`params`
    returns them as their model.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    registry: ClassVar[Registry[Any]]

    kind: str

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in cls.registry:
            raise ValueError(cls.registry.unknown(value))
        return value

    @model_validator(mode="after")
    def _kind_params(self, info: ValidationInfo) -> KindSpec:
        extra = self.__pydantic_extra__ or {}
        params = self.registry.params_of(self.kind, extra, context=info.context)
        own = set(type(self).model_fields)
        clash = own & set(type(params).model_fields)
        if clash:  # a kind's params may not shadow the common fields
            raise ValueError(f"{self.registry.what} {self.kind!r} redefines common fields {sorted(clash)}")
        object.__setattr__(self, "__pydantic_extra__", params.model_dump())
        return self

    def __getattr__(self, name: str) -> Any:
        # a field of another kind of the same registry reads as None (``spec.weights`` of a solver)
        if not name.startswith("_") and any(name in e.params.model_fields for e in self.registry.entries()):
            extra = self.__pydantic_extra__ or {}
            return extra.get(name)
        return super().__getattr__(name)  # type: ignore[misc]

    @property
    def params(self) -> StrictModel:
        """The kind's parameters as its params model."""
        return self.registry.entry(self.kind).params.model_validate(self.__pydantic_extra__ or {})
