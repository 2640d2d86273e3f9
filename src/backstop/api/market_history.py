"""Public market history built from engine events: candles of trades, marks and indices,
recent public trades, settled funding rates and open interest.

Candles are kept at three resolutions (1 second, 1 minute, 1 hour, each bounded); every OKX
bar is an aggregate of one of them (:func:`bar_spec`). OKX aligns bars of 6 hours and more
to Hong Kong time (UTC+8) unless the bar ends in ``utc``; weeks start on Monday, months on
the 1st. Units: prices in ticks, sizes in lots; a trade candle's ``value`` is
Σ px_ticks·lots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from backstop.model import events as ev

SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
HK_OFFSET = 8 * HOUR
KEPT = {SECOND: 3_600, MINUTE: 20_160, HOUR: 24 * 400}
"""Candles kept per resolution: an hour of seconds, two weeks of minutes, 400 days of hours."""
TRADES_KEPT = 10_000
"""Public trades kept per instrument (``market/history-trades`` pages through them)."""
FUNDING_KEPT = 1_000
"""Settled funding rates kept per instrument."""
WEEK_ANCHOR = 4 * DAY
"""1970-01-05, a Monday, is 4 days after the epoch."""


@dataclass(frozen=True, slots=True)
class BarSpec:
    """An OKX bar: its base resolution, and either a fixed size with an alignment offset
    (ms) or a count of calendar months."""

    base: int
    size: int = 0
    offset: int = 0
    months: int = 0
    anchor: int = 0

    def start(self, ts: int) -> int:
        """The start (epoch ms) of the bar holding ``ts``."""
        if self.months:
            shifted = datetime.fromtimestamp((ts + self.offset) / 1000, UTC)
            index = (shifted.year * 12 + shifted.month - 1) // self.months * self.months
            first = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
            return int(first.timestamp()) * 1000 - self.offset
        shift = self.offset - self.anchor
        return (ts + shift) // self.size * self.size - shift

    def end(self, start: int) -> int:
        if self.months:
            return self.start(start + 32 * DAY * self.months)
        return start + self.size


def _bars() -> dict[str, BarSpec]:
    out = {"1s": BarSpec(SECOND, SECOND)}
    for n in (1, 3, 5, 15, 30):
        out[f"{n}m"] = BarSpec(MINUTE, n * MINUTE)
    for n in (1, 2, 4):
        out[f"{n}H"] = BarSpec(HOUR, n * HOUR)
    for name, size, anchor in (("6H", 6 * HOUR, 0), ("12H", 12 * HOUR, 0), ("1D", DAY, 0),
                               ("2D", 2 * DAY, 0), ("3D", 3 * DAY, 0), ("1W", 7 * DAY, WEEK_ANCHOR)):
        out[name] = BarSpec(HOUR, size, HK_OFFSET, anchor=anchor)
        out[f"{name}utc"] = BarSpec(HOUR, size, 0, anchor=anchor)
    for name, months in (("1M", 1), ("3M", 3)):
        out[name] = BarSpec(HOUR, offset=HK_OFFSET, months=months)
        out[f"{name}utc"] = BarSpec(HOUR, months=months)
    return out


BARS = _bars()
"""Every OKX bar size (``1s`` … ``3Mutc``)."""


@dataclass(slots=True)
class Candle:
    """``start`` epoch ms; prices in ticks; ``lots`` and ``value`` (Σ px_ticks·lots) for trade
    candles, 0 for marks and indices."""

    start: int
    open: int
    high: int
    low: int
    close: int
    lots: int = 0
    value: int = 0

    def add(self, px: int, lots: int) -> None:
        self.high, self.low, self.close = max(self.high, px), min(self.low, px), px
        self.lots += lots
        self.value += px * lots


@dataclass(slots=True)
class CandleSeries:
    """One price series at the three base resolutions."""

    by_base: dict[int, deque[Candle]] = field(
        default_factory=lambda: {base: deque(maxlen=kept) for base, kept in KEPT.items()})

    def add(self, ts: int, px: int, lots: int = 0) -> None:
        for base, kept in self.by_base.items():
            start = ts // base * base
            if kept and kept[-1].start == start:
                kept[-1].add(px, lots)
            elif not kept or kept[-1].start < start:
                kept.append(Candle(start, px, px, px, px, lots, px * lots))
            else:  # a clock step back (never after now_ms): fold into the latest bar
                kept[-1].add(px, lots)

    def bars(self, spec: BarSpec) -> list[Candle]:
        """The series in bars of ``spec``, oldest first."""
        return _aggregate(self.by_base[spec.base], spec)

    def latest(self, spec: BarSpec) -> Candle | None:
        """The newest bar of ``spec`` (a push): only the base candles inside it are read."""
        kept = self.by_base[spec.base]
        if not kept:
            return None
        start = spec.start(kept[-1].start)
        inside = []
        for c in reversed(kept):
            if c.start < start:
                break
            inside.append(c)
        return _aggregate(reversed(inside), spec)[0]


def _aggregate(candles: Iterable[Candle], spec: BarSpec) -> list[Candle]:
    """Base candles (oldest first) merged into bars of ``spec``."""
    out: list[Candle] = []
    for c in candles:
        start = spec.start(c.start)
        if out and out[-1].start == start:
            last = out[-1]
            last.high, last.low, last.close = max(last.high, c.high), min(last.low, c.low), c.close
            last.lots += c.lots
            last.value += c.value
        else:
            out.append(Candle(start, c.open, c.high, c.low, c.close, c.lots, c.value))
    return out


@dataclass(frozen=True, slots=True)
class PublicTrade:
    trade_id: int
    ts: int
    px_ticks: int
    lots: int
    side: str
    """The taker's side."""


