"""Benchmark the vectorised risk screen: one mark update across 1,000,000 positions.

Run: ``PYTHONPATH=src .venv/bin/python bench/risk_scan.py`` (1,000,000 positions over 30
instruments, 200,000 accounts) or ``--quick`` (100,000 positions, 20,000 accounts).
The plain per-position Python loop (exact ints through ``backstop.math``) is timed on a
50,000-position subset in the same run and extrapolated per position to the full size.
Prints Markdown table rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import platform
import statistics
import time
from collections.abc import Callable
from decimal import Decimal

import numba
import numpy as np

from backstop.engine.screen import ABS_SLACK_UNITS, EPS_REL, Candidates, RiskScreen
from backstop.engine.screen_kernels import KERNELS, cross_codes_numpy, iso_codes_numpy
from backstop.engine.trigger_index import INF_TICKS
from backstop.math.margin import calculate_initial_margin, calculate_mm_plus_fee, is_liquidatable
from backstop.math.values import calculate_fill_value, calculate_notional, calculate_upl
from backstop.model.catalogue import default_catalogue
from backstop.model.instrument import Instrument

EXTRA_INVERSE = (("SOL", "150"), ("XRP", "0.5"), ("DOGE", "0.2"), ("LTC", "80"), ("ADA", "0.6"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--baseline", type=int, default=50_000, help="positions in the Python loop")
    parser.add_argument("--repeat", type=int, default=41, help="median of N screens")
    parser.add_argument("--shock", type=float, default=0.004, help="st.dev. of the mark move")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--quick", action="store_true", help="100,000 positions, 20,000 accounts")
    args = parser.parse_args()
    if args.quick:
        args.positions, args.accounts, args.baseline, args.repeat = 100_000, 20_000, 10_000, 11
    return args


def instruments() -> list[Instrument]:
    """The 25 default swaps plus 5 synthetic coin-margined clones of ETH-USD-SWAP."""
    cat = list(default_catalogue())
    eth_usd = next(i for i in cat if i.inst_id == "ETH-USD-SWAP")
    for coin, px in EXTRA_INVERSE:
        index = Decimal(px)
        tick = eth_usd.tick_sz if index > 10 else Decimal("0.0001")
        value_k = int(eth_usd.ct_val * eth_usd.lot_sz / (tick * Decimal("1e-8")))
        cat.append(dataclasses.replace(eth_usd, inst_id=f"{coin}-USD-SWAP", inst_family=f"{coin}-USD",
                                       settle_ccy=coin, index_px=index, tick_sz=tick, value_k=value_k))
    return cat


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def build(args: argparse.Namespace, insts: list[Instrument], marks: list[int]) -> RiskScreen:
    """Plausible synthetic book: BTC/ETH-heavy, 40% isolated, leverage 2–100× log-uniform,
    median notional ~$2,000 (lognormal), entries within ~2% of the mark, IM at entry as
    isolated margin, and cross cash 1.0–1.6× the book's IM."""
    rng = np.random.default_rng(args.seed)
    n_inst = len(insts)
    weights = np.ones(n_inst)
    for i, inst in enumerate(insts):
        weights[i] = 8.0 if inst.inst_id.startswith(("BTC-", "ETH-")) else 1.0
    weights /= weights.sum()
    want = args.positions
    uid = rng.integers(0, args.accounts, int(want * 1.1))
    inst = rng.choice(n_inst, int(want * 1.1), p=weights)
    iso = rng.random(int(want * 1.1)) < 0.4
    code = (uid.astype(np.int64) * n_inst + inst) * 2 + iso
    _, first = np.unique(code, return_index=True)
    first = np.sort(first)[:want]
    uid, inst, iso = uid[first], inst[first], iso[first]
    n = len(first)
    usd_per_lot = np.array([float(calculate_notional(x, 1, m)) * 1e-8
                            * (1.0 if x.is_linear else float(x.index_px))
                            for x, m in zip(insts, marks, strict=True)])
    notional_usd = np.exp(rng.normal(np.log(2000.0), 1.3, n))
    caps = np.array([x.tiers[2].max_lots for x in insts])
    lots = np.clip(np.rint(notional_usd / usd_per_lot[inst]), 1, caps[inst]).astype(np.int64)
    lots *= np.where(rng.random(n) < 0.5, 1, -1)
    entry = np.maximum(1, np.rint(np.array(marks)[inst] * np.exp(rng.normal(0, 0.01, n)))).astype(np.int64)
    lever_cents = np.rint(np.exp(rng.uniform(np.log(2), np.log(100), n)) * 100).astype(np.int64)
    cash_mult = rng.uniform(1.0, 1.6, args.accounts)
    screen = RiskScreen(insts, capacity=n)
    cash: dict[tuple[int, str], int] = {}
    for u, i, is_iso, q, px, lev in zip(uid.tolist(), inst.tolist(), iso.tolist(), lots.tolist(),
                                        entry.tolist(), lever_cents.tolist(), strict=True):
        x = insts[i]
        cost = calculate_fill_value(x, q, px)
        im = calculate_initial_margin(calculate_notional(x, q, px), lev)
        if not is_iso:
            cash[(u, x.settle_ccy)] = cash.get((u, x.settle_ccy), 0) + im
        screen.upsert((u, x.inst_id, is_iso), x.inst_id, u, is_iso, q, cost, im if is_iso else 0)
    for (u, ccy), amount in cash.items():
        screen.set_cash(u, ccy, int(amount * cash_mult[u]))
    return screen


