"""Typed setting values: `opt()` declares a key (default, doc, checks); converters turn TOML values into
the declared types (paths hang from the settings file's folder); `parse_override` reads `--set`.

The settings schema itself (the sections and their keys) lives in `pipeline/settings.py`.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

from pipeline.errors import Problem, SettingsError


def opt(
    default: Any,
    doc: str,
    *,
    choices: tuple | None = None,
    min: float | None = None,
    max: float | None = None,
    factory: Any = None,
) -> Any:
    """Declare a setting: its default, a one-line doc, and optional checks."""
    meta = {"doc": doc, "choices": choices, "min": min, "max": max}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split `section.key=value`; the value is read as TOML when it parses, else taken as a string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise SettingsError(
            Problem(
                "--set", f"{text!r} is not section.key=value", "write e.g. --set feed.zero_stock=awaiting"
            )
        )
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    raise ValueError(f"expected true or false, got {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a whole number, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None


def _to_str(value: Any) -> str:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {value!r}")


_SCALARS: dict[Any, Any] = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _convert(value: Any, tp: Any, base_dir: Path) -> Any:
    """Convert a TOML value to the field type; raise ValueError with a readable message."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or value == "":
            return None
        return _convert(value, args[0], base_dir)
    if tp in _SCALARS:
        return _SCALARS[tp](value)
    if tp is Path:
        if not isinstance(value, str):
            raise ValueError(f"expected a path (text), got {value!r}")
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else (base_dir / path)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        return [_convert(v, item_tp, base_dir) for v in value]
    raise ValueError(f"unsupported type {_type_name(tp)}")


def _check(value: Any, meta: typing.Mapping[str, Any]) -> str | None:
    choices, lo, hi = meta.get("choices"), meta.get("min"), meta.get("max")
    if choices and value not in choices:
        return f"must be one of {', '.join(map(repr, choices))}, got {value!r}"
    if lo is not None and value is not None and value < lo:
        return f"must be at least {lo}, got {value!r}"
    if hi is not None and value is not None and value > hi:
        return f"must be at most {hi}, got {value!r}"
    return None
