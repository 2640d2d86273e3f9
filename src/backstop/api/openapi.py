"""The OpenAPI 3.1 document of the REST API, served at ``GET /api/v5/openapi.json``.

The paths come from the route tables the app dispatches on (:func:`registered_routes`: the
public and private tables of :mod:`backstop.api.app` and the admin tables of
:mod:`backstop.api.admin`); the parameters of each route from :data:`ENDPOINTS`, a small spec
per route written beside the parsing rules of :mod:`backstop.api.params` (missing required
parameter: 50014; malformed: 51000; JSON body: 50000/50002). Enumerations are taken from the
engine's enums and the handlers' own tuples, so they cannot drift. The test
``tests/api/test_api_openapi.py`` checks that every registered route has a spec and every
spec a route.

Every operation answers OKX's envelope ``{"code","msg","data"}`` (:data:`ENVELOPE`): ``code``
``"0"`` with HTTP 200 on success, otherwise an OKX error code (HTTP 200 for business
refusals, 400/401/404/413/429/503 as :func:`backstop.api.wire.http_status` says). Private
routes need the four OKX signing headers (security ``okx``); the admin routes under
``/backstop/v1/`` need ``X-Backstop-Admin`` (security ``admin``). All numbers travel as
strings, as OKX sends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from backstop.api.market_history import BARS
from backstop.api.market_views import FUND_TYPES
from backstop.api.rest_public import INST_TYPES
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side

API_PREFIX = "/api/v5/"
ADMIN_PREFIX = "/backstop/v1/"
DOC_PATH = "/api/v5/openapi.json"
BATCH_MAX = 20
DECIMAL = r"^-?[0-9]{1,12}(\.[0-9]{1,8})?$"
"""Exact decimals as OKX sends them (a string)."""
UINT = r"^[0-9]{1,19}$"
"""Ids, millisecond cursors and counts (a string of digits)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One query parameter or body field. ``kind``: ``string``, ``decimal``, ``uint``,
    ``boolean`` or ``object`` (a map of currency to decimal)."""

    name: str
    kind: str = "string"
    required: bool = False
    enum: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route's spec: ``query`` parameters; ``body`` fields of a JSON object (``None``: no
    body); ``batch``: the body is an array of such objects (at most :data:`BATCH_MAX`);
    ``body_optional``: an empty body is allowed."""

    summary: str
    query: tuple[Field, ...] = ()
    body: tuple[Field, ...] | None = None
    batch: bool = False
    body_optional: bool = False


def _values(enum: Any) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


INST_TYPE = Field("instType", required=True, enum=INST_TYPES)
FAMILY = (Field("instFamily", doc="e.g. BTC-USDT"), Field("uly", doc="legacy alias of instFamily"))
INST_ID = Field("instId", required=True, doc="e.g. BTC-USDT-SWAP")
OPT_INST_ID = Field("instId")
LIMIT = Field("limit", "uint", doc="1-100, default 100")
CURSORS = (Field("before", "uint"), Field("after", "uint"))
MGN_MODE = Field("mgnMode", required=True, enum=_values(MarginMode))
POS_SIDE = Field("posSide", enum=("net",), doc="net mode only")
ORDER_ITEM = (
    INST_ID, Field("tdMode", required=True, enum=_values(MarginMode)),
    Field("side", required=True, enum=_values(Side)),
    Field("ordType", required=True, enum=_values(OrderType)),
    Field("sz", "decimal", required=True, doc="contracts, a multiple of lotSz"),
    Field("px", "decimal", doc="required except for market orders"), POS_SIDE,
    Field("reduceOnly", "boolean"), Field("clOrdId", doc="up to 32 letters and digits"), Field("tag"),
    Field("stpMode", enum=_values(SelfTradeMode)),
)
CANCEL_ITEM = (INST_ID, Field("ordId", "uint"), Field("clOrdId"))
ORDER_LIST = (Field("instType"), OPT_INST_ID, Field("ordType", enum=_values(OrderType)),
              Field("state", enum=("live", "partially_filled", "filled", "canceled")), *CURSORS, LIMIT)
