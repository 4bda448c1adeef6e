"""The shape of seam.toml: the base of every table read from it, and validation errors in one readable line.

Each table is a pydantic model deriving from `Table`: unknown keys are refused (a misspelt `threshhold` must not
be silently ignored), numbers, flags and integers are strict (`enabled = 1` or `auto = "high"` is an error, not
a guess), and every field has its default, so an empty or missing table means "the defaults". The tables live
beside the code they configure (`bot.policy.settings`, `bot.config`); `validate()` turns pydantic's errors into
a `ConfigError` such as `triggers.angry_tone has an unknown key 'threshhold' (known: enabled, threshold,
profanity)` or `triggers.repeat.limit must be greater than or equal to 1, got 0`.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from bot.errors import ConfigError

T = TypeVar("T", bound=BaseModel)

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_MESSAGES = {
    "float_type": "must be a number", "float_parsing": "must be a number",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "bool_type": "must be true or false",
    "bool_parsing": "must be true or false", "string_type": "must be a string", "list_type": "must be a list",
    "tuple_type": "must be a list", "dict_type": "must be a table", "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}


class Table(BaseModel):
    """One table of seam.toml (or a value inside one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def key_path(loc: tuple[Any, ...]) -> str:
    """A location as it is written in TOML: `thresholds.topics."billing dispute".auto`, `exclusions.rules[1]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part) if _BARE_KEY.match(str(part)) else '"' + str(part).replace('"', '\\"') + '"'
            out += ("." if out else "") + name
    return out


def _table_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the table at `loc` (field names, dict keys, list indexes), to list its known keys."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if _is_table(current):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:
            args = typing.get_args(current)  # dict[str, X] or list[X] / tuple[X, ...]: the entry's type
            current = args[-1] if typing.get_origin(current) in (dict, Mapping) else (args[0] if args else None)
    current = _unwrap(current)
    return current if _is_table(current) else None


def _is_table(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` as X."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def _describe(model: type[BaseModel], error: Mapping[str, Any], where: str) -> str:
    loc = tuple(error.get("loc") or ())
    path = key_path(loc)
    if error["type"] == "extra_forbidden":
        parent = _table_at(model, loc[:-1])
        known = ", ".join(parent.model_fields) if parent is not None else "none"
        return f"{key_path(loc[:-1]) or where} has an unknown key {str(loc[-1])!r} (known: {known})"
    message = _MESSAGES.get(error["type"])
    if message is None:
        message = str(error.get("msg") or "is not valid")
        message = message.removeprefix("Value error, ").replace("Input should be ", "must be ", 1)
        if not message.startswith("must "):
            return f"{path or where}: {message}"
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    return f"{path or where} {message}, got {shown}"


def validate(model: type[T], data: Any, *, where: str) -> T:
    """`data` (a parsed TOML document or table) as `model`; ConfigError with one line on the first problem.
    `where` names the whole document in messages about its top level (e.g. the file's path)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(model, exc.errors()[0], where)) from None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: Any) -> float:
    """A duration as written in seam.toml — a number of seconds, or "30s", "15m", "4h", "1d" — in seconds."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is not None:
        return float(match.group(1)) * _SECONDS[(match.group(2) or "s").lower()]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError('must be seconds or a duration such as "30s", "15m", "4h" or "1d"')
    return float(value)


# A field holding a duration: `after: Duration = 900.0` reads `after = "15m"` (or 900) as 900 seconds.
Duration = Annotated[float, BeforeValidator(seconds)]
