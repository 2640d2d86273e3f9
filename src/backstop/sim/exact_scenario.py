"""A reusable exact-engine scenario that the fast path can mirror exactly, on one price path.

The scenario (:func:`build_scenario`): an isolated-only population of linear BTC-USDT-SWAP
positions, all opened at the path's first close against one market maker, with sizes inside
tier 1 (mmr 0.004) and taker fee 0.0005. The fast path gets a :class:`Population` *read back
from the engine* (the exact entry price, lots and isolated margin), so both see the same
positions. :mod:`backstop.sim.agreement` compares the two; :mod:`backstop.sim.sweep` runs
policy settings through it.

How the engine is fed (:func:`run_engine`), to match the fast path's assumptions:

- index = the path rounded to the tick; mark smoothing 0, so mark = index;
- per bar: open, the exact liquidation prices of open longs between open and low (descending),
  the low, the shorts' between open and high (ascending), the high, then the close. That is
  the continuous path inside a bar the fast path assumes: a long whose liquidation price lies
  inside the bar fills at that price, one gapped through at the open;
- before every index update that screens as a liquidation, the maker's orders are replaced by
  a ladder centred on the new index whose cumulative depth follows the fast path's impact
  curve (:func:`ladder_levels`);
- the insurance fund is large enough that ADL never starts (unless a config says otherwise).

With feedback (``build_scenario(..., feedback=params)``, :func:`run_engine_with_feedback`) the
scenario mirrors the fast path with feedback (:mod:`backstop.sim.contagion`): the path is monitored
at each bar's close; per bar the outstanding forced flow decays, the index is the close times the
impact (:class:`backstop.sim.cascade.Cascade`, on the tick toward the close), and while it
reaches open accounts' liquidation prices the engine gets it, liquidates against a ladder that
follows the rule's power-law curve from the current impact (:func:`feedback_ladder_levels`), and
the flow moves the index for the next round at the same bar; the bar's observed close then updates
the realized volatility.

:func:`engine_liquidations` collects the engine's per-account outcome.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import numpy as np

from backstop.engine.config import EngineConfig, config_from_dict
from backstop.engine.exchange import Exchange
from backstop.engine.queries import isolated_margin
from backstop.math.margin import calculate_liquidation_px
from backstop.model import commands as c
from backstop.model.catalogue import Catalogue, catalogue_from_specs
from backstop.model.default_specs import DEFAULT_SPECS
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import AutoDeleveraged, Filled, LiquidationSettled, LiquidationStarted, Rejected
from backstop.numeric import MONEY_UNIT
from backstop.sim.cascade import Cascade, forced_flow_usdt
from backstop.sim.feedback import FeedbackParams
from backstop.sim.impact import BAND_FRACTIONS, DepthCurve
from backstop.sim.montecarlo import NEVER
from backstop.sim.paths import Ohlc
from backstop.sim.population import Population, PopulationSpec, generate_population
from backstop.state.invariants import (
    ensure_books_uncrossed,
    ensure_closed_positions_hold_no_margin,
    ensure_conservation,
    ensure_invariants,
    ensure_orders_consistent,
)

INST = "BTC-USDT-SWAP"
FAMILY = "BTC-USDT"
MAKER_UID = 1
FIRST_UID = 1000
BAR_MS = 60_000
TICK = Decimal("0.1")
BTC_PER_LOT = Decimal("0.0001")  # lotSz 0.01 contract × ctVal 0.01 BTC
# Tier 1 of BTC-USDT-SWAP ends at 1,000 contracts = 10 BTC; 500k USDT stays inside it below 50k/BTC.
TIER1_NOTIONAL_MAX_USDT = 400_000.0
BIG_FUND_USDT = Decimal("10000000000")
MAKER_CASH_USDT = Decimal("1000000000000")


def btc_catalogue(mmr_scale: Decimal = Decimal(1), taker_fee: Decimal | None = None) -> Catalogue:
    """A catalogue holding only BTC-USDT-SWAP, its tiers' mmr scaled by ``mmr_scale``.

    ``taker_fee`` (a fraction) also sets the liquidation fee, which the engine takes at the
    instrument's taker rate (``liquidation.fee_rate`` is not read by the engine).
    """
    spec = dict(next(s for s in DEFAULT_SPECS if s["instId"] == INST))
    if taker_fee is not None:
        spec["takerFee"] = str(taker_fee)
    ladder = dict(spec["ladder"])
    ladder["explicit"] = [(sz, str(Decimal(mmr) * mmr_scale), imr) for sz, mmr, imr in ladder["explicit"]]
    spec["ladder"] = ladder
    return catalogue_from_specs([spec])


def agreement_config(fund_usdt: Decimal = BIG_FUND_USDT, **sections: dict) -> EngineConfig:
    """Mark on the index (smoothing 0) and an initial fund; ``sections`` override more keys."""
    data: dict = {"mark": {"smoothing": "0"}, "insurance_fund": {"initial": {FAMILY: str(fund_usdt)}}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


FEEDBACK_BANDS = {"liquidation": {"price_band": "0.5"}, "price_limit": {"band": "0.5"}}
"""With feedback, a liquidation may walk the book up to 50 % from the mark (and the maker may quote
that far): the fast path fills along the whole curve, with no band."""


def agreement_spec(n_accounts: int) -> PopulationSpec:
    """Isolated only, sizes inside tier 1, everyone enters at step 0."""
    return PopulationSpec(n_accounts=n_accounts, isolated_share=1.0,
                          notional_max_usdt=TIER1_NOTIONAL_MAX_USDT, entry_window_steps=0)


def round_ohlc(ohlc: Ohlc) -> Ohlc:
    """Prices rounded to the 0.1 tick (half-even, as the engine rounds an index)."""
    return Ohlc(ohlc.time_ms, *(np.round(a * 10.0) / 10.0 for a in (ohlc.open, ohlc.high, ohlc.low,
                                                                     ohlc.close)))


def ohlc_from_prices(prices: np.ndarray) -> Ohlc:
    """Discretely monitored prices (n_times,) as flat bars: each bar is one price."""
    prices = np.asarray(prices, dtype=np.float64)
    return Ohlc(np.arange(prices.size, dtype=np.int64) * BAR_MS, prices, prices, prices, prices)


@dataclass
class Scenario:
    """An engine with the population opened, and the fast-path view of the same positions.

    ``uids[i]`` is account i's engine uid; ``liq_ticks[i]`` its exact liquidation price in
    ticks (floor for longs, ceiling for shorts); ``population`` is read back from the engine.
    ``invariants``: ``"all"`` (the engine checks every invariant after every command),
    ``"linear"`` (the O(state) ones after every command, all of them after every update that
    liquidates and at the end) or ``"none"``.
    """

    exchange: Exchange
    ohlc: Ohlc
    uids: list[int]
    population: Population
    liq_ticks: np.ndarray
    curve: DepthCurve | None
    invariants: str = "linear"
    ts: int = 0
    events: list = field(default_factory=list)
    cascade: Cascade | None = None
    observed_closes: list[int] = field(default_factory=list)
    """With feedback: each bar's close after the cascade's impact (ticks), from bar 1 on."""


def ensure_linear_invariants(state) -> None:
    """The engine's invariants that cost O(state): conservation, books, orders, closed margin.

    (``ensure_invariants`` adds a negative-equity check that is O(accounts × ledger keys).)
    """
    ensure_conservation(state)
    ensure_books_uncrossed(state)
    ensure_orders_consistent(state)
    ensure_closed_positions_hold_no_margin(state)


def _run(scenario: Scenario, command: c.Command, strict: bool = True) -> list:
    events = scenario.exchange.execute(command)
    if scenario.invariants == "linear":
        ensure_linear_invariants(scenario.exchange.state)
    if strict and any(isinstance(e, Rejected) for e in events):
        raise RuntimeError(f"engine refused {command}: {events}")
    scenario.events.extend(events)
    return events


def _open_account(sc: Scenario, uid: int, side: int, lots: int, lever: Decimal) -> None:
    """Deposit, set isolated leverage, and open ``lots`` against the maker at the index."""
    ex, ts = sc.exchange, sc.ts
    px = ex.catalogue.get(INST).ticks_to_px(ex.state.index_ticks[INST])
    notional = px * lots * BTC_PER_LOT
    _run(sc, c.Deposit(ts, uid, "USDT", (notional / lever * Decimal("1.02") + notional / 500 + 10)
                       .quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)))
    _run(sc, c.SetLeverage(ts, uid, INST, MarginMode.ISOLATED, lever))
    sz = Decimal(lots) / 100  # contracts: lotSz 0.01
    buy = Side.BUY if side > 0 else Side.SELL
    _run(sc, c.PlaceOrder(ts, MAKER_UID, INST, buy.opposite, OrderType.LIMIT, sz, px))
    _run(sc, c.PlaceOrder(ts, uid, INST, buy, OrderType.MARKET, sz, td_mode=MarginMode.ISOLATED))


def _read_back(sc: Scenario, leverage: np.ndarray) -> None:
    """Set ``population`` and ``liq_ticks`` from the engine's positions (exact values)."""
    ex = sc.exchange
    inst = ex.catalogue.get(INST)
    entry = float(inst.ticks_to_px(ex.state.index_ticks[INST]))
    side, notional, margin_frac, liq = [], [], [], []
    for uid in sc.uids:
        pos = ex.state.existing_position(uid, INST, MarginMode.ISOLATED)
        margin = isolated_margin(ex.state, pos, inst)
        lots = pos.size_lots
        side.append(1 if lots > 0 else -1)
        notional.append(abs(lots) * float(BTC_PER_LOT) * entry)
        margin_frac.append(margin * float(MONEY_UNIT) / notional[-1])
        px = calculate_liquidation_px(inst, lots, pos.cost, margin, inst.tiers[0].mmr_ppm)
        ticks = px / inst.tick_sz
        liq.append(int(ticks.to_integral_value(ROUND_FLOOR if lots > 0 else ROUND_CEILING)))
    n = len(sc.uids)
    sc.population = Population(
        side=np.array(side, dtype=np.int8), leverage=leverage, notional_usdt=np.array(notional),
        isolated=np.ones(n, dtype=bool), margin_frac=np.array(margin_frac),
        entry_step=np.zeros(n, dtype=np.int64), mmr=float(inst.tiers[0].mmr),
        taker_fee=float(inst.taker_fee))
    sc.liq_ticks = np.array(liq, dtype=np.int64)


