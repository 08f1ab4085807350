"""Pydantic models declared without importing pydantic: a command starts fast, errors stay pydantic's.

A `Model` subclass declares its fields as a pydantic model does (annotations, defaults, `Field`,
`BeforeValidator`, `WithJsonSchema`, `model_validator`, `field_validator`, all from this module).
Importing pydantic and building its validators costs more than everything else a command does on
a zoo network, so a value of a plain kind, exactly of its type (an int for an int, a float for a
float, a string, a literal, a list, a mapping, a nested model), is checked here, with the same
constraints and validator functions. Anything else (a value pydantic would coerce, say "3" for
an int, or any value that fails a check) goes to the pydantic model built from the same
declarations on first need: the result and every error message are pydantic's own.
"""

from __future__ import annotations

import copy
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

if typing.TYPE_CHECKING:
    from pydantic import BaseModel

_REQUIRED: Any = object()


class FieldInfo:
    """What `Field(...)` declares: a default (or none) and pydantic's keyword constraints."""

    def __init__(self, default: Any, constraints: dict[str, Any]) -> None:
        self.default = default
        self.constraints = constraints


def Field(default: Any = _REQUIRED, **constraints: Any) -> Any:
    """pydantic.Field: gt, ge, lt, le, min_length, max_length."""
    return FieldInfo(default, constraints)


@dataclass(frozen=True)
class BeforeValidator:
    """pydantic.BeforeValidator: `func` maps the raw value before the type is checked."""

    func: Callable[[Any], Any]


@dataclass(frozen=True)
class WithJsonSchema:
    """pydantic.WithJsonSchema: the JSON schema of a field whose type is `Any`."""

    json_schema: dict[str, Any]


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


@dataclass(frozen=True)
class _Validator:
    """A validator method as declared: `fields` empty for a model validator."""

    func: Any  # a function, or a classmethod for a field validator
    mode: str
    fields: tuple[str, ...] = ()


def model_validator(*, mode: Literal["after"]) -> Callable[[Any], Any]:
    """pydantic.model_validator(mode='after'): the method checks the whole instance."""
    return lambda func: _Validator(func, mode)


def field_validator(*fields: str, mode: Literal["before", "after", "wrap"] = "after") -> Callable[[Any], Any]:
    """pydantic.field_validator: a function of the value (a classmethod, or (value, handler) to wrap)."""
    return lambda func: _Validator(func, mode, fields)


class _Decline(Exception):
    """The fast check cannot vouch for a value: pydantic decides."""


def validation_error() -> type[Exception]:
    """pydantic's ValidationError, for an `except` clause (evaluated only once something raised)."""
    from pydantic import ValidationError

    return ValidationError