@dataclass(slots=True)
class MarketHistory:
    """Per instrument: trade, mark and index candles, recent trades, settled funding rates
    (``(ts, rate_e8)``) and open interest (Σ long lots)."""

    trade_candles: dict[str, CandleSeries] = field(default_factory=dict)
    mark_candles: dict[str, CandleSeries] = field(default_factory=dict)
    index_candles: dict[str, CandleSeries] = field(default_factory=dict)
    trades: dict[str, deque[PublicTrade]] = field(default_factory=dict)
    funding: dict[str, deque[tuple[int, int]]] = field(default_factory=dict)
    open_interest: dict[str, int] = field(default_factory=dict)

    def trade(self, e: ev.Filled) -> None:
        _series(self.trade_candles, e.inst_id).add(e.ts, e.px_ticks, e.lots)
        kept = self.trades.setdefault(e.inst_id, deque(maxlen=TRADES_KEPT))
        kept.append(PublicTrade(e.trade_id, e.ts, e.px_ticks, e.lots, e.taker_side))

    def mark(self, e: ev.MarkPriceUpdated) -> None:
        _series(self.mark_candles, e.inst_id).add(e.ts, e.mark_ticks)
        _series(self.index_candles, e.inst_id).add(e.ts, e.index_ticks)

    def funding_rate(self, e: ev.FundingRateSet) -> None:
        """A settlement: the rate every position of the instrument paid or received."""
        self.funding.setdefault(e.inst_id, deque(maxlen=FUNDING_KEPT)).append((e.ts, e.rate_e8))

    def position_changed(self, inst_id: str, before: int, after: int) -> None:
        """Open interest counts long lots (equal to short lots in net mode)."""
        self.open_interest[inst_id] = self.open_interest.get(inst_id, 0) + max(after, 0) - max(before, 0)


def _series(table: dict[str, CandleSeries], inst_id: str) -> CandleSeries:
    """The instrument's series, made on first use (not built on every call)."""
    series = table.get(inst_id)
    if series is None:
        series = table[inst_id] = CandleSeries()
    return series