def build_scenario(ohlc: Ohlc, n_accounts: int = 200, seed: int = 0, curve: DepthCurve | None = None,
                   config: EngineConfig | None = None, catalogue: Catalogue | None = None,
                   invariants: str = "linear", feedback: FeedbackParams | None = None) -> Scenario:
    """Open a seeded population at ``ohlc``'s first close (rounded to the tick) in a new engine;
    with ``feedback``, its cascade state starts calm at that close (the depth scaled to the
    population's gross notional)."""
    if invariants not in ("all", "linear", "none"):
        raise ValueError(f"invariants must be all, linear or none, got {invariants!r}")
    ohlc = round_ohlc(ohlc)
    if config is None:
        config = agreement_config(**FEEDBACK_BANDS) if feedback is not None else agreement_config()
    ex = Exchange(catalogue or btc_catalogue(), config, check_invariants=invariants == "all")
    sc = Scenario(ex, ohlc, [], None, np.zeros(0, dtype=np.int64), curve,  # type: ignore[arg-type]
                  invariants)
    _run(sc, c.SetIndexPrice(0, FAMILY, Decimal(repr(float(ohlc.close[0])))))
    _run(sc, c.Deposit(0, MAKER_UID, "USDT", MAKER_CASH_USDT))
    drawn = generate_population(agreement_spec(n_accounts), np.random.default_rng(seed))
    entry = float(ohlc.close[0])
    lots = np.maximum(1, np.round(drawn.notional_usdt / entry / float(BTC_PER_LOT))).astype(np.int64)
    lever = np.round(drawn.leverage, 2)
    for i in range(n_accounts):
        uid = FIRST_UID + i
        _open_account(sc, uid, int(drawn.side[i]), int(lots[i]), Decimal(repr(float(lever[i]))))
        sc.uids.append(uid)
    _read_back(sc, lever)
    if feedback is not None:
        sc.cascade = Cascade.for_population(feedback, float(sc.population.notional_usdt.sum()))
        sc.cascade.advance(0)
        sc.cascade.close_log = math.log(round(float(ohlc.close[0]) * 10))  # ticks, as the bars feed it
    if invariants == "linear":
        ensure_invariants(ex.state)
    return sc


