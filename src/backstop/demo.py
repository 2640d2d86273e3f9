"""``backstop demo``: a scripted market run through the exact engine, then a summary.

A market maker quotes a ladder around the index; leveraged traders open positions with market
orders; the index falls 8% and recovers while the maker requotes. The most leveraged longs are
liquidated on the way down: the insurance fund takes their surplus or pays their deficit.
Everything is driven by a seeded ``random.Random`` and a simulated clock, so the same seed
prints the same story.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal

from rich.console import Console
from rich.table import Table

from backstop.engine.config import EngineConfig
from backstop.engine.exchange import Exchange
from backstop.engine.queries import cross_figures, isolated_equity, isolated_margin, lever_cents
from backstop.math.margin import (
    calculate_liquidation_px,
    calculate_margin_ratio,
    calculate_max_open_lots,
    calculate_mm_plus_fee,
    find_tier,
)
from backstop.math.values import calculate_upl
from backstop.model.catalogue import Catalogue
from backstop.model.commands import CancelOrder, Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import LiquidationSettled, LiquidationStarted
from backstop.model.instrument import Instrument
from backstop.numeric import money_str
from backstop.state.invariants import conservation_reports
from backstop.state.positions import Position

MAKER = 1
TRADERS = range(2, 12)
PATH = ["0", "-0.02", "-0.05", "-0.08", "-0.06", "-0.03", "0.01"]
"""Index moves relative to the start, one per minute (a crash and a rebound)."""


def run_demo(console: Console, catalogue: Catalogue, seed: int) -> Exchange:
    """Run the script on the catalogue's first linear instrument and print the summary."""
    inst = next((i for i in catalogue if i.is_linear), None)
    if inst is None:
        raise ValueError("the catalogue has no linear instrument for the demo")
    rng = random.Random(seed)
    config = EngineConfig().with_overrides(
        insurance_fund={"initial": {inst.inst_family: Decimal("2000")}})
    exchange = Exchange(catalogue, config, check_invariants=True)
    clock = _Clock()
    _fund_accounts(exchange, inst, clock)
    start = inst.index_px
    for step, move in enumerate(PATH):
        index = (start * (1 + Decimal(move))).quantize(inst.tick_sz, rounding=ROUND_HALF_EVEN)
        exchange.execute(SetIndexPrice(clock.tick(), inst.inst_family, index))
        _requote(exchange, inst, index, clock)
        if step < 2:
            _traders_open(exchange, inst, rng, clock)
    _print_summary(console, exchange, inst, seed)
    return exchange


class _Clock:
    """Simulated epoch milliseconds, 2025-10-10 20:50 UTC onwards, a second per step."""

    def __init__(self) -> None:
        self.now = 1_760_129_400_000

    def tick(self) -> int:
        self.now += 1000
        return self.now


def _fund_accounts(exchange: Exchange, inst: Instrument, clock: _Clock) -> None:
    ccy = inst.settle_ccy
    exchange.execute(Deposit(clock.tick(), MAKER, ccy, Decimal("50000000")))
    for uid in TRADERS:
        exchange.execute(Deposit(clock.tick(), uid, ccy, Decimal(2000 + 500 * uid)))
        mode = MarginMode.ISOLATED if uid % 2 else MarginMode.CROSS
        lever = Decimal([10, 20, 25, 50, 75][uid % 5])
        exchange.execute(SetLeverage(clock.tick(), uid, inst.inst_id, mode, lever))


def _requote(exchange: Exchange, inst: Instrument, index: Decimal, clock: _Clock) -> None:
    """Cancel the maker's quotes and post 10 levels a side, 5 bp apart."""
    for ord_id in list(exchange.state.open_orders.get(MAKER, {})):
        exchange.execute(CancelOrder(clock.tick(), MAKER, inst.inst_id, ord_id))
    for level in range(1, 11):
        offset = (index * Decimal("0.0005") * level).quantize(inst.tick_sz, rounding=ROUND_HALF_EVEN)
        size = inst.min_sz * 5000 * level
        for side, px in ((Side.BUY, index - offset), (Side.SELL, index + offset)):
            exchange.execute(PlaceOrder(clock.tick(), MAKER, inst.inst_id, side, OrderType.LIMIT,
                                        size, px))


def _traders_open(exchange: Exchange, inst: Instrument, rng: random.Random, clock: _Clock) -> None:
    """Each trader spends a random 30–45% of its available margin on a market order."""
    state = exchange.state
    for uid in TRADERS:
        side = Side.BUY if rng.random() < 0.7 else Side.SELL
        mode = MarginMode.ISOLATED if uid % 2 else MarginMode.CROSS
        available = cross_figures(state, uid, inst.settle_ccy).available * rng.randint(30, 45) // 100
        lever = lever_cents(state, uid, inst, mode)
        mark = state.mark_ticks[inst.inst_id]
        lots = calculate_max_open_lots(inst, available, mark, lever, inst.taker_fee_ppm)
        if lots >= inst.min_lots:
            exchange.execute(PlaceOrder(clock.tick(), uid, inst.inst_id, side, OrderType.MARKET,
                                        inst.lots_to_sz(lots), td_mode=mode))