AMOUNT = Field("amt", "decimal", required=True, doc="positive")
BAR = Field("bar", enum=tuple(BARS), doc="default 1m; 6H and longer are Hong Kong time unless ...utc")
CANDLES = (INST_ID, BAR, *CURSORS,
           Field("limit", "uint", doc="1-300 (trade candles), 1-100 (mark and index)"))
TIME_RANGE = (Field("begin", "uint", doc="ms"), Field("end", "uint", doc="ms"))
HISTORY_ORDERS = (INST_TYPE, OPT_INST_ID, Field("ordType", enum=_values(OrderType)),
                  Field("state", enum=("filled", "canceled")),
                  Field("category", enum=("normal", "full_liquidation", "partial_liquidation", "adl")),
                  *CURSORS, *TIME_RANGE, LIMIT)
FILLS = (OPT_INST_ID, Field("ordId", "uint"), Field("subType"), *CURSORS, *TIME_RANGE, LIMIT)
BILLS = (Field("instType", enum=INST_TYPES), OPT_INST_ID, Field("ccy"),
         Field("mgnMode", enum=_values(MarginMode)),
         Field("type", doc="1 transfer, 2 trade, 5 liquidation, 8 funding fee, 9 ADL"), Field("subType"),
         *CURSORS, *TIME_RANGE, LIMIT)