class Model:
    """Base of the declared models; `model_config` as pydantic's (extra fields are always forbidden)."""

    model_config: ClassVar[dict[str, Any]] = {"extra": "forbid"}
    model_fields: ClassVar[dict[str, FieldInfo]] = {}
    _validators: ClassVar[dict[str, _Validator]] = {}  # by name: inherited ones first, as pydantic runs them
    _own_validators: ClassVar[dict[str, _Validator]] = {}
    _checks: ClassVar[dict[str, Callable[[Any], Any]] | None] = None  # None: not compiled yet
    _checkable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = dict(cls.model_fields)
        for name, annotation in inspect.get_annotations(cls).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")) or name.startswith("_"):
                continue
            default = cls.__dict__.get(name, _REQUIRED)
            fields[name] = default if isinstance(default, FieldInfo) else FieldInfo(default, {})
        cls.model_fields = fields
        own = [(name, v) for name, v in cls.__dict__.items() if isinstance(v, _Validator)]
        for name, v in own:
            if not v.fields:  # a model validator stays callable as the method it is
                setattr(cls, name, v.func)
        cls._own_validators = dict(own)
        cls._validators = {**cls._validators, **cls._own_validators}
        cls._checks = None
        cls._checkable = True

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(type(self).model_validate(values).__dict__)

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        """An instance from a mapping of field values; pydantic's ValidationError if they are wrong."""
        try:
            return cls._fast(data)
        except _Decline:
            pass
        validated = _pydantic(cls).model_validate(data)
        return cls._from(validated)

    @classmethod
    def _from(cls, validated: BaseModel) -> Any:
        """An instance of `cls` holding what the pydantic model validated (nested models too)."""
        return cls.model_construct(**{name: _declared(getattr(validated, name)) for name in cls.model_fields})

    @classmethod
    def model_construct(cls, **values: Any) -> Any:
        """An instance with `values` and the defaults, unchecked (pydantic's model_construct)."""
        obj = cls.__new__(cls)
        for name, info in cls.model_fields.items():
            if name in values:
                obj.__dict__[name] = values[name]
            elif info.default is not _REQUIRED:  # a mutable default is copied, as pydantic does
                mutable = isinstance(info.default, (list, dict, set))
                obj.__dict__[name] = copy.deepcopy(info.default) if mutable else info.default
        return obj

    @classmethod
    def _fast(cls, data: Any) -> Any:
        """The instance, when every value is of a kind checked here and passes; else _Decline."""
        if cls._checks is None:
            cls._checks = _compile(cls)
            cls._checkable = cls._checks is not None
        if not cls._checkable or not isinstance(data, dict) or not data.keys() <= cls._checks.keys():
            raise _Decline
        values: dict[str, Any] = {}
        for name, check in cls._checks.items():
            if name in data:
                values[name] = check(data[name])
            elif cls.model_fields[name].default is _REQUIRED:
                raise _Decline
        obj = cls.model_construct(**values)
        for v in cls._validators.values():
            if not v.fields:
                try:
                    v.func(obj)
                except Exception:  # noqa: BLE001 - whatever it is, pydantic words it
                    raise _Decline from None
        return obj

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        """The JSON schema pydantic derives from the declarations."""
        return _pydantic(cls).model_json_schema()

    def model_copy(self, update: dict[str, Any] | None = None) -> Any:
        """A shallow copy with some fields replaced, unchecked (pydantic's model_copy)."""
        obj = copy.copy(self)
        obj.__dict__.update(update or {})
        return obj

    def model_dump(self, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as plain data (nested models as dicts)."""
        return {
            name: _dump(value, exclude_none)
            for name, value in self.__dict__.items()
            if name in self.model_fields and not (exclude_none and value is None)
        }

    def _values(self) -> tuple[Any, ...]:
        return tuple(self.__dict__.get(name) for name in self.model_fields)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        if not self.model_config.get("frozen"):
            raise TypeError(f"unhashable type: '{type(self).__name__}'")
        return hash((type(self), self._values()))

    def __setattr__(self, name: str, value: Any) -> None:
        if self.model_config.get("frozen"):
            raise TypeError(f"{type(self).__name__} is frozen")
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self.__dict__[name]!r}" for name in self.model_fields if name in self.__dict__)
        return f"{type(self).__name__}({shown})"


def _dump(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, Model):
        return value.model_dump(exclude_none)
    if isinstance(value, list):
        return [_dump(v, exclude_none) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, exclude_none) for k, v in value.items()}
    return value


def _declared(value: Any) -> Any:
    """A value pydantic validated, with its models turned back into the declared classes."""
    origin = _ORIGIN.get(type(value))
    if origin is not None:
        return origin._from(value)
    if isinstance(value, list):  # a container without models stays the object it is (the
        items = [_declared(v) for v in value]  # loader's, which knows its lines)
        return value if all(a is b for a, b in zip(items, value)) else items
    if isinstance(value, dict):
        mapping = {k: _declared(v) for k, v in value.items()}
        return value if all(mapping[k] is v for k, v in value.items()) else mapping
    return value


# --- the fast checks ----------------------------------------------------------------------------

_NUMBER_BOUNDS = {"gt": lambda v, b: v > b, "ge": lambda v, b: v >= b, "lt": lambda v, b: v < b, "le": lambda v, b: v <= b}
_LENGTH_BOUNDS = {"min_length": lambda v, b: len(v) >= b, "max_length": lambda v, b: len(v) <= b}


def _compile(cls: type[Model]) -> dict[str, Callable[[Any], Any]] | None:
    """Per field, a check that returns the value pydantic would return or raises _Decline; None
    when some field is of a kind not checked here (then pydantic checks every value)."""
    checks: dict[str, Callable[[Any], Any]] = {}
    try:
        hints = _field_types(cls)
        for name, info in cls.model_fields.items():
            check = _check(hints[name])
            if info.constraints:
                check = _constrained(check, info.constraints)
            checks[name] = _with_field_validators(cls, name, check)
    except (TypeError, NameError):
        return None
    return checks


def _field_types(cls: type[Model]) -> dict[str, Any]:
    """Each field's annotation, evaluated in the module of the class declaring it (as
    typing.get_type_hints, which also evaluates every ClassVar of every base, each time)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in inspect.get_annotations(klass).items():
            if name in cls.model_fields:
                found[name] = _evaluate(annotation, klass.__module__) if isinstance(annotation, str) else annotation
    return found


