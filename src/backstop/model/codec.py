"""JSON-ready dicts for commands and events, and back. Decimals travel as strings.

The class tag is the key ``_type``, which no field uses (``InsuranceFundChanged`` has OKX's own
``type`` field).
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from backstop.model import commands, enums, events


def _field_types(cls: type) -> tuple[tuple[str, Any], ...]:
    """``(name, annotation)`` of each field of a dataclass command or a NamedTuple event."""
    if is_dataclass(cls):
        return tuple((f.name, f.type) for f in fields(cls))
    return tuple(cls.__annotations__.items())


_TYPES: dict[str, type] = {
    cls.__name__: cls
    for module in (commands, events)
    for cls in vars(module).values()
    if isinstance(cls, type) and (is_dataclass(cls) or hasattr(cls, "_fields"))
}
_FIELDS = {cls: _field_types(cls) for cls in _TYPES.values()}


TAG = "_type"
_ENUMS = ("Side", "OrderType", "MarginMode", "SelfTradeMode")


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass command or event as a plain dict tagged with its type name."""
    out: dict[str, Any] = {TAG: type(obj).__name__}
    for name, _annotation in _FIELDS[type(obj)]:
        out[name] = _plain(getattr(obj, name))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    return value


def from_dict(data: dict[str, Any]) -> Any:
    """Rebuild a command or event from :func:`to_dict` output."""
    cls = _TYPES[data[TAG]]
    kwargs = {}
    for name, annotation in _FIELDS[cls]:
        if name in data:
            kwargs[name] = _typed(annotation, data[name])
    return cls(**kwargs)


def _typed(annotation: Any, value: Any) -> Any:
    text = str(annotation)
    if value is None:
        return None
    if "Decimal" in text:
        return Decimal(value)
    for enum_name in _ENUMS:
        if text.startswith(enum_name):
            return getattr(enums, enum_name)(value)
    return value


def dumps(obj: Any) -> str:
    """Canonical JSON of a command or event (sorted keys, no spaces)."""
    return json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Any:
    return from_dict(json.loads(text))
