"""An open-source trading bot, live (not dry-run), against ``backstop serve``: freqtrade's OKX
futures setup with only the REST URL changed. Its strategy goes long at 50× isolated; an
admin index move liquidates the position; the test checks that freqtrade found the
liquidation order through the REST history (``orders-history``) and closed its trade at the
liquidation price, as it does on OKX.

Needs the ``bot`` extra (``pip install -e '.[bot]'``); skipped without it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import Server, new_account

pytest.importorskip("freqtrade", reason="freqtrade is not installed (pip install -e '.[bot]')")

BTC = "BTC-USDT-SWAP"
STRATEGY = '''
from freqtrade.strategy import IStrategy


class AlwaysLong(IStrategy):
    """Enters long on every candle and never exits by itself."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 100}
    stoploss = -0.99
    process_only_new_candles = False
    startup_candle_count = 0

    def populate_indicators(self, dataframe, metadata):
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe["exit_long"] = 0
        return dataframe

    def leverage(self, pair, current_time, current_rate, proposed_leverage, max_leverage, entry_tag,
                 side, **kwargs):
        return 50.0
'''


def _config(server, key: dict[str, str], user_dir: Path) -> dict:
    urls = {"urls": {"api": {"rest": server.url}}, "options": {"fetchMarkets": {"types": ["swap"]}}}
    return {
        "bot_name": "backstop-liquidation", "max_open_trades": 1, "stake_currency": "USDT",
        "stake_amount": 500, "tradable_balance_ratio": 0.99, "dry_run": False,
        "trading_mode": "futures", "margin_mode": "isolated", "timeframe": "1m",
        "initial_state": "running", "user_data_dir": str(user_dir), "strategy": "AlwaysLong",
        "strategy_path": str(user_dir / "strategies"), "db_url": f"sqlite:///{user_dir / 'trades.sqlite'}",
        "exchange": {"name": "okx", "key": key["apiKey"], "secret": key["secretKey"],
                     "password": key["passphrase"], "ccxt_config": urls, "ccxt_async_config": urls,
                     "pair_whitelist": ["BTC/USDT:USDT"], "pair_blacklist": [], "enable_ws": False,
                     "_ft_has_params": {"ohlcv_partial_candle": False}},
        "entry_pricing": {"price_side": "other", "use_order_book": False},
        "exit_pricing": {"price_side": "other", "use_order_book": False},
        "order_types": {"entry": "market", "exit": "market", "stoploss": "market",
                        "stoploss_on_exchange": False},
        "unfilledtimeout": {"entry": 10, "exit": 10, "unit": "minutes"},
        "pairlists": [{"method": "StaticPairList"}],
        "internals": {"process_throttle_secs": 1},
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
    }


def _rows(db: Path, query: str) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(query).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []


def _wait(what: str, probe, bot: subprocess.Popen, log: Path, timeout_s: float = 90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        if bot.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"freqtrade never {what}; its log ends:\n{log.read_text()[-4000:]}")


def test_freqtrade_sees_its_liquidation_through_rest_history(tmp_path):
    server = Server(tmp_path / "exchange")
    server.start()
    bot: subprocess.Popen | None = None
    stop = threading.Event()
    try:
        maker, bot_account = new_account(server, "10000000"), new_account(server, "1000")
        maker.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})
        maker.admin("POST", "insurance-fund/inject",
                    {"instType": "SWAP", "instFamily": "BTC-USDT", "amt": "100000"})
        quotes = ({"side": "sell", "sz": "200", "px": "100010"}, {"side": "buy", "sz": "1000", "px": "98500"})
        for body in quotes:
            answer = maker.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "ordType": "limit",
                                                        **body}).json()
            assert answer["code"] == "0", answer
        taker = new_account(server, "10000000")

        def keep_candles_fresh() -> None:  # a trade every few seconds, as a live market has
            while not stop.wait(3):
                taker.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "side": "buy",
                                                   "ordType": "market", "sz": "0.01"})

        threading.Thread(target=keep_candles_fresh, daemon=True).start()
        user_dir = tmp_path / "user_data"
        (user_dir / "strategies").mkdir(parents=True)
        (user_dir / "strategies" / "always_long.py").write_text(STRATEGY)
        config = user_dir / "config.json"
        config.write_text(json.dumps(_config(server, bot_account.key, user_dir)))
        log = tmp_path / "freqtrade.log"
        freqtrade = Path(sys.executable).with_name("freqtrade")
        with log.open("w") as out:
            bot = subprocess.Popen([str(freqtrade), "trade", "--config", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, env={**os.environ})
        db = user_dir / "trades.sqlite"
        opened = _wait("opened its long", lambda: _rows(
            db, "SELECT leverage, amount FROM trades WHERE is_open = 1 AND amount > 0"), bot, log)
        leverage, amount = opened[0]
        position = bot_account.get("/api/v5/account/positions").json()["data"]
        assert len(position) == 1 and position[0]["mgnMode"] == "isolated"
        # freqtrade sized the leverage from the published tiers and set it (a float) before entering
        assert float(position[0]["lever"]) == pytest.approx(leverage) and leverage > 10
        assert float(position[0]["pos"]) * 0.01 == pytest.approx(amount)  # contracts × ctVal

        maker.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "94000"})
        history = bot_account.get("/api/v5/trade/orders-history?instType=SWAP").json()["data"]
        liquidation = [o for o in history if o["category"] == "full_liquidation"]
        assert len(liquidation) == 1, history
        closed = _wait("closed its trade", lambda: _rows(
            db, "SELECT exit_reason, close_rate FROM trades WHERE is_open = 0"), bot, log)
        exit_reason, close_rate = closed[0]
        assert exit_reason == "sold_on_exchange"  # found on the exchange, not sent by the bot
        assert close_rate == pytest.approx(float(liquidation[0]["avgPx"]))
        known = _rows(db, "SELECT order_id, ft_order_side, status FROM orders")
        assert (liquidation[0]["ordId"], "sell", "closed") in known  # the liquidation order, stored
    finally:
        stop.set()
        if bot is not None and bot.poll() is None:
            bot.send_signal(signal.SIGINT)
            try:
                bot.wait(20)
            except subprocess.TimeoutExpired:
                bot.kill()
        server.stop()