INST_IDS = Field("instId", required=True, doc="up to 5, comma-separated")
TD_MODE = Field("tdMode", required=True, enum=_values(MarginMode))
AMEND_ITEM = (INST_ID, Field("ordId", "uint"), Field("clOrdId"), Field("newSz", "decimal"),
              Field("newPx", "decimal"), Field("cxlOnFail", "boolean"), Field("reqId"))

ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("GET", "/api/v5/public/instruments"): Endpoint("Instruments", (INST_TYPE, *FAMILY, OPT_INST_ID)),
    ("GET", "/api/v5/public/position-tiers"): Endpoint(
        "Position tiers", (INST_TYPE, Field("tdMode", required=True, enum=_values(MarginMode)), *FAMILY,
                           OPT_INST_ID)),
    ("GET", "/api/v5/public/mark-price"): Endpoint(
        "Mark prices", (Field("instType", enum=INST_TYPES, doc="required unless instId is given"), *FAMILY,
                        OPT_INST_ID)),
    ("GET", "/api/v5/public/open-interest"): Endpoint("Open interest", (INST_TYPE, *FAMILY, OPT_INST_ID)),
    ("GET", "/api/v5/public/funding-rate-history"): Endpoint(
        "Settled funding rates", (INST_ID, *CURSORS, Field("limit", "uint", doc="1-400"))),
    ("GET", "/api/v5/public/price-limit"): Endpoint("Price limits", (INST_ID,)),
    ("GET", "/api/v5/market/candles"): Endpoint("Trade candles", CANDLES),
    ("GET", "/api/v5/market/history-candles"): Endpoint("Trade candles (history)", CANDLES),
    ("GET", "/api/v5/market/mark-price-candles"): Endpoint("Mark price candles", CANDLES),
    ("GET", "/api/v5/market/history-mark-price-candles"): Endpoint("Mark price candles (history)", CANDLES),
    ("GET", "/api/v5/market/index-candles"): Endpoint("Index candles (instId: the index, e.g. BTC-USDT)",
                                                      CANDLES),
    ("GET", "/api/v5/market/history-index-candles"): Endpoint("Index candles (history)", CANDLES),
    ("GET", "/api/v5/market/trades"): Endpoint("Recent trades",
                                               (INST_ID, Field("limit", "uint", doc="1-500"))),
    ("GET", "/api/v5/market/history-trades"): Endpoint(
        "Trades (history)", (INST_ID, Field("type", enum=("1", "2"), doc="1: by tradeId, 2: by ts"), *CURSORS,
                             LIMIT)),
    ("GET", "/api/v5/public/funding-rate"): Endpoint("Funding rate", (INST_ID,)),
    ("GET", "/api/v5/public/time"): Endpoint("Server time"),
    ("GET", "/api/v5/public/insurance-fund"): Endpoint(
        "Insurance fund", (INST_TYPE, *FAMILY, Field("type", enum=FUND_TYPES), Field("ccy"), *CURSORS,
                           LIMIT)),
    ("GET", "/api/v5/public/liquidation-orders"): Endpoint(
        "Liquidation orders (legacy)", (INST_TYPE, *FAMILY, OPT_INST_ID,
                                        Field("mgnMode", enum=_values(MarginMode)),
                                        Field("state", enum=("filled", "unfilled")), *CURSORS, LIMIT)),
    ("GET", "/api/v5/market/ticker"): Endpoint("Ticker", (INST_ID,)),
    ("GET", "/api/v5/market/tickers"): Endpoint("Tickers", (INST_TYPE, *FAMILY, OPT_INST_ID)),
    ("GET", "/api/v5/market/books"): Endpoint("Order book", (INST_ID, Field("sz", "uint", doc="1-400"))),
    ("GET", "/api/v5/account/balance"): Endpoint("Balance", (Field("ccy", doc="comma-separated"),)),
    ("GET", "/api/v5/account/positions"): Endpoint(
        "Positions", (Field("instType", enum=("SWAP", "FUTURES", "OPTION", "MARGIN")),
                      Field("instId", doc="comma-separated"))),
    ("GET", "/api/v5/account/config"): Endpoint("Account configuration"),
    ("GET", "/api/v5/account/leverage-info"): Endpoint(
        "Leverage", (Field("instId", required=True, doc="comma-separated"), MGN_MODE)),
    ("GET", "/api/v5/asset/currencies"): Endpoint("Currencies", (Field("ccy"),)),
    ("GET", "/api/v5/trade/order"): Endpoint(
        "Order details", (INST_ID, Field("ordId", "uint"), Field("clOrdId"))),
    ("GET", "/api/v5/trade/orders-pending"): Endpoint("Open orders", ORDER_LIST),
    ("GET", "/api/v5/trade/orders-history"): Endpoint("Finished orders (7 days)", HISTORY_ORDERS),
    ("GET", "/api/v5/trade/orders-history-archive"): Endpoint("Finished orders (3 months)", HISTORY_ORDERS),
    ("GET", "/api/v5/trade/fills"): Endpoint("Fills (3 days)", (Field("instType", enum=INST_TYPES), *FILLS)),
    ("GET", "/api/v5/trade/fills-history"): Endpoint("Fills (3 months)", (INST_TYPE, *FILLS)),
    ("GET", "/api/v5/account/bills"): Endpoint("Bills (7 days)", BILLS),
    ("GET", "/api/v5/account/bills-archive"): Endpoint("Bills (3 months)", BILLS),
    ("GET", "/api/v5/account/positions-history"): Endpoint(
        "Closed positions", (Field("instType", enum=INST_TYPES), OPT_INST_ID,
                             Field("mgnMode", enum=_values(MarginMode)),
                             Field("type", enum=("1", "2", "3", "4", "5", "6")), Field("posId"), *CURSORS,
                             LIMIT)),
    ("GET", "/api/v5/account/max-size"): Endpoint(
        "Largest order per side", (INST_IDS, TD_MODE, Field("px", "decimal"), Field("leverage", "decimal"))),
    ("GET", "/api/v5/account/max-avail-size"): Endpoint("Available equity per side", (INST_IDS, TD_MODE)),
    ("GET", "/api/v5/account/max-withdrawal"): Endpoint("Largest withdrawal", (Field("ccy"),)),
    ("GET", "/api/v5/account/trade-fee"): Endpoint("Fee rates", (INST_TYPE, *FAMILY, OPT_INST_ID)),
    ("POST", "/api/v5/trade/amend-order"): Endpoint("Amend an order", body=AMEND_ITEM),
    ("POST", "/api/v5/trade/amend-batch-orders"): Endpoint("Amend orders", body=AMEND_ITEM, batch=True),
    ("POST", "/api/v5/trade/close-position"): Endpoint(
        "Close a position at market", body=(INST_ID, MGN_MODE, POS_SIDE, Field("ccy"),
                                            Field("autoCxl", "boolean"), Field("clOrdId"), Field("tag"))),
    ("POST", "/api/v5/account/set-leverage"): Endpoint(
        "Set leverage", body=(INST_ID, MGN_MODE, Field("lever", "decimal", required=True), POS_SIDE)),
    ("POST", "/api/v5/account/position/margin-balance"): Endpoint(
        "Isolated margin", body=(INST_ID, POS_SIDE, Field("type", required=True, enum=("add", "reduce")),
                                 AMOUNT)),
    ("POST", "/api/v5/trade/order"): Endpoint("Place an order", body=ORDER_ITEM),
    ("POST", "/api/v5/trade/batch-orders"): Endpoint("Place orders", body=ORDER_ITEM, batch=True),
    ("POST", "/api/v5/trade/cancel-order"): Endpoint("Cancel an order", body=CANCEL_ITEM),
    ("POST", "/api/v5/trade/cancel-batch-orders"): Endpoint("Cancel orders", body=CANCEL_ITEM, batch=True),
    ("GET", "/backstop/v1/audit"): Endpoint("Conservation audit"),
    ("GET", "/backstop/v1/state"): Endpoint("State hash and log position"),
    ("POST", "/backstop/v1/accounts"): Endpoint(
        "Create an account and key", body=(Field("deposits", "object", doc="currency → amount"),)),
    ("POST", "/backstop/v1/deposit"): Endpoint(
        "Deposit", body=(Field("uid", "uint", required=True), Field("ccy", required=True), AMOUNT)),
    ("POST", "/backstop/v1/withdraw"): Endpoint(
        "Withdraw", body=(Field("uid", "uint", required=True), Field("ccy", required=True), AMOUNT)),
    ("POST", "/backstop/v1/index-price"): Endpoint(
        "Set a family's index price", body=(Field("instFamily", required=True),
                                            Field("px", "decimal", required=True))),
    ("POST", "/backstop/v1/funding"): Endpoint("Settle funding", body=(OPT_INST_ID,), body_optional=True),
    ("POST", "/backstop/v1/insurance-fund/inject"): Endpoint(
        "Inject into an insurance fund",
        body=(Field("instType"), Field("instFamily", required=True), AMOUNT)),
}
"""Every route's parameters, keyed by method and full path."""


