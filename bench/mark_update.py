"""One mark update on an exact engine holding 1,000,000 positions (issue 12).

Run: ``PYTHONPATH=src .venv/bin/python bench/mark_update.py`` (``--positions N``; ``--quick``:
100,000). It opens the positions through ``Exchange.execute`` (a maker's resting orders on
30 instruments, the 25 default swaps and 5 coin-margined clones from ``bench/risk_scan.py``,
one per fill at a price within ±1% of the index; traders' market orders, 40% isolated at
2–20×, cross at the default 10× with 1.0–1.6× the IM in cash), then times whole
``SetIndexPrice`` commands for one instrument family:

- updates where nothing is liquidatable (median of ``--repeat``, wall and thread CPU);
- one update that makes about 1% of all positions liquidatable.

Baselines in the same run: the same updates through the exact scan (``risk.screen =
exact``, the engine before issue 12 for everything after the liquidations), extrapolated
from a ``--baseline``-position copy when the book is bigger. Conservation is checked exactly
after every timed update (outside the timing). Prints Markdown rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal

import numpy as np

from backstop.engine.config import EngineConfig
from backstop.engine.exchange import Exchange
from backstop.engine.screen import RiskScreen
from backstop.model.catalogue import Catalogue
from backstop.model.commands import CheckRisk, Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import LiquidationStarted
from backstop.model.ids import InstrumentId
from backstop.state.invariants import ensure_conservation

sys.path.insert(0, os.path.dirname(__file__))
from risk_scan import instruments  # the same 30 instruments

MAKER = 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=50_000,
                        help="positions in the exact-scan copy (the baseline)")
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--quick", action="store_true", help="100,000 positions")
    parser.add_argument("--no-crash", action="store_true", help="skip the 1% update")
    args = parser.parse_args()
    if args.quick:
        args.positions, args.baseline, args.repeat = 100_000, 20_000, 11
    return args


def build(n_positions: int, seed: int, screen: str) -> tuple[Exchange, float, int]:
    """An exchange holding ``n_positions`` trader positions (5 per account, distinct
    instruments), opened through the engine; returns it, the build seconds and the refusals."""
    insts = instruments()
    cat = Catalogue({InstrumentId(i.inst_id): i for i in insts})
    config = EngineConfig().with_overrides(risk={"screen": screen})
    ex = Exchange(cat, config, keep_log=False)
    rng = np.random.default_rng(seed)
    accounts = max(1, n_positions // 5)
    started = time.perf_counter()
    ts = 1_760_000_000_000
    currencies = sorted({i.settle_ccy for i in insts})
    ex.execute_all([Deposit(ts, MAKER, ccy, Decimal(10) ** 9) for ccy in currencies])
    plans, need = [], {}
    for a in range(accounts):
        uid = 2 + a
        for i in rng.choice(len(insts), 5, replace=False).tolist():
            inst = insts[i]
            px = inst.index_px
            usd_per_contract = float(inst.ct_val * (px if inst.is_linear else 1))
            contracts = max(float(inst.min_sz), float(np.exp(rng.normal(np.log(2000.0), 1.0)))
                            / usd_per_contract)
            sz = (Decimal(contracts) // inst.lot_sz * inst.lot_sz).max(inst.min_sz)
            sz = min(sz, inst.lots_to_sz(inst.tiers[0].max_lots))
            iso = bool(rng.random() < 0.4)
            lever = min(inst.max_lever, Decimal(int(np.exp(rng.uniform(np.log(2), np.log(20)))))) \
                if iso else Decimal(10)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            coin = float(sz * inst.ct_val) * (1.0 if inst.is_linear else 1 / float(px))  # settle ccy
            notional = coin * (float(px) if inst.is_linear else 1.0)
            cushion = 1.0 if iso else float(rng.uniform(1.0, 1.6))
            need[(uid, inst.settle_ccy)] = need.get((uid, inst.settle_ccy), 0.0) + \
                notional / float(lever) * cushion * 1.02 + notional * 0.014
            plans.append((uid, inst, sz, side, iso, lever))
    for (uid, ccy), amount in sorted(need.items()):
        ex.execute(Deposit(ts, uid, ccy, Decimal(f"{amount:.8f}")))
    ex.execute_all([SetLeverage(ts, MAKER, inst.inst_id, MarginMode.CROSS, Decimal(1)) for inst in insts])
    refused = 0
    for uid, inst, sz, side, iso, lever in plans:  # the maker quotes each fill within ±1%
        px = (inst.index_px * Decimal(1 + float(rng.uniform(-0.01, 0.01)))).quantize(inst.tick_sz)
        maker_side = Side.SELL if side is Side.BUY else Side.BUY
        ex.execute(PlaceOrder(ts, MAKER, inst.inst_id, maker_side, OrderType.LIMIT, sz, px))
        mode = MarginMode.ISOLATED if iso else MarginMode.CROSS
        if iso:
            ex.execute(SetLeverage(ts, uid, inst.inst_id, mode, lever))
        events = ex.execute(PlaceOrder(ts, uid, inst.inst_id, side, OrderType.MARKET, sz, td_mode=mode))
        refused += type(events[0]).__name__ == "Rejected"
    return ex, time.perf_counter() - started, refused


def timed_update(ex: Exchange, family: str, px: Decimal, ts: int) -> tuple[float, float, list]:
    """One ``SetIndexPrice``: wall and thread CPU seconds, and its events; conservation is
    checked after it, outside the timing."""
    wall, cpu = time.perf_counter(), time.thread_time()
    events = ex.execute(SetIndexPrice(ts, family, px))
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    ensure_conservation(ex.state)
    return wall, cpu, events


def quiet_updates(ex: Exchange, repeat: int, seed: int) -> tuple[float, float, int]:
    """Median wall and CPU of updates that liquidate nothing: each moves one family's index
    by up to ±0.1% (families in turn)."""
    rng = np.random.default_rng(seed)
    families = [i.inst_family for i in ex.catalogue]
    walls, cpus, ts = [], [], 1_760_000_100_000
    index = {i.inst_family: i.index_px for i in ex.catalogue}
    liquidated = 0
    for k in range(repeat):
        family = families[k % len(families)]
        inst = next(i for i in ex.catalogue if i.inst_family == family)
        index[family] = (index[family] * Decimal(1 + float(rng.uniform(-0.001, 0.001)))
                         ).quantize(inst.tick_sz)
        ts += 1000
        wall, cpu, events = timed_update(ex, family, index[family], ts)
        liquidated += sum(isinstance(e, LiquidationStarted) for e in events)
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus), liquidated


def crash_update(ex: Exchange, share: float) -> tuple[float, float, int, str, float]:
    """One update that makes about ``share`` of all positions liquidatable: the family and
    move whose screen candidates come closest (not timed)."""
    screen = ex.units.screen
    assert screen is not None
    n = len(ex.state.positions)
    best = None
    for inst in ex.catalogue:
        for move in (-0.02, -0.04, -0.06, -0.08, -0.1, -0.15, -0.2, -0.3):
            marks = dict(ex.state.mark_ticks)
            marks[inst.inst_id] = int(marks[inst.inst_id] * (1 + move))
            near = screen.screen(marks)  # candidates: a close superset of the liquidatable
            count = sum(len(screen.cross_keys(*b)) for b in near.cross) + len(near.isolated)
            if best is None or abs(count - share * n) < abs(best[0] - share * n):
                best = (count, inst, move)
    _count, inst, move = best
    px = (inst.ticks_to_px(ex.state.mark_ticks[inst.inst_id]) * Decimal(1 + move)).quantize(inst.tick_sz)
    wall, cpu, events = timed_update(ex, inst.inst_family, px, 1_760_000_900_000)
    return wall, cpu, sum(isinstance(e, LiquidationStarted) for e in events), inst.inst_id, move


def trigger_index_costs(screen: RiskScreen, count: int = 20_000) -> tuple[float, float]:
    """The isolated trigger index, measured on this book: per-position upkeep (exact trigger
    and ``SortedList`` insert, on top of ``upsert``) and a tick's query over every
    instrument when nothing crosses."""
    probe = RiskScreen(screen.instruments, capacity=count, track_triggers=True)
    plain = RiskScreen(screen.instruments, capacity=count, track_triggers=False)
    pool = screen.iso
    rows = []
    for slot in np.flatnonzero(pool.pid[:pool.used] >= 0)[:count].tolist():
        key = screen.key_of_slot(pool, slot)
        inst = screen.instruments[int(screen._inst_of_cls[pool.cls[slot]])]
        rows.append((key, inst.inst_id, key[0], True, int(pool.lots[slot]), int(pool.cost[slot]),
                     int(pool.margin[slot])))
    times = []
    for target in (plain, probe):
        start = time.thread_time()
        for row in rows:
            target.upsert(*row)
        times.append(time.thread_time() - start)
    upkeep = (times[1] - times[0]) / len(rows)
    tri, marks = probe.triggers, probe.mark_array({i.inst_id: i.px_to_ticks(i.index_px)
                                                   for i in screen.instruments}).tolist()
    for key in tri.crossed_all(marks):
        tri.remove(key)
    start = time.perf_counter()
    for _ in range(200):
        tri.crossed_all(marks)
    return upkeep, (time.perf_counter() - start) / 200


def main() -> None:
    args = parse_args()
    ex, build_s, refused = build(args.positions, args.seed, "vectorised")
    n = len(ex.state.positions)
    first = time.perf_counter()
    ex.execute(CheckRisk(1_760_000_050_000))  # builds the screen, ranks every instrument
    first = time.perf_counter() - first
    wall, cpu, liquidated = quiet_updates(ex, args.repeat, args.seed)
    upkeep, query = trigger_index_costs(ex.units.screen)
    base_n = min(args.baseline, args.positions)
    base, _, _ = build(base_n, args.seed, "exact")
    base.execute(CheckRisk(1_760_000_050_000))
    b_wall, b_cpu, b_liq = quiet_updates(base, max(5, args.repeat // 4), args.seed)
    scale = n / len(base.state.positions)
    rows = [
        ("positions / instruments / accounts", f"{n:,} / {len(ex.catalogue)} / {n // 5:,} "
         f"(isolated {sum(p.is_isolated for p in ex.state.positions.values()):,}; refused orders "
         f"{refused})"),
        ("not timed: opening them through `Exchange.execute`", f"{build_s:.0f} s"),
        ("not timed: a first risk pass (builds the screen, ranks every instrument)", f"{first:.1f} s"),
        (f"**one mark update, nothing liquidatable: median of {args.repeat}, thread CPU / wall**",
         f"**{cpu * 1e3:.1f} ms / {wall * 1e3:.1f} ms** (target ≤ 20 ms; liquidations: {liquidated})"),
        (f"baseline: exact scan, {len(base.state.positions):,} positions, thread CPU / wall",
         f"{b_cpu * 1e3:.1f} ms / {b_wall * 1e3:.1f} ms (liquidations: {b_liq})"),
        (f"baseline extrapolated per position to {n:,}", f"{b_cpu * scale:.2f} s CPU"),
        ("**ratio: exact scan / screened update (CPU, same run)**", f"**{b_cpu * scale / cpu:,.0f}×**"),
        ("isolated trigger index: upkeep per position change / query of all instruments",
         f"{upkeep * 1e6:.1f} µs / {query * 1e6:.1f} µs"),
    ]
    if not args.no_crash:
        c_wall, c_cpu, c_liq, inst_id, move = crash_update(ex, 0.01)
        rows.append((f"one mark update liquidating ~1% ({inst_id} {move:+.0%}): thread CPU / wall",
                     f"{c_cpu:.2f} s / {c_wall:.2f} s ({c_liq:,} liquidations started, "
                     f"{c_cpu / max(c_liq, 1) * 1e3:.2f} ms CPU each)"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end; "
          f"conservation checked exactly after every timed update")
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