# -- the market maker's ladder ---------------------------------------------------------------


def cumulative_depth_btc(curve: DepthCurve, fraction: np.ndarray, side: str) -> np.ndarray:
    """Inverse of :func:`impact_fraction`: BTC resting within ``fraction`` of mid (same
    interpolation through (0, 0), flat bands dropped, last slope extrapolated past 5 %)."""
    depth = curve.depth(side, "btc")  # type: ignore[arg-type]
    keep = np.r_[depth[:-1] < depth[1:], True]
    xs, ys = np.r_[0.0, BAND_FRACTIONS[keep]], np.r_[0.0, depth[keep]]
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    inside = np.interp(fraction, xs, ys)
    return np.where(fraction > xs[-1], ys[-1] + (fraction - xs[-1]) * slope, inside)


def ladder_offsets_ticks(max_ticks: int) -> list[int]:
    """Level offsets from the index in ticks: every tick to 16, then growing by 25 %."""
    offsets = list(range(1, 17))
    while offsets[-1] < max_ticks:
        offsets.append(int(offsets[-1] * 1.25) + 1)
    return offsets


def ladder_levels(curve: DepthCurve, index_ticks: int, side: str, need_lots: int) -> list[tuple[int, int]]:
    """``(price_ticks, lots)`` levels for closing orders on ``side`` ('sell' hits bids).

    Level j at offset o_j holds the curve's depth between o_{j-1} and o_j, so a fill's last
    lot is at most one level's spacing worse than the curve's marginal price. Stops once
    ``need_lots`` (plus 10 %) rest, or at the 3 % liquidation price band.
    """
    sign = -1 if side == "sell" else 1
    levels, placed = [], 0
    for offset in ladder_offsets_ticks(int(index_ticks * 0.029)):
        depth = float(cumulative_depth_btc(curve, np.array([offset / index_ticks]), side)[0])
        lots = round(depth / float(BTC_PER_LOT)) - placed
        if lots > 0:
            levels.append((index_ticks + sign * offset, lots))
            placed += lots
        if placed >= need_lots * 1.1 + 1:
            break
    return levels


