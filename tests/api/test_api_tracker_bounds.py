"""The API tracker's memory is bounded: finished orders and old trades drop off (found by the
soak, ``bench/soak.py``: the replay market's re-quoting makers grew the server for ever)."""

from __future__ import annotations

from backstop.api import tracker as tr
from backstop.model import events as ev


def _placed(ord_id: int, uid: int = 1, cl: str = "") -> ev.OrderPlaced:
    return ev.OrderPlaced(ord_id, ord_id, uid, "BTC-USDT-SWAP", "buy", "limit", 100, 10, "cross", False, cl)


def _cancelled(ord_id: int, uid: int = 1) -> ev.OrderCancelled:
    return ev.OrderCancelled(ord_id, ord_id, uid, "BTC-USDT-SWAP", 10, "user")


def test_finished_orders_beyond_the_cap_are_forgotten(monkeypatch):
    monkeypatch.setattr(tr, "DONE_ORDERS_KEPT", 3)
    tracker = tr.Tracker()
    tracker.apply([_placed(1, cl="keep")])  # stays open: never forgotten
    for i in range(2, 12):
        tracker.apply([_placed(i, cl=f"c{i}"), _cancelled(i)])
    assert sorted(tracker.orders) == [1, 9, 10, 11]
    assert [o.ord_id for o in tracker.account_orders(1)] == [11, 10, 9, 1]
    assert set(tracker.by_cl_ord_id) == {(1, "keep"), (1, "c9"), (1, "c10"), (1, "c11")}
    tracker.apply([_cancelled(1)])  # a second cancel event does not count twice
    tracker.apply([_cancelled(1)])
    assert len(tracker.done[1]) == 3 and sorted(tracker.orders) == [1, 10, 11]
    tracker.apply([_placed(20, uid=2), _cancelled(20, uid=2)])  # the cap is per account
    assert 20 in tracker.orders and 1 in tracker.orders


def test_trades_older_than_the_window_drop_off():
    tracker = tr.Tracker()
    day = tr.TRADES_WINDOW_MS
    for ts in (0, 1, day, day + 2):
        tracker.apply([ev.Filled(ts, ts, "BTC-USDT-SWAP", 100, 1, "buy", 1, 1, 2, 2, 0, 0)])
    assert [t[0] for t in tracker.trades["BTC-USDT-SWAP"].trades] == [day, day + 2]


def test_trade_window_keeps_running_figures_exact():
    """Volume, value, high and low of the window equal a recomputation at every step."""
    import random

    rng = random.Random(7)
    window, trades = tr.TradeWindow(), []
    for ts in range(2000):
        px, lots = rng.randint(90, 110), rng.randint(1, 5)
        window.add(ts, px, lots)
        trades.append((ts, px, lots))
        since = ts - rng.randint(0, 300)
        window.prune(since)
        kept = [t for t in trades if t[0] >= since]
        trades = kept
        assert list(window.trades) == kept
        assert window.lots == sum(t[2] for t in kept) and window.value == sum(t[1] * t[2] for t in kept)
        assert (window.high, window.low) == (max(t[1] for t in kept), min(t[1] for t in kept))
