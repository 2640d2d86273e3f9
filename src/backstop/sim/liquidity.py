"""A market maker's ladder whose depth follows the real book-depth curves, scaled down.

Impact model (used by ``backstop stress``, through the exact engine):

- The depth curves of :mod:`backstop.sim.impact` give the cumulative depth (BTC) a market
  order meets within 1, 2, 3, 4 and 5 % of mid on each side, from Binance's ``bookDepth``.
  Between bands the curve is linear through ``(0, 0)``, as in :func:`impact_fraction`.
- Each step, before the index moves, the maker cancels its quotes and posts one limit order
  per offset in :data:`LADDER_OFFSETS` (0.1 % .. 5 % of the new index) on each side. The order
  at offset ``f_k`` holds the curve's depth between ``f_{k-1}`` and ``f_k``, times ``scale``.
  A liquidation order then walks these levels in the engine's book, so its fill price moves
  with its size the way the real book would have moved it. Nothing rests beyond 5 %: the
  data says nothing past it, and the engine's liquidation band (3 % by default) stops a
  liquidation order before it anyway; what the book cannot take goes down the waterfall.
- **Scaling.** A population of N synthetic accounts is much smaller than the market, so the
  depth is scaled by ``scale = population gross notional (BTC) / REFERENCE_OPEN_INTEREST_BTC``:
  the ladder stands to the population as the real book stood to the whole market's open
  interest. ``REFERENCE_OPEN_INTEREST_BTC`` is an assumption (order of magnitude of Binance
  BTCUSDT-perp open interest in October 2025, about 90,000 BTC); ``liquidity_multiplier``
  in the scenario spec scales it further for what-ifs.
- On a replay whose times fall inside the depth file, the curve is the latest real snapshot
  at that time (the 2025-10-10 crash had almost no bids within 2 % from 19:15 UTC on);
  elsewhere it is the day's median curve.

Floats here only size the maker's quotes; every fill and settlement is exact in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from backstop.model.commands import CancelOrder, Command, PlaceOrder
from backstop.model.enums import OrderType, Side
from backstop.model.instrument import Instrument
from backstop.sim.impact import BAND_FRACTIONS, DAY_MEDIAN_CURVE, DepthBook, DepthCurve
from backstop.state.exchange_state import ExchangeState

REFERENCE_OPEN_INTEREST_BTC = 90_000.0
"""Assumed whole-market open interest (BTC) that the real depth curves stand against."""

SNAPSHOT_VALID_MS = 3_600_000
"""How long after a depth file's last snapshot it still stands for the book (1 h)."""

LADDER_OFFSETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05)
"""Quote offsets from the index (fractions), one order per offset per side."""


@dataclass(frozen=True)
class DepthSource:
    """Where the curve for a time comes from: a real depth file, else a fixed curve."""

    book: DepthBook | None = None
    fallback: DepthCurve = DAY_MEDIAN_CURVE

    def covers(self, start_ms: int, end_ms: int) -> bool:
        """Whether the file's snapshots (each good for up to :data:`SNAPSHOT_VALID_MS` after the
        last) reach into ``[start_ms, end_ms]``."""
        return self.book is not None and self.book.time_ms[0] <= end_ms \
            and start_ms <= self.book.time_ms[-1] + SNAPSHOT_VALID_MS

    def curve_at(self, t_ms: int) -> DepthCurve:
        """The real snapshot at ``t_ms`` (epoch ms) when the file covers it, else the fallback."""
        if self.covers(t_ms, t_ms):
            return self.book.curve_at(t_ms)  # type: ignore[union-attr]
        return self.fallback


def cumulative_btc(curve_btc: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Cumulative depth (BTC) at each offset (fraction of mid), linear through (0, 0)."""
    return np.interp(offsets, np.r_[0.0, BAND_FRACTIONS], np.r_[0.0, curve_btc])


def level_sizes_lots(curve: DepthCurve, scale: float, inst: Instrument) -> dict[str, list[int]]:
    """Lots per ladder level for each side (``buy`` = bids, ``sell`` = asks), scaled."""
    offsets = np.array(LADDER_OFFSETS)
    btc_per_lot = float(inst.ct_val * inst.lot_sz)
    out = {}
    for side, depth in (("buy", curve.bid_btc), ("sell", curve.ask_btc)):
        cum = cumulative_btc(np.maximum.accumulate(depth), offsets) * scale
        increments = np.diff(np.r_[0.0, cum])
        out[side] = [int(x) for x in np.floor(increments / btc_per_lot)]
    return out


class Maker:
    """The liquidity provider: one account that requotes the whole ladder every step."""

    def __init__(self, uid: int, inst: Instrument, depth: DepthSource, scale: float) -> None:
        self.uid = uid
        self.inst = inst
        self.depth = depth
        self.scale = scale

    def requote(self, state: ExchangeState, index_px: Decimal, ts: int, share: float = 1.0) -> list[Command]:
        """Commands that cancel the maker's open orders and post a fresh ladder round ``index_px``,
        ``share`` of its depth resting (makers withdraw under stress, :mod:`backstop.sim.cascade`)."""
        commands: list[Command] = [CancelOrder(ts, self.uid, self.inst.inst_id, ord_id)
                                   for ord_id in sorted(state.open_orders.get(self.uid, {}))]
        sizes = level_sizes_lots(self.depth.curve_at(ts), self.scale * share, self.inst)
        for offset, bid_lots, ask_lots in zip(LADDER_OFFSETS, sizes["buy"], sizes["sell"], strict=True):
            step = (index_px * Decimal(str(offset))).quantize(self.inst.tick_sz, rounding=ROUND_HALF_EVEN)
            for side, lots, px in ((Side.BUY, bid_lots, index_px - step),
                                   (Side.SELL, ask_lots, index_px + step)):
                if lots > 0 and px > 0:
                    commands.append(PlaceOrder(ts, self.uid, self.inst.inst_id, side, OrderType.LIMIT,
                                               self.inst.lots_to_sz(lots), px))
        return commands
