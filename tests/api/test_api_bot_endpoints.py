"""The endpoints bots call, through real clients unchanged (ccxt, python-okx): candles,
trades, open interest, funding-rate history, mark price by ``instId`` alone, price limits,
max-size, trade-fee, every number form OKX accepts, close-position and amend."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import okx.Account
import okx.MarketData
import okx.Trade
import pytest

from conftest import Server, new_account

SOL, LINK, AVAX, BTC = "SOL-USDT-SWAP", "LINK-USDT-SWAP", "AVAX-USDT-SWAP", "BTC-USDT-SWAP"


def _ok(response) -> list[dict]:
    body = response.json()
    assert body["code"] == "0", body
    return body["data"]


def _order(client, inst_id: str, side: str, sz: str, px: str | None = None, mode: str = "cross") -> dict:
    body = {"instId": inst_id, "tdMode": mode, "side": side, "sz": sz,
            "ordType": "limit" if px else "market", **({"px": px} if px else {})}
    return client.post("/api/v5/trade/order", body).json()


def _ccxt(server, client) -> ccxt.okx:
    exchange = ccxt.okx({"apiKey": client.key["apiKey"], "secret": client.key["secretKey"],
                         "password": client.key["passphrase"], "options": {"defaultType": "swap"}})
    exchange.urls["api"]["rest"] = server.url
    exchange.options["fetchMarkets"] = {"types": ["swap"]}
    return exchange


def _trade(maker, taker, inst_id: str, px: str, sz: str, taker_side: str = "buy") -> None:
    maker_side = "sell" if taker_side == "buy" else "buy"
    assert _order(maker, inst_id, maker_side, sz, px)["code"] == "0"
    assert _order(taker, inst_id, taker_side, sz)["code"] == "0"


def test_ohlcv_and_trades_are_built_from_the_engines_trades(server, account, admin):
    maker, taker = account(), account()
    admin.admin("POST", "index-price", {"instFamily": "SOL-USDT", "px": "150"})
    fills = [("150", "2", "buy"), ("153.5", "1", "buy"), ("149", "4", "sell"), ("151", "3", "buy")]
    for px, sz, side in fills:
        _trade(maker, taker, SOL, px, sz, side)
    ex = _ccxt(server, taker)
    symbol = "SOL/USDT:USDT"
    candles = ex.fetch_ohlcv(symbol, "1m")
    total = sum(c[5] for c in candles)
    assert total == 10.0  # volume in contracts, every trade counted once
    highs, lows = max(c[2] for c in candles), min(c[3] for c in candles)
    assert (highs, lows) == (153.5, 149.0) and candles[0][1] == 150.0 and candles[-1][4] == 151.0
    history = ex.fetch_ohlcv(symbol, "1m", params={"type": "HistoryCandles"})  # ccxt sends limit=300 there
    assert history == candles
    daily = ex.fetch_ohlcv(symbol, "1d")  # ccxt asks for 1Dutc
    assert len(daily) == 1 and daily[0][1:6] == [150.0, 153.5, 149.0, 151.0, 10.0]
    hk_day = _ok(taker.get(f"/api/v5/market/candles?instId={SOL}&bar=1D"))
    assert int(hk_day[0][0]) % 86_400_000 == 16 * 3_600_000  # Hong Kong midnight, in UTC
    quote = Decimal("150") * 2 + Decimal("153.5") + 149 * 4 + 151 * 3  # Σ px·contracts·ctVal (1)
    assert hk_day[0][6] == "10" and hk_day[0][7] == str(quote)
    marks = ex.fetch_ohlcv(symbol, "1m", params={"price": "mark"})
    assert marks and marks[-1][4] == 150.0  # the mark follows the index
    index = _ok(taker.get("/api/v5/market/index-candles?instId=SOL-USDT&bar=1m"))
    assert index[0][4] == "150"
    trades = ex.fetch_trades(symbol)
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == \
        [(float(px), float(sz), side) for px, sz, side in fills]
    newest = _ok(taker.get(f"/api/v5/market/history-trades?instId={SOL}&limit=2"))
    older = _ok(taker.get(f"/api/v5/market/history-trades?instId={SOL}&after={newest[-1]['tradeId']}"))
    assert [t["px"] for t in newest + older] == ["151", "149", "153.5", "150"]
    for bar in ("1s", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H", "2D", "3D", "1W", "1M", "3M",
                "6Hutc", "12Hutc", "1Dutc", "2Dutc", "3Dutc", "1Wutc", "1Mutc", "3Mutc"):
        rows = _ok(taker.get(f"/api/v5/market/history-candles?instId={SOL}&bar={bar}"))
        assert sum(Decimal(r[5]) for r in rows) == 10, bar
    assert taker.get(f"/api/v5/market/candles?instId={SOL}&bar=7m").json()["code"] == "51000"


def test_open_interest_funding_history_mark_price_and_limits(server, account, admin):
    maker, taker = account(), account()
    admin.admin("POST", "index-price", {"instFamily": "LINK-USDT", "px": "14"})
    _trade(maker, taker, LINK, "14", "30")
    _trade(maker, taker, LINK, "14", "5", "sell")
    ex = _ccxt(server, taker)
    symbol = "LINK/USDT:USDT"
    interest = ex.fetch_open_interest(symbol)
    assert interest["openInterestAmount"] == 25.0 and interest["info"]["oiCcy"] == "25"  # ctVal 1
    assert ex.fetch_mark_price(symbol)["markPrice"] == 14.0  # ccxt sends instId only
    settled = admin.admin("POST", "funding", {"instId": LINK})
    history = ex.fetch_funding_rate_history(symbol)
    rate = next(r["fundingRate"] for r in settled["rates"] if r["instId"] == LINK)
    assert len(history) == 1 and history[0]["fundingRate"] == float(rate)
    paid = _ok(taker.get(f"/api/v5/account/bills?type=8&instId={LINK}"))
    assert len(paid) == 1 and paid[0]["subType"] in ("173", "174")  # expense or income
    limit = _ok(taker.get(f"/api/v5/public/price-limit?instId={LINK}"))[0]
    assert (limit["buyLmt"], limit["sellLmt"], limit["enabled"]) == ("14.7", "13.3", True)  # ±5% of 14
    beyond = _order(taker, LINK, "buy", "1", "14.701")
    assert beyond["data"][0]["sCode"] == "51006"  # the limit is the one the order check applies
    assert _order(taker, LINK, "buy", "1", limit["buyLmt"])["code"] == "0"
    fee = ex.fetch_trading_fee(symbol)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)


@pytest.mark.parametrize("lever", ["10", 10, 10.0, "10.0"])
def test_numbers_come_in_every_form_okx_accepts(server, account, lever):
    client = account()
    body = {"instId": BTC, "lever": lever, "mgnMode": "cross"}
    answer = _ok(client.post("/api/v5/account/set-leverage", body))
    assert answer[0]["lever"] == "10"
    placed = client.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "side": "buy",
                                                 "ordType": "limit", "sz": 1.0, "px": 50000}).json()
    assert placed["code"] == "0", placed


def test_max_size_is_exactly_what_the_order_check_allows(server, account, admin):
    maker, client = account("100000"), account("1000")
    admin.admin("POST", "index-price", {"instFamily": "AVAX-USDT", "px": "20"})
    assert _order(maker, AVAX, "sell", "1000", "20")["code"] == "0"
    _ok(client.post("/api/v5/account/set-leverage", {"instId": AVAX, "lever": "5", "mgnMode": "cross"}))
    size = _ok(client.get(f"/api/v5/account/max-size?instId={AVAX}&tdMode=cross"))[0]
    most = Decimal(size["maxBuy"])
    assert most > 0
    too_many = _order(client, AVAX, "buy", str(most + 1))
    assert too_many["code"] == "1" and too_many["data"][0]["sCode"] == "51008"
    assert _order(client, AVAX, "buy", str(most))["code"] == "0"
    after = _ok(client.get(f"/api/v5/account/max-size?instId={AVAX}&tdMode=cross"))[0]
    assert Decimal(after["maxSell"]) >= most and Decimal(after["maxBuy"]) < 1  # closing needs no margin
    detail = next(d for d in _ok(client.get("/api/v5/account/balance"))[0]["details"] if d["ccy"] == "USDT")
    assert detail["uplLiab"] == "0" and detail["eqUsd"] == detail["eq"]  # adapters require both
    wd = _ok(client.get("/api/v5/account/max-withdrawal?ccy=USDT"))[0]
    avail = _ok(client.get(f"/api/v5/account/max-avail-size?instId={AVAX}&tdMode=cross"))[0]
    assert Decimal(wd["maxWd"]) >= 0 and Decimal(avail["availBuy"]) == Decimal(avail["availSell"])
    off_grid = client.get(f"/api/v5/account/max-size?instId={AVAX}&tdMode=cross&px=20.0001").json()
    assert off_grid["code"] == "51000"


def test_close_position_through_ccxt_and_python_okx(server, account, admin):
    maker, client = account("10000000"), account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    assert _order(maker, BTC, "sell", "10", "100000")["code"] == "0"
    assert _order(maker, BTC, "buy", "10", "99000")["code"] == "0"
    assert _order(client, BTC, "buy", "2")["code"] == "0"
    ex = _ccxt(server, client)
    ex.close_position("BTC/USDT:USDT")
    assert _ok(client.get("/api/v5/account/positions")) == []
    closed = _ok(client.get("/api/v5/account/positions-history"))
    assert (closed[0]["type"], closed[0]["closeTotalPos"], closed[0]["closeAvgPx"]) == ("2", "2", "99000")
    refused = client.post("/api/v5/trade/close-position", {"instId": BTC, "mgnMode": "cross"}).json()
    assert refused["code"] == "51023"  # nothing left to close

    assert _order(client, BTC, "buy", "1", mode="isolated")["code"] == "0"
    kw = {"flag": "1", "domain": server.url, "debug": False}
    key = (client.key["apiKey"], client.key["secretKey"], client.key["passphrase"])
    trade = okx.Trade.TradeAPI(*key, **kw)
    assert trade.close_positions(instId=BTC, mgnMode="isolated")["code"] == "0"
    fills = trade.get_fills_history(instType="SWAP")
    assert fills["code"] == "0" and [f["subType"] for f in fills["data"]] == ["5", "3", "5", "3"]
    bills = okx.Account.AccountAPI(*key, **kw).get_account_bills(type="2")
    assert bills["code"] == "0" and len(bills["data"]) == 4
    assert sum(Decimal(b["balChg"]) for b in bills["data"]) == \
        sum(Decimal(f["fillPnl"]) + Decimal(f["fee"]) for f in fills["data"])
    candles = okx.MarketData.MarketAPI(**kw).get_candlesticks(instId=BTC, bar="1m")
    assert candles["code"] == "0" and candles["data"]


def test_amend_keeps_the_order_id_through_fills_and_restart(tmp_path):
    server = Server(tmp_path)
    server.start()
    try:
        maker, taker, stranger = (new_account(server) for _ in range(3))
        maker.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
        ex = _ccxt(server, maker)
        ex.load_markets()
        resting = ex.create_order("BTC/USDT:USDT", "limit", "sell", 2, 101000)
        edited = ex.edit_order(resting["id"], "BTC/USDT:USDT", "limit", "sell", 3, 100500)
        assert edited["id"] == resting["id"]
        book = _ok(taker.get(f"/api/v5/market/books?instId={BTC}&sz=5"))[0]
        assert book["asks"][0][:2] == ["100500", "3"]
        assert _order(taker, BTC, "buy", "1")["code"] == "0"
        order = ex.fetch_order(resting["id"], "BTC/USDT:USDT")
        assert (order["price"], order["amount"], order["filled"], order["status"]) == \
            (100500.0, 3.0, 1.0, "open")
        body = {"instId": BTC, "ordId": resting["id"], "newPx": "100600"}
        again = _ok(maker.post("/api/v5/trade/amend-order", body))
        assert again[0]["ordId"] == resting["id"]
        fill = _ok(maker.get("/api/v5/trade/fills"))[0]
        assert fill["ordId"] == resting["id"]
        before = _ok(maker.get(f"/api/v5/trade/order?instId={BTC}&ordId={resting['id']}"))
        server.stop()
        server.start()
        assert _ok(maker.get(f"/api/v5/trade/order?instId={BTC}&ordId={resting['id']}")) == before
        assert before[0]["px"] == "100600" and before[0]["sz"] == "3" and before[0]["accFillSz"] == "1"
        assert [o["ordId"] for o in _ok(maker.get("/api/v5/trade/orders-pending"))] == [resting["id"]]
        cl_ord_id = before[0]["clOrdId"]  # ccxt's own, kept through the amendments
        assert cl_ord_id and before[0]["clOrdId"] == resting["clientOrderId"]
        reused = maker.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "side": "buy",
                                                    "ordType": "limit", "sz": "1", "px": "99000",
                                                    "clOrdId": cl_ord_id}).json()
        assert reused["data"][0]["sCode"] == "51016"  # still live under it

        def amend(client, body):
            answer = client.post("/api/v5/trade/amend-order", {"instId": BTC, **body}).json()
            return answer["data"][0]["sCode"]

        assert amend(stranger, {"ordId": resting["id"], "newPx": "1"}) == "51503"  # not its order
        assert amend(maker, {"ordId": resting["id"]}) == "51500"  # nothing to change
        assert amend(maker, {"ordId": resting["id"], "newSz": "1"}) == "51000"  # not above the filled size
        assert amend(maker, {"ordId": resting["id"], "newPx": "100600.05"}) == "51000"  # off the tick grid
        assert _order(taker, BTC, "buy", "2")["code"] == "0"
        assert amend(maker, {"ordId": resting["id"], "newPx": "100700"}) == "51510"  # filled
        batch = maker.post("/api/v5/trade/amend-batch-orders",
                           [{"instId": BTC, "ordId": "999999", "newPx": "1"},
                            {"instId": BTC, "newPx": "1"}]).json()
        assert batch["code"] == "1" and [d["sCode"] for d in batch["data"]] == ["51503", "50014"]
        forged = stranger.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "side": "buy",
                                                       "ordType": "limit", "sz": "1", "px": "90000",
                                                       "clOrdId": f"bsamend{resting['id']}"}).json()
        assert forged["data"][0]["sCode"] == "51000"  # the amendment mark cannot be forged
    finally:
        server.stop()
