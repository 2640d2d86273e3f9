"""A seeded population of simulated traders for the live market (``backstop serve``).

Two kinds of agent turn the engine's state into commands; the market driver
(:mod:`backstop.market`) submits them through the same service as API clients, so every
one is logged and replays:

- :class:`Maker`: one per active instrument; keeps a ladder of limit orders around the index
  (cancelled and re-placed each tick), with deep pockets and low leverage, and stops quoting
  the side that would grow its inventory past a cap.
- :class:`Taker`: a leveraged trader (cross or isolated, 2–100×, long-skewed) who opens with
  market orders, sometimes closes, is liquidated in a crash, and then re-deposits or retires
  (a new trader takes its seat).

Every decision reads the engine's state and draws from one ``random.Random``, so the same seed
and the same command history give the same commands. Sizes are exact decimals (contracts);
money read from the state is in 1e-8 units of the settlement currency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from backstop.engine.queries import cross_figures, lever_cents
from backstop.math.margin import calculate_max_open_lots
from backstop.model.commands import CancelOrder, Command, Deposit, PlaceOrder, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.instrument import Instrument
from backstop.numeric import money_from_decimal
from backstop.state.exchange_state import ExchangeState
from backstop.state.positions import Position

LEVERAGES = (2, 3, 5, 10, 20, 25, 50, 75, 100)
LEVERAGE_WEIGHTS = (3, 3, 6, 10, 12, 8, 10, 6, 8)
"""Taker leverage choices (×) and their relative weights: most traders run 10–50×."""
LONG_SHARE = 0.7
"""Share of new positions that are long (retail skew)."""
MAKER_LEVER = Decimal(5)
MAKER_LEVELS = 5
MAKER_HALF_SPREAD = 0.0002
"""Distance of the first level from the index (2 bp)."""
MAKER_LEVEL_STEP = 0.0008
"""Extra distance per further level (8 bp)."""
MAKER_LEVEL_USD = {"BTC": 150_000.0, "ETH": 80_000.0}
"""Quote value per ladder level in USD by coin; others use :data:`MAKER_LEVEL_USD_DEFAULT`."""
MAKER_LEVEL_USD_DEFAULT = 30_000.0
MAKER_INVENTORY_LEVELS = 8
"""A maker stops adding to a position worth more than this many ladder levels."""
MAKER_CAPITAL = {"USDT": Decimal("50000000"), "BTC": Decimal("500"), "ETH": Decimal("20000")}
"""Maker deposits per settlement currency."""
TAKER_CAPITAL_USD = (300.0, 20_000.0)
"""Range of a taker's starting capital in USD (log-uniform)."""


@dataclass(slots=True)
class Maker:
    """A quoting account for one instrument."""

    uid: int
    inst_id: str


@dataclass(slots=True)
class Taker:
    """A leveraged trader. ``capital`` is its (re-)deposit in the settlement currency."""

    uid: int
    inst_id: str
    mgn_mode: MarginMode
    lever: Decimal
    capital: Decimal
    retired: bool = False


def maker_deposits(inst: Instrument) -> dict[str, Decimal]:
    """A maker's starting deposit (its settlement currency only)."""
    return {inst.settle_ccy: MAKER_CAPITAL.get(inst.settle_ccy, Decimal("1000000"))}


def maker_setup(maker: Maker, ts: int = 0) -> list[Command]:
    return [SetLeverage(ts, maker.uid, maker.inst_id, MarginMode.CROSS, MAKER_LEVER)]


def coin_of(inst: Instrument) -> str:
    return inst.inst_family.split("-", 1)[0]


def contracts_for_usd(inst: Instrument, usd: float, px: float) -> Decimal:
    """Contracts worth about ``usd`` at ``px`` (quote per coin), rounded down to the lot,
    at least the minimum size."""
    per_contract = float(inst.ct_val) * (px if inst.is_linear else 1.0)
    raw = Decimal(repr(max(usd / per_contract, 0.0)))
    lots = (raw / inst.lot_sz).to_integral_value(rounding=ROUND_DOWN)
    return max(inst.min_sz, lots * inst.lot_sz)


def quote_price(inst: Instrument, index: float, offset: float) -> Decimal:
    """``index·(1 + offset)`` on the tick grid (bids round down, asks up), at least one tick."""
    raw = Decimal(repr(index * (1.0 + offset))) / inst.tick_sz
    ticks = raw.to_integral_value(rounding=ROUND_FLOOR if offset < 0 else ROUND_CEILING)
    return max(Decimal(1), ticks) * inst.tick_sz


