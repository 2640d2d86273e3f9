"""WebSockets over loopback: raw protocol (ping, login, acks, book sequence) and ccxt.pro."""

from __future__ import annotations

import asyncio
import json

import ccxt.pro
import websockets

from serverkit import ws_login_frame, ws_recv

BTC = "BTC-USDT-SWAP"
SYMBOL = "BTC/USDT:USDT"
ORDERS_SUB = json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "SWAP"}]})


def test_raw_protocol(server, account):
    client = account()
    order = {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "1", "px": "60000"}

    async def run() -> None:
        ws_url = server.url.replace("http", "ws")
        async with websockets.connect(f"{ws_url}/ws/v5/public") as pub, \
                websockets.connect(f"{ws_url}/ws/v5/private") as priv:
            await pub.send("ping")
            assert await pub.recv() == "pong"
            await pub.send(json.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": BTC}]}))
            assert (await ws_recv(pub, lambda m: "event" in m))["event"] == "subscribe"
            snapshot = await ws_recv(pub, lambda m: m.get("action") == "snapshot")
            await priv.send(ORDERS_SUB)
            assert (await ws_recv(priv, lambda m: "event" in m))["code"] == "60011"
            await priv.send(ws_login_frame(client.key))
            assert (await ws_recv(priv, lambda m: m.get("event") == "login"))["code"] == "0"
            await priv.send(ORDERS_SUB)
            assert (await ws_recv(priv, lambda m: "event" in m))["event"] == "subscribe"
            await asyncio.to_thread(client.post, "/api/v5/trade/order", order)
            update = await ws_recv(pub, lambda m: m.get("action") == "update")
            assert update["data"][0]["prevSeqId"] == snapshot["data"][0]["seqId"]
            assert ["60000", "1", "0", "1"] in update["data"][0]["bids"]
            pushed = await ws_recv(priv, lambda m: m.get("arg", {}).get("channel") == "orders")
            assert pushed["data"][0]["state"] == "live" and pushed["data"][0]["px"] == "60000"
            await pub.send(json.dumps({"op": "unsubscribe", "args": [{"channel": "books", "instId": BTC}]}))
            assert (await ws_recv(pub, lambda m: "event" in m))["event"] == "unsubscribe"
            await pub.send(json.dumps({"op": "subscribe", "args": [{"channel": "nope", "instId": BTC}]}))
            assert (await ws_recv(pub, lambda m: "event" in m))["code"] == "60018"

    asyncio.run(run())


def test_ccxt_pro_watch_ticker_and_positions(server, account):
    maker, taker = account(), account()
    maker.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})  # the band

    async def run() -> None:
        ex = ccxt.pro.okx({"apiKey": taker.key["apiKey"], "secret": taker.key["secretKey"],
                           "password": taker.key["passphrase"]})
        ex.urls["api"]["rest"] = server.url
        ex.urls["api"]["ws"] = server.url.replace("http", "ws") + "/ws/v5"
        ex.options["fetchMarkets"] = {"types": ["swap"]}
        try:
            ticker = await ex.watch_ticker(SYMBOL)
            assert ticker["symbol"] == SYMBOL
            sell = {"instId": BTC, "tdMode": "cross", "side": "sell", "ordType": "limit", "sz": "2",
                    "px": "101000"}
            await asyncio.to_thread(maker.post, "/api/v5/trade/order", sell)
            await ex.create_order(SYMBOL, "market", "buy", 2, None, {"tdMode": "cross"})
            positions = await ex.watch_positions()
            assert positions and positions[-1]["contracts"] == 2
        finally:
            await ex.close()

    asyncio.run(run())
