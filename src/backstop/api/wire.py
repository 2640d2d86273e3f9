"""OKX wire conventions: the response envelope, error codes with their HTTP status, and
number formatting (every number a string; prices from ticks, sizes from lots, money from
1e-8 units).

Responses are rendered by :class:`OkxResponse` with orjson: the same bytes as Starlette's
``json.dumps`` rendering for what the API answers (strings, integers, booleans, ``null``,
lists, string-keyed objects). What orjson refuses (a ``Decimal``, a non-string key, an integer
beyond 64 bits) goes to Starlette's rendering as before, so a number that was not formatted
as a string is still an error (50026), never a float on the wire."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse

from backstop.model.instrument import Instrument
from backstop.numeric import fmt_decimal, money_str

_HTTP_STATUS = {"50000": 400, "50002": 400, "50014": 400, "51000": 400, "50011": 429,
                "50001": 503, "50004": 503, "404": 404}
"""HTTP statuses other than 200; auth codes 50100–50199 are 401 (see :func:`http_status`)."""


class OkxError(Exception):
    """A request-level failure answered with OKX's code, message and HTTP status."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


def http_status(code: str) -> int:
    """OKX's HTTP status for an error code (200 for business refusals)."""
    if code.startswith("501") and len(code) == 5:
        return 401
    return _HTTP_STATUS.get(code, 200)


class OkxResponse(JSONResponse):
    """A JSON response rendered by orjson (see the module docstring)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError included
            return super().render(content)


def ok(data: list[Any]) -> OkxResponse:
    """``{"code":"0","msg":"","data":[...]}``."""
    return OkxResponse({"code": "0", "msg": "", "data": data})


def error(code: str, msg: str, data: list[Any] | None = None) -> OkxResponse:
    return OkxResponse({"code": code, "msg": msg, "data": data or []}, status_code=http_status(code))


def items_response(items: list[dict[str, Any]]) -> OkxResponse:
    """Per-item results: code ``0`` all passed, ``1`` all failed, ``2`` some failed."""
    failed = sum(1 for item in items if item["sCode"] != "0")
    if failed == 0:
        return ok(items)
    if failed == len(items):
        msg = items[0]["sMsg"] if len(items) == 1 else "All operations failed"
        return OkxResponse({"code": "1", "msg": msg, "data": items})
    return OkxResponse({"code": "2", "msg": "Batch operation partially succeeded", "data": items})


def px_str(inst: Instrument, ticks: int) -> str:
    """A price in ticks as a decimal string."""
    return fmt_decimal(inst.ticks_to_px(ticks))


def sz_str(inst: Instrument, lots: int) -> str:
    """A size in lots as contracts."""
    return fmt_decimal(inst.lots_to_sz(lots))


def money(units: int) -> str:
    """Money units (1e-8) as a decimal string."""
    return money_str(units)


def display_px(inst: Instrument, value: Decimal | None) -> str:
    """A derived price (average, liquidation, break-even) for display: four decimals finer
    than the tick, half-even; empty when there is none."""
    if value is None:
        return ""
    step = inst.tick_sz.scaleb(-4)
    return fmt_decimal(value.quantize(step.normalize(), rounding=ROUND_HALF_EVEN))


def ratio_str(value: Decimal | None, places: int = 8) -> str:
    """A ratio for display, half-even to ``places`` decimals; empty when undefined."""
    if value is None:
        return ""
    return fmt_decimal(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def ms(ts: int) -> str:
    """Epoch milliseconds as a string."""
    return str(int(ts))


def flag(value: bool) -> str:
    return "true" if value else "false"
