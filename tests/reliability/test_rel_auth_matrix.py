"""Auth and isolation matrix (issue 6, item 3), against a real server on 127.0.0.1.

Every case is refused with OKX's code (and HTTP status), and the refusal carries none of the
other account's data: no ordId, clOrdId, uid or key of account B appears in A's answers, and
B's orders and the log are unchanged by A's attempts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets

from serverkit import ADMIN_TOKEN, ServerProcess, SignedClient, new_account, okx_timestamp, sign

INST = "BTC-USDT-SWAP"
NO_SUCH_KEY = "00000000-0000-0000-0000-000000000000"
ORDERS_PENDING = f"/api/v5/trade/orders-pending?instType=SWAP&instId={INST}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server, account A, and account B with a resting order and a position."""
    server = ServerProcess(tmp_path_factory.mktemp("auth"))
    server.start()
    a, b, c = (new_account(server.url) for _ in range(3))
    resting = b.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cross", "side": "buy",
                                             "ordType": "limit", "sz": "1", "px": "90000",
                                             "clOrdId": "bSecret1"}).json()
    assert resting["code"] == "0", resting
    c.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cross", "side": "sell",
                                   "ordType": "limit", "sz": "1", "px": "100000"})
    filled = b.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cross", "side": "buy",
                                            "ordType": "market", "sz": "1"}).json()
    assert filled["code"] == "0", filled
    yield {"server": server, "a": a, "b": b, "b_ord": resting["data"][0]["ordId"]}
    server.stop()


def _b_secrets(world) -> list[str]:
    """Strings that must never appear in an answer to anyone but B."""
    key = world["b"].key
    b_ord = world["b_ord"]
    return [f'"ordId":"{b_ord}"', f'"ordId": "{b_ord}"', "bSecret1",
            key["apiKey"], key["secretKey"], key["passphrase"],
            f'"uid": "{key["uid"]}"', f'"uid":"{key["uid"]}"']


def _assert_no_leak(world, text: str) -> None:
    leaked = [s for s in _b_secrets(world) if s in text]
    assert leaked == [], text


# --- REST authentication ---------------------------------------------------------------------

def _signed(key: dict[str, str], method: str, target: str, body: str = "", *, when=None,
            secret: str | None = None, passphrase: str | None = None, api_key: str | None = None,
            sign_target: str | None = None, sign_body: str | None = None) -> dict[str, str]:
    ts = when if isinstance(when, str) else okx_timestamp(when)
    prehash = ts + method + (sign_target or target) + (body if sign_body is None else sign_body)
    return {"OK-ACCESS-KEY": api_key if api_key is not None else key["apiKey"],
            "OK-ACCESS-PASSPHRASE": passphrase if passphrase is not None else key["passphrase"],
            "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": sign(secret or key["secretKey"], prehash),
            "Content-Type": "application/json"}


def _without(name: str) -> Callable[[dict, dict], dict]:
    def build(a: dict, b: dict) -> dict:
        headers = _signed(a, "GET", ORDERS_PENDING)
        headers.pop(name)
        return headers
    return build


def _past(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


REST_CASES: dict[str, tuple[Callable[[dict, dict], dict], str]] = {
    "missing key": (_without("OK-ACCESS-KEY"), "50103"),
    "missing passphrase": (_without("OK-ACCESS-PASSPHRASE"), "50104"),
    "missing sign": (_without("OK-ACCESS-SIGN"), "50106"),
    "missing timestamp": (_without("OK-ACCESS-TIMESTAMP"), "50107"),
    "no headers at all": (lambda a, b: {}, "50103"),
    "wrong key": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, api_key=NO_SUCH_KEY), "50111"),
    "wrong signature (other secret)": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, secret=b["secretKey"]),
                                       "50113"),
    "wrong signature (other path)": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, sign_target="/api/v5/x"),
                                     "50113"),
    "B's key, A's secret": (lambda a, b: _signed(b, "GET", ORDERS_PENDING, secret=a["secretKey"]), "50113"),
    "wrong passphrase": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, passphrase="not-it"), "50105"),
    "B's passphrase on A's key": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, passphrase=b["passphrase"]),
                                  "50105"),
    "expired timestamp": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, when=_past(31)), "50102"),
    "future timestamp": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, when=_past(-31)), "50102"),
    "malformed timestamp": (lambda a, b: _signed(a, "GET", ORDERS_PENDING, when="yesterday"), "50112"),
}


