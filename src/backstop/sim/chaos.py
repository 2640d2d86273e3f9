"""A seeded random market for money-invariant runs at scale.

It drives the exact engine through everything that moves money: deposits and withdrawals,
a market maker's ladder, leveraged takers (cross and isolated, 2–100×), cancels, index moves
with crashes and rebounds (so liquidations, fund flows and ADL happen), funding settlements
and fund injections. After every command it checks conservation exactly, and every
``full_check_every`` commands every invariant; a breach is counted, with its message, and the
run goes on from a fresh exchange only if asked (never silently).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from backstop.engine.config import EngineConfig
from backstop.engine.exchange import Exchange
from backstop.model.catalogue import Catalogue, default_catalogue
from backstop.model.commands import (
    CancelOrder,
    Command,
    Deposit,
    InjectInsuranceFund,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    SettleFunding,
    Withdraw,
)
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.instrument import Instrument
from backstop.numeric import round_to
from backstop.state.invariants import ensure_conservation, ensure_invariants

MAKER = 1
INSTRUMENTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP")


@dataclass
class ChaosReport:
    """What a run did and found."""

    commands: int = 0
    events: int = 0
    conservation_checks: int = 0
    full_checks: int = 0
    violations: list[str] = field(default_factory=list)
    event_kinds: Counter = field(default_factory=Counter)
    digest: Any = field(default_factory=hashlib.sha256)
    """SHA-256 over every event's repr, in order: equal digests mean equal event logs."""


@dataclass
class _Market:
    exchange: Exchange
    rng: random.Random
    index: dict[str, Decimal]
    now: int = 1_760_000_000_000


def run_chaos(target_events: int, seed: int, accounts: int = 60,
              config: EngineConfig | None = None, catalogue: Catalogue | None = None,
              full_check_every: int = 500,
              progress: Callable[[int], None] | None = None) -> ChaosReport:
    """Run until at least ``target_events`` engine events have been emitted."""
    cat = (catalogue or default_catalogue()).subset(list(INSTRUMENTS))
    config = config or EngineConfig().with_overrides(
        insurance_fund={"initial": {"BTC-USDT": "300", "ETH-USDT": "100", "BTC-USD": "0.005"}})
    market = _Market(Exchange(cat, config, keep_log=False), random.Random(seed),
                     {i.inst_family: i.index_px for i in cat})
    report = ChaosReport()
    for command in _opening(market, accounts):
        _step(market, command, report, full_check_every)
    while report.events < target_events:
        for command in _round(market, accounts):
            _step(market, command, report, full_check_every)
        if progress:
            progress(report.events)
    ensure_invariants(market.exchange.state)
    return report


def _step(market: _Market, command: Command, report: ChaosReport, full_every: int) -> None:
    events = market.exchange.execute(command)
    report.commands += 1
    report.events += len(events)
    report.event_kinds.update(type(e).__name__ for e in events)
    for event in events:
        report.digest.update(repr(event).encode())
    try:
        ensure_conservation(market.exchange.state)
        report.conservation_checks += 1
        if report.commands % full_every == 0:
            ensure_invariants(market.exchange.state)
            report.full_checks += 1
    except AssertionError as exc:
        report.violations.append(f"after command {report.commands}: {exc}")


def _tick(market: _Market) -> int:
    market.now += market.rng.randint(200, 3000)
    return market.now


def _opening(market: _Market, accounts: int) -> list[Command]:
    ts = _tick(market)
    out: list[Command] = [Deposit(ts, MAKER, "USDT", Decimal("50000000")),
                          Deposit(ts, MAKER, "BTC", Decimal("500"))]
    for uid in range(2, accounts + 2):
        out.append(Deposit(ts, uid, "USDT", Decimal(market.rng.randint(500, 20000))))
        out.append(Deposit(ts, uid, "BTC", Decimal(market.rng.randint(1, 20)) / 100))
        for inst_id in INSTRUMENTS:
            mode = market.rng.choice((MarginMode.CROSS, MarginMode.ISOLATED))
            lever = Decimal(market.rng.choice((2, 5, 10, 20, 50, 100)))
            out.append(SetLeverage(ts, uid, inst_id, mode, lever))
    return out


