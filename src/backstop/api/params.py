"""Reading request parameters into exact values, or raising :class:`OkxError` with OKX's code.

Missing required parameters are 50014; malformed values are 51000. Floats in JSON bodies are
refused (numbers must travel as strings, as OKX sends them); integers are accepted.

Every decimal parameter follows one grammar, :data:`DECIMAL_GRAMMAR`: ASCII digits only, an
optional sign, an optional point, at most :data:`MAX_INT_DIGITS` digits before the point and
:data:`MAX_FRACTION_DIGITS` after it, an optional exponent of at most two digits, and a
magnitude below :data:`MAX_MAGNITUDE`; nothing else (no spaces, ``_`` separators, Unicode
digits, ``NaN`` or ``Infinity``). Integer parameters (ids, cursors, ``limit``) are ASCII
digits and at most :data:`MAX_UINT` (a signed 64-bit integer), so no request can make the
server parse a number of unbounded length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from backstop.api.wire import OkxError
from backstop.model.catalogue import Catalogue
from backstop.model.instrument import Instrument
from backstop.numeric import NumericError, parse_decimal

E = TypeVar("E", bound=Enum)
MAX_INT_DIGITS = 18
MAX_FRACTION_DIGITS = 18
MAX_MAGNITUDE = Decimal(10) ** 15
"""Exclusive bound on the absolute value of any decimal parameter (sizes, prices, leverage,
amounts); the engine range-checks each field further."""
DECIMAL_GRAMMAR = re.compile(
    rf"[+-]?(?:[0-9]{{1,{MAX_INT_DIGITS}}}(?:\.[0-9]{{0,{MAX_FRACTION_DIGITS}}})?"
    rf"|\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})(?:[eE][+-]?[0-9]{{1,2}})?")
MAX_UINT = 2**63 - 1


_DECODER = json.JSONDecoder(parse_float=Decimal)
"""``json.loads(raw, parse_float=Decimal)`` without building a decoder per call."""


def parse_json(raw: bytes) -> Any:
    """A JSON body: 50000 when empty, 50002 when not JSON (or nested too deep for the parser).
    Floats stay exact decimals."""
    if not raw.strip():
        raise OkxError("50000", "Body can not be empty")
    try:
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise OkxError("50002", "Json data format error") from exc


def json_object(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise OkxError("50002", "Json data format error")
    return body


def json_list(raw: bytes, limit: int = 20) -> list[dict[str, Any]]:
    """A batch body: a non-empty array of objects, at most ``limit`` long."""
    body = parse_json(raw)
    if not isinstance(body, list) or not body or not all(isinstance(i, dict) for i in body):
        raise OkxError("50002", "Json data format error")
    if len(body) > limit:
        raise OkxError("51000", f"Parameter batch error: at most {limit} items")
    return body


def required(params: Mapping[str, Any], name: str) -> str:
    """A non-empty string parameter (50014 when missing)."""
    value = params.get(name)
    if value is None or value == "":
        raise OkxError("50014", f"Parameter {name} can not be empty")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise OkxError("51000", f"Parameter {name} error")
    return str(value)


def optional(params: Mapping[str, Any], name: str, default: str = "") -> str:
    value = params.get(name)
    if value is None or value == "":
        return default
    return required(params, name)


def decimal_param(params: Mapping[str, Any], name: str, default: str | None = None) -> Decimal:
    """A finite decimal parameter; a JSON float arrives as ``Decimal`` through
    :func:`parse_json`, so only its text is used."""
    value = params.get(name)
    if (value is None or value == "") and default is not None:
        value = default
    if value is None or value == "":
        raise OkxError("50014", f"Parameter {name} can not be empty")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise OkxError("51000", f"Parameter {name} error")
    return strict_decimal(str(value), name)


def strict_decimal(text: str, name: str) -> Decimal:
    """``text`` read by :data:`DECIMAL_GRAMMAR` and bounded by :data:`MAX_MAGNITUDE`, or 51000."""
    if DECIMAL_GRAMMAR.fullmatch(text) is None:
        raise OkxError("51000", f"Parameter {name} error")
    try:
        value = parse_decimal(text)
    except NumericError as exc:
        raise OkxError("51000", f"Parameter {name} error") from exc
    if abs(value) >= MAX_MAGNITUDE:
        raise OkxError("51000", f"Parameter {name} error")
    return value


def enum_param(params: Mapping[str, Any], name: str, enum: type[E], default: E | None = None) -> E:
    text = optional(params, name) if default is not None else required(params, name)
    if text == "" and default is not None:
        return default
    try:
        return enum(text)
    except ValueError as exc:
        raise OkxError("51000", f"Parameter {name} error") from exc


def bool_param(params: Mapping[str, Any], name: str) -> bool:
    """OKX booleans arrive as ``true``/``false`` (JSON or strings)."""
    value = params.get(name, False)
    if isinstance(value, bool):
        return value
    if value in ("true", "false", ""):
        return value == "true"
    raise OkxError("51000", f"Parameter {name} error")


def instrument(catalogue: Catalogue, params: Mapping[str, Any], name: str = "instId") -> Instrument:
    """The instrument named by ``instId`` (51001 when unknown)."""
    inst = catalogue.get(required(params, name))
    if inst is None:
        raise OkxError("51001", "Instrument ID does not exist")
    return inst


def limit_param(params: Mapping[str, Any], default: int = 100, most: int = 100) -> int:
    text = optional(params, "limit", str(default))
    if not is_uint(text) or not 0 < int(text) <= most:
        raise OkxError("51000", "Parameter limit error")
    return int(text)


def is_uint(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts ``²`` and ``٣``, which ``int`` refuses
    or reads as other numbers), at most :data:`MAX_UINT`; the length is checked before any
    conversion."""
    return 0 < len(text) <= 19 and text.isascii() and text.isdigit() and int(text) <= MAX_UINT


def int_param(params: Mapping[str, Any], name: str) -> int | None:
    """An optional non-negative integer parameter (ids, ms cursors)."""
    text = optional(params, name)
    if text == "":
        return None
    if not is_uint(text):
        raise OkxError("51000", f"Parameter {name} error")
    return int(text)
