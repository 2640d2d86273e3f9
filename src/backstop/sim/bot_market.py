"""A small seeded market for the API's history checks and benchmarks: a maker quoting four
levels around the mark, leveraged takers sending market orders, index moves (bigger, with the
book pulled, 15% of the time: liquidations, deficits, ADL with empty funds), funding and, when
asked, withdrawals.

:func:`bot_market_commands` yields commands that read the exchange's state, so run each one
before asking for the next.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from backstop.engine.exchange import Exchange
from backstop.model.commands import (
    CancelOrder,
    Command,
    Deposit,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    SettleFunding,
    Withdraw,
)
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.numeric import round_to

MAKER = 1
START_TS = 1_760_000_000_000


def bot_market_commands(ex: Exchange, rng: random.Random, rounds: int, traders: range,
                        leveraged: bool = False, withdrawals: bool = False) -> Iterator[Command]:
    """The seeded market's commands over the exchange's instruments (prices half-even to the
    tick); ``leveraged`` gives each trader a random leverage and margin mode per instrument."""
    catalogue = ex.catalogue
    instruments = [i.inst_id for i in catalogue]
    ts = START_TS
    index = {i.inst_family: i.index_px for i in catalogue}
    yield Deposit(ts, MAKER, "USDT", Decimal("100000000"))
    for uid in traders:
        yield Deposit(ts, uid, "USDT", Decimal(rng.randint(300, 5000)))
        for inst_id in instruments if leveraged else ():
            lever = Decimal(rng.choice((5, 20, 50, 100)))
            yield SetLeverage(ts, uid, inst_id, rng.choice(list(MarginMode)), lever)
    for _ in range(rounds):
        ts += rng.randint(500, 60_000)
        inst = catalogue.get(rng.choice(instruments))
        mark = inst.ticks_to_px(ex.state.mark_ticks[inst.inst_id])
        for ord_id, order in list(ex.state.open_orders.get(MAKER, {}).items()):
            if order.inst_id == inst.inst_id:
                yield CancelOrder(ts, MAKER, inst.inst_id, ord_id)
        pulled = rng.random() < 0.15
        for level in range(1, 5) if not pulled else ():
            for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
                px = round_to(mark * (1 + sign * Decimal(level) / 500), inst.tick_sz)
                yield PlaceOrder(ts, MAKER, inst.inst_id, side, OrderType.LIMIT, inst.min_sz * 200, px)
        for _ in range(rng.randint(1, 5)):
            uid, mode = rng.choice(traders), rng.choice(list(MarginMode))
            yield PlaceOrder(ts, uid, inst.inst_id, rng.choice(list(Side)), OrderType.MARKET,
                             inst.min_sz * rng.randint(1, 60), td_mode=mode)
        move = Decimal(rng.choice((-1, 1)) * rng.randint(0, 120 if pulled else 30)) / 1000
        index[inst.inst_family] = round_to(index[inst.inst_family] * (1 + move), inst.tick_sz)
        yield SetIndexPrice(ts, inst.inst_family, index[inst.inst_family])
        if rng.random() < 0.1:
            yield SettleFunding(ts)
        if withdrawals and rng.random() < 0.05:
            yield Withdraw(ts, rng.choice(traders), "USDT", Decimal(rng.randint(1, 200)))