def feedback_ladder_levels(cascade: Cascade, exogenous_ticks: int, index_ticks: int, side: str,
                           need_lots: int, max_fraction: float = 0.029) -> list[tuple[int, int]]:
    """``(price_ticks, lots)`` levels for closing orders on ``side`` when the book follows the
    feedback rule: between the index (impact ``I0``) and a level at impact ``I`` rest
    ``|flow_for_impact(I0) − flow_for_impact(I)|`` USD, so walking the ladder moves the fill
    price along the rule's power-law curve. Offsets as :func:`ladder_levels`, up to
    ``max_fraction`` of the index, until ``need_lots`` plus 10 % rest."""
    sign = -1 if side == "sell" else 1
    start = cascade.flow_for_impact(cascade.impact)
    levels, placed, btc, last_usd = [], 0, 0.0, 0.0
    inner = 0
    for offset in ladder_offsets_ticks(int(index_ticks * max_fraction)):
        usd = abs(cascade.flow_for_impact(math.log((index_ticks + sign * offset) / exogenous_ticks)) - start)
        px = index_ticks + sign * (inner + offset + 1) // 2  # the interval's middle: the curve's mean
        btc += (usd - last_usd) / (px * float(TICK))
        last_usd, inner = usd, offset
        lots = round(btc / float(BTC_PER_LOT)) - placed
        if lots > 0:
            levels.append((px, lots))
            placed += lots
        if placed >= need_lots * 1.1 + 1:
            break
    return levels


def _flat_levels(index_ticks: int, side: str, need_lots: int) -> list[tuple[int, int]]:
    """Without a curve: everything one tick from the index (no impact)."""
    return [(index_ticks + (-1 if side == "sell" else 1), int(need_lots * 1.1) + 1)]


def _refresh_ladder(sc: Scenario, index_ticks: int, long_lots: int, short_lots: int,
                    exogenous_ticks: int = 0) -> None:
    """Cancel the maker's orders; rest bids for ``long_lots`` and asks for ``short_lots`` (with
    feedback: on the rule's curve round the impact from ``exogenous_ticks``)."""
    ex = sc.exchange
    for ord_id in sorted(ex.state.open_orders.get(MAKER_UID, {})):
        _run(sc, c.CancelOrder(sc.ts, MAKER_UID, INST, ord_id))
    for side, need in (("sell", long_lots), ("buy", short_lots)):
        if need <= 0:
            continue
        if sc.cascade is not None:
            reach = float(sc.exchange.config.liquidation.price_band) * 0.97
            levels = feedback_ladder_levels(sc.cascade, exogenous_ticks, index_ticks, side, need, reach)
        elif sc.curve is not None:
            levels = ladder_levels(sc.curve, index_ticks, side, need)
        else:
            levels = _flat_levels(index_ticks, side, need)
        maker_side = Side.BUY if side == "sell" else Side.SELL
        for px_ticks, lots in levels:
            _run(sc, c.PlaceOrder(sc.ts, MAKER_UID, INST, maker_side, OrderType.LIMIT,
                                  Decimal(lots) / 100, TICK * px_ticks))


