"""The one read-only query module: every figure of an account, a unit or a fund.

OKX single-currency margin (``acctLv`` 2): each settlement currency is margined on its own.
Cross positions share the currency's wallet (cash plus the money reserved for resting
orders); an isolated position stands on its own margin. A *unit* is an isolated position, or
a cross account in one currency.

The engine's own checks (liquidation, withdrawals, margin changes, order placement), the API,
the dashboard and the stress lab ask this module and only format what it returns. Money is in
integer units of 1e-8 of the settlement currency; prices in ticks. Nothing here mutates.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from backstop.math.margin import (
    calculate_entry_notional,
    calculate_initial_margin,
    calculate_liquidation_px,
    calculate_maintenance_margin,
    calculate_margin_ratio,
    calculate_max_open_lots,
    calculate_mm_plus_fee,
    find_tier,
    is_liquidatable,
)
from backstop.math.values import calculate_notional, calculate_upl
from backstop.model.enums import MarginMode
from backstop.model.instrument import Instrument, MmValuation
from backstop.numeric import PPM, div_ceil, div_floor
from backstop.state.exchange_state import ExchangeState
from backstop.state.insurance import InsuranceFund
from backstop.state.invariants import ConservationReport, conservation_reports
from backstop.state.ledger import cash_key, fund_key, isolated_key, reserved_key
from backstop.state.positions import Position


class CrossFigures(NamedTuple):
    """One account's cross figures in one currency, in money units.

    ``cash`` is the wallet: free cash plus ``order_frozen``, the money reserved for resting
    orders (held on its own ledger account). The derived figures are computed once, by
    :func:`cross_figures`:

    - ``equity``: cash + upl;
    - ``available``: OKX ``availEq``, equity less the IM of cross positions and of open orders;
    - ``free_cash``: cash that is neither reserved for orders nor unrealized profit, the only
      money that can move out of the wallet (into a reserve, an isolated margin, or out);
    - ``spendable``: what a reserve or an isolated margin may take: free cash, within the
      available equity (never unrealized profit, never what the cross positions need), ≥ 0.
    """

    cash: int
    upl: int
    position_im: int
    order_frozen: int
    mm_plus_fee: int
    equity: int
    available: int
    free_cash: int
    spendable: int

    @property
    def max_withdrawal(self) -> int:
        """Cash that can leave: never unrealized profit (free cash at most), never what the
        cross positions and orders need (available at most), never below 0."""
        return self.spendable

    @property
    def is_liquidatable(self) -> bool:
        """Margin ratio at or below 100% with some exposure."""
        return is_liquidatable(self.equity, self.mm_plus_fee)


_ISOLATED = MarginMode.ISOLATED  # a global is read faster than an enum class attribute
_ENTRY = MmValuation.ENTRY


def instrument_of(state: ExchangeState, pos: Position) -> Instrument:
    return state.catalogue.instruments[pos.inst_id]  # type: ignore[index]


def lever_cents(state: ExchangeState, uid: int, inst: Instrument, mgn_mode: MarginMode) -> int:
    """The account's leverage for this instrument and mode; default 10× capped by the
    instrument's maximum."""
    return state.leverage.get((uid, inst.inst_id, mgn_mode), inst.default_lever_cents)


def position_im(state: ExchangeState, pos: Position, inst: Instrument,
                lever: int | None = None) -> int:
    """IM of a position at mark: notional / leverage (the account's, unless given), rounded
    up."""
    notional = calculate_notional(inst, pos.size_lots, state.mark_ticks[inst.inst_id])
    if lever is None:
        lever = lever_cents(state, pos.uid, inst, pos.mgn_mode)
    return calculate_initial_margin(notional, lever)