@pytest.mark.parametrize("case", sorted(REST_CASES))
def test_rest_auth_refused(world, case):
    build, code = REST_CASES[case]
    headers = build(world["a"].key, world["b"].key)
    response = world["a"].http.get(ORDERS_PENDING, headers=headers)
    body = response.json()
    assert (response.status_code, body["code"], body["data"]) == (401, code, [])
    _assert_no_leak(world, response.text)


def test_tampered_body_refused_and_not_applied(world):
    a = world["a"]
    signed_body = json.dumps({"instId": INST, "tdMode": "cross", "side": "buy", "ordType": "limit",
                              "sz": "0.01", "px": "80000"})
    sent_body = signed_body.replace("0.01", "5")
    headers = _signed(a.key, "POST", "/api/v5/trade/order", sent_body, sign_body=signed_body)
    seq = SignedClient(world["server"].url).admin("GET", "state")["seq"]
    response = a.http.post("/api/v5/trade/order", content=sent_body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (401, "50113")
    assert SignedClient(world["server"].url).admin("GET", "state")["seq"] == seq


def test_replayed_request_outside_window_refused(world):
    """A captured, correctly signed order replayed byte for byte once its timestamp is over
    30 s old is refused (50102) and not applied twice."""
    a = world["a"]
    body = json.dumps({"instId": INST, "tdMode": "cross", "side": "buy", "ordType": "limit",
                       "sz": "0.01", "px": "80000"})
    headers = _signed(a.key, "POST", "/api/v5/trade/order", body, when=_past(29.0))
    first = a.http.post("/api/v5/trade/order", content=body, headers=headers).json()
    assert first["code"] == "0", first
    time.sleep(1.6)
    replayed = a.http.post("/api/v5/trade/order", content=body, headers=headers)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "50102")
    pending = a.get(ORDERS_PENDING).json()["data"]
    assert sum(1 for o in pending if o["px"] == "80000") == 1
    a.post("/api/v5/trade/cancel-order", {"instId": INST, "ordId": first["data"][0]["ordId"]})


# --- isolation: A against B's orders and positions --------------------------------------------

def _a_reads_b_order_by_id(world) -> httpx.Response:
    return world["a"].get(f"/api/v5/trade/order?instId={INST}&ordId={world['b_ord']}")


def _a_reads_b_order_by_client_id(world) -> httpx.Response:
    return world["a"].get(f"/api/v5/trade/order?instId={INST}&clOrdId=bSecret1")


def _a_cancels_b(world) -> httpx.Response:
    return world["a"].post("/api/v5/trade/cancel-order", {"instId": INST, "ordId": world["b_ord"]})


def _a_cancels_b_by_client_id(world) -> httpx.Response:
    return world["a"].post("/api/v5/trade/cancel-order", {"instId": INST, "clOrdId": "bSecret1"})


def _a_batch_cancels_b(world) -> httpx.Response:
    return world["a"].post("/api/v5/trade/cancel-batch-orders",
                           [{"instId": INST, "ordId": world["b_ord"]},
                            {"instId": INST, "clOrdId": "bSecret1"}])


def _a_amends_b(world) -> httpx.Response:
    return world["a"].post("/api/v5/trade/amend-order",
                           {"instId": INST, "ordId": world["b_ord"], "newSz": "2"})


ISOLATION_REFUSALS: dict[str, tuple[Callable, int, str, str]] = {
    "read B's order by ordId": (_a_reads_b_order_by_id, 200, "51603", ""),
    "read B's order by clOrdId": (_a_reads_b_order_by_client_id, 200, "51603", ""),
    "cancel B's order": (_a_cancels_b, 200, "1", "51400"),
    "cancel B's order by clOrdId": (_a_cancels_b_by_client_id, 200, "1", "51400"),
    "batch-cancel B's orders": (_a_batch_cancels_b, 200, "1", "51400"),
    "amend B's order": (_a_amends_b, 200, "1", "51503"),
}


@pytest.mark.parametrize("case", sorted(ISOLATION_REFUSALS))
def test_account_cannot_touch_another_accounts_orders(world, case):
    action, status, code, s_code = ISOLATION_REFUSALS[case]
    response = action(world)
    body = response.json()
    assert (response.status_code, body["code"]) == (status, code), body
    if s_code:
        assert {item["sCode"] for item in body["data"]} == {s_code}
    else:
        assert body["data"] == []
    text = response.text.replace(f'"ordId":"{world["b_ord"]}"', "")  # A's own echo of its request
    text = text.replace('"clOrdId":"bSecret1"', "")
    _assert_no_leak(world, text)
    mine = world["b"].get(f"/api/v5/trade/order?instId={INST}&ordId={world['b_ord']}").json()
    assert mine["data"][0]["state"] == "live" and mine["data"][0]["sz"] == "1"


