"""Fuzzing the REST API (issue 6, item 2) with schemathesis, against a real server on 127.0.0.1.

The server's own OpenAPI document (``GET /api/v5/openapi.json``) drives schemathesis: every
operation, in its positive (schema-valid) and negative (schema-violating) modes, signed as OKX
signs (a ``requests`` auth hook computes ``OK-ACCESS-SIGN`` over the exact method, path,
query and body bytes that go on the wire) with a real funded account's key; admin routes carry
the admin token. Then garbage bodies (wrong types, huge and negative numbers, ``NaN``,
``Infinity``, unicode, deep nesting, oversize) go to ``trade/order`` and
``trade/batch-orders`` through hypothesis.

Targets: no response with status 500, and none with 503/50026 either (the app's answer to an
unexpected exception, so a bug surfaced here); every response is OKX's envelope, and every
non-2xx or ``code != "0"`` one carries a numeric OKX code (per item ``sCode`` for order
endpoints); afterwards the admin audit is exact and the server still answers.

Size: ``BACKSTOP_FUZZ_EXAMPLES`` examples per operation and mode (default 12, CI-sized:
about a minute); the full run in ``RELIABILITY.md`` used 200.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from serverkit import ADMIN_TOKEN, ServerProcess, new_account, okx_timestamp

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = int(os.environ.get("BACKSTOP_FUZZ_EXAMPLES", "12"))
DOC_PATH = "/api/v5/openapi.json"
ORDER_PATHS = ("/api/v5/trade/order", "/api/v5/trade/batch-orders")


@dataclass
class Tally:
    """What the fuzzing saw: requests, statuses and the refusals without an OKX code."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    uncoded: list[str] = field(default_factory=list)

    def record(self, label: str, status: int, text: str) -> None:
        """Count one response and note any breach of the targets."""
        self.requests += 1
        self.statuses[status] += 1
        code = envelope_code(text)
        if status >= 500 or code == "50026":
            self.server_errors.append(f"{label} -> {status} {text[:300]}")
        self.codes[code] += 1
        if code is None or (code == "0" and status >= 300) or (status >= 300 and not code.isdigit()):
            self.uncoded.append(f"{label} -> {status} {text[:300]}")

    def summary(self) -> str:
        return (f"requests={self.requests} 500s={self.statuses[500]} "
                f"uncoded={len(self.uncoded)} statuses={dict(self.statuses)}")


