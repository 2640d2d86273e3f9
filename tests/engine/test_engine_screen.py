"""Risk screen: the float screen never misses, the exact confirmation is the exact check,
and isolated trigger prices are the exact extremes of the liquidatable marks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backstop.engine.screen import Candidates, RiskScreen
from backstop.engine.screen_pool import SlotPool
from backstop.engine.trigger_index import INF_TICKS, calculate_trigger_ticks, is_isolated_liquidatable_at
from backstop.engine.venues import venue_profile
from backstop.math.margin import calculate_mm_plus_fee, is_liquidatable
from backstop.math.values import calculate_fill_value, calculate_upl
from backstop.model.catalogue import default_catalogue
from backstop.model.instrument import MmValuation

CAT = default_catalogue()
BTC_USDT, XRP_USDT = CAT.get("BTC-USDT-SWAP"), CAT.get("XRP-USDT-SWAP")
BTC_USD, ETH_USD = CAT.get("BTC-USD-SWAP"), CAT.get("ETH-USD-SWAP")
# 1e18-scale values: a linear contract worth 1e6 units per lot·tick at ~1e6 ticks
BIG = dataclasses.replace(BTC_USDT, inst_id="BIG-USDT-SWAP", value_k=10**6)
# tiny value_k: the exact figures are jagged (rounding dominates), the hard case for triggers
TINY_LIN = dataclasses.replace(BTC_USDT, inst_id="TINY-USDT-SWAP", value_k=1, index_px=BTC_USDT.tick_sz * 700)
TINY_INV = dataclasses.replace(BTC_USD, inst_id="TINY-USD-SWAP", value_k=7, index_px=BTC_USD.tick_sz * 600)
INSTRUMENTS = [BTC_USDT, XRP_USDT, BTC_USD, ETH_USD, BIG, TINY_LIN, TINY_INV]


def base_marks():
    return [inst.px_to_ticks(inst.index_px) for inst in INSTRUMENTS]


def random_position(rng, inst, mark):
    top = inst.tiers[min(3, len(inst.tiers) - 1)].max_lots
    lots = int(rng.integers(1, top + 1)) if rng.random() < 0.3 else int(rng.integers(1, 50))
    lots *= 1 if rng.random() < 0.5 else -1
    entry = max(1, int(mark * rng.uniform(0.7, 1.3)))
    return lots, calculate_fill_value(inst, lots, entry)


def exact_figures(inst, lots, cost, mark):
    return calculate_upl(inst, lots, cost, mark), calculate_mm_plus_fee(inst, lots, mark)


def build_population(rng, n_pos, n_uid, marks):
    """Positions on the boundary: isolated margin and cross cash set so that equity − (MM+fee)
    is a few money units either side of zero at ``marks`` (or far away, sometimes)."""
    positions = {}
    for _ in range(n_pos):
        i = int(rng.integers(len(INSTRUMENTS)))
        inst, uid, iso = INSTRUMENTS[i], int(rng.integers(n_uid)), bool(rng.random() < 0.5)
        lots, cost = random_position(rng, inst, marks[i])
        upl, mmf = exact_figures(inst, lots, cost, marks[i])
        delta = int(rng.integers(-3, 4)) if rng.random() < 0.7 else int(rng.integers(-10**9, 10**9))
        margin = max(0, mmf - upl + delta) if iso else 0
        positions[(uid, inst.inst_id, iso)] = (lots, cost, margin)
    cash = {}
    for (uid, inst_id, iso), (lots, cost, _) in positions.items():
        if not iso:
            inst = CAT.get(inst_id) or next(x for x in INSTRUMENTS if x.inst_id == inst_id)
            upl, mmf = exact_figures(inst, lots, cost, marks[INSTRUMENTS.index(inst)])
            cash[(uid, inst.settle_ccy)] = cash.get((uid, inst.settle_ccy), 0) + mmf - upl
    for akey in cash:
        cash[akey] += int(rng.integers(-3, 4)) if rng.random() < 0.8 else int(rng.integers(-10**9, 10**9))
    return positions, cash


def load(screen, positions, cash):
    for akey, amount in cash.items():
        screen.set_cash(*akey, amount)
    for (uid, inst_id, iso), (lots, cost, margin) in positions.items():
        screen.upsert((uid, inst_id, iso), inst_id, uid, iso, lots, cost, margin)


def exact_sets(positions, cash, marks):
    by_id = {inst.inst_id: (inst, marks[i]) for i, inst in enumerate(INSTRUMENTS)}
    isolated, books = set(), {}
    for (uid, inst_id, iso), (lots, cost, margin) in positions.items():
        inst, mark = by_id[inst_id]
        upl, mmf = exact_figures(inst, lots, cost, mark)
        if iso:
            if is_liquidatable(margin + upl, mmf):
                isolated.add((uid, inst_id, iso))
        else:
            eq, req = books.get((uid, inst.settle_ccy), (cash.get((uid, inst.settle_ccy), 0), 0))
            books[(uid, inst.settle_ccy)] = (eq + upl, req + mmf)
    cross = {akey for akey, (eq, req) in books.items() if is_liquidatable(eq, req)}
    return isolated, cross


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("seed", range(4))
def test_screen_never_misses_and_confirm_is_exact(backend, seed):
    rng = np.random.default_rng(seed)
    marks = base_marks()
    positions, cash = build_population(rng, 3000, 400, marks)
    screen = RiskScreen(INSTRUMENTS, capacity=8, backend=backend, track_triggers=False)
    load(screen, positions, cash)
    for shift in (1.0, 0.999, 1.02):  # on the boundary, then marks moved both ways
        moved = [max(1, int(m * shift)) for m in marks]
        iso_exact, cross_exact = exact_sets(positions, cash, moved)
        cand = screen.screen(moved)
        assert iso_exact <= set(cand.isolated)
        assert cross_exact <= set(cand.cross)
        by_id = {inst.inst_id: m for inst, m in zip(INSTRUMENTS, moved, strict=True)}
        confirmed = screen.confirm(cand, by_id)
        assert set(confirmed.isolated) == iso_exact
        assert set(confirmed.cross) == cross_exact
    assert len(iso_exact) + len(cross_exact) > 0


def test_updates_removes_and_cash_changes_stay_consistent(monkeypatch):
    monkeypatch.setattr(SlotPool, "COMPACT_MIN", 8)  # compact (and re-sort) often
    rng = np.random.default_rng(7)
    marks = base_marks()
    positions, cash = build_population(rng, 1500, 200, marks)
    screens = [RiskScreen(INSTRUMENTS, capacity=4, backend=b, parallel=par)
               for b, par in (("numpy", False), ("numba", False), ("numba", True))]
    for screen in screens:
        load(screen, positions, cash)
    keys = list(positions)
    for _ in range(1500):
        key = keys[int(rng.integers(len(keys)))]
        action = rng.random()
        if action < 0.3:
            positions.pop(key, None)
            for screen in screens:
                screen.remove(key)
        elif action < 0.8:
            uid, inst_id, iso = key
            inst = INSTRUMENTS[[x.inst_id for x in INSTRUMENTS].index(inst_id)]
            lots, cost = random_position(rng, inst, marks[INSTRUMENTS.index(inst)])
            upl, mmf = exact_figures(inst, lots, cost, marks[INSTRUMENTS.index(inst)])
            margin = max(0, mmf - upl + int(rng.integers(-3, 4))) if iso else 0
            positions[key] = (lots, cost, margin)
            for screen in screens:
                screen.upsert(key, inst_id, uid, iso, lots, cost, margin)
        else:
            akey = (int(rng.integers(200)), "USDT" if rng.random() < 0.5 else "BTC")
            cash[akey] = cash.get(akey, 0) + int(rng.integers(-10**6, 10**6))
            for screen in screens:
                screen.set_cash(*akey, cash[akey])
    iso_exact, cross_exact = exact_sets(positions, cash, marks)
    results = []
    for screen in screens:
        assert len(screen) == len(positions)
        cand = screen.screen(marks)
        assert iso_exact <= set(cand.isolated) and cross_exact <= set(cand.cross)
        confirmed = screen.confirm(cand, marks)
        assert (set(confirmed.isolated), set(confirmed.cross)) == (iso_exact, cross_exact)
        results.append((sorted(cand.isolated), sorted(cand.cross)))
        crossed = set(screen.triggers.crossed_all(marks))
        assert iso_exact <= crossed
    assert results[0] == results[1] == results[2]


def _brute_extreme(inst, lots, cost, margin, upto):
    liq = [p for p in range(1, upto) if is_isolated_liquidatable_at(inst, lots, cost, margin, p)]
    return liq


@pytest.mark.parametrize("inst", [TINY_LIN, TINY_INV], ids=lambda i: i.inst_id)
def test_trigger_is_the_exact_extreme_tick_brute_force(inst):
    rng = np.random.default_rng(11)
    mark = inst.px_to_ticks(inst.index_px)
    for _ in range(120):
        lots = int(rng.integers(1, 30)) * (1 if rng.random() < 0.5 else -1)
        cost = calculate_fill_value(inst, lots, int(mark * rng.uniform(0.8, 1.2)))
        upl, mmf = exact_figures(inst, lots, cost, mark)
        margin = max(0, mmf - upl + int(rng.integers(-5, 40)))
        trigger = calculate_trigger_ticks(inst, lots, cost, margin)
        upto = 4 * mark if inst.is_linear else 40 * mark
        liq = _brute_extreme(inst, lots, cost, margin, upto)
        if lots > 0 and trigger == INF_TICKS:
            assert len(liq) == upto - 1
        elif lots > 0:
            assert trigger == (max(liq) if liq else 0)
        elif trigger == INF_TICKS:
            assert not liq
        else:
            assert trigger == min(liq)


@pytest.mark.parametrize("inst", [BTC_USDT, XRP_USDT, BTC_USD, ETH_USD, BIG], ids=lambda i: i.inst_id)
def test_trigger_against_exact_check_one_tick_away(inst):
    rng = np.random.default_rng(5)
    mark = inst.px_to_ticks(inst.index_px)
    for _ in range(300):
        lots, cost = random_position(rng, inst, mark)
        lever = int(rng.integers(2, 101))
        notional = abs(calculate_fill_value(inst, lots, mark))
        margin = notional // lever + int(rng.integers(0, 5))
        trigger = calculate_trigger_ticks(inst, lots, cost, margin)

        def liq(p, lots=lots, cost=cost, margin=margin):
            return is_isolated_liquidatable_at(inst, lots, cost, margin, p)
        if lots > 0 and 0 < trigger < INF_TICKS:
            assert liq(trigger) and not liq(trigger + 1)
            assert not any(liq(trigger + d) for d in (2, 3, 10, 1000))
        elif lots < 0 and 1 < trigger < INF_TICKS:
            assert liq(trigger) and not liq(trigger - 1)
            assert not any(liq(trigger - d) for d in (2, 3, 10, 1000) if trigger - d >= 1)
        elif lots > 0 and trigger == 0:
            assert not liq(1)


def test_index_on_mark_moves_finds_exactly_the_crossed():
    rng = np.random.default_rng(3)
    marks = base_marks()
    positions, cash = build_population(rng, 2000, 300, marks)
    positions = {k: v for k, v in positions.items() if k[2]}
    screen = RiskScreen(INSTRUMENTS, backend="numpy")
    load(screen, positions, cash)
    for shift in (0.97, 1.0, 1.03):
        moved = [max(1, int(m * shift)) for m in marks]
        iso_exact, _ = exact_sets(positions, cash, moved)
        crossed = set(screen.triggers.crossed_all(moved))
        assert iso_exact <= crossed
        assert set(screen.confirm(Candidates(sorted(crossed), []), moved).isolated) == iso_exact
        for key in crossed:  # every hit is at or beyond its exact trigger
            trigger = screen.triggers.trigger_of(key)
            i = [x.inst_id for x in INSTRUMENTS].index(key[1])
            assert (moved[i] <= trigger) if positions[key][0] > 0 else (moved[i] >= trigger)


@pytest.mark.parametrize("ratio", [3.0, 1.5, 0.5])
@pytest.mark.parametrize("seed", range(3))
def test_warning_codes_never_miss_a_change(seed, ratio):
    """Positions a few money units either side of ``equity = ratio·(MM + fee)``, flagged at
    random: every unit whose exact warning state differs from its flag is reported, on both
    backends alike."""
    from decimal import Decimal

    rng = np.random.default_rng(100 + seed)
    marks = base_marks()
    positions, cash = build_population(rng, 2000, 300, marks)
    by_id = {inst.inst_id: (inst, marks[i]) for i, inst in enumerate(INSTRUMENTS)}
    w = Decimal(str(ratio))

    def below(equity, req):
        return bool(req) and Decimal(equity) < w * req

    for key, (lots, cost, _margin) in list(positions.items()):  # move isolated units to w's edge
        if key[2]:
            inst, mark = by_id[key[1]]
            upl, mmf = exact_figures(inst, lots, cost, mark)
            positions[key] = (lots, cost, max(0, int(w * mmf) - upl + int(rng.integers(-3, 4))))
    books: dict = {}
    for (uid, inst_id, iso), (lots, cost, _) in positions.items():
        if not iso:
            inst, mark = by_id[inst_id]
            upl, mmf = exact_figures(inst, lots, cost, mark)
            eq, req = books.get((uid, inst.settle_ccy), (0, 0))
            books[(uid, inst.settle_ccy)] = (eq + upl, req + mmf)
    cash = {akey: int(w * req) - eq + int(rng.integers(-3, 4)) for akey, (eq, req) in books.items()}
    far = {key for key in list(positions) + list(cash) if rng.random() < 0.3}  # surely above
    for key in far:
        if key in cash:
            cash[key] += 10**15
        else:
            lots, cost, margin = positions[key]
            positions[key] = (lots, cost, margin + 10**15)
    flags = {key: bool(rng.random() < 0.5) for key in positions if key[2]}
    book_flags = {akey: bool(rng.random() < 0.5) for akey in cash}
    results = []
    for backend in ("numpy", "numba"):
        screen = RiskScreen(INSTRUMENTS, backend=backend, track_triggers=False)
        load(screen, positions, cash)
        for key, flag in flags.items():
            screen.set_warned(key, flag)
        for akey, flag in book_flags.items():
            screen.set_book_warned(*akey, flag)
        cand = screen.screen(marks, ratio)
        results.append((sorted(cand.warn_isolated), sorted(cand.warn_cross)))
    changed_iso = set()
    for key, flag in flags.items():
        lots, cost, margin = positions[key]
        inst, mark = by_id[key[1]]
        upl, mmf = exact_figures(inst, lots, cost, mark)
        if below(margin + upl, mmf) != flag:
            changed_iso.add(key)
    changed_books = {akey for akey, flag in book_flags.items()
                     if below(cash[akey] + books[akey][0], books[akey][1]) != flag}
    assert changed_iso and changed_books  # the population straddles the threshold
    assert changed_iso <= set(results[0][0]) and changed_books <= set(results[0][1])
    assert results[0] == results[1]
    reported = set(results[0][0]) | set(results[0][1])
    far_flags = {key: flag for key, flag in [*flags.items(), *book_flags.items()] if key in far}
    assert {key for key, flag in far_flags.items() if flag} <= reported  # recovered: reported
    assert not {key for key, flag in far_flags.items() if not flag} & reported  # sure: quiet


# ---- MM valued at entry (Bybit's profile) -------------------------------------------------------
BYBIT = venue_profile("bybit").catalogue()
BYBIT_INSTRUMENTS = [BYBIT.get(i) for i in ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP",
                                             "ETH-USD-SWAP")]


def _entry_population(rng, n_pos, n_uid, marks):
    """Bybit positions a few money units either side of their entry-valued trigger: ``key →
    (lots, cost, entry notional, margin)`` and cross cash."""
    positions, cash = {}, {}
    for _ in range(n_pos):
        i = int(rng.integers(len(BYBIT_INSTRUMENTS)))
        inst, uid, iso = BYBIT_INSTRUMENTS[i], int(rng.integers(n_uid)), bool(rng.random() < 0.5)
        lots, cost = random_position(rng, inst, marks[i])
        entry = abs(cost) + int(rng.integers(0, 3))  # a cost floored to 1e-8, or exact
        upl = calculate_upl(inst, lots, cost, marks[i])
        mmf = calculate_mm_plus_fee(inst, lots, marks[i], entry)
        delta = int(rng.integers(-3, 4)) if rng.random() < 0.7 else int(rng.integers(-10**9, 10**9))
        margin = max(0, mmf - upl + delta) if iso else 0
        positions[(uid, inst.inst_id, iso)] = (lots, cost, entry, margin)
        if not iso:
            cash[(uid, inst.settle_ccy)] = cash.get((uid, inst.settle_ccy), 0) + mmf - upl + delta
    return positions, cash


def _entry_exact_sets(positions, cash, marks, valued_at_entry=True):
    by_id = {inst.inst_id: (inst, marks[i]) for i, inst in enumerate(BYBIT_INSTRUMENTS)}
    isolated, books = set(), {}
    for (uid, inst_id, iso), (lots, cost, entry, margin) in positions.items():
        inst, mark = by_id[inst_id]
        upl = calculate_upl(inst, lots, cost, mark)
        mmf = calculate_mm_plus_fee(inst, lots, mark, entry if valued_at_entry else None)
        if iso:
            if is_liquidatable(margin + upl, mmf):
                isolated.add((uid, inst_id, iso))
        else:
            akey = (uid, inst.settle_ccy)
            eq, req = books.get(akey, (cash.get(akey, 0), 0))
            books[akey] = (eq + upl, req + mmf)
    return isolated, {akey for akey, (eq, req) in books.items() if is_liquidatable(eq, req)}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("seed", range(3))
def test_entry_valued_screen_never_misses_and_confirm_is_exact(backend, seed):
    """Bybit's instruments value MM at entry: the kernels take each slot's entry notional for
    the MM term (and the mark for the fee), never miss an exact liquidation, and confirm
    exactly; the isolated triggers are the exact boundary. The marks moved so far that the
    mark-valued rule would liquidate a different set."""
    assert all(inst.mm_valuation is MmValuation.ENTRY for inst in BYBIT_INSTRUMENTS)
    rng = np.random.default_rng(seed)
    marks = [inst.px_to_ticks(inst.index_px) for inst in BYBIT_INSTRUMENTS]
    positions, cash = _entry_population(rng, 2000, 300, marks)
    screen = RiskScreen(BYBIT_INSTRUMENTS, capacity=8, backend=backend, track_triggers=True)
    for akey, amount in cash.items():
        screen.set_cash(*akey, amount)
    for (uid, inst_id, iso), (lots, cost, entry, margin) in positions.items():
        screen.upsert((uid, inst_id, iso), inst_id, uid, iso, lots, cost, margin, entry_notional=entry)
    differs = False
    for shift in (1.0, 0.999, 1.02, 0.9):
        moved = [max(1, int(m * shift)) for m in marks]
        iso_exact, cross_exact = _entry_exact_sets(positions, cash, moved)
        differs |= (iso_exact, cross_exact) != _entry_exact_sets(positions, cash, moved, False)
        cand = screen.screen(moved)
        assert iso_exact <= set(cand.isolated) and cross_exact <= set(cand.cross)
        confirmed = screen.confirm(cand, moved)
        assert (set(confirmed.isolated), set(confirmed.cross)) == (iso_exact, cross_exact)
        assert iso_exact <= set(screen.triggers.crossed_all(moved))
    assert differs
    for (_, inst_id, iso), (lots, cost, entry, margin) in list(positions.items())[:200]:
        inst = BYBIT.get(inst_id)
        trigger = calculate_trigger_ticks(inst, lots, cost, margin, entry)
        if iso and 1 < trigger < INF_TICKS:
            step = 1 if lots > 0 else -1
            assert is_isolated_liquidatable_at(inst, lots, cost, margin, trigger, entry)
            assert not is_isolated_liquidatable_at(inst, lots, cost, margin, trigger + step, entry)


def test_an_entry_valued_instrument_needs_its_entry_notional():
    screen = RiskScreen(BYBIT_INSTRUMENTS, track_triggers=False)
    with pytest.raises(ValueError, match="entry"):
        screen.upsert((1, "BTC-USDT-SWAP", True), "BTC-USDT-SWAP", 1, True, 10, 10**12, 10**10)