# -- feeding the path ------------------------------------------------------------------------


def bar_updates(o: int, h: int, low: int, close: int, long_liq: np.ndarray,
                short_liq: np.ndarray) -> Iterator[int]:
    """Index ticks inside one bar: open, longs' liquidation prices down to the low, the low,
    shorts' up to the high, the high, the close (consecutive repeats dropped)."""
    down = np.unique(long_liq[(long_liq < o) & (long_liq > low)])[::-1]
    up = np.unique(short_liq[(short_liq > o) & (short_liq < h)])
    last = None
    for px in (o, *down.tolist(), low, *up.tolist(), h, close):
        if px != last:
            yield int(px)
            last = px


def _refresh_threshold(sc: Scenario, i: int, open_: np.ndarray) -> None:
    """Re-read account ``i``'s liquidation price after ADL cut its position (or closed it)."""
    ex = sc.exchange
    inst = ex.catalogue.get(INST)
    pos = ex.state.existing_position(sc.uids[i], INST, MarginMode.ISOLATED)
    if pos is None or pos.size_lots == 0:
        open_[i] = False
        return
    margin = isolated_margin(ex.state, pos, inst)
    px = calculate_liquidation_px(inst, pos.size_lots, pos.cost, margin, inst.tiers[0].mmr_ppm)
    if px is None:
        open_[i] = False
        return
    sc.liq_ticks[i] = int((px / inst.tick_sz).to_integral_value(
        ROUND_FLOOR if pos.size_lots > 0 else ROUND_CEILING))


SCREEN_MARGIN = 0.001  # skip index updates farther than 0.1 % from every open threshold


def is_near_threshold(px: int, long_liq: np.ndarray, short_liq: np.ndarray) -> bool:
    """Could an index of ``px`` ticks liquidate anyone? True within :data:`SCREEN_MARGIN`."""
    pad = px * SCREEN_MARGIN
    return bool((long_liq >= px - pad).any() or (short_liq <= px + pad).any())


def run_engine(sc: Scenario) -> None:
    """Feed the whole path to the engine (see the module docstring).

    Updates farther than :data:`SCREEN_MARGIN` from every open account's exact liquidation
    price are skipped: they cannot liquidate anyone (the margin is ~1,000 ticks), and with
    mark smoothing 0 and no funding they move no money.
    """
    bars = [np.rint(a * 10).astype(np.int64) for a in (sc.ohlc.open, sc.ohlc.high, sc.ohlc.low,
                                                        sc.ohlc.close)]
    pop, liq = sc.population, sc.liq_ticks
    is_long = pop.side > 0
    lots = np.rint(pop.notional_usdt / sc.ohlc.close[0] / float(BTC_PER_LOT)).astype(np.int64)
    open_ = np.ones(pop.size, dtype=bool)
    uid_index = {uid: i for i, uid in enumerate(sc.uids)}
    for k in range(1, sc.ohlc.close.size):
        long_liq, short_liq = liq[open_ & is_long], liq[open_ & ~is_long]
        o, h, low, close = (int(b[k]) for b in bars)
        for sub, px in enumerate(bar_updates(o, h, low, close, long_liq, short_liq)):
            if not is_near_threshold(px, liq[open_ & is_long], liq[open_ & ~is_long]):
                continue
            sc.ts = k * BAR_MS + sub
            hit_long = open_ & is_long & (liq >= px - 1)
            hit_short = open_ & ~is_long & (liq <= px + 1)
            if hit_long.any() or hit_short.any():
                _refresh_ladder(sc, px, int(lots[hit_long].sum()), int(lots[hit_short].sum()))
            events = _run(sc, c.SetIndexPrice(sc.ts, FAMILY, TICK * px))
            _mark_closed(sc, events, uid_index, open_)
    if sc.invariants != "none":
        ensure_invariants(sc.exchange.state)


MAX_CASCADE_ROUNDS = 10_000
"""A guard on index updates per bar while a cascade feeds itself (each round liquidates someone)."""


