"""The liquidation side of the API in manual mode: a liquidation and an ADL forced through the
admin index price show in ``public/insurance-fund`` (types and paging),
``public/liquidation-orders``, and on the WebSocket channels ``liquidation-orders``,
``adl-warning`` and the private ``balance_and_position`` (``eventType``)."""

from __future__ import annotations

import asyncio
import json

import websockets

from serverkit import ws_login_frame, ws_recv

BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"


def _order(client, inst_id: str, side: str, sz: str, px: str | None = None) -> None:
    body = {"instId": inst_id, "tdMode": "cross", "side": side, "sz": sz,
            "ordType": "limit" if px else "market", **({"px": px} if px else {})}
    answer = client.post("/api/v5/trade/order", body).json()
    assert answer["code"] == "0", answer


def _leverage(client, inst_id: str, lever: str) -> None:
    answer = client.post("/api/v5/account/set-leverage",
                         {"instId": inst_id, "lever": lever, "mgnMode": "cross"}).json()
    assert answer["code"] == "0", answer


async def _private(url: str, key: dict[str, str]):
    ws = await websockets.connect(f"{url}/ws/v5/private")
    await ws.send(ws_login_frame(key))
    assert (await ws_recv(ws, lambda m: m.get("event") == "login"))["code"] == "0"
    await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "balance_and_position"}]}))
    await ws_recv(ws, lambda m: m.get("data") and m["data"][0].get("eventType") == "snapshot")
    return ws


def _fund(admin, family: str, query: str = "") -> dict:
    body = admin.get(f"/api/v5/public/insurance-fund?instType=SWAP&instFamily={family}{query}",
                     signed=False).json()
    assert body["code"] == "0", body
    return body["data"][0]


def test_liquidation_shows_in_rest_and_ws(server, admin, account):
    maker, victim = account("10000000"), account("1000")
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    injected = admin.admin("POST", "insurance-fund/inject",
                           {"instType": "SWAP", "instFamily": "BTC-USDT", "amt": "100000"})
    assert injected["balance"] == "100000"
    _order(maker, BTC, "sell", "50", "100000")
    _order(maker, BTC, "buy", "500", "98380")
    _leverage(victim, BTC, "100")
    _order(victim, BTC, "buy", "50")
    ws_url = server.url.replace("http", "ws")

    async def run() -> tuple[dict, dict]:
        async with websockets.connect(f"{ws_url}/ws/v5/public") as pub:
            await pub.send(json.dumps({"op": "subscribe",
                                       "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}))
            assert (await ws_recv(pub, lambda m: "event" in m))["event"] == "subscribe"
            priv = await _private(ws_url, victim.key)
            try:
                await asyncio.to_thread(admin.admin, "POST", "index-price",
                                        {"instFamily": "BTC-USDT", "px": "98400"})
                pushed = await ws_recv(pub, lambda m: m.get("arg", {}).get("channel") == "liquidation-orders")
                mine = await ws_recv(priv, lambda m: m.get("data")
                                   and m["data"][0].get("eventType") == "liquidation")
            finally:
                await priv.close()
            return pushed, mine

    pushed, mine = asyncio.run(run())
    detail = pushed["data"][0]["details"][0]
    assert pushed["data"][0]["instFamily"] == "BTC-USDT"
    assert (detail["side"], detail["posSide"], detail["sz"], detail["ccy"]) == ("sell", "long", "50", "USDT")
    assert mine["data"][0]["posData"] == []  # the whole position was taken over
    legacy = admin.get("/api/v5/public/liquidation-orders?instType=SWAP&uly=BTC-USDT&state=filled",
                       signed=False).json()
    assert legacy["code"] == "0" and legacy["data"][0]["details"][0] == detail
    fund = _fund(admin, "BTC-USDT")
    kinds = [d["type"] for d in fund["details"]]
    assert kinds[:1] == ["liquidation_balance_deposit"] and kinds[-1] == "platform_revenue"
    assert fund["total"] == fund["details"][0]["balance"] and float(fund["total"]) > 100000
    newest, oldest = fund["details"][0], fund["details"][-1]
    assert _fund(admin, "BTC-USDT", "&limit=1")["details"] == [newest]
    assert _fund(admin, "BTC-USDT", f"&after={newest['ts']}")["details"][0]["ts"] < newest["ts"]
    assert _fund(admin, "BTC-USDT", f"&before={oldest['ts']}&limit=1")["details"][0]["ts"] > oldest["ts"]
    assert [d["type"] for d in _fund(admin, "BTC-USDT", "&type=platform_revenue")["details"]] \
        == ["platform_revenue"]
    bad = admin.get("/api/v5/public/insurance-fund?instType=SWAP&instFamily=BTC-USDT&type=nope",
                    signed=False)
    assert bad.json()["code"] == "51000"
    assert admin.admin("GET", "audit")["ok"] is True


def test_adl_shows_on_adl_warning_and_event_type(server, admin, account):
    maker, victim = account("10000000"), account("300")
    admin.admin("POST", "index-price", {"instFamily": "ETH-USDT", "px": "2000"})
    _order(maker, ETH, "sell", "100", "2000")
    _order(maker, ETH, "buy", "1000", "1900")
    _leverage(victim, ETH, "100")
    _order(victim, ETH, "buy", "100")
    ws_url = server.url.replace("http", "ws")

    async def run() -> tuple[dict, dict, dict]:
        async with websockets.connect(f"{ws_url}/ws/v5/public") as pub:
            arg = {"channel": "adl-warning", "instType": "SWAP", "instFamily": "ETH-USDT"}
            await pub.send(json.dumps({"op": "subscribe", "args": [arg]}))
            first = await ws_recv(pub, lambda m: "data" in m)
            priv = await _private(ws_url, maker.key)
            try:
                await asyncio.to_thread(admin.admin, "POST", "index-price",
                                        {"instFamily": "ETH-USDT", "px": "1940"})
                adl = await ws_recv(pub, lambda m: m.get("data") and m["data"][0]["state"] == "adl")
                repeat = await ws_recv(pub, lambda m: m.get("data") and m["data"][0]["state"] == "adl")
                mine = await ws_recv(priv, lambda m: m.get("data") and m["data"][0].get("eventType") == "adl")
            finally:
                await priv.close()
            assert first["data"][0]["state"] == "normal"
            assert int(repeat["data"][0]["ts"]) > int(adl["data"][0]["ts"])
            return adl, mine, first

    adl, mine, _ = asyncio.run(run())
    assert {k: adl["data"][0][k] for k in ("instType", "instFamily", "bal")} == \
        {"instType": "SWAP", "instFamily": "ETH-USDT", "bal": "0"}
    assert mine["data"][0]["posData"] == []  # the maker's whole short closed against the victim
    fund = _fund(admin, "ETH-USDT", "&type=adl")
    assert [d["adlType"] for d in fund["details"]] == ["bal_adl_start"]
    admin.admin("POST", "insurance-fund/inject",
                {"instType": "SWAP", "instFamily": "ETH-USDT", "amt": "5000"})
    admin.admin("POST", "index-price", {"instFamily": "ETH-USDT", "px": "1941"})
    assert _fund(admin, "ETH-USDT", "&type=adl")["details"][0]["adlType"] == "adl_end"
    settled = admin.admin("POST", "funding", {})
    assert any(r["instId"] == ETH for r in settled["rates"])
    assert admin.admin("GET", "audit")["ok"] is True
