"""Scenario helpers for the liquidation tests (fixtures are prefixed ``liq_``).

Units (see ``backstop.numeric``): money is integer 1e-8 of the settlement currency, so
1 USDT = 100_000_000 units; BTC-USDT-SWAP: 1 contract = 0.01 BTC = 100 lots, 1 BTC = 100
contracts = 10_000 lots, a price of 100,000.0 = 1_000_000 ticks.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backstop.engine.config import config_from_dict
from backstop.engine.exchange import Exchange
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import (
    CancelOrder,
    CheckRisk,
    Deposit,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
)
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import Rejected
from backstop.state.ledger import cash_key, isolated_key

UNIT = 100_000_000
BTC_SWAP = "BTC-USDT-SWAP"
CROSS, ISO = MarginMode.CROSS, MarginMode.ISOLATED

_CATALOGUE = default_catalogue()


def _merge(base: dict, extra: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


class LiqMarket:
    """An exchange with invariants checked after every command, a clock, and short-hands.

    After every command it also checks that no insurance fund is below zero.
    """

    def __init__(self, config: dict | None = None, index: str | None = "100000",
                 family: str = "BTC-USDT") -> None:
        # scenarios build positions at prices far from the mark: a wide price band (the band
        # itself is tested in tests/engine/test_engine_money_safety.py)
        base = {"mark": {"smoothing": "0"}, "price_limit": {"band": "0.9"}}
        self.config = config_from_dict(_merge(base, config or {}))
        self.catalogue = _CATALOGUE
        self.ex = Exchange(self.catalogue, self.config, check_invariants=True)
        self.ts = 0
        self.events: list = []
        if index is not None:
            self.index(index, family)

    # -- commands --------------------------------------------------------------------------
    def run(self, cmd):
        events = self.ex.execute(cmd)
        self.events.extend(events)
        for (kind, owner, _ccy), value in self.ex.state.ledger.balances.items():
            assert kind != "fund" or value >= 0, f"fund {owner} below zero: {value}"
        return events

    def ok(self, cmd):
        events = self.run(cmd)
        assert not any(isinstance(e, Rejected) for e in events), events
        return events

    def index(self, px, family: str = "BTC-USDT"):
        return self.run(SetIndexPrice(self.ts, family, D(str(px))))

    def check(self):
        return self.run(CheckRisk(self.ts))

    def deposit(self, uid: int, amount, ccy: str = "USDT"):
        return self.ok(Deposit(self.ts, uid, ccy, D(str(amount))))

    def lever(self, uid: int, lever, mode=ISO, inst: str = BTC_SWAP):
        return self.ok(SetLeverage(self.ts, uid, inst, mode, D(str(lever))))

    def limit(self, uid: int, side: Side, contracts, px, mode=CROSS, inst: str = BTC_SWAP):
        return self.ok(PlaceOrder(self.ts, uid, inst, side, OrderType.LIMIT, D(str(contracts)),
                                  D(str(px)), td_mode=mode))

    def market(self, uid: int, side: Side, contracts, mode=CROSS, inst: str = BTC_SWAP):
        return self.ok(PlaceOrder(self.ts, uid, inst, side, OrderType.MARKET, D(str(contracts)),
                                  None, td_mode=mode))

    def cancel(self, uid: int, ord_id: int, inst: str = BTC_SWAP):
        return self.ok(CancelOrder(self.ts, uid, inst, ord_id))

    def trade(self, taker: int, side: Side, contracts, px, taker_mode=CROSS, maker: int = 99,
              maker_mode=CROSS, inst: str = BTC_SWAP):
        """``maker`` rests the opposite order at ``px``; ``taker`` takes it at market."""
        self.limit(maker, side.opposite, contracts, px, maker_mode, inst)
        return self.market(taker, side, contracts, taker_mode, inst)

    def ten_x_long(self, uid: int = 1, deposit="10050", mode=ISO):
        """1 BTC long at 100,000, 10×: IM 10,000 + taker fee 50 = 10,050 USDT, from maker 99."""
        self.deposit(99, "100000000")
        self.deposit(uid, deposit)
        self.lever(uid, 10, mode)
        return self.trade(uid, Side.BUY, 100, "100000", taker_mode=mode)

    # -- reading ---------------------------------------------------------------------------
    @property
    def state(self):
        return self.ex.state

    def fund(self, fund_id: str = "SWAP:BTC-USDT", ccy: str = "USDT") -> int:
        return self.state.ledger.balance(("fund", fund_id, ccy))

    def cash(self, uid: int, ccy: str = "USDT") -> int:
        return self.state.ledger.balance(cash_key(uid, ccy))

    def margin(self, uid: int, inst: str = BTC_SWAP, ccy: str = "USDT") -> int:
        return self.state.ledger.balance(isolated_key(uid, inst, ccy))

    def size(self, uid: int, mode=CROSS, inst: str = BTC_SWAP) -> int:
        pos = self.state.existing_position(uid, inst, mode)
        return pos.size_lots if pos else 0

    def long_lots(self, inst: str = BTC_SWAP) -> int:
        return sum(p.size_lots for p in self.state.positions.values()
                   if p.inst_id == inst and p.size_lots > 0)

    def short_lots(self, inst: str = BTC_SWAP) -> int:
        return -sum(p.size_lots for p in self.state.positions.values()
                    if p.inst_id == inst and p.size_lots < 0)


def of(events, kind) -> list:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
def liq_market():
    """A factory: ``liq_market(config_dict, index="100000")`` -> :class:`LiqMarket`."""
    return LiqMarket


@pytest.fixture
def liq_of():
    return of