def registered_routes() -> dict[tuple[str, str], str]:
    """``(method, full path) → security`` (``""`` public, ``okx`` signed, ``admin``) for every
    route the app dispatches on."""
    from backstop.api import admin
    from backstop.api import app as app_module

    tables = (("GET", API_PREFIX, app_module._PUBLIC_GET, ""),
              ("GET", API_PREFIX, app_module._PRIVATE_GET, "okx"),
              ("POST", API_PREFIX, app_module._PRIVATE_POST, "okx"),
              ("GET", ADMIN_PREFIX, admin.GET_ROUTES, "admin"),
              ("POST", ADMIN_PREFIX, admin.POST_ROUTES, "admin"))
    return {(method, prefix + path): security for method, prefix, table, security in tables
            for path in table}


def _schema(field: Field) -> dict[str, Any]:
    if field.kind == "decimal":
        schema: dict[str, Any] = {"type": "string", "pattern": DECIMAL}
    elif field.kind == "uint":
        schema = {"type": "string", "pattern": UINT}
    elif field.kind == "boolean":
        schema = {"type": "boolean"}
    elif field.kind == "object":
        schema = {"type": "object", "additionalProperties": {"type": "string", "pattern": DECIMAL}}
    else:
        schema = {"type": "string"}
    if field.enum:
        schema["enum"] = list(field.enum)
    if field.doc:
        schema["description"] = field.doc
    return schema


