"""History that tells the story: a liquidation and an ADL, forced through the admin index
price, appear in ``orders-history``, ``fills``/``fills-history``, ``account/bills`` and
``positions-history`` as OKX shows them, are parsed by ccxt unchanged, page as OKX pages, and
survive a restart (the server replays its log)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import ccxt
import pytest
import websockets

from conftest import Server, new_account
from serverkit import ws_login_frame

BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"
SYMBOL = "BTC/USDT:USDT"


def _ok(response) -> list[dict]:
    body = response.json()
    assert body["code"] == "0", body
    return body["data"]


def _order(client, inst_id: str, side: str, sz: str, px: str | None = None, mode: str = "cross") -> str:
    body = {"instId": inst_id, "tdMode": mode, "side": side, "sz": sz,
            "ordType": "limit" if px else "market", **({"px": px} if px else {})}
    return _ok(client.post("/api/v5/trade/order", body))[0]["ordId"]


def _leverage(client, inst_id: str, lever: str, mode: str = "cross") -> None:
    _ok(client.post("/api/v5/account/set-leverage", {"instId": inst_id, "lever": lever, "mgnMode": mode}))


def _ccxt(server, client) -> ccxt.okx:
    exchange = ccxt.okx({"apiKey": client.key["apiKey"], "secret": client.key["secretKey"],
                         "password": client.key["passphrase"]})
    exchange.urls["api"]["rest"] = server.url
    exchange.options["fetchMarkets"] = {"types": ["swap"]}
    exchange.options["defaultType"] = "swap"  # as futures bots configure it
    return exchange


def _story(client) -> dict[str, list[dict]]:
    """Everything the history endpoints say about the account."""
    return {
        "orders": _ok(client.get("/api/v5/trade/orders-history?instType=SWAP")),
        "archive": _ok(client.get("/api/v5/trade/orders-history-archive?instType=SWAP")),
        "fills": _ok(client.get("/api/v5/trade/fills")),
        "fills_history": _ok(client.get("/api/v5/trade/fills-history?instType=SWAP")),
        "bills": _ok(client.get("/api/v5/account/bills")),
        "bills_archive": _ok(client.get("/api/v5/account/bills-archive")),
        "positions": _ok(client.get("/api/v5/account/positions-history")),
    }


def _cash_balance(client, ccy: str = "USDT") -> Decimal:
    details = _ok(client.get("/api/v5/account/balance"))[0]["details"]
    return next(Decimal(d["cashBal"]) for d in details if d["ccy"] == ccy)


@pytest.fixture
def own_server(tmp_path):
    srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def test_isolated_liquidation_tells_the_story_and_survives_restart(own_server):
    server = own_server
    maker, victim = new_account(server, "10000000"), new_account(server, "1000")
    admin = maker
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    admin.admin("POST", "insurance-fund/inject",
                {"instType": "SWAP", "instFamily": "BTC-USDT", "amt": "100000"})
    _order(maker, BTC, "sell", "50", "100000")
    _order(maker, BTC, "buy", "500", "98380")
    _leverage(victim, BTC, "100", "isolated")
    opened = _order(victim, BTC, "buy", "50", mode="isolated")
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "98400"})

    story = _story(victim)
    liq = [o for o in story["orders"] if o["category"] == "full_liquidation"]
    assert len(liq) == 1, story["orders"]
    order = liq[0]
    assert (order["ordType"], order["px"], order["state"], order["side"], order["sz"], order["accFillSz"]) \
        == ("market", "", "filled", "sell", "50", "50")
    assert order["avgPx"] == "98380" and order["fillPx"] == "98380" and Decimal(order["pnl"]) < 0
    assert story["archive"] == story["orders"]
    fill = next(f for f in story["fills_history"] if f["ordId"] == order["ordId"])
    assert (fill["subType"], fill["execType"], fill["fillPx"], fill["fillSz"]) == ("104", "T", "98380", "50")
    assert Decimal(fill["fillPnl"]) == Decimal(order["pnl"]) and story["fills"] == story["fills_history"]
    opening = next(f for f in story["fills"] if f["ordId"] == opened)
    assert opening["subType"] == "3" and opening["fillPnl"] == "0"  # open long
    kinds = [(b["type"], b["subType"]) for b in story["bills"]]
    assert kinds[-1] == ("1", "11")  # oldest first on the wire is newest first: the deposit is last
    assert ("2", "3") in kinds and ("5", "104") in kinds
    # bankrupt beyond its margin: the fund paid the deficit in (liquidation transfer in)
    paid_in = [b for b in story["bills"] if (b["type"], b["subType"]) == ("5", "110")]
    assert len(paid_in) == 1 and Decimal(paid_in[0]["balChg"]) > 0
    # every bill's balance is the running sum of the changes, and the newest one is cashBal now
    usdt = [b for b in story["bills"] if b["ccy"] == "USDT"][::-1]
    running = Decimal(0)
    for bill in usdt:
        running += Decimal(bill["balChg"])
        assert Decimal(bill["bal"]) == running, bill
    assert running == _cash_balance(victim)
    closed = story["positions"]
    assert len(closed) == 1 and (closed[0]["type"], closed[0]["direction"], closed[0]["closeTotalPos"],
                                 closed[0]["mgnMode"]) == ("3", "long", "50", "isolated")
    assert closed[0]["closeAvgPx"] == "98380" and closed[0]["openAvgPx"] == "100000"
    assert Decimal(closed[0]["pnl"]) == Decimal(fill["fillPnl"])

    ex = _ccxt(server, victim)
    trades = ex.fetch_my_trades(SYMBOL)
    liq_trade = next(t for t in trades if t["order"] == order["ordId"])
    assert (liq_trade["side"], liq_trade["amount"], liq_trade["price"], liq_trade["takerOrMaker"]) == \
        ("sell", 50.0, 98380.0, "taker")
    parsed = ex.fetch_closed_orders(SYMBOL)
    stored = next(o for o in parsed if o["id"] == order["ordId"])
    assert (stored["type"], stored["status"], stored["average"], stored["filled"]) == \
        ("market", "closed", 98380.0, 50.0)
    ledger = ex.fetch_ledger("USDT")
    assert {e["type"] for e in ledger} == {"trade"}  # SWAP bills: the open and the liquidation
    newest = max(ledger, key=lambda e: int(e["id"]))
    assert newest["after"] == float(running) and newest["amount"] == float(paid_in[0]["balChg"])

    server.stop()
    server.start()
    assert _story(victim) == story  # rebuilt from the log alone


def test_adl_gives_both_sides_an_order_a_fill_and_a_bill(server, account, admin):
    maker, victim = account("10000000"), account("300")
    admin.admin("POST", "index-price", {"instFamily": "ETH-USDT", "px": "2000"})
    _order(maker, ETH, "sell", "100", "2000")
    _order(maker, ETH, "buy", "1000", "1900")
    _leverage(victim, ETH, "100")
    _order(victim, ETH, "buy", "100")

    async def move_and_watch() -> dict:
        async with websockets.connect(server.url.replace("http", "ws") + "/ws/v5/private") as ws:
            await ws.send(ws_login_frame(maker.key))
            orders = {"channel": "orders", "instType": "SWAP"}
            await ws.send(json.dumps({"op": "subscribe", "args": [orders]}))
            async with asyncio.timeout(5):
                while json.loads(await ws.recv()).get("event") != "subscribe":
                    pass
            crash = {"instFamily": "ETH-USDT", "px": "1940"}
            await asyncio.to_thread(admin.admin, "POST", "index-price", crash)
            async with asyncio.timeout(5):
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("data") and message["data"][0].get("category") == "adl":
                        return message["data"][0]

    pushed = asyncio.run(move_and_watch())  # the ADL order reaches the orders channel too
    won = _story(maker)
    adl = [o for o in won["orders"] if o["category"] == "adl"]
    assert len(adl) == 1 and (adl[0]["ordType"], adl[0]["state"], adl[0]["side"], adl[0]["sz"]) == \
        ("market", "filled", "buy", "100")
    assert (pushed["ordId"], pushed["state"], pushed["avgPx"]) == (adl[0]["ordId"], "filled", adl[0]["avgPx"])
    adl_fill = next(f for f in won["fills"] if f["ordId"] == adl[0]["ordId"])
    assert (adl_fill["subType"], adl_fill["execType"], adl_fill["fee"]) == ("126", "M", "0")
    assert Decimal(adl_fill["fillPnl"]) > 0  # the short gained from 2000 down to the ADL price
    assert any((b["type"], b["subType"]) == ("9", "126") for b in won["bills"])
    assert won["positions"][0]["type"] == "6"  # ADL closed it all

    lost = _story(victim)
    forced = [o for o in lost["orders"] if o["category"] in ("full_liquidation", "partial_liquidation")]
    assert forced and all(o["ordType"] == "market" and o["state"] == "filled" for o in forced)
    lost_fill = next(f for f in lost["fills"] if f["ordId"] in {o["ordId"] for o in forced})
    assert lost_fill["fillPx"] == adl_fill["fillPx"] and lost_fill["fillSz"] == adl_fill["fillSz"]
    assert lost_fill["tradeId"] != adl_fill["tradeId"] or lost_fill["ordId"] != adl_fill["ordId"]
    assert lost["positions"][0]["type"] in ("3", "4")
    # the two sides' ADL PnL are equal and opposite at the ADL price (no fee on either side)
    assert Decimal(lost_fill["fillPnl"]) < 0 and lost_fill["fee"] == "0"
    assert admin.admin("GET", "audit")["ok"] is True


def test_paging_is_okx_after_before_limit(server, account, admin):
    maker, taker = account(), account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    for i in range(5):
        _order(maker, BTC, "sell", "1", str(100000 + i))
        _order(taker, BTC, "buy", "1")
    full = _ok(taker.get("/api/v5/trade/fills?limit=100"))
    assert len(full) == 5 and [int(f["billId"]) for f in full] == sorted((int(f["billId"]) for f in full),
                                                                         reverse=True)
    walked, cursor = [], ""
    while True:
        page = _ok(taker.get(f"/api/v5/trade/fills?limit=2{cursor}"))
        if not page:
            break
        walked += page
        cursor = f"&after={page[-1]['billId']}"
    assert walked == full
    newer = _ok(taker.get(f"/api/v5/trade/fills?before={full[-1]['billId']}&limit=2"))
    assert newer == full[-3:-1]  # the two just after the cursor, newest first
    orders = _ok(taker.get("/api/v5/trade/orders-history?instType=SWAP&limit=100"))
    second = _ok(taker.get(f"/api/v5/trade/orders-history?instType=SWAP&limit=2&after={orders[1]['ordId']}"))
    assert second == orders[2:4]
    bills = _ok(taker.get("/api/v5/account/bills?limit=100"))
    assert _ok(taker.get(f"/api/v5/account/bills?after={bills[0]['billId']}&limit=1")) == bills[1:2]
    assert _ok(taker.get("/api/v5/account/bills?type=2&limit=100")) == [b for b in bills if b["type"] == "2"]


@pytest.mark.parametrize("target, code", [
    ("/api/v5/trade/fills-history", "50014"),  # instType is required there, as on OKX
    ("/api/v5/trade/orders-history", "50014"),
    ("/api/v5/trade/fills?limit=0", "51000"),
    ("/api/v5/trade/fills?limit=101", "51000"),
    ("/api/v5/account/bills?after=%C2%B2", "51000"),  # a unicode digit is not a cursor
    ("/api/v5/account/positions-history?mgnMode=hedge", "51000"),
    ("/api/v5/trade/orders-history?instType=SWAP&state=live", "51000"),
])
def test_history_refuses_bad_parameters_with_okx_codes(server, account, target, code):
    answer = account().get(target)
    assert answer.status_code in (200, 400) and answer.json()["code"] == code


def test_an_account_sees_only_its_own_history(server, account, admin):
    maker, taker, stranger = account(), account(), account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    _order(maker, BTC, "sell", "1", "100000")
    _order(taker, BTC, "buy", "1")
    assert _ok(stranger.get("/api/v5/trade/fills")) == []
    assert [b["type"] for b in _ok(stranger.get("/api/v5/account/bills"))] == ["1", "1"]  # its deposits
    assert _ok(stranger.get("/api/v5/account/positions-history")) == []
    ord_id = _ok(taker.get("/api/v5/trade/fills"))[0]["ordId"]
    assert _ok(stranger.get(f"/api/v5/trade/fills?ordId={ord_id}")) == []


def _names(text: str) -> set[str]:
    return set(text.split())


ORDER_FIELDS = _names("""instType instId tgtCcy ccy ordId clOrdId tag px pxUsd pxVol pxType sz ordType
    side posSide tdMode accFillSz fillPx tradeId fillSz fillTime avgPx state lever
    attachAlgoClOrdId tpTriggerPx tpTriggerPxType tpOrdPx slTriggerPx
    slTriggerPxType slOrdPx attachAlgoOrds linkedAlgoOrd stpId stpMode feeCcy fee
    rebateCcy source rebate pnl category reduceOnly cancelSource cancelSourceReason
    algoClOrdId algoId isTpLimit uTime cTime tradeQuoteCcy""")
FILL_FIELDS = _names("""instType instId tradeId ordId clOrdId billId subType tag fillPx fillSz fillIdxPx
    fillPnl fillPxVol fillPxUsd fillMarkVol fillFwdPx fillMarkPx side posSide
    execType feeCcy fee ts fillTime feeRate tradeQuoteCcy""")
BILL_FIELDS = _names("""instType billId subType ts balChg posBalChg bal posBal sz px ccy pnl fee mgnMode
    instId ordId execType from to notes interest tag fillTime tradeId clOrdId
    fillIdxPx fillMarkPx fillPxVol fillPxUsd fillMarkVol fillFwdPx type earnAmt
    earnApr""")
CLOSED_FIELDS = _names("""instType instId mgnMode type cTime uTime openAvgPx nonSettleAvgPx closeAvgPx
    posId openMaxPos closeTotalPos realizedPnl settledPnl pnlRatio fee fundingFee
    liqPenalty pnl posSide lever direction triggerPx uly ccy""")
"""The response fields OKX's v5 documentation lists for each endpoint."""


def test_every_field_okx_documents_is_there(server, account, admin):
    maker, taker = account(), account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    _order(maker, BTC, "sell", "2", "100000")
    _order(taker, BTC, "buy", "2")
    _order(maker, BTC, "buy", "1", "99900")
    _order(taker, BTC, "sell", "1")
    story = _story(taker)
    assert story["orders"] and all(set(o) >= ORDER_FIELDS for o in story["orders"])
    assert story["fills"] and all(set(f) >= FILL_FIELDS for f in story["fills"])
    assert story["bills"] and all(set(b) >= BILL_FIELDS for b in story["bills"])
    assert story["positions"] and all(set(p) >= CLOSED_FIELDS for p in story["positions"])
    assert story["positions"][0]["type"] == "1"  # closed in part
    for row in (*story["orders"], *story["fills"], *story["bills"], *story["positions"]):
        assert all(isinstance(v, str | list | dict) for v in row.values()), row  # numbers travel as strings
