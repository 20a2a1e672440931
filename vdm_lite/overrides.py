"""``--key=value`` overrides for (nested) dataclass configs, and JSON round trips.

    cfg = apply_overrides(cfg, ["steps=200", "model.dropout=0.1", "model.channel_mults=1,2,4"])

Values are parsed by the field's annotated type: ``int``, ``float``, ``bool``
(``true/false/1/0/yes/no``), ``str``, tuples of those (comma separated), and ``X | None``
(``none`` gives ``None``). An unknown key is an error that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

__all__ = ["apply_overrides", "parse_value", "to_dict", "from_dict"]


def _strip_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), True
    return tp, False


def parse_value(text: str, tp: Any) -> Any:
    """Parse ``text`` as a value of type ``tp`` (see the module docstring)."""
    tp, optional = _strip_optional(tp)
    if optional and text.strip().lower() in {"none", "null", ""}:
        return None
    if tp is bool:
        low = text.strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if tp in (int, float, str):
        return tp(text)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        args = typing.get_args(tp)
        item = args[0] if args else str
        parts = [p for p in text.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",") if p.strip()]
        vals = [parse_value(p.strip(), item) for p in parts]
        return tuple(vals) if origin is tuple else vals
    if tp is Any:
        return text
    raise ValueError(f"cannot parse a value of type {tp} from the command line")


def apply_overrides(cfg: Any, overrides: list[str] | dict[str, Any]) -> Any:
    """A copy of dataclass ``cfg`` with ``key=value`` overrides applied (dotted keys reach
    nested dataclasses). ``overrides`` may also be a dict of already-typed values."""
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    for key, value in items:
        cfg = _set(cfg, key.replace("-", "_").split("."), value, key)
    return cfg


def _split(text: str) -> tuple[str, str]:
    text = text[2:] if text.startswith("--") else text
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value")
    k, v = text.split("=", 1)
    return k.strip(), v


def _set(cfg: Any, path: list[str], value: Any, full: str) -> Any:
    if not dataclasses.is_dataclass(cfg):
        raise ValueError(f"cannot set {full!r}: {type(cfg).__name__} has no fields")
    hints = typing.get_type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    head = path[0]
    if head not in names:
        raise ValueError(f"unknown config key {full!r}; valid keys at this level: {', '.join(names)}")
    if len(path) > 1:
        return dataclasses.replace(cfg, **{head: _set(getattr(cfg, head), path[1:], value, full)})
    if isinstance(value, str) and hints[head] is not str:
        try:
            value = parse_value(value, hints[head])
        except ValueError as e:
            raise ValueError(f"bad value for {full!r}: {e}") from None
    return dataclasses.replace(cfg, **{head: value})


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) dataclass (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) dataclass from :func:`to_dict` output; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown keys for {cls.__name__}: {sorted(unknown)}")
    kw = {}
    for k, v in data.items():
        tp, _ = _strip_optional(hints[k])
        if dataclasses.is_dataclass(tp) and isinstance(v, dict):
            v = from_dict(tp, v)
        elif typing.get_origin(tp) is tuple and isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    return cls(**kw)
