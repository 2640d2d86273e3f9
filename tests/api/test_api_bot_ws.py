"""The WebSocket surface bots use: trading ``op``\\ s (``order``, ``batch-orders``,
``cancel-order``, ``amend-order``), the private ``account`` channel, business candle
channels and public ``trades``, ``open-interest`` and ``price-limit``; through raw
websockets and ccxt.pro unchanged (``watch_balance``, ``watch_ohlcv``, ``create_order_ws``)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import ccxt.pro
import websockets

from serverkit import ws_login_frame, ws_recv

BTC, DOT = "BTC-USDT-SWAP", "DOT-USDT-SWAP"


def _answer(msg_id: str):
    return lambda m: m.get("id") == msg_id


def _push(channel: str, more=lambda m: True):
    """A data push of ``channel`` (not its subscription ack) that also satisfies ``more``."""
    return lambda m: m.get("arg", {}).get("channel") == channel and "data" in m and more(m)


def test_trading_ops_answer_as_okx(server, account, admin):
    client = account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    order = {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "1", "px": "99000"}

    async def run() -> None:
        ws_url = server.url.replace("http", "ws")
        async with websockets.connect(f"{ws_url}/ws/v5/private") as priv, \
                websockets.connect(f"{ws_url}/ws/v5/public") as pub:
            await priv.send(json.dumps({"id": "a0", "op": "order", "args": [order]}))
            assert (await ws_recv(priv, _answer("a0")))["code"] == "60011"  # log in first
            await pub.send(json.dumps({"id": "p0", "op": "order", "args": [order]}))
            assert (await ws_recv(pub, _answer("p0")))["code"] == "60011"
            await priv.send(ws_login_frame(client.key))
            await ws_recv(priv, lambda m: m.get("event") == "login")
            await priv.send(json.dumps({"id": "a1", "op": "order", "args": [order]}))
            placed = await ws_recv(priv, _answer("a1"))
            assert (placed["op"], placed["code"], placed["data"][0]["sCode"]) == ("order", "0", "0")
            ord_id = placed["data"][0]["ordId"]
            orders_arg = {"channel": "orders", "instType": "SWAP"}
            await priv.send(json.dumps({"op": "subscribe", "args": [orders_arg]}))
            await ws_recv(priv, lambda m: m.get("event") == "subscribe")
            await priv.send(json.dumps({"id": "a2", "op": "amend-order",
                                        "args": [{"instId": BTC, "ordId": ord_id, "newPx": "99100"}]}))
            seen: list[dict] = []  # the push is logged before the op's answer is sent
            amended = await ws_recv(priv, lambda m: seen.append(m) or _answer("a2")(m))
            assert amended["code"] == "0" and amended["data"][0]["ordId"] == ord_id
            pushed = [m["data"][0] for m in seen if _push("orders")(m)]
            assert (pushed[-1]["ordId"], pushed[-1]["px"], pushed[-1]["state"]) == (ord_id, "99100", "live")
            assert all(p["state"] == "live" for p in pushed)  # never a transient 'canceled'
            bad = {**order, "sz": "0.001"}  # off the lot grid
            await priv.send(json.dumps({"id": "a3", "op": "batch-orders", "args": [order, bad]}))
            batch = await ws_recv(priv, _answer("a3"))
            assert batch["code"] == "2" and batch["data"][0]["sCode"] == "0"
            assert batch["data"][1]["sCode"] != "0"
            await priv.send(json.dumps({"id": "a4", "op": "cancel-order",
                                        "args": [{"instId": BTC, "ordId": ord_id}]}))
            assert (await ws_recv(priv, _answer("a4")))["data"][0]["sCode"] == "0"
            await priv.send(json.dumps({"id": "a5", "op": "cancel-order",
                                        "args": [{"instId": BTC, "ordId": ord_id}]}))
            again = await ws_recv(priv, _answer("a5"))
            assert again["code"] == "1" and again["data"][0]["sCode"] == "51400"
            await priv.send(json.dumps({"id": "a6", "op": "batch-orders", "args": [order] * 21}))
            assert (await ws_recv(priv, _answer("a6")))["code"] == "60012"  # at most 20

    asyncio.run(run())
    live = client.get(f"/api/v5/trade/orders-pending?instId={BTC}").json()["data"]
    assert [o["px"] for o in live] == ["99000"]  # the batch's valid order; the amended one cancelled


def test_a_flood_of_order_ops_is_rate_limited_like_rest(server, account, admin):
    client = account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    order = {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "0.01", "px": "96000"}

    async def run() -> list[str]:
        async with websockets.connect(server.url.replace("http", "ws") + "/ws/v5/private") as priv:
            await priv.send(ws_login_frame(client.key))
            await ws_recv(priv, lambda m: m.get("event") == "login")
            for i in range(80):  # OKX allows 60 per 2 s
                await priv.send(json.dumps({"id": f"f{i}", "op": "order", "args": [order]}))
            codes: dict[str, str] = {}  # refusals are answered at once, placements once logged
            while len(codes) < 80:
                answer = await ws_recv(priv, lambda m: str(m.get("id", "")).startswith("f"))
                codes[answer["id"]] = answer["code"]
            return list(codes.values())

    codes = asyncio.run(run())
    assert codes.count("50011") >= 10 and codes.count("0") >= 55
    placed = client.get("/api/v5/trade/orders-pending").json()["data"]
    assert len(placed) == codes.count("0")  # a refused op placed nothing


def test_public_channels_push_trades_open_interest_price_limit_and_candles(server, account, admin):
    maker, taker = account(), account()
    admin.admin("POST", "index-price", {"instFamily": "DOT-USDT", "px": "4"})

    async def run() -> tuple[dict, ...]:
        ws_url = server.url.replace("http", "ws")
        async with websockets.connect(f"{ws_url}/ws/v5/public") as pub, \
                websockets.connect(f"{ws_url}/ws/v5/business") as biz:
            args = [{"channel": c, "instId": DOT} for c in ("trades", "open-interest", "price-limit")]
            await pub.send(json.dumps({"op": "subscribe", "args": args}))
            first_oi = await ws_recv(pub, _push("open-interest"))
            await biz.send(json.dumps({"op": "subscribe", "args": [{"channel": "candle1m", "instId": DOT},
                                                                   {"channel": "mark-price-candle1m",
                                                                    "instId": DOT}]}))
            await ws_recv(biz, _push("mark-price-candle1m"))
            await pub.send(json.dumps({"op": "subscribe", "args": [{"channel": "candle1m", "instId": DOT}]}))
            wrong = await ws_recv(pub, lambda m: m.get("event") == "error")
            sell = {"instId": DOT, "tdMode": "cross", "side": "sell", "ordType": "limit", "sz": "7",
                    "px": "4.1"}
            buy = {"instId": DOT, "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "7"}
            await asyncio.to_thread(maker.post, "/api/v5/trade/order", sell)
            await asyncio.to_thread(taker.post, "/api/v5/trade/order", buy)
            trade = await ws_recv(pub, _push("trades"))
            oi = await ws_recv(pub, _push("open-interest",
                                        lambda m: m["data"][0]["oi"] != first_oi["data"][0]["oi"]))
            candle = await ws_recv(biz, _push("candle1m"))
            await asyncio.to_thread(admin.admin, "POST", "index-price", {"instFamily": "DOT-USDT", "px": "5"})
            limit = await ws_recv(pub, _push("price-limit",
                                           lambda m: m["data"][0]["buyLmt"] == "5.25"))
            return wrong, trade, oi, first_oi, candle, limit

    wrong, trade, oi, first_oi, candle, limit = asyncio.run(run())
    assert wrong["code"] == "60018"  # candles live on the business path, as on OKX
    assert (trade["data"][0]["px"], trade["data"][0]["sz"], trade["data"][0]["side"]) == ("4.1", "7", "buy")
    assert Decimal(oi["data"][0]["oi"]) - Decimal(first_oi["data"][0]["oi"]) == 7
    assert candle["data"][0][4] == "4.1" and Decimal(candle["data"][0][5]) >= 7
    assert limit["data"][0]["sellLmt"] == "4.75"  # the mark ± the engine's 5% band


def test_ccxt_pro_watch_balance_watch_ohlcv_and_create_order_ws(server, account, admin):
    maker, taker = account(), account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})

    async def run() -> None:
        ex = ccxt.pro.okx({"apiKey": taker.key["apiKey"], "secret": taker.key["secretKey"],
                           "password": taker.key["passphrase"], "options": {"defaultType": "swap"}})
        ex.urls["api"]["rest"] = server.url
        ex.urls["api"]["ws"] = server.url.replace("http", "ws") + "/ws/v5"
        ex.options["fetchMarkets"] = {"types": ["swap"]}
        try:
            balance = await asyncio.wait_for(ex.watch_balance(), 10)
            assert balance["USDT"]["total"] == 100000.0
            sell = {"instId": BTC, "tdMode": "cross", "side": "sell", "ordType": "limit", "sz": "3",
                    "px": "100100"}
            await asyncio.to_thread(maker.post, "/api/v5/trade/order", sell)
            next_balance = asyncio.ensure_future(ex.watch_balance())
            await asyncio.sleep(0)
            placed = await asyncio.wait_for(
                ex.create_order_ws("BTC/USDT:USDT", "market", "buy", 3, None, {"tdMode": "cross"}), 10)
            assert placed["id"]
            candles = await asyncio.wait_for(ex.watch_ohlcv("BTC/USDT:USDT", "1m"), 10)
            assert candles[-1][4] == 100100.0
            after = await asyncio.wait_for(next_balance, 10)  # pushed when the order filled
            assert after["USDT"]["total"] < 100000.0  # the taker fee
        finally:
            await ex.close()

    asyncio.run(run())
    fills = taker.get("/api/v5/trade/fills").json()["data"]
    assert [(f["fillPx"], f["fillSz"], f["execType"]) for f in fills] == [("100100", "3", "T")]