def envelope_code(text: str) -> str | None:
    """The envelope's ``code``, or ``None`` when the body is not OKX's envelope (or, for the
    per-item codes ``1``/``2``, an item lacks a numeric ``sCode``)."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or not {"code", "msg", "data"} <= body.keys():
        return None
    code = body["code"]
    if code in ("1", "2") and not all(item_coded(i) for i in body["data"]):
        return None
    return code if isinstance(code, str) and code.isdigit() else None


def item_coded(item: Any) -> bool:
    """A per-item answer (order endpoints) with a numeric ``sCode``."""
    return isinstance(item, dict) and str(item.get("sCode", "")).isdigit()


class OkxSigner(requests.auth.AuthBase):
    """Signs each prepared request as OKX does (private routes) or adds the admin token."""

    def __init__(self, key: dict[str, str]) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        target = request.path_url
        if target.startswith("/backstop/v1/"):
            request.headers["X-Backstop-Admin"] = ADMIN_TOKEN
            return request
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        ts = okx_timestamp()
        prehash = (ts + request.method + target).encode() + body
        request.headers.update({
            "OK-ACCESS-KEY": self.key["apiKey"], "OK-ACCESS-PASSPHRASE": self.key["passphrase"],
            "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": sign_bytes(self.key["secretKey"], prehash)})
        return request


def sign_bytes(secret: str, prehash: bytes) -> str:
    """:func:`serverkit.sign` over raw bytes (bodies need not be UTF-8)."""
    import base64
    import hashlib
    import hmac

    return base64.b64encode(hmac.new(secret.encode(), prehash, hashlib.sha256).digest()).decode()


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """A server without rate limits (so the fuzzing reaches the handlers) and a funded
    account with a resting order and a position."""
    server = ServerProcess(tmp_path_factory.mktemp("fuzz"), limits={"rate_scale": 0})
    server.start()
    account, other = new_account(server.url), new_account(server.url)
    other.post("/api/v5/trade/order", {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "sell",
                                       "ordType": "limit", "sz": "1", "px": "100000"})
    account.post("/api/v5/trade/order", {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                         "ordType": "market", "sz": "1"})
    account.post("/api/v5/trade/order", {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                         "ordType": "limit", "sz": "1", "px": "90000", "clOrdId": "fz1"})
    session = requests.Session()
    session.auth = OkxSigner(account.key)
    yield server, session, account
    session.close()
    server.stop()


def assert_healthy(server: ServerProcess, account) -> None:
    """The server still answers and the audit is exact."""
    assert server.proc is not None and server.proc.poll() is None, "server died"
    audit = account.admin("GET", "audit")
    assert audit["ok"] is True, audit
    assert account.get("/api/v5/account/balance").json()["code"] == "0"


def fuzz_operation(operation, mode: GenerationMode, url: str, session: requests.Session,
                   tally: Tally) -> None:
    """Send ``EXAMPLES`` generated cases of one operation in one mode."""
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(base_url=url, session=session, timeout=30)
        tally.record(f"{mode.value} {case.method} {case.formatted_path} {case.query} "
                     f"{str(case.body)[:200]}", response.status_code, response.text)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # an operation without parameters has no negative case


def test_schemathesis_finds_no_500_and_no_uncoded_refusal(fuzz_server):
    server, session, account = fuzz_server
    schema = schemathesis.openapi.from_url(server.url + DOC_PATH)
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, server.url, session, tally)
    print(f"\nschemathesis: {tally.summary()}")
    assert tally.requests >= EXAMPLES * 2 * 20
    assert tally.server_errors == [], tally.server_errors[:5]
    assert tally.uncoded == [], tally.uncoded[:5]
    assert_healthy(server, account)


GARBAGE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "-1", "-0", "0", "1e-999",
                     "0x10", "1_000", " 1", "１２", "٣", "9" * 400, "", "\u0000", "\ud7ff", "😀",
                     "BTC-USDT-SWAP", "buy", "limit", "cross", "market"]),
    st.text(max_size=40),
)
GARBAGE_JSON = st.recursive(GARBAGE_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
ORDER_KEYS = ("instId", "tdMode", "side", "ordType", "sz", "px", "posSide", "reduceOnly", "clOrdId",
              "stpMode", "tag")
ORDER_LIKE = st.dictionaries(st.sampled_from(ORDER_KEYS), GARBAGE_SCALARS, max_size=len(ORDER_KEYS))
RAW_BODIES = st.one_of(
    GARBAGE_JSON.map(lambda v: json.dumps(v).encode()),
    ORDER_LIKE.map(lambda v: json.dumps(v).encode()),
    st.lists(ORDER_LIKE, max_size=25).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b"NaN",
                     b'{"sz": NaN, "px": Infinity}', b'{"sz": 1e400}', b"x" * 70_000,
                     b'{"instId": "BTC-USDT-SWAP", "sz": "' + b"9" * 60_000 + b'"}']),
)


def test_garbage_order_bodies_get_okx_codes(fuzz_server):
    server, session, account = fuzz_server
    tally = Tally()

    @settings(max_examples=EXAMPLES * 8, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(ORDER_PATHS), body=RAW_BODIES)
    def run(path: str, body: bytes) -> None:
        response = session.post(server.url + path, data=body,
                                headers={"Content-Type": "application/json"}, timeout=30)
        tally.record(f"POST {path} {body[:200]!r}", response.status_code, response.text)

    run()
    print(f"\ngarbage order bodies: {tally.summary()}")
    assert tally.server_errors == [], tally.server_errors[:5]
    assert tally.uncoded == [], tally.uncoded[:5]
    assert_healthy(server, account)


QUERY_TARGETS = ("/api/v5/public/insurance-fund?instType=SWAP&instFamily=BTC-USDT&",
                 "/api/v5/public/liquidation-orders?instType=SWAP&",
                 "/api/v5/market/books?instId=BTC-USDT-SWAP&", "/api/v5/trade/orders-history?",
                 "/api/v5/trade/fills?", "/api/v5/trade/order?instId=BTC-USDT-SWAP&",
                 "/api/v5/account/positions?", "/api/v5/account/leverage-info?mgnMode=cross&")
QUERY_NAMES = ("limit", "before", "after", "ordId", "sz", "instId", "instType", "ccy", "state", "mgnMode")
QUERY_VALUES = st.one_of(st.sampled_from(["²", "٣", "１", "-1", "0", "1e3", "NaN", "Infinity", "9" * 40,
                                          "%FF", "%00", ",", ",,", "+1", " 1"]), st.text(max_size=12))


def test_garbage_query_values_get_okx_codes(fuzz_server):
    """Unicode digits (``²`` passes ``str.isdigit`` but not ``int``), huge numbers and junk in
    every numeric and enum query parameter."""
    server, session, account = fuzz_server
    tally = Tally()

    @settings(max_examples=EXAMPLES * 8, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(target=st.sampled_from(QUERY_TARGETS), name=st.sampled_from(QUERY_NAMES), value=QUERY_VALUES)
    def run(target: str, name: str, value: str) -> None:
        url = server.url + target + urlencode({name: value})
        response = session.get(url, timeout=30)
        tally.record(f"GET {target}{name}={value!r}", response.status_code, response.text)

    run()
    for value in ("²", "٣"):
        tally.record(f"limit={value}", *_get(session, server.url + QUERY_TARGETS[0] + "limit=" + value))
    print(f"\ngarbage query values: {tally.summary()}")
    assert tally.server_errors == [], tally.server_errors[:5]
    assert tally.uncoded == [], tally.uncoded[:5]
    assert_healthy(server, account)


def _get(session: requests.Session, url: str) -> tuple[int, str]:
    response = session.get(url, timeout=30)
    return response.status_code, response.text
