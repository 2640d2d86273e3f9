"""The insurance fund's trailing peak, kept as a deque of maxima, equals a rescan of the
records: the highest balance in ``[now − window, now]``, the balance carried into the window
counting as of its start, the later record winning a tie."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.state.insurance import InsuranceFund

WINDOW_MS = 100


def _rescan(records: list[tuple[int, int]], now: int, window_ms: int) -> tuple[int, int]:
    """The definition, read off every record: the carried one is the last at or before the
    window's start (or the first record when none is)."""
    if not records:
        return 0, now
    start = now - window_ms
    before = [r for r in records if r[0] <= start]
    carried_ts, carried = before[-1] if before else records[0]
    best = (carried, max(carried_ts, start))
    for ts, balance in records:
        if ts > start and balance >= best[0]:
            best = (balance, ts)
    return best


def _fund() -> InsuranceFund:
    return InsuranceFund("SWAP:BTC-USDT", "SWAP", "BTC-USDT", "USDT", WINDOW_MS)


# each step: the gap to the next record (0: an equal timestamp), its balance, and how far past
# it (possibly across several windows) to query before the next one
steps = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 50), st.integers(0, 250)),
                 max_size=60)


@settings(max_examples=400, deadline=None)
@given(steps)
def test_peak_matches_a_rescan_at_every_record_and_query(steps):
    fund, records, now = _fund(), [], 0
    for gap, balance, query_after in steps:
        ts = now + gap  # time never goes back: the next record comes at or after the query
        record = fund.apply_record(ts, "regular_update", 0, balance)
        records.append((ts, balance))
        assert (record.max_bal, record.max_bal_ts) == _rescan(records, ts, WINDOW_MS)
        now = ts + query_after
        assert fund.peak(now) == _rescan(records, now, WINDOW_MS)


@settings(max_examples=200, deadline=None)
@given(steps, st.lists(st.integers(-50, 400), max_size=8))
def test_peak_matches_a_rescan_for_queries_back_in_time_too(steps, offsets):
    """Queries earlier than the last one (an API clock behind the engine's) see what a rescan
    of the records kept for the latest query sees."""
    fund, records, ts = _fund(), [], 0
    for gap, balance, _ in steps:
        ts += gap
        fund.apply_record(ts, "regular_update", 0, balance)
        records.append((ts, balance))
    for offset in sorted(offsets, reverse=True):  # latest query first, then back in time
        now = ts + offset
        latest = ts + max(offsets)
        kept = _kept_for(records, latest - WINDOW_MS)
        assert fund.peak(now) == _rescan(kept, now, WINDOW_MS)


def _kept_for(records: list[tuple[int, int]], start: int) -> list[tuple[int, int]]:
    """The records a query with window start ``start`` leaves: from the last one at or before
    it on (earlier records can never be carried into a later window)."""
    first = 0
    for i, (ts, _) in enumerate(records):
        if ts <= start:
            first = i
    return records[first:]


def test_carried_balance_counts_as_of_the_window_start():
    fund = _fund()
    fund.apply_record(0, "regular_update", 0, 1_000)
    fund.apply_record(WINDOW_MS * 9, "bankruptcy_loss", -400, 600)
    assert fund.peak(WINDOW_MS * 9) == (1_000, WINDOW_MS * 8)
    assert fund.is_declining_too_fast(WINDOW_MS * 9, 600, Decimal("0.3"))


def test_a_beaten_carried_record_gives_way_to_the_later_high_inside_the_window():
    fund = _fund()
    for ts, balance in ((0, 100), (5, 50), (10, 80)):
        fund.apply_record(ts, "regular_update", 0, balance)
    assert fund.peak(10 + WINDOW_MS - 4) == (80, 10)  # window starts at 6: 50 carried, 80 inside
    assert fund.peak(10 + WINDOW_MS) == (80, 10)


def test_equal_timestamps_the_later_record_wins():
    fund = _fund()
    fund.apply_record(3, "regular_update", 0, 70)
    fund.apply_record(3, "regular_update", 0, 40)
    assert fund.peak(3) == (70, 3)
    assert fund.peak(3 + WINDOW_MS) == (40, 3)  # 40 is the last record at the start
    assert fund.peak(0) == (40, 3)  # what the later query dropped stays dropped
