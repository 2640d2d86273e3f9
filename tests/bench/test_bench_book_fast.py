"""The book's per-side hot paths (rewritten for speed, see ``bench/matching.py``) against a plain
model: random rests, cancels and takers with every STP mode give the same fills, cancels,
levels and best prices."""

from __future__ import annotations

import random

import pytest

from backstop.state.book import BUY, SELL, STP_CANCEL_MAKER, STP_CANCEL_TAKER, OrderBook, RestingOrder


class _Model:
    """Orders in arrival order; matching by sorting on (price priority, arrival)."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # id -> [owner, side, px, remaining], arrival order

    def plan(self, side, limit, lots, owner, stp):
        makers = sorted((o for o in self.orders.items() if o[1][1] == -side),
                        key=lambda o: (o[1][2] * side, 0))  # stable: arrival order within a price
        fills, stp_cancelled, taker_cancelled, remaining = [], [], False, lots
        for ord_id, (m_owner, _s, px, rem) in makers:
            if remaining == 0 or (limit is not None and (px > limit if side == BUY else px < limit)):
                break
            if m_owner == owner:
                if stp != STP_CANCEL_TAKER:
                    stp_cancelled.append(ord_id)
                if stp != STP_CANCEL_MAKER:
                    taker_cancelled = True
                    break
                continue
            qty = min(rem, remaining)
            fills.append((ord_id, qty, px))
            remaining -= qty
        return fills, stp_cancelled, taker_cancelled, lots - remaining

    def apply(self, fills, stp_cancelled):
        for ord_id in stp_cancelled:
            del self.orders[ord_id]
        for ord_id, qty, _px in fills:
            self.orders[ord_id][3] -= qty
            if self.orders[ord_id][3] == 0:
                del self.orders[ord_id]


@pytest.mark.parametrize("seed", range(6))
def test_random_sequences_match_the_model(seed):
    rng = random.Random(seed)
    book, model = OrderBook(), _Model()
    next_id = 1
    for _ in range(1500):
        draw = rng.random()
        if draw < 0.25 and model.orders:
            target = rng.choice(list(model.orders))
            assert book.cancel(target).ord_id == target
            del model.orders[target]
            assert book.cancel(target) is None
            continue
        side, owner = rng.choice((BUY, SELL)), rng.randint(1, 4)
        lots, stp = rng.randint(1, 8), rng.randint(0, 2)
        limit = None if draw < 0.35 else 100 - side * rng.randint(-3, 6)
        plan = book.plan_match(side, limit, lots, owner, stp)
        expected = model.plan(side, limit, lots, owner, stp)
        got = ([(m.ord_id, q, px) for m, q, px in plan.fills], [m.ord_id for m in plan.stp_cancelled],
               plan.taker_stp_cancelled, plan.filled_lots)
        assert got == expected
        book.apply_plan(plan)
        model.apply(expected[0], expected[1])
        if limit is not None and plan.filled_lots < lots and not plan.taker_stp_cancelled:
            assert not book.would_cross(side, limit)
            book.rest(RestingOrder(next_id, owner, side, limit, lots - plan.filled_lots))
            model.orders[next_id] = [owner, side, limit, lots - plan.filled_lots]
        next_id += 1
        _assert_same(book, model)


def _assert_same(book: OrderBook, model: _Model) -> None:
    assert {i: o.remaining for i, o in book.orders.items()} == {i: o[3] for i, o in model.orders.items()}
    for side, levels, prices in ((BUY, book.bids, book.bid_prices), (SELL, book.asks, book.ask_prices)):
        expected = {}
        for ord_id, (_owner, s, px, _rem) in model.orders.items():
            if s == side:
                expected.setdefault(px, []).append(ord_id)
        assert {px: list(level) for px, level in levels.items()} == expected
        assert prices == sorted(expected)
    assert not book.is_crossed()
    bids = [o[2] for o in model.orders.values() if o[1] == BUY]
    asks = [o[2] for o in model.orders.values() if o[1] == SELL]
    assert book.best_bid() == (max(bids) if bids else None)
    assert book.best_ask() == (min(asks) if asks else None)