def maker_requote(state: ExchangeState, maker: Maker, inst: Instrument, index: float,
                  ts: int = 0) -> list[Command]:
    """Cancel the maker's open orders and place a fresh ladder around ``index``."""
    orders = state.open_orders.get(maker.uid, {})
    commands: list[Command] = [CancelOrder(ts, maker.uid, maker.inst_id, ord_id)
                               for ord_id in sorted(orders)]
    size = contracts_for_usd(inst, MAKER_LEVEL_USD.get(coin_of(inst), MAKER_LEVEL_USD_DEFAULT), index)
    held = _maker_inventory_lots(state, maker)
    cap_lots = inst.sz_to_lots(size) * MAKER_INVENTORY_LEVELS
    for level in range(MAKER_LEVELS):
        offset = MAKER_HALF_SPREAD + level * MAKER_LEVEL_STEP
        for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
            if -sign * held >= cap_lots:  # buying grows a long, selling a short
                continue
            commands.append(PlaceOrder(ts, maker.uid, maker.inst_id, side, OrderType.LIMIT, size,
                                       quote_price(inst, index, sign * offset)))
    return commands


def _maker_inventory_lots(state: ExchangeState, maker: Maker) -> int:
    pos = state.existing_position(maker.uid, maker.inst_id, MarginMode.CROSS)
    return pos.size_lots if pos is not None else 0


def new_taker(rng: random.Random, uid: int, inst: Instrument, index_usd: float) -> Taker:
    """Draw a trader for ``inst``: margin mode, leverage (capped at the instrument's), and a
    log-uniform capital in the settlement currency (``index_usd`` converts for inverse)."""
    mode = MarginMode.ISOLATED if rng.random() < 0.4 else MarginMode.CROSS
    lever = min(Decimal(rng.choices(LEVERAGES, LEVERAGE_WEIGHTS)[0]), inst.max_lever)
    low, high = TAKER_CAPITAL_USD
    usd = low * (high / low) ** rng.random()
    if inst.is_linear:
        capital = Decimal(int(usd))
    else:
        capital = (Decimal(repr(usd / index_usd))).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    return Taker(uid, inst.inst_id, mode, lever, max(capital, Decimal("0.0001")))


def taker_setup(taker: Taker, ts: int = 0) -> list[Command]:
    return [SetLeverage(ts, taker.uid, taker.inst_id, taker.mgn_mode, taker.lever)]


def taker_position(state: ExchangeState, taker: Taker) -> Position | None:
    pos = state.existing_position(taker.uid, taker.inst_id, taker.mgn_mode)
    return pos if pos is not None and pos.size_lots else None


def taker_equity(state: ExchangeState, taker: Taker, inst: Instrument) -> int:
    """Cross equity in the settlement currency (1e-8 units), isolated margin included only
    while a position is open (it is cash again once closed)."""
    return cross_figures(state, taker.uid, inst.settle_ccy).equity


def taker_act(state: ExchangeState, rng: random.Random, taker: Taker, inst: Instrument,
              ts: int = 0) -> list[Command]:
    """One decision: close or hold an open position; open one when flat; re-deposit or retire
    when a liquidation has taken most of the capital."""
    pos = taker_position(state, taker)
    if pos is not None:
        if rng.random() < 0.15:
            side = Side.SELL if pos.size_lots > 0 else Side.BUY
            return [PlaceOrder(ts, taker.uid, taker.inst_id, side, OrderType.MARKET,
                               inst.lots_to_sz(abs(pos.size_lots)), td_mode=taker.mgn_mode,
                               reduce_only=True)]
        return []
    if taker_equity(state, taker, inst) * 5 < money_from_decimal(taker.capital):
        if rng.random() < 0.5:
            return [Deposit(ts, taker.uid, inst.settle_ccy, taker.capital)]
        taker.retired = True
        return []
    return _open(state, rng, taker, inst, ts)


def _open(state: ExchangeState, rng: random.Random, taker: Taker, inst: Instrument,
          ts: int) -> list[Command]:
    """A market order spending 30–95% of the available margin at the taker's leverage."""
    share = rng.uniform(0.3, 0.95)
    side = Side.BUY if rng.random() < LONG_SHARE else Side.SELL
    available = cross_figures(state, taker.uid, inst.settle_ccy).available
    spend = int(available * share)
    mark = state.mark_ticks[inst.inst_id]
    lots = calculate_max_open_lots(inst, spend, mark, lever_cents(state, taker.uid, inst, taker.mgn_mode),
                                   inst.taker_fee_ppm)
    lots = min(lots, inst.tiers[0].max_lots or lots)
    if lots < inst.min_lots:
        return []
    return [PlaceOrder(ts, taker.uid, taker.inst_id, side, OrderType.MARKET, inst.lots_to_sz(lots),
                       td_mode=taker.mgn_mode)]
