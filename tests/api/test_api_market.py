"""The replay market: a server running the market driver shows liquidations and fund flows
through REST within seconds, and the driver is deterministic by seed."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace

import httpx
import pytest

from backstop.market import MarketDriver, MarketSettings
from backstop.model import codec
from backstop.serve import build_service, ensure_market_args
from backstop.sim.price_sources import CRASH_ANCHORS, CrashScenario
from conftest import ADMIN_TOKEN, Server

SHARED_KLINES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                             "btcusdt-perp-1m-2025-10-10.csv")


def _get(url: str, target: str) -> dict:
    body = httpx.get(url + target, timeout=10).json()
    assert body["code"] == "0", body
    return body


def test_replay_server_shows_liquidations_and_fund_flows(tmp_path):
    server = Server(tmp_path, market="replay", speed=3000.0, population=40, seed=1)
    server.start()
    try:
        deadline, seen = time.monotonic() + 60, set()
        liquidations: list = []
        while time.monotonic() < deadline and not ({"liquidation_balance_deposit"} <= seen and liquidations):
            time.sleep(0.5)
            fund = _get(server.url, "/api/v5/public/insurance-fund?instType=SWAP&instFamily=BTC-USDT")
            seen = {d["type"] for d in fund["data"][0]["details"]}
            legacy = _get(server.url, "/api/v5/public/liquidation-orders?instType=SWAP")
            liquidations = [d for item in legacy["data"] for d in item["details"]]
        assert "platform_revenue" in seen and "liquidation_balance_deposit" in seen, seen
        assert liquidations
        assert {"side", "posSide", "bkPx", "sz", "bkLoss", "ccy", "ts"} <= set(liquidations[0])
        ticker = _get(server.url, "/api/v5/market/ticker?instId=BTC-USDT-SWAP")["data"][0]
        assert ticker["bidPx"] and ticker["askPx"] and float(ticker["vol24h"]) > 0
        audit = httpx.get(server.url + "/backstop/v1/audit", headers={"X-Backstop-Admin": ADMIN_TOKEN}).json()
        assert audit["data"][0]["ok"] is True
    finally:
        server.stop()


async def _driven_commands(db, seed: int, ticks: int) -> list[str]:
    """The commands a fresh market logs in ``ticks`` ticks, with timestamps zeroed."""
    clock = iter(range(1_760_000_000_000, 1_800_000_000_000, 7))
    service = build_service(db, clock=lambda: next(clock))
    try:
        driver = MarketDriver(service, MarketSettings(population=12, seed=seed))
        await driver.setup()
        for _ in range(ticks):
            await driver.step()
        return [codec.dumps(replace(codec.loads(r.body), ts=0))
                for r in service.log.records() if r.kind == "command"]
    finally:
        service.log.close()


def test_driver_is_deterministic_by_seed(tmp_path):
    first = asyncio.run(_driven_commands(tmp_path / "a.sqlite", 5, 30))
    again = asyncio.run(_driven_commands(tmp_path / "b.sqlite", 5, 30))
    other = asyncio.run(_driven_commands(tmp_path / "c.sqlite", 6, 30))
    assert len(first) > 300
    assert first[:300] == again[:300]
    assert first[:300] != other[:300]


def test_crash_scenario_hits_the_2025_10_10_anchors():
    import numpy as np

    scenario = CrashScenario(np.random.default_rng(3))
    cycle = [scenario.next_price() for _ in range(CRASH_ANCHORS[-1][0])]
    for minute, price, _vol in CRASH_ANCHORS[:-1]:
        assert cycle[minute] == pytest.approx(price, rel=1e-9)
    assert min(cycle) == pytest.approx(101_516.5, rel=1e-9)
    assert scenario.next_price() == pytest.approx(116_400.0)  # the loop starts again


def test_market_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="--market"):
        ensure_market_args("live", 60, 10)
    with pytest.raises(ValueError, match="--speed"):
        ensure_market_args("replay", 0, 10)
    with pytest.raises(ValueError, match="--prices"):
        ensure_market_args("manual", 60, 10, SHARED_KLINES)
    with pytest.raises(ValueError, match="not found"):
        ensure_market_args("replay", 60, 10, tmp_path / "missing.csv")


@pytest.mark.skipif(not os.path.isfile(SHARED_KLINES), reason="shared data not present")
def test_kline_replay_drives_the_index(tmp_path):
    async def run() -> float:
        service = build_service(tmp_path / "k.sqlite")
        try:
            driver = MarketDriver(service, MarketSettings(population=4, seed=0, prices=SHARED_KLINES))
            await driver.setup()
            for _ in range(3):
                await driver.step()
            inst = service.catalogue.get("BTC-USDT-SWAP")
            return float(inst.ticks_to_px(service.exchange.state.index_ticks[inst.inst_id]))
        finally:
            service.log.close()

    assert asyncio.run(run()) == pytest.approx(121_500, rel=0.01)
