"""The order path's values and indexes: events are immutable values equal only within their
own type; a seeded mixed order flow replays to the same events and state, and the reduce-only
count follows the open orders."""

from __future__ import annotations

import pickle
import random
from collections import Counter
from decimal import Decimal as D

import pytest

from backstop.engine.exchange import Exchange
from backstop.model import codec
from backstop.model import events as ev
from backstop.model.commands import CancelOrder, Deposit, PlaceOrder, SetIndexPrice
from backstop.model.enums import MarginMode, OrderType, Side

BTC = "BTC-USDT-SWAP"
EVENT_TYPES = [cls for cls in vars(ev).values() if isinstance(cls, type) and hasattr(cls, "_fields")]


def _example(cls: type, seed: int) -> tuple:
    """An instance of ``cls`` with every field filled from ``seed`` (ints, strs and bools)."""
    values = []
    for i, (name, annotation) in enumerate(cls.__annotations__.items()):
        kind = str(annotation)
        values.append(f"{name}{seed}" if kind == "str" else bool((seed + i) % 2) if kind == "bool"
                      else seed * 100 + i)
    return cls(*values)


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_event_is_an_immutable_value_of_its_own_type(cls):
    event, same, other = _example(cls, 1), _example(cls, 1), _example(cls, 2)
    assert (event == same) is True and (event != same) is False and hash(event) == hash(same)
    assert (event != other) is True and (event == other) is False
    assert event != tuple(event) and tuple(event) != event  # never equal to a plain tuple
    with pytest.raises(AttributeError):
        event.ts = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        _ = event < same  # unordered, as a frozen dataclass
    assert codec.loads(codec.dumps(event)) == event
    assert pickle.loads(pickle.dumps(event)) == event


def test_events_of_different_types_with_equal_fields_differ():
    deposited, withdrawn = ev.Deposited(1, 2, "USDT", 3), ev.Withdrawn(1, 2, "USDT", 3)
    assert tuple(deposited) == tuple(withdrawn)
    assert (deposited != withdrawn) is True and (deposited == withdrawn) is False
    assert len({deposited, withdrawn}) == 2


def _flow(n: int, seed: int, n_accounts: int = 12) -> list:
    """A seeded mix of limit, post-only, IOC, market and reduce-only orders and cancels near
    the mark, with a few mark moves, from ``n_accounts`` funded accounts."""
    rng = random.Random(seed)
    commands: list = [SetIndexPrice(0, "BTC-USDT", D("100000"))]
    commands += [Deposit(0, uid, "USDT", D("50000")) for uid in range(1, n_accounts + 1)]
    placed = 0
    for ts in range(1, n + 1):
        uid = rng.randrange(n_accounts) + 1
        draw = rng.random()
        if draw < 0.25 and placed:
            commands.append(CancelOrder(ts, uid, BTC, rng.randrange(placed) + 1))
            continue
        if draw < 0.27:
            commands.append(SetIndexPrice(ts, "BTC-USDT", D(100000 + rng.randint(-300, 300))))
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        kind = rng.choice([OrderType.LIMIT] * 6 + [OrderType.POST_ONLY, OrderType.IOC, OrderType.MARKET])
        px = None if kind is OrderType.MARKET else \
            D(100000 - side.sign * rng.randint(-5, 20) * 10)
        mode = MarginMode.ISOLATED if rng.random() < 0.2 else MarginMode.CROSS
        commands.append(PlaceOrder(ts, uid, BTC, side, kind, D(rng.randint(1, 60)) / 100, px,
                                   td_mode=mode, reduce_only=rng.random() < 0.1))
        placed += 1
    return commands


def test_mixed_flow_replays_exactly_and_keeps_the_reduce_only_count():
    exchange = Exchange(check_invariants=True)
    events = exchange.execute_all(_flow(3000, seed=7))
    counts = Counter(type(e).__name__ for e in events)
    assert counts["Filled"] > 100 and counts["OrderCancelled"] > 100 and counts["Rejected"] > 10
    replayed = Exchange.replay(exchange.log)
    assert replayed.state_hash() == exchange.state_hash()
    state = exchange.state
    expected = Counter(o.uid for orders in state.open_orders.values() for o in orders.values()
                       if o.reduce_only)
    assert state.reduce_only_orders == dict(expected)
    assert sum(expected.values()) > 0, "the flow left no reduce-only order resting"
