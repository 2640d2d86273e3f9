"""Real clients against the loopback server: ccxt ``okx`` and the official python-okx SDK."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import okx.Account
import okx.MarketData
import okx.PublicData
import okx.Trade
import pytest

from backstop.math.margin import calculate_initial_margin, calculate_liquidation_px
from backstop.math.values import calculate_notional
from backstop.model.catalogue import default_catalogue

BTC = "BTC-USDT-SWAP"
SYMBOL = "BTC/USDT:USDT"


def _ccxt(server, client, swap_only: bool) -> ccxt.okx:
    exchange = ccxt.okx({"apiKey": client.key["apiKey"], "secret": client.key["secretKey"],
                         "password": client.key["passphrase"]})
    exchange.urls["api"]["rest"] = server.url
    if swap_only:
        exchange.options["fetchMarkets"] = {"types": ["swap"]}
    return exchange


@pytest.mark.parametrize("swap_only", [False, True])
def test_ccxt_trading_flow(server, account, swap_only):
    maker, taker = account(), account()
    # orders must lie within the price band around the mark: put the mark at 100,000
    maker.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
    ex_maker, ex = _ccxt(server, maker, swap_only), _ccxt(server, taker, swap_only)
    markets = ex.load_markets()
    assert markets[SYMBOL]["contractSize"] == 0.01 and markets[SYMBOL]["linear"]
    ex_maker.load_markets()
    ex.set_leverage(10, SYMBOL, {"marginMode": "isolated"})
    resting = ex_maker.create_order(SYMBOL, "limit", "sell", 1, 100000, {"tdMode": "cross"})
    assert ex_maker.fetch_open_orders(SYMBOL)[0]["id"] == resting["id"]
    book = ex.fetch_order_book(SYMBOL)
    assert book["asks"][0][:2] == [100000.0, 1.0]
    ex.create_order(SYMBOL, "market", "buy", 1, None, {"tdMode": "isolated"})
    ticker = ex.fetch_ticker(SYMBOL)
    assert ticker["last"] == 100000.0
    assert ex.fetch_balance()["USDT"]["total"] > 0
    position = ex.fetch_positions([SYMBOL])[0]
    assert position["contracts"] == 1 and position["side"] == "long" and position["marginMode"] == "isolated"
    inst = default_catalogue().get(BTC)
    lots, ticks = inst.sz_to_lots(Decimal(1)), inst.px_to_ticks(Decimal(100000))
    margin = calculate_initial_margin(calculate_notional(inst, lots, ticks), 1000)
    cost = lots * ticks * inst.value_k
    expected = calculate_liquidation_px(inst, lots, cost, margin, inst.tiers[0].mmr_ppm)
    # the displayed liqPx is the engine's own trigger tick: OKX's formula within one tick
    assert abs(Decimal(position["info"]["liqPx"]) - expected) <= inst.tick_sz
    rest = ex.create_order(SYMBOL, "limit", "buy", 1, 50000, {"tdMode": "isolated"})
    ex.cancel_order(rest["id"], SYMBOL)
    assert ex.fetch_open_orders(SYMBOL) == []
    fund = ex.public_get_public_insurance_fund({"instType": "SWAP", "instFamily": "BTC-USDT"})
    assert fund["code"] == "0" and fund["data"][0]["instFamily"] == "BTC-USDT"


def test_python_okx_sdk(server, account):
    client = account()
    key, secret, phrase = client.key["apiKey"], client.key["secretKey"], client.key["passphrase"]
    kw = {"flag": "1", "domain": server.url, "debug": False}
    public = okx.PublicData.PublicAPI(**kw)
    assert public.get_instruments(instType="SWAP")["code"] == "0"
    market = okx.MarketData.MarketAPI(**kw)
    assert market.get_ticker(instId=BTC)["data"][0]["instId"] == BTC
    account_api = okx.Account.AccountAPI(key, secret, phrase, **kw)
    assert account_api.get_account_balance()["data"][0]["details"]
    assert account_api.set_leverage(instId=BTC, lever="20", mgnMode="cross")["code"] == "0"
    trade = okx.Trade.TradeAPI(key, secret, phrase, **kw)
    placed = trade.place_order(instId=BTC, tdMode="cross", side="buy", ordType="limit", sz="1", px="50000")
    assert placed["code"] == "0"
    ord_id = placed["data"][0]["ordId"]
    assert trade.get_order(instId=BTC, ordId=ord_id)["data"][0]["state"] == "live"
    assert trade.cancel_order(instId=BTC, ordId=ord_id)["data"][0]["sCode"] == "0"
    assert trade.get_order_list(instId=BTC)["data"] == []
