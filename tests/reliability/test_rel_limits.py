"""Limits (issue 6, item 4) against a real server with small limits, and the bind rule."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from backstop.api.limits import Limits, RateLimiter
from backstop.api.wire import OkxError
from backstop.serve import ensure_bind_allowed, run_server
from serverkit import ServerProcess, SignedClient, new_account

INST = "BTC-USDT-SWAP"
SMALL = {"rate_scale": 0.1, "max_body_bytes": 2048, "max_ws_message_bytes": 1024,
         "max_ws_subscriptions": 3, "max_open_orders": 5}
PENDING = f"/api/v5/trade/orders-pending?instId={INST}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("limits"), limits=SMALL)
    srv.start()
    yield srv
    srv.stop()


def _order(px: str = "90000", **extra: str) -> dict[str, str]:
    return {"instId": INST, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "0.01",
            "px": px, **extra}


def test_rate_limit_per_key_answers_50011_429(server):
    a, b = new_account(server.url), new_account(server.url)
    answers = [a.get(PENDING) for _ in range(8)]  # 60 per 2 s × 0.1 = 6 per 2 s
    limited = [r for r in answers if r.status_code == 429]
    assert limited and all(r.json() == {"code": "50011", "msg": "Too Many Requests", "data": []}
                           for r in limited)
    assert b.get(PENDING).json()["code"] == "0"  # another key has its own bucket


def test_rate_limiter_refills_like_a_token_bucket():
    now = [0.0]
    limiter = RateLimiter(1.0, clock=lambda: now[0])
    for _ in range(60):
        limiter.check("k", "POST", "trade/order")
    with pytest.raises(OkxError) as refused:
        limiter.check("k", "POST", "trade/order")
    assert refused.value.code == "50011"
    limiter.check("k", "GET", "trade/fills")  # another group
    now[0] = 1.0  # half the window refills half the bucket
    for _ in range(30):
        limiter.check("k", "POST", "trade/order")
    with pytest.raises(OkxError):
        limiter.check("k", "POST", "trade/order")
    RateLimiter(0).check("k", "POST", "trade/order")  # scale 0: off


@pytest.mark.parametrize("route", ["/api/v5/trade/order", "/backstop/v1/accounts", "/api/v5/public/time"])
@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_refused_413(server, route, chunked):
    client = SignedClient(server.url)
    payload = b'{"pad":"' + b"x" * 4096 + b'"}'
    content = iter([payload[:1000], payload[1000:]]) if chunked else payload
    response = client.http.post(route, content=content)
    assert response.status_code == 413
    assert response.json()["code"] == "50025"


def test_body_at_the_limit_passes_through(server):
    a = new_account(server.url)
    body = _order(tag="x" * 10)
    assert len(json.dumps(body)) < SMALL["max_body_bytes"]
    assert a.post("/api/v5/trade/order", body).json()["code"] == "0"


def test_open_order_cap_answers_51174(server):
    a = new_account(server.url)
    acked = [a.post("/api/v5/trade/order", _order(str(80000 + i))).json() for i in range(4)]
    assert [r["code"] for r in acked] == ["0"] * 4
    batch = a.post("/api/v5/trade/batch-orders", [_order("81000"), _order("81001")]).json()
    assert batch["code"] == "2"
    assert [i["sCode"] for i in batch["data"]] == ["0", "51174"]
    assert a.post("/api/v5/trade/order", _order("81002")).json()["data"][0]["sCode"] == "51174"
    ord_id = acked[0]["data"][0]["ordId"]
    assert a.post("/api/v5/trade/cancel-order", {"instId": INST, "ordId": ord_id}).json()["code"] == "0"
    assert a.post("/api/v5/trade/order", _order("81003")).json()["code"] == "0"


async def _ws(url: str, messages: list[str], replies: int) -> list[dict | str]:
    async with websockets.connect(url, open_timeout=5) as ws:
        for message in messages:
            await ws.send(message)
        out: list[dict | str] = []
        async with asyncio.timeout(5):
            while len(out) < replies:
                text = await ws.recv()
                if text == "pong" or not json.loads(text).get("data"):
                    out.append(text if text == "pong" else json.loads(text))
        return out


def test_ws_message_size_and_subscription_cap(server):
    url = server.url.replace("http", "ws") + "/ws/v5/public"
    big = json.dumps({"op": "subscribe", "args": [{"channel": "tickers", "instId": "x" * 2000}]})
    subs = [json.dumps({"op": "subscribe", "args": [{"channel": "mark-price", "instId": i}]})
            for i in ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP", "ETH-USD-SWAP")]
    too_big, *acks, over, pong = asyncio.run(_ws(url, [big, *subs, "ping"], 6))
    assert (too_big["event"], too_big["code"]) == ("error", "60012")
    assert [m["event"] for m in acks] == ["subscribe"] * 3
    assert (over["event"], over["code"]) == ("error", "60020")
    assert pong == "pong"  # the connection survives both refusals


def test_non_loopback_bind_needs_allow_remote(capsys):
    with pytest.raises(ValueError, match="--allow-remote"):
        run_server(host="0.0.0.0", port=1)
    with pytest.raises(ValueError, match="loopback"):
        ensure_bind_allowed("10.1.2.3", False)
    ensure_bind_allowed("::1", False)
    ensure_bind_allowed("localhost", False)
    assert capsys.readouterr().err == ""
    ensure_bind_allowed("0.0.0.0", True)
    assert "WARNING" in capsys.readouterr().err


def test_default_limits_are_okx_like():
    limits = Limits()
    sizes = (limits.max_body_bytes, limits.max_ws_message_bytes, limits.max_open_orders)
    assert sizes == (65536, 65536, 4000)