def position_upl(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """Unrealized PnL at the mark."""
    return calculate_upl(inst, pos.size_lots, pos.cost, state.mark_ticks[inst.inst_id])


def mm_entry_notional(inst: Instrument, pos: Position) -> int | None:
    """The value an entry-valued instrument's MM is taken on (the position's exact entry
    value, rounded up); ``None`` for a mark-valued one. Every MM of a position goes through
    here, so the valuation is chosen in one place, by the instrument's venue profile."""
    if inst.mm_valuation is _ENTRY:
        return calculate_entry_notional(pos.entry_value, pos.entry_den)
    return None


def position_mm_plus_fee(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """MM + liquidation fee of one position (MM at the mark or at entry, the fee at the
    mark), rounded up."""
    return calculate_mm_plus_fee(inst, pos.size_lots, state.mark_ticks[inst.inst_id],
                                 mm_entry_notional(inst, pos))


def position_mm(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """OKX ``mmr`` of one position: MM at the mark (or at entry), rounded up."""
    return calculate_maintenance_margin(inst, pos.size_lots, state.mark_ticks[inst.inst_id],
                                        mm_entry_notional(inst, pos))


def cross_positions(state: ExchangeState, uid: int, ccy: str) -> list[Position]:
    """The account's open cross positions settled in ``ccy``."""
    return [p for p in state.account_positions.get(uid, {}).values()
            if not p.is_isolated and p.size_lots and instrument_of(state, p).settle_ccy == ccy]


def cross_figures(state: ExchangeState, uid: int, ccy: str) -> CrossFigures:
    """Wallet, cross upl, cross IM, reserved order money and cross MM + liquidation fee."""
    upl = im = mm = 0
    positions = state.account_positions.get(uid)
    if positions:
        instruments, marks = state.catalogue.instruments, state.mark_ticks
        for pos in positions.values():
            if pos.mgn_mode is _ISOLATED or pos.size_lots == 0:
                continue
            inst = instruments[pos.inst_id]  # type: ignore[index]
            if inst.settle_ccy != ccy:
                continue
            mark = marks[pos.inst_id]
            upl += calculate_upl(inst, pos.size_lots, pos.cost, mark)
            im += position_im(state, pos, inst)
            mm += calculate_mm_plus_fee(inst, pos.size_lots, mark, mm_entry_notional(inst, pos))
    balances = state.ledger.balances
    reserved = balances.get(reserved_key(uid, ccy), 0)
    free_cash = balances.get(cash_key(uid, ccy), 0)
    cash = free_cash + reserved
    equity = cash + upl
    available = equity - im - reserved
    spendable = free_cash if free_cash < available else available
    return CrossFigures(cash, upl, im, reserved, mm, equity, available, free_cash,
                        spendable if spendable > 0 else 0)


def isolated_margin(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    return state.ledger.balance(isolated_key(pos.uid, pos.inst_id, inst.settle_ccy))


def isolated_equity(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """Margin + upl at mark of an isolated position."""
    return isolated_margin(state, pos, inst) + position_upl(state, pos, inst)


def is_position_liquidatable(state: ExchangeState, pos: Position, inst: Instrument) -> bool:
    """An isolated position at or below a 100% margin ratio: equity ≤ MM + fee."""
    return is_liquidatable(isolated_equity(state, pos, inst), position_mm_plus_fee(state, pos, inst))


def is_cross_liquidatable(state: ExchangeState, uid: int, ccy: str) -> bool:
    return cross_figures(state, uid, ccy).is_liquidatable


def is_unit_of_position_liquidatable(state: ExchangeState, pos: Position) -> bool:
    """Whether the unit holding ``pos`` (its isolated self, or its cross account) is at or
    below a 100% margin ratio."""
    inst = instrument_of(state, pos)
    if pos.is_isolated:
        return is_position_liquidatable(state, pos, inst)
    return is_cross_liquidatable(state, pos.uid, inst.settle_ccy)


def unit_equity_and_requirement(state: ExchangeState, pos: Position) -> tuple[int, int]:
    """``(equity, MM + fee)`` of the unit holding ``pos``."""
    inst = instrument_of(state, pos)
    if pos.is_isolated:
        return isolated_equity(state, pos, inst), position_mm_plus_fee(state, pos, inst)
    figures = cross_figures(state, pos.uid, inst.settle_ccy)
    return figures.equity, figures.mm_plus_fee


def margin_ratio(equity: int, mm_plus_fee: int) -> Decimal | None:
    """OKX ``mgnRatio`` (display): equity / (MM + fee); ``None`` without exposure."""
    return calculate_margin_ratio(equity, mm_plus_fee)


def max_margin_reduction(state: ExchangeState, pos: Position, inst: Instrument) -> int:
    """The most margin an isolated position can give back (OKX's margin-balance ``reduce``
    limit): the margin stays ≥ its IM at the mark and ≥ 0, and a loss counts against it
    while a profit does not, so no unrealized profit ever leaves. ``margin + min(upl, 0) −
    IM``, at least 0."""
    margin = isolated_margin(state, pos, inst)
    upl = position_upl(state, pos, inst)
    return max(0, margin + min(upl, 0) - position_im(state, pos, inst))


def max_withdrawal(state: ExchangeState, uid: int, ccy: str) -> int:
    """OKX ``max-withdrawal`` for one currency (see :attr:`CrossFigures.max_withdrawal`)."""
    return cross_figures(state, uid, ccy).max_withdrawal


def price_limits(state: ExchangeState, inst: Instrument, band_ppm: int) -> tuple[int, int]:
    """OKX ``public/price-limit`` in ticks: ``(buyLmt, sellLmt)``, the mark ± ``band``.

    ``buyLmt = mark · (1 + band)`` rounded down and ``sellLmt = mark · (1 − band)`` rounded
    up (both toward the mark, so the band is never wider than set), at least one tick."""
    mark = state.mark_ticks[inst.inst_id]
    buy = div_floor(mark * (PPM + band_ppm), PPM)
    sell = div_ceil(mark * (PPM - band_ppm), PPM)
    if sell < 1:
        sell = 1
    return (buy if buy > sell else sell), sell


def fund_balance(state: ExchangeState, fund: InsuranceFund) -> int:
    return state.ledger.balance(fund_key(fund.fund_id, fund.ccy))


def avg_px(inst: Instrument, pos: Position) -> Decimal:
    """Average open price (``avgPx``) from the exact fill values, so one fill at 92300 shows
    92300 (the settled inverse cost basis is floored to 1e-8 and would show 92299.456);
    a decimal of 28 significant digits. Linear: entry / (size·k); inverse: −size·k / entry."""
    entry, size_k = Fraction(pos.entry_value, pos.entry_den), pos.size_lots * inst.value_k
    if not entry or not size_k:
        return Decimal(0)
    ticks = entry / size_k if inst.is_linear else -size_k / entry
    return Decimal(ticks.numerator) / Decimal(ticks.denominator) * inst.tick_sz


def break_even_px(inst: Instrument, pos: Position) -> Decimal | None:
    """The price where closing at the taker fee returns the fees paid: upl(P) = fees +
    |value(P)|·t. Linear P = (cost + fees)/(k·size·(1 − s·t)); inverse
    P = −k·size·(1 + s·t)/(cost + fees), with s the position's sign, in ticks."""
    sign = 1 if pos.size_lots > 0 else -1
    t = Decimal(inst.taker_fee_ppm) / PPM
    paid = Decimal(pos.cost + pos.fees_paid)
    k_size = Decimal(inst.value_k * pos.size_lots)
    if inst.is_linear:
        ticks = paid / (k_size * (1 - sign * t))
    else:
        ticks = -k_size * (1 + sign * t) / paid if paid else Decimal(0)
    return ticks * inst.tick_sz if ticks > 0 else None


def liquidation_ticks(state: ExchangeState, pos: Position) -> int | None:
    """OKX ``liqPx`` in ticks: the mark at which the engine's own trigger fires for the unit
    holding ``pos``, with every other price where it is now.

    A long's is the highest mark at which its unit is liquidatable, a short's the lowest, so
    the figure is on the conservative side of the exact trigger (never looks safer than it
    is). Found by bisection on the exact predicate: the unit's ``equity − (MM + fee)`` is
    monotonic in this position's mark. ``None`` when no positive price triggers it (or every
    price does, within the search range).
    """
    inst = instrument_of(state, pos)
    mark = state.mark_ticks[inst.inst_id]
    entry = mm_entry_notional(inst, pos)
    if pos.is_isolated:
        base_equity, base_requirement = isolated_margin(state, pos, inst), 0
    else:  # the rest of the cross unit, held where it is
        figures = cross_figures(state, pos.uid, inst.settle_ccy)
        base_equity = figures.equity - calculate_upl(inst, pos.size_lots, pos.cost, mark)
        base_requirement = figures.mm_plus_fee - calculate_mm_plus_fee(inst, pos.size_lots, mark, entry)

    def fires(ticks: int) -> bool:
        equity = base_equity + calculate_upl(inst, pos.size_lots, pos.cost, ticks)
        return is_liquidatable(equity, base_requirement
                               + calculate_mm_plus_fee(inst, pos.size_lots, ticks, entry))

    estimate = _formula_estimate_ticks(state, pos, inst)
    return _bisect_trigger(fires, pos.size_lots > 0, mark, estimate)


def _formula_estimate_ticks(state: ExchangeState, pos: Position, inst: Instrument) -> int | None:
    """OKX's closed-form ``liqPx`` (okx.md) in ticks, as a starting bracket."""
    tier = find_tier(inst.tiers, pos.size_lots) or inst.tiers[-1]
    if pos.is_isolated:
        margin = isolated_margin(state, pos, inst)
    else:
        figures = cross_figures(state, pos.uid, inst.settle_ccy)
        margin = (figures.cash + figures.upl - position_upl(state, pos, inst)
                  - (figures.mm_plus_fee - position_mm_plus_fee(state, pos, inst)))
    px = calculate_liquidation_px(inst, pos.size_lots, pos.cost, margin, tier.mmr_ppm,
                                  tier.mm_deduction_units)
    if px is None:
        return None
    return max(1, int(px / inst.tick_sz))


_MAX_SEARCH_TICKS = 10**15


def _bisect_trigger(fires, long: bool, mark: int, estimate: int | None) -> int | None:
    """The boundary of ``fires`` over ticks: a long's highest firing tick, a short's lowest."""
    if long:
        if not fires(1):
            return None
        hi = max(mark, estimate or 1) * 2 + 2
        if fires(hi):
            return None
        lo = 1  # fires(lo), not fires(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fires(mid) else (lo, mid)
        return lo
    hi = max(mark, estimate or 1) * 2 + 2
    while not fires(hi):
        if hi > _MAX_SEARCH_TICKS:
            return None
        hi *= 4
    if fires(1):
        return None
    lo = 1  # not fires(lo), fires(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fires(mid) else (mid, hi)
    return hi


def adl_indicator(state: ExchangeState, pos: Position) -> int:
    """OKX's ``adl`` field, 0–5: the quintile the last risk pass ranked the position in, and
    0 whenever it is not in profit at the mark now (such a position is never deleveraged)."""
    if pos.size_lots == 0 or position_upl(state, pos, instrument_of(state, pos)) <= 0:
        return 0
    return state.adl_rank.get(pos.key, 0)


@dataclass(frozen=True, slots=True)
class PositionFigures:
    """One open position's figures as the API, the dashboard and the lab show them.

    Money in 1e-8 units of ``ccy``; prices in ticks (``avg_px`` and ``break_even_px`` are
    exact decimal prices). ``margin`` is an isolated position's margin (0 for cross), ``im``
    a cross position's IM at the mark (0 for isolated); ``unit_equity`` and
    ``unit_requirement`` (MM + fee) are the unit's: the isolated position's, or the whole
    cross account's in ``ccy``.
    """

    uid: int
    inst_id: str
    mgn_mode: MarginMode
    ccy: str
    size_lots: int
    avg_px: Decimal
    mark_ticks: int
    index_ticks: int
    upl: int
    mm: int
    notional: int
    lever_cents: int
    margin: int
    im: int
    unit_equity: int
    unit_requirement: int
    liq_ticks: int | None
    break_even_px: Decimal | None
    adl: int
    realized_pnl: int
    fees_paid: int
    funding_paid: int
    liq_penalty: int
    open_ts: int

    @property
    def margin_ratio(self) -> Decimal | None:
        return margin_ratio(self.unit_equity, self.unit_requirement)


def position_figures(state: ExchangeState, pos: Position) -> PositionFigures:
    """Every displayed figure of one open position, from the engine's own definitions."""
    inst = instrument_of(state, pos)
    mark = state.mark_ticks[inst.inst_id]
    equity, requirement = unit_equity_and_requirement(state, pos)
    return PositionFigures(
        uid=pos.uid, inst_id=pos.inst_id, mgn_mode=pos.mgn_mode, ccy=inst.settle_ccy,
        size_lots=pos.size_lots, avg_px=avg_px(inst, pos), mark_ticks=mark,
        index_ticks=state.index_ticks[inst.inst_id], upl=position_upl(state, pos, inst),
        mm=position_mm(state, pos, inst), notional=calculate_notional(inst, pos.size_lots, mark),
        lever_cents=lever_cents(state, pos.uid, inst, pos.mgn_mode),
        margin=isolated_margin(state, pos, inst) if pos.is_isolated else 0,
        im=0 if pos.is_isolated else position_im(state, pos, inst),
        unit_equity=equity, unit_requirement=requirement, liq_ticks=liquidation_ticks(state, pos),
        break_even_px=break_even_px(inst, pos), adl=adl_indicator(state, pos),
        realized_pnl=pos.realized_pnl, fees_paid=pos.fees_paid, funding_paid=pos.funding_paid,
        liq_penalty=pos.liq_penalty, open_ts=pos.open_ts)


def open_positions(state: ExchangeState, uid: int) -> list[Position]:
    """The account's open positions, in key order."""
    return sorted((p for p in state.account_positions.get(uid, {}).values() if p.size_lots),
                  key=lambda p: p.key)


def max_order_lots(state: ExchangeState, uid: int, inst: Instrument, mode: MarginMode, side: int,
                   px_ticks: int, lever: int | None = None) -> int:
    """OKX ``max-size`` for one side: the largest order (lots) the engine's margin check
    accepts at ``px_ticks`` and ``lever`` (the account's when ``None``): it closes the
    opposite position, then opens what the account's money pays for, IM and taker fee each
    rounded up and the size rounded down. A cross position opens on the available equity; an
    isolated one moves its IM out of spendable cash."""
    cents = lever if lever is not None else lever_cents(state, uid, inst, mode)
    figures = cross_figures(state, uid, inst.settle_ccy)
    money = max(0, figures.available) if mode is MarginMode.CROSS else figures.spendable
    pos = state.existing_position(uid, inst.inst_id, mode)
    position_lots = pos.size_lots if pos is not None else 0
    closing = abs(position_lots) if position_lots * side < 0 else 0
    return closing + calculate_max_open_lots(inst, money, px_ticks, cents, inst.taker_fee_ppm)


def conservation_audit(state: ExchangeState) -> list[ConservationReport]:
    """The exact conservation report per currency (``admin audit``, the lab's summary)."""
    return conservation_reports(state)


def account_currencies(state: ExchangeState, uid: int) -> list[str]:
    """Currencies the account holds cash, reserved money, margin or positions in, sorted."""
    owner, prefix = str(uid), f"{uid}/"
    found = {ccy for (kind, key_owner, ccy), value in state.ledger.balances.items()
             if value and ((kind in ("cash", "reserved") and key_owner == owner)
                           or (kind == "isolated" and key_owner.startswith(prefix)))}
    found.update(instrument_of(state, p).settle_ccy for p in state.account_positions.get(uid, {}).values())
    return sorted(found)


def isolated_totals(state: ExchangeState, uid: int, ccy: str) -> tuple[int, int]:
    """``(margin, equity)`` summed over the account's isolated positions in ``ccy``."""
    margin = equity = 0
    for pos in open_positions(state, uid):
        inst = instrument_of(state, pos)
        if pos.is_isolated and inst.settle_ccy == ccy:
            margin += isolated_margin(state, pos, inst)
            equity += isolated_equity(state, pos, inst)
    return margin, equity