def _object(fields: tuple[Field, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {f.name: _schema(f) for f in fields}}
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def _request_body(spec: Endpoint) -> dict[str, Any]:
    schema = _object(spec.body or ())
    if spec.batch:
        schema = {"type": "array", "items": schema, "minItems": 1, "maxItems": BATCH_MAX}
    return {"required": not spec.body_optional, "content": {"application/json": {"schema": schema}}}


def _operation(method: str, path: str, security: str, spec: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{path.strip('/').replace('/', '_').replace('-', '_')}",
        "summary": spec.summary,
        "tags": [path.split("/")[3] if path.startswith(API_PREFIX) else "admin"],
        "parameters": [{"name": f.name, "in": "query", "required": f.required, "schema": _schema(f)}
                       for f in spec.query],
        "responses": {"200": {"$ref": "#/components/responses/Envelope"},
                      "default": {"$ref": "#/components/responses/Envelope"}},
    }
    if spec.body is not None:
        operation["requestBody"] = _request_body(spec)
    operation["security"] = [{security: []}] if security else []
    return operation


ENVELOPE = {
    "type": "object",
    "required": ["code", "msg", "data"],
    "properties": {
        "code": {"type": "string", "pattern": r"^[0-9]+$",
                 "description": "\"0\" on success, else an OKX error code; order endpoints answer "
                                "\"1\" (all items failed) or \"2\" (some failed) with per-item sCode"},
        "msg": {"type": "string"},
        "data": {"type": "array", "items": {}},
    },
}
"""OKX's response envelope."""

SECURITY_SCHEMES = {
    "okx": {"type": "apiKey", "in": "header", "name": "OK-ACCESS-KEY",
            "description": "With OK-ACCESS-PASSPHRASE, OK-ACCESS-TIMESTAMP (ISO 8601 UTC, ms, within 30 s) "
                           "and OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + "
                           "path?query + raw body)). Failures: 50102-50113, HTTP 401."},
    "admin": {"type": "apiKey", "in": "header", "name": "X-Backstop-Admin",
              "description": "The admin token printed by `backstop serve` (also <data dir>/admin-token)."},
}
SIGNING_HEADERS = ("OK-ACCESS-PASSPHRASE", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-SIGN")


def build_document(version: str = "") -> dict[str, Any]:
    """The OpenAPI document (a JSON-ready dict) for every registered route."""
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), security in sorted(registered_routes().items()):
        spec = ENDPOINTS.get((method, path), Endpoint(path))
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, security, spec)
    paths[DOC_PATH] = {"get": {"operationId": "get_openapi", "summary": "This document", "security": [],
                               "responses": {"200": {"description": "OpenAPI 3.1 JSON"}}}}
    signing = {name: {"type": "apiKey", "in": "header", "name": name} for name in SIGNING_HEADERS}
    return {
        "openapi": "3.1.0",
        "info": {"title": "backstop: OKX v5-compatible local exchange", "version": version or "0",
                 "description": __doc__},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Envelope": ENVELOPE},
            "responses": {"Envelope": {"description": "OKX envelope",
                                       "content": {"application/json": {"schema": {
                                           "$ref": "#/components/schemas/Envelope"}}}}},
            "securitySchemes": {**SECURITY_SCHEMES, **signing},
        },
    }


_DOCUMENT: dict[str, Any] | None = None


async def endpoint(request: Request) -> JSONResponse:
    """``GET /api/v5/openapi.json`` (built once)."""
    global _DOCUMENT
    if _DOCUMENT is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _DOCUMENT = build_document(version("backstop"))
        except PackageNotFoundError:
            _DOCUMENT = build_document()
    return JSONResponse(_DOCUMENT)