def exact_records(screen: RiskScreen, count: int) -> list[tuple]:
    """The first ``count`` positions as plain Python tuples: the loop's input (not timed)."""
    out = []
    for key in itertools.islice(screen._pid, count):
        pool, slot = screen._locate(key)
        inst = screen.instruments[int(screen._inst_of_cls[pool.cls[slot]])]
        iso = pool is screen.iso
        book = None if iso else screen._acct_keys[int(pool.acct[slot])]
        out.append((key, inst, int(pool.lots[slot]), int(pool.cost[slot]), int(pool.margin[slot]), book))
    return out


def python_loop(records: list[tuple], marks: dict[str, int], cash: dict) -> Candidates:
    """The baseline: every position's exact upl and MM+fee with Python ints, then each book."""
    isolated, books = [], {}
    for key, inst, lots, cost, margin, book in records:
        mark = marks[inst.inst_id]
        upl = calculate_upl(inst, lots, cost, mark)
        mmf = calculate_mm_plus_fee(inst, lots, mark)
        if book is None:
            if is_liquidatable(margin + upl, mmf):
                isolated.append(key)
        else:
            eq, req = books.get(book, (cash[book], 0))
            books[book] = (eq + upl, req + mmf)
    return Candidates(isolated, [b for b, (eq, req) in books.items() if is_liquidatable(eq, req)])


def stage_times(screen: RiskScreen, marks: np.ndarray, repeat: int) -> list[tuple[str, float]]:
    """Profile: the screen's kernels one by one, liquidation and warning (3.0) codes (median ms)."""
    pm = screen.price_factors(marks)
    rates = (screen._rate_of_cls, screen._rate_lo_of_cls, screen._erate_of_cls,
             screen._erate_lo_of_cls)
    iso, cross = screen.iso, screen.cross
    n_acct = len(screen._acct_keys)
    i_args = (iso.cls[:iso.used], iso.sk[:iso.used], iso.base[:iso.used], iso.en[:iso.used],
              iso.warn[:iso.used], pm, *rates, 3.0, EPS_REL, ABS_SLACK_UNITS)
    c_args = (cross.cls[:cross.used], cross.acct[:cross.used], cross.sk[:cross.used],
              cross.base[:cross.used], cross.en[:cross.used], pm, *rates, screen._cash_f[:n_acct],
              screen._cross_count[:n_acct], screen._book_warn[:n_acct], 3.0, EPS_REL, ABS_SLACK_UNITS,
              screen.book_equity[:n_acct], screen.book_scale[:n_acct])
    iso_kernel, cross_kernel = KERNELS[False]
    steps = {
        "numpy: isolated codes": lambda: iso_codes_numpy(*i_args),
        "numpy: cross codes (4 × np.bincount)": lambda: cross_codes_numpy(*c_args),
        "numba: isolated kernel": lambda: iso_kernel(*i_args),
        "numba: cross kernel": lambda: cross_kernel(*c_args, screen._work),
    }
    return [(name, median_time(fn, repeat)[0] * 1e3) for name, fn in steps.items()]