LISTINGS = [ORDERS_PENDING, "/api/v5/trade/orders-history?instType=SWAP", "/api/v5/trade/fills",
            "/api/v5/account/positions", "/api/v5/account/balance"]


@pytest.mark.parametrize("target", LISTINGS)
def test_listings_show_only_own_data(world, target):
    response = world["a"].get(target)
    body = response.json()
    assert body["code"] == "0"
    _assert_no_leak(world, response.text)
    if "positions" in target or "fills" in target:
        assert body["data"] == []  # A never traded; B holds a position and has fills
    own = world["b"].get(target).json()
    assert own["code"] == "0"


# --- admin API ---------------------------------------------------------------------------------

ADMIN_CASES = {
    "no token": {},
    "empty token": {"X-Backstop-Admin": ""},
    "wrong token": {"X-Backstop-Admin": "wrong"},
    "token prefix": {"X-Backstop-Admin": ADMIN_TOKEN[:-1]},
    "token with suffix": {"X-Backstop-Admin": ADMIN_TOKEN + "x"},
    "token in another header": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
}


@pytest.mark.parametrize("case", sorted(ADMIN_CASES))
@pytest.mark.parametrize("method,path,payload", [
    ("GET", "audit", None), ("GET", "state", None),
    ("POST", "accounts", {"deposits": {"USDT": "1"}}),
    ("POST", "withdraw", {"uid": "2", "ccy": "USDT", "amt": "1"}),
])
def test_admin_refused_without_its_token(world, case, method, path, payload):
    admin = SignedClient(world["server"].url)
    seq = admin.admin("GET", "state")["seq"]
    response = admin.http.request(method, f"/backstop/v1/{path}", headers=ADMIN_CASES[case],
                                  content=None if payload is None else json.dumps(payload))
    body = response.json()
    assert (response.status_code, body["code"], body["data"]) == (401, "50111", [])
    assert admin.admin("GET", "state")["seq"] == seq


def test_account_key_is_not_an_admin_token(world):
    a = world["a"]
    for token in (a.key["apiKey"], a.key["secretKey"]):
        response = a.http.get("/backstop/v1/audit", headers={"X-Backstop-Admin": token})
        assert (response.status_code, response.json()["code"]) == (401, "50111")


# --- WebSocket login -----------------------------------------------------------------------------

def _ws_login(key: dict[str, str], **override: str) -> str:
    ts = override.pop("ts", str(int(time.time())))
    secret = override.pop("secret", key["secretKey"])
    arg = {"apiKey": key["apiKey"], "passphrase": key["passphrase"], "timestamp": ts,
           "sign": sign(secret, f"{ts}GET/users/self/verify")}
    arg.update(override)
    return json.dumps({"op": "login", "args": [arg]})


WS_CASES: dict[str, tuple[Callable[[dict, dict], str], str]] = {
    "wrong key": (lambda a, b: _ws_login(a, apiKey=NO_SUCH_KEY), "60005"),
    "wrong passphrase": (lambda a, b: _ws_login(a, passphrase="nope"), "60024"),
    "wrong sign": (lambda a, b: _ws_login(a, secret=b["secretKey"]), "60007"),
    "expired timestamp": (lambda a, b: _ws_login(a, ts=str(int(time.time()) - 60)), "60006"),
    "malformed timestamp": (lambda a, b: _ws_login(a, ts="soon"), "60004"),
    "missing sign": (lambda a, b: _ws_login(a, sign=""), "60009"),
    "no args": (lambda a, b: json.dumps({"op": "login", "args": []}), "60009"),
    "B's key with A's secret": (lambda a, b: _ws_login(b, secret=a["secretKey"]), "60007"),
}


async def _ws_exchange(url: str, messages: list[str], replies: int) -> list[dict]:
    async with websockets.connect(url, open_timeout=5) as ws:
        out = []
        for message in messages:
            await ws.send(message)
        async with asyncio.timeout(5):
            while len(out) < replies:
                out.append(json.loads(await ws.recv()))
        return out


@pytest.mark.parametrize("case", sorted(WS_CASES))
def test_ws_login_refused_and_private_channels_stay_closed(world, case):
    build, code = WS_CASES[case]
    url = world["server"].url.replace("http", "ws") + "/ws/v5/private"
    subscribe = json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "SWAP"}]})
    login, sub = asyncio.run(_ws_exchange(url, [build(world["a"].key, world["b"].key), subscribe], 2))
    assert (login["event"], login["code"]) == ("error", code)
    assert (sub["event"], sub["code"]) == ("error", "60011")
    _assert_no_leak(world, json.dumps([login, sub]))