def run_engine_with_feedback(sc: Scenario) -> None:
    """Feed the bars' closes with the cascade's impact (see the module docstring)."""
    cascade = sc.cascade
    if cascade is None:
        raise ValueError("run_engine_with_feedback needs a scenario built with feedback")
    closes = np.rint(sc.ohlc.close * 10).astype(np.int64)
    pop, liq = sc.population, sc.liq_ticks
    is_long = pop.side > 0
    lots = np.rint(pop.notional_usdt / sc.ohlc.close[0] / float(BTC_PER_LOT)).astype(np.int64)
    open_ = np.ones(pop.size, dtype=bool)
    uid_index = {uid: i for i, uid in enumerate(sc.uids)}

    def side_of(uid: int) -> int:
        return int(pop.side[uid_index[uid]]) if uid in uid_index else 0

    for k in range(1, closes.size):
        cascade.advance(k * BAR_MS)
        for sub in range(MAX_CASCADE_ROUNDS):
            px = cascade.observed_ticks(int(closes[k]))
            hit_long = open_ & is_long & (liq >= px - 1)
            hit_short = open_ & ~is_long & (liq <= px + 1)
            if not (hit_long.any() or hit_short.any()):
                break
            sc.ts = k * BAR_MS + sub
            _refresh_ladder(sc, px, int(lots[hit_long].sum()), int(lots[hit_short].sum()), int(closes[k]))
            events = _run(sc, c.SetIndexPrice(sc.ts, FAMILY, TICK * px))
            _mark_closed(sc, events, uid_index, open_)
            flow = forced_flow_usdt(events, INST, float(BTC_PER_LOT * TICK), side_of)
            if not flow:
                break
            cascade.absorb(flow)
        cascade.close_bar(float(closes[k]) * math.exp(cascade.impact), BAR_MS / 1000.0)
        sc.observed_closes.append(cascade.observed_ticks(int(closes[k])))
    if sc.invariants != "none":
        ensure_invariants(sc.exchange.state)


def _mark_closed(sc: Scenario, events: list, uid_index: dict[int, int], open_: np.ndarray) -> None:
    """Close settled accounts in ``open_``; re-read the thresholds of those ADL cut."""
    settled = [e.uid for e in events if isinstance(e, LiquidationSettled)]
    for uid in settled:
        if uid in uid_index:
            open_[uid_index[uid]] = False
    for e in events:
        if isinstance(e, AutoDeleveraged) and e.uid in uid_index:
            _refresh_threshold(sc, uid_index[e.uid], open_)
    if settled and sc.invariants == "linear":
        ensure_invariants(sc.exchange.state)


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineLiquidations:
    """The engine's per-account outcome, arrays (N,) like :class:`PathLiquidations`:
    ``step`` (-1 never), ``fill_price`` (VWAP, USDT/BTC), ``fund_flow_usdt`` (to_fund −
    from_fund), ``fee_usdt``, and the fund balance (USDT) at the end."""

    step: np.ndarray
    fill_price: np.ndarray
    fund_flow_usdt: np.ndarray
    fee_usdt: np.ndarray
    fund_end_usdt: float


def engine_liquidations(sc: Scenario) -> EngineLiquidations:
    """Collect per-account results from the scenario's events."""
    n = len(sc.uids)
    index = {uid: i for i, uid in enumerate(sc.uids)}
    step = np.full(n, NEVER, dtype=np.int64)
    flow, fee = np.zeros(n), np.zeros(n)
    value, qty = np.zeros(n), np.zeros(n)
    for e in sc.events:
        i = index.get(getattr(e, "uid", getattr(e, "taker_uid", -1)), -1)
        if isinstance(e, LiquidationStarted) and i >= 0 and step[i] == NEVER:
            step[i] = e.ts // BAR_MS
        elif isinstance(e, LiquidationSettled) and i >= 0:
            flow[i] += (e.to_fund - e.from_fund) * float(MONEY_UNIT)
            fee[i] += e.fee * float(MONEY_UNIT)
        elif isinstance(e, Filled) and e.category != "normal" and index.get(e.taker_uid, -1) >= 0:
            j = index[e.taker_uid]
            value[j] += e.px_ticks * 0.1 * e.lots
            qty[j] += e.lots
    fill = np.where(qty > 0, value / np.where(qty > 0, qty, 1), np.nan)
    balance = sc.exchange.state.ledger.balance(("fund", f"SWAP:{FAMILY}", "USDT"))
    return EngineLiquidations(step, fill, flow, fee, balance * float(MONEY_UNIT))