def main() -> None:
    args = parse_args()
    insts = instruments()
    base = [x.px_to_ticks(x.index_px) for x in insts]
    t0 = time.perf_counter()
    screen = build(args, insts, base)
    build_s = time.perf_counter() - t0
    # positions already liquidatable at the starting marks would have gone at earlier ticks
    screen.screen(base)  # JIT warm-up (cache load or compile), outside every timing
    gone = screen.confirm(screen.screen(base), base)
    for key in gone.isolated:
        screen.remove(key)
    for uid, ccy in gone.cross:
        for key in screen.cross_keys(uid, ccy):
            screen.remove(key)
    rng = np.random.default_rng(args.seed + 1)
    marks = [max(1, round(m * float(np.exp(rng.normal(0, args.shock))))) for m in base]
    mark_arr = np.array(marks, dtype=np.int64)
    threads = numba.get_num_threads()
    t_screen, cand = median_time(lambda: screen.screen(mark_arr), args.repeat)
    screen.parallel = True
    screen.screen(mark_arr)  # JIT compile of the parallel kernels, outside the timing
    t_screen_2, cand_2 = median_time(lambda: screen.screen(mark_arr), args.repeat)
    best_2 = min(median_time(lambda: screen.screen(mark_arr), 1)[0] for _ in range(args.repeat))
    screen.parallel = False
    assert sorted(cand_2.isolated) == sorted(cand.isolated) and sorted(cand_2.cross) == sorted(cand.cross)
    t_confirm, confirmed = median_time(lambda: screen.confirm(cand, marks), 5)
    screen.backend = "numpy"
    t_numpy, cand_np = median_time(lambda: screen.screen(mark_arr), max(5, args.repeat // 4))
    screen.backend = "numba"
    assert (sorted(cand_np.isolated), sorted(cand_np.cross)) == (sorted(cand.isolated), sorted(cand.cross))
    profile = stage_times(screen, mark_arr, 9)

    records = exact_records(screen, args.baseline)
    cash = {akey: int(screen._cash[slot]) for akey, slot in screen._acct_slot.items()}
    mark_map = {x.inst_id: m for x, m in zip(insts, marks, strict=True)}
    t_loop, loop_res = median_time(lambda: python_loop(records, mark_map, cash), 3)
    iso_sub = {r[0] for r in records if r[5] is None}
    assert {k for k in confirmed.isolated if k in iso_sub} == set(loop_res.isolated)
    t_loop_full = t_loop / len(records) * len(screen)

    # the trigger index: drop what this tick crossed (the engine would liquidate it), then time
    # a tick where nothing crosses
    tri = screen.triggers
    crossed = tri.crossed_all(marks)
    assert set(confirmed.isolated) <= set(crossed)
    for key in crossed:
        tri.remove(key)
    calls = [(i, marks[i]) for i in range(len(insts))]
    per_tick = []
    for _ in range(2001):
        start = time.perf_counter()
        for i, m in calls:
            tri.crossed(i, m)
        per_tick.append((time.perf_counter() - start) / len(calls))
    t_index = statistics.median(per_tick)
    n_iso = sum(len(tri._longs[i]) + len(tri._shorts[i]) for i in range(len(insts)))
    keys = list(tri._entry)[:20000]
    entries = [tri._entry[k] for k in keys]
    start = time.perf_counter()
    for k, (i, is_long, trig, _) in zip(keys, entries, strict=True):
        tri.remove(k)
        tri.upsert(k, i, is_long, trig)
    t_update = (time.perf_counter() - start) / len(keys)
    # the alternative measured: a sorted numpy array per side, np.insert / np.delete per change
    arr = np.sort(np.array([t for t, _ in tri._longs[0]], dtype=np.int64))
    start = time.perf_counter()
    for trig in arr[:2000].tolist():
        pos = np.searchsorted(arr, trig)
        arr = np.insert(np.delete(arr, pos), pos, trig)
    t_np_update = (time.perf_counter() - start) / 2000
    t_np_query = median_time(lambda: np.searchsorted(arr, marks[0]), 2001)[0]
    t_upsert = build_s / args.positions

    inf_long = sum(1 for i in range(len(insts)) for t, _ in tri._longs[i] if t == INF_TICKS)
    rows = [
        ("positions / instruments / cross books", f"{len(screen):,} / {len(insts)} / "
         f"{len(screen._acct_keys) - 1:,} (isolated {n_iso:,}; ~{args.accounts:,} accounts)"),
        ("mark move", f"lognormal, st.dev. {args.shock:.1%} per instrument"),
        (f"**screen, numba, 1 thread, the default (median of {args.repeat})**",
         f"**{t_screen * 1e3:.2f} ms** (target ≤ 5 ms)"),
        (f"screen, numba parallel=True, {threads} threads: median / best",
         f"{t_screen_2 * 1e3:.2f} ms / {best_2 * 1e3:.2f} ms"),
        ("screen, numpy + np.bincount", f"{t_numpy * 1e3:.2f} ms (same candidates)"),
        ("candidates (isolated + cross books)", f"{len(cand.isolated):,} + {len(cand.cross):,}"),
        ("exact confirmation of the candidates (Python ints)", f"{t_confirm * 1e3:.2f} ms → "
         f"{len(confirmed.isolated):,} + {len(confirmed.cross):,} confirmed"),
        (f"plain Python loop, {len(records):,}-position subset (measured)", f"{t_loop * 1e3:.1f} ms"),
        ("plain Python loop, extrapolated per position to full size", f"{t_loop_full:.2f} s"),
        ("**ratio: loop / screen**", f"**{t_loop_full / t_screen:,.0f}×** "
         f"(loop / (screen + confirm): {t_loop_full / (t_screen + t_confirm):,.0f}×)"),
        ("trigger index, tick where nothing crosses (median per instrument)", f"{t_index * 1e6:.2f} µs"),
        ("trigger index, remove + insert one position (SortedList)", f"{t_update * 1e6:.1f} µs"),
        (f"alternative: sorted np array of {len(arr):,}, delete + insert / searchsorted",
         f"{t_np_update * 1e6:.1f} µs / {t_np_query * 1e6:.2f} µs"),
        ("isolated longs always candidates (trigger ∞)", f"{inf_long:,}"),
        ("not timed: build via upsert (incl. exact triggers), per position", f"{t_upsert * 1e6:.1f} µs"),
    ]
    rows += [(f"profile, {name}", f"{ms:.2f} ms") for name, ms in profile]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
