"""OKX views of public market history: candles, trades, open interest, funding-rate history
and price limits. Built from :class:`~backstop.api.market_history.MarketHistory`; prices from
ticks, sizes from lots; every number is a string."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from backstop.api.market_history import BARS, BarSpec, Candle, CandleSeries, MarketHistory, PublicTrade
from backstop.api.market_views import base_volume
from backstop.api.wire import OkxError, ms, px_str, sz_str
from backstop.engine import queries
from backstop.engine.exchange import Exchange
from backstop.model.instrument import Instrument
from backstop.numeric import fmt_decimal

T = TypeVar("T")


def bar_param(text: str) -> BarSpec:
    """OKX ``bar`` (default ``1m``; 51000 when unknown)."""
    spec = BARS.get(text or "1m")
    if spec is None:
        raise OkxError("51000", "Parameter bar error")
    return spec


def page(items: Sequence[T], key: Callable[[T], int], after: int | None, before: int | None,
         limit: int) -> list[T]:
    """OKX cursor paging over ``items`` (oldest first) by a rising ``key``: ``after`` keeps
    older records (key < after), ``before`` newer ones (key > before). Newest first; with
    ``before`` alone, the ones just after the cursor (so paging forward misses nothing)."""
    chosen = [x for x in items if (after is None or key(x) < after) and (before is None or key(x) > before)]
    picked = chosen[:limit] if before is not None and after is None else chosen[-limit:]
    return picked[::-1]


def _candle_bars(series: CandleSeries | None, spec: BarSpec) -> list[Candle]:
    return series.bars(spec) if series is not None else []


def trade_candle_views(history: MarketHistory, inst: Instrument, spec: BarSpec, after: int | None,
                       before: int | None, limit: int, now: int) -> list[list[str]]:
    """``market/candles`` rows ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``: vol in
    contracts, volCcy in the base currency, volCcyQuote in the quote currency."""
    rows = page(_candle_bars(history.trade_candles.get(inst.inst_id), spec), lambda c: c.start, after,
                before, limit)
    return [[ms(c.start), *_ohlc(inst, c), sz_str(inst, c.lots),
             fmt_decimal(base_volume(inst, c.lots, c.value)), fmt_decimal(_quote_volume(inst, c)),
             _confirm(spec, c, now)] for c in rows]


def price_candle_views(series: CandleSeries | None, inst: Instrument, spec: BarSpec, after: int | None,
                       before: int | None, limit: int, now: int) -> list[list[str]]:
    """``mark-price-candles`` and ``index-candles`` rows ``[ts, o, h, l, c, confirm]``."""
    rows = page(_candle_bars(series, spec), lambda c: c.start, after, before, limit)
    return [[ms(c.start), *_ohlc(inst, c), _confirm(spec, c, now)] for c in rows]


def latest_trade_candle(history: MarketHistory, inst: Instrument, spec: BarSpec, now: int) -> list[list[str]]:
    """The bar in progress (or the last one), as ``market/candles`` shows it; empty without
    trades."""
    series = history.trade_candles.get(inst.inst_id)
    c = series.latest(spec) if series is not None else None
    return [] if c is None else [[ms(c.start), *_ohlc(inst, c), sz_str(inst, c.lots),
                                  fmt_decimal(base_volume(inst, c.lots, c.value)),
                                  fmt_decimal(_quote_volume(inst, c)), _confirm(spec, c, now)]]


def latest_price_candle(series: CandleSeries | None, inst: Instrument, spec: BarSpec,
                        now: int) -> list[list[str]]:
    """The mark or index bar in progress (or the last one); empty before any price."""
    c = series.latest(spec) if series is not None else None
    return [] if c is None else [[ms(c.start), *_ohlc(inst, c), _confirm(spec, c, now)]]


def _ohlc(inst: Instrument, c: Candle) -> list[str]:
    return [px_str(inst, c.open), px_str(inst, c.high), px_str(inst, c.low), px_str(inst, c.close)]


def _confirm(spec: BarSpec, c: Candle, now: int) -> str:
    """``1`` once the bar has closed."""
    return "1" if spec.end(c.start) <= now else "0"


def _quote_volume(inst: Instrument, c: Candle) -> Decimal:
    """Linear: Σ ctVal·contracts·px; inverse: ctVal·contracts (the quote is the contract's
    currency)."""
    contracts = inst.lots_to_sz(c.lots)
    if not inst.is_linear:
        return contracts * inst.ct_val
    return inst.lots_to_sz(1) * inst.ct_val * inst.ticks_to_px(c.value)


def trade_views(inst: Instrument, trades: Iterable[PublicTrade]) -> list[dict[str, Any]]:
    """``market/trades`` rows."""
    return [{"instId": inst.inst_id, "side": t.side, "sz": sz_str(inst, t.lots),
             "px": px_str(inst, t.px_ticks), "source": "0", "tradeId": str(t.trade_id), "ts": ms(t.ts)}
            for t in trades]


def open_interest_view(exchange: Exchange, history: MarketHistory, inst: Instrument,
                       now: int) -> dict[str, Any]:
    """``public/open-interest``: long contracts (= short contracts), in coin and in USD at
    the mark (the settlement stablecoin counted as USD)."""
    lots = history.open_interest.get(inst.inst_id, 0)
    mark = inst.ticks_to_px(exchange.state.mark_ticks[inst.inst_id])
    coins = inst.lots_to_sz(lots) * inst.ct_val
    oi_ccy = coins if inst.is_linear else (coins / mark if mark else Decimal(0))
    oi_usd = coins * mark if inst.is_linear else coins
    return {"instType": inst.inst_type, "instId": inst.inst_id, "oi": sz_str(inst, lots),
            "oiCcy": fmt_decimal(oi_ccy.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)),
            "oiUsd": fmt_decimal(oi_usd.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)), "ts": ms(now)}


def funding_history_views(history: MarketHistory, inst: Instrument, after: int | None, before: int | None,
                          limit: int) -> list[dict[str, Any]]:
    """``public/funding-rate-history``: each settlement's rate (``fundingRate`` and
    ``realizedRate`` are the same: the engine settles at the rate it publishes)."""
    settled = page(list(history.funding.get(inst.inst_id, ())), lambda r: r[0], after, before, limit)
    return [{"instType": inst.inst_type, "instId": inst.inst_id, "formulaType": "withRate",
             "fundingRate": fmt_decimal(Decimal(rate).scaleb(-8)),
             "realizedRate": fmt_decimal(Decimal(rate).scaleb(-8)), "fundingTime": ms(ts),
             "method": "current_period"} for ts, rate in settled]


def price_limit_view(exchange: Exchange, inst: Instrument, now: int) -> dict[str, Any]:
    """``public/price-limit``: ``buyLmt`` (highest buy) and ``sellLmt`` (lowest sell), the
    engine's order band around the mark (the same limits its order check applies)."""
    band_ppm = exchange.config.price_limit.band_ppm(inst.inst_id)
    buy, sell = queries.price_limits(exchange.state, inst, band_ppm)
    return {"instType": inst.inst_type, "instId": inst.inst_id, "buyLmt": px_str(inst, buy),
            "sellLmt": px_str(inst, sell), "ts": ms(now), "enabled": True}