def _round(market: _Market, accounts: int) -> list[Command]:
    """One market minute: requote, a burst of takers and cancels, a price move, sometimes
    funding, withdrawals or an injection."""
    rng, ex = market.rng, market.exchange
    out: list[Command] = []
    inst = ex.catalogue.get(rng.choice(INSTRUMENTS))
    family = inst.inst_family
    out.extend(_requote(market, inst))
    for _ in range(rng.randint(3, 12)):
        out.append(_taker(market, inst, accounts))
    open_orders = [(uid, o) for uid, orders in ex.state.open_orders.items() if uid != MAKER
                   for o in orders]
    for uid, ord_id in rng.sample(open_orders, min(len(open_orders), rng.randint(0, 3))):
        out.append(CancelOrder(_tick(market), uid, ex.state.open_orders[uid][ord_id].inst_id, ord_id))
    new_index = _move(rng, market.index[family], inst.tick_sz)
    if abs(new_index - market.index[family]) > market.index[family] / 20 and rng.random() < 0.7:
        out.extend(_pull_quotes(market, inst))  # a crash with the book pulled: deficits, ADL
    market.index[family] = new_index
    out.append(SetIndexPrice(_tick(market), family, new_index))
    if rng.random() < 0.05:
        out.append(SettleFunding(_tick(market)))
    if rng.random() < 0.05:
        out.append(Withdraw(_tick(market), rng.randint(2, accounts + 1), "USDT",
                            Decimal(rng.randint(1, 3000))))
    if rng.random() < 0.01:
        out.append(InjectInsuranceFund(_tick(market), family, Decimal(rng.randint(1, 1000))))
    return out


def _move(rng: random.Random, price: Decimal, tick: Decimal) -> Decimal:
    """A random step of up to ±0.6%; 6% of the time a crash or a spike of 6–25%."""
    if rng.random() < 0.06:
        factor = Decimal(1) + Decimal(rng.choice((-1, 1)) * rng.randint(6, 25)) / 100
    else:
        factor = Decimal(1) + Decimal(rng.randint(-60, 60)) / 10000
    return max(tick, (price * factor).quantize(tick, rounding=ROUND_HALF_EVEN))


def _pull_quotes(market: _Market, inst: Instrument) -> list[Command]:
    ts = _tick(market)
    return [CancelOrder(ts, MAKER, o.inst_id, ord_id)
            for ord_id, o in market.exchange.state.open_orders.get(MAKER, {}).items()
            if o.inst_id == inst.inst_id]


def _requote(market: _Market, inst: Instrument) -> list[Command]:
    ex = market.exchange
    out = _pull_quotes(market, inst)
    ts = _tick(market)
    mark = inst.ticks_to_px(ex.state.mark_ticks[inst.inst_id])
    for level in range(1, 8):
        offset = max(inst.tick_sz, round_to(mark * Decimal("0.002") * level, inst.tick_sz))
        size = inst.min_sz * market.rng.randint(50, 400) * level
        out.append(PlaceOrder(ts, MAKER, inst.inst_id, Side.BUY, OrderType.LIMIT, size, mark - offset))
        out.append(PlaceOrder(ts, MAKER, inst.inst_id, Side.SELL, OrderType.LIMIT, size,
                              mark + offset))
    return out


def _taker(market: _Market, inst: Instrument, accounts: int) -> PlaceOrder:
    rng = market.rng
    uid = rng.randint(2, accounts + 1)
    side = Side.BUY if rng.random() < 0.55 else Side.SELL
    kind = rng.choice((OrderType.MARKET, OrderType.MARKET, OrderType.LIMIT, OrderType.IOC,
                       OrderType.POST_ONLY, OrderType.FOK))
    mark = inst.ticks_to_px(market.exchange.state.mark_ticks[inst.inst_id])
    px = None if kind is OrderType.MARKET else \
        (mark * (1 + Decimal(rng.randint(-30, 30)) / 10000)).quantize(inst.tick_sz, rounding=ROUND_HALF_EVEN)
    size = inst.min_sz * rng.randint(1, 300)
    mode = rng.choice((MarginMode.CROSS, MarginMode.ISOLATED))
    return PlaceOrder(_tick(market), uid, inst.inst_id, side, kind, size, px, mode,
                      reduce_only=rng.random() < 0.05)