@functools.cache
def _evaluate(annotation: str, module: str) -> Any:
    return eval(annotation, vars(sys.modules[module]))  # an annotation in our own source


def _exact(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise _Decline
        return value

    return check


def _check(tp: Any) -> Callable[[Any], Any]:
    """The check of one annotation; TypeError for a kind not handled here."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return lambda value: value
    if tp in (bool, int, float, str):
        return _exact(tp)
    if tp is type(None):
        return _exact(type(None))
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp._fast
    if origin is Literal:
        allowed = {(type(a), a) for a in args}
        kinds = {type(a) for a in args}

        def literal(value: Any) -> Any:
            if type(value) not in kinds or (type(value), value) not in allowed:
                raise _Decline
            return value

        return literal
    if origin is Annotated:
        return _annotated(_check(args[0]), tp.__metadata__)
    if origin in (Union, types.UnionType):
        return _union([_check(a) for a in args])
    if origin is list:
        item = _check(args[0])
        return lambda value: [item(v) for v in value] if isinstance(value, list) else _decline()
    if origin is dict:
        key, item = _check(args[0]), _check(args[1])
        return lambda value: {key(k): item(v) for k, v in value.items()} if isinstance(value, dict) else _decline()
    raise TypeError(f"no fast check for {tp}")


def _decline() -> Any:
    raise _Decline


def _annotated(check: Callable[[Any], Any], metadata: tuple[Any, ...]) -> Callable[[Any], Any]:
    befores = [m.func for m in metadata if isinstance(m, BeforeValidator)]
    constraints: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, FieldInfo):
            constraints.update(m.constraints)
        elif not isinstance(m, (BeforeValidator, WithJsonSchema)):
            raise TypeError(f"no fast check for {m}")
    if len(befores) > 1:
        raise TypeError("several before-validators")
    if constraints:
        check = _constrained(check, constraints)
    if not befores:
        return check
    before = befores[0]

    def annotated(value: Any) -> Any:
        try:
            value = before(value)
        except Exception:  # noqa: BLE001 - whatever it is, pydantic words it
            raise _Decline from None
        return check(value)

    return annotated


def _constrained(check: Callable[[Any], Any], constraints: dict[str, Any]) -> Callable[[Any], Any]:
    tests: list[tuple[Callable[[Any, Any], bool], Any, Callable[[Any], bool]]] = []
    for key, bound in constraints.items():
        if key in _NUMBER_BOUNDS:
            tests.append((_NUMBER_BOUNDS[key], bound, lambda v: type(v) in (int, float)))
        elif key in _LENGTH_BOUNDS:
            tests.append((_LENGTH_BOUNDS[key], bound, lambda v: isinstance(v, (list, dict, str))))
        else:
            raise TypeError(f"no fast check for {key}")

    def constrained(value: Any) -> Any:
        value = check(value)
        for test, bound, applies in tests:
            if not applies(value) or not test(value, bound):
                raise _Decline
        return value

    return constrained


def _union(checks: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """Exactly one member must accept the value (pydantic's smart mode then picks the same one)."""

    def union(value: Any) -> Any:
        results = []
        for check in checks:
            try:
                results.append(check(value))
            except _Decline:
                continue
        if len(results) != 1:
            raise _Decline
        return results[0]

    return union


def _with_field_validators(cls: type[Model], name: str, check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    for v in cls._validators.values():
        if name not in v.fields:
            continue
        check = _validated(check, functools.partial(v.func.__func__, cls) if isinstance(v.func, classmethod) else v.func, v.mode)
    return check


def _validated(check: Callable[[Any], Any], call: Callable[..., Any], mode: str) -> Callable[[Any], Any]:
    def validated(value: Any) -> Any:
        try:
            if mode == "before":
                return check(call(value))
            if mode == "after":
                return call(check(value))
            return call(value, check)
        except _Decline:
            raise
        except Exception:  # noqa: BLE001 - whatever it is, pydantic words it
            raise _Decline from None

    return validated


# --- the pydantic models, built on first need ---------------------------------------------------

_MODELS: dict[type, Any] = {}  # declared class -> its pydantic model
_ORIGIN: dict[type, type] = {}  # pydantic model -> declared class


def _pydantic(cls: type[Model]) -> Any:
    """The pydantic model of a declared class, built once (its bases' models are its bases)."""
    if cls in _MODELS:
        return _MODELS[cls]
    import pydantic

    parents = tuple(_pydantic(b) for b in cls.__bases__ if issubclass(b, Model) and b is not Model)
    hints = typing.get_type_hints(cls, include_extras=True)
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    if not parents or "model_config" in cls.__dict__:
        namespace["model_config"] = pydantic.ConfigDict(**cls.model_config)  # type: ignore[typeddict-item]
    annotations: dict[str, Any] = {}
    for name in inspect.get_annotations(cls):
        if name not in cls.model_fields or name.startswith("_"):
            continue
        annotations[name] = _real(hints[name])
        info = cls.model_fields[name]
        if info.constraints and info.default is _REQUIRED:
            namespace[name] = pydantic.Field(**info.constraints)
        elif info.constraints:
            namespace[name] = pydantic.Field(info.default, **info.constraints)
        elif info.default is not _REQUIRED:
            namespace[name] = info.default
    namespace["__annotations__"] = annotations
    for name, v in cls._own_validators.items():
        if v.fields:
            namespace[name] = pydantic.field_validator(*v.fields, mode=v.mode)(v.func)  # type: ignore[call-overload]
        else:
            namespace[name] = pydantic.model_validator(mode="after")(_after(v.func))
    model = type(pydantic.BaseModel)(cls.__name__, parents or (pydantic.BaseModel,), namespace)
    _MODELS[cls] = model
    _ORIGIN[model] = cls
    return model


def _after(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A model validator run on the declared class's instance of what pydantic validated."""

    def after(model: Any) -> Any:
        func(_ORIGIN[type(model)]._from(model))
        return model

    return after


def _real(tp: Any) -> Any:
    """An annotation with this module's stand-ins replaced by pydantic's own."""
    import pydantic

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, Model):
        return _pydantic(tp)
    if origin is Annotated:
        metadata = []
        for m in tp.__metadata__:
            if isinstance(m, FieldInfo):
                metadata.append(pydantic.Field(**m.constraints))
            elif isinstance(m, BeforeValidator):
                metadata.append(pydantic.BeforeValidator(m.func))
            elif isinstance(m, WithJsonSchema):
                metadata.append(pydantic.WithJsonSchema(m.json_schema))
            else:
                metadata.append(m)
        return Annotated[(_real(args[0]), *metadata)]  # type: ignore[return-value]
    if origin in (Union, types.UnionType):
        return Union[tuple(_real(a) for a in args)]  # noqa: UP007
    if origin is list:
        return list[_real(args[0])]  # type: ignore[misc]
    if origin is dict:
        return dict[_real(args[0]), _real(args[1])]  # type: ignore[misc]
    return tp
