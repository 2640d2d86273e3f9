"""Integration: the real 2025-10-10 BTCUSDT perp 1-minute closes, 20:30–22:00 UTC, as the
index, with ~30 leveraged accounts opened before the crash and a maker re-quoting every
minute. Conservation is checked after every command (``check_invariants=True``)."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from backstop.engine.config import config_from_dict
from backstop.engine.exchange import Exchange
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import CancelOrder, Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import InsuranceFundChanged, LiquidationStarted

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "btcusdt-perp-1m-2025-10-10.csv"
BTC = "BTC-USDT-SWAP"
MAKER = 500
CATALOGUE = default_catalogue().subset([BTC])


def _ms(hh, mm):
    return int(datetime(2025, 10, 10, hh, mm, tzinfo=UTC).timestamp() * 1000)


def _closes():
    with DATA.open() as f:
        rows = [(int(r["open_time"]), D(r["close"])) for r in csv.DictReader(f)]
    return [(t, px) for t, px in rows if _ms(20, 30) <= t < _ms(22, 0)]


def _quote(ex, ts, px):
    for ord_id in sorted(ex.state.open_orders.get(MAKER, {})):
        ex.execute(CancelOrder(ts, MAKER, BTC, ord_id))
    for k in range(1, 9):
        step = px * D(k) * D("0.002")
        for side, level in ((Side.BUY, px - step), (Side.SELL, px + step)):
            ex.execute(PlaceOrder(ts, MAKER, BTC, side, OrderType.LIMIT, D(50 * k), level.quantize(D("0.1"))))


@pytest.mark.skipif(not DATA.is_file(), reason=f"2025-10-10 data not found at {DATA}")
def test_october_10_crash_replay():
    rows = _closes()
    assert len(rows) == 90
    config = config_from_dict({"insurance_fund": {"initial": {"BTC-USDT": "50000"}},
                               "mark": {"smoothing": "0"}})
    ex = Exchange(CATALOGUE, config, check_invariants=True)
    fund0 = ex.state.ledger.balance(("fund", "SWAP:BTC-USDT", "USDT"))
    t0, px0 = rows[0]
    ex.execute(SetIndexPrice(t0, "BTC-USDT", px0))
    ex.execute(Deposit(t0, MAKER, "USDT", D(500_000_000)))
    rng = random.Random(20251010)
    for uid in range(1, 31):
        _quote(ex, t0, px0)
        mode = MarginMode.ISOLATED if uid % 2 else MarginMode.CROSS
        lever = rng.choice([5, 10, 20, 25, 50])
        side = Side.SELL if uid % 5 == 0 else Side.BUY  # long-skewed
        contracts = rng.randint(5, 80)
        need = D(contracts) * px0 / 100 / lever * D("1.1") + 20
        ex.execute(Deposit(t0, uid, "USDT", need.quantize(D("0.01"))))
        ex.execute(SetLeverage(t0, uid, BTC, mode, D(lever)))
        ex.execute(PlaceOrder(t0, uid, BTC, side, OrderType.MARKET, D(contracts), td_mode=mode))
    assert sum(1 for p in ex.state.positions.values() if p.uid != MAKER) == 30
    liquidated_at = []
    for ts, px in rows[1:]:
        for e in ex.execute(SetIndexPrice(ts, "BTC-USDT", px)):
            if isinstance(e, LiquidationStarted):
                liquidated_at.append(ts)
        _quote(ex, ts, px)
    assert any(_ms(21, 0) <= t <= _ms(21, 20) for t in liquidated_at)
    fund = ex.state.ledger.balance(("fund", "SWAP:BTC-USDT", "USDT"))
    assert fund >= 0
    moves = [e.amt for entry in ex.log for e in entry.events if isinstance(e, InsuranceFundChanged)]
    assert sum(moves) == fund - fund0
    assert Exchange.replay(ex.log, CATALOGUE, config).state_hash() == ex.state_hash()