def _print_summary(console: Console, exchange: Exchange, inst: Instrument, seed: int) -> None:
    kinds = Counter(type(e).__name__ for entry in exchange.log for e in entry.events)
    console.rule(f"backstop demo — {inst.inst_id}, seed {seed}")
    console.print("events: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    console.print(_positions_table(exchange, inst))
    console.print(_liquidations_table(exchange, inst))
    fund = exchange.state.funds[exchange.state.fund_of[inst.inst_id]]
    fund_rows = ", ".join(f"{r.type} {money_str(r.amt)}" for r in fund.history)
    console.print(f"insurance fund {fund.fund_id}: {fund_rows}")
    audit = Table(title="conservation audit (exact)")
    for column in ("ccy", "deposits", "withdrawals", "accounts", "unsettled", "funds", "fees",
                   "difference"):
        audit.add_column(column, justify="right")
    for r in conservation_reports(exchange.state):
        audit.add_row(r.ccy, *(money_str(x) for x in (r.deposits, r.withdrawals, r.accounts,
                                                       r.unsettled, r.funds, r.fees, r.difference)))
    console.print(audit)
    console.print(f"state hash {exchange.state_hash()[:16]}…  log entries {len(exchange.log)}")


def _liquidations_table(exchange: Exchange, inst: Instrument) -> Table:
    table = Table(title="liquidations")
    for column in ("uid", "mode", "contracts", "bankruptcy px", "mark", "to fund", "from fund"):
        table.add_column(column, justify="right")
    started = {}
    for entry in exchange.log:
        for event in entry.events:
            if isinstance(event, LiquidationStarted):
                started[(event.uid, event.mgn_mode)] = event
            elif isinstance(event, LiquidationSettled):
                begin = started[(event.uid, event.mgn_mode)]
                table.add_row(str(event.uid), event.mgn_mode, str(inst.lots_to_sz(event.lots)),
                              str(inst.ticks_to_px(begin.bankruptcy_ticks)),
                              str(inst.ticks_to_px(begin.mark_ticks)), money_str(event.to_fund),
                              money_str(event.from_fund))
    return table


def _positions_table(exchange: Exchange, inst: Instrument) -> Table:
    state = exchange.state
    mark = state.mark_ticks[inst.inst_id]
    table = Table(title=f"positions at mark {inst.ticks_to_px(mark)}")
    for column in ("uid", "mode", "pos", "upl", "margin ratio", "liq px"):
        table.add_column(column, justify="right")
    for pos in sorted(state.positions.values(), key=lambda p: p.key):
        if pos.uid == MAKER or pos.size_lots == 0:
            continue
        upl = calculate_upl(inst, pos.size_lots, pos.cost, mark)
        table.add_row(str(pos.uid), pos.mgn_mode.value, str(inst.lots_to_sz(pos.size_lots)),
                      money_str(upl), *_risk_cells(exchange, inst, pos))
    return table


def _risk_cells(exchange: Exchange, inst: Instrument, pos: Position) -> tuple[str, str]:
    state = exchange.state
    mark = state.mark_ticks[inst.inst_id]
    if pos.is_isolated:
        equity = isolated_equity(state, pos, inst)
        tier = find_tier(inst.tiers, pos.size_lots) or inst.tiers[-1]
        liq = calculate_liquidation_px(inst, pos.size_lots, pos.cost,
                                       isolated_margin(state, pos, inst), tier.mmr_ppm)
        liq_text = str(liq.quantize(inst.tick_sz, rounding=ROUND_HALF_EVEN)) if liq else "-"
    else:
        equity = cross_figures(state, pos.uid, inst.settle_ccy).equity
        liq_text = "(cross)"
    ratio = calculate_margin_ratio(equity, calculate_mm_plus_fee(inst, pos.size_lots, mark))
    return (f"{ratio:.2%}" if ratio is not None else "-", liq_text)


def print_catalogue(console: Console, catalogue: Catalogue) -> None:
    table = Table(title=f"{len(catalogue)} instruments")
    for column in ("instId", "ctType", "ctVal", "tickSz", "lotSz", "max lever", "index px",
                   "tiers"):
        table.add_column(column)
    for i in catalogue:
        table.add_row(i.inst_id, i.ct_type.value, f"{i.ct_val} {i.ct_val_ccy}", str(i.tick_sz),
                      str(i.lot_sz), str(i.max_lever), str(i.index_px),
                      f"{len(i.tiers)}{' (reconstructed)' if i.tiers_reconstructed else ''}")
    console.print(table)
