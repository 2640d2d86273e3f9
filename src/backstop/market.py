"""The live market of ``backstop serve --market replay``: prices, traders and funding on a clock.

:class:`MarketDriver` runs as an asyncio task in the server process. Each tick is one bar of
scenario time (:data:`BAR_MS`, a minute); at ``speed`` 60 a tick comes every real second.
A tick:

1. takes the next BTC price from the source and moves every family along a correlated path;
2. has the makers re-quote their ladders around the new indices;
3. sets the index of each active family (``SetIndexPrice``: the engine runs its risk screen,
   liquidations and ADL inside the command); inactive families move every
   :data:`INACTIVE_EVERY` ticks;
4. lets a few takers act (open, close, re-deposit, retire), and seats new traders;
5. settles funding when scenario time crosses 00:00, 08:00 or 16:00 UTC.

Every command goes through :meth:`ExchangeService.submit`, like an API client's, so it is
logged and replays. The work of tick *k* depends only on the seed and the engine's state, never
on wall time, so the same seed gives the same commands. Prices are floats (the price model);
everything sent to the engine is an exact decimal.

Price sources: :class:`CrashScenario` (default; a model of 2025-10-10 20:30–23:30 UTC, looped)
or :class:`KlineReplay` (any kline CSV or Parquet file, looped).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from backstop.api.service import ExchangeService
from backstop.api.wire import OkxError
from backstop.model.catalogue import Catalogue
from backstop.model.commands import Command, InjectInsuranceFund, SetIndexPrice, SettleFunding
from backstop.model.instrument import Instrument
from backstop.sim import traders as tr
from backstop.sim.calibrate import FITTED_GARCH_DAILY, FITTED_GBM
from backstop.sim.paths import MINUTE_YEARS, load_klines, standard_t
from backstop.state.ledger import fund_key

log = logging.getLogger("backstop.market")

BAR_MS = 60_000
"""Scenario time per tick (one-minute bars)."""
SCENARIO_START_MS = 1_760_128_200_000
"""2025-10-10 20:30:00 UTC, where each crash cycle starts."""
CRASH_ANCHORS: tuple[tuple[int, float, float], ...] = (
    (0, 116_400.0, 1.0),
    (20, 116_400.0, 4.0),     # 20:50 the fall starts
    (50, 101_516.5, 3.0),     # 21:20 the low
    (60, 109_250.0, 2.0),     # 21:30 rebound
    (90, 113_200.0, 1.0),     # 22:00
    (180, 116_400.0, 0.0),    # 23:30 calm recovery, then the next cycle
)
"""``(minute, BTC-USDT price, volatility multiple of the segment that starts here)``."""
CRASH_FLOOR_WINDOW = (20, 60)
"""Minutes in which no price goes below the 21:20 low."""
CALM_SIGMA_PER_BAR = FITTED_GBM.sigma * math.sqrt(MINUTE_YEARS)
"""One-minute log volatility of the fitted GBM (about 9 bp)."""
FUNDING_EVERY_MS = 8 * 3600 * 1000
INACTIVE_EVERY = 10
DEFAULT_ACTIVE: tuple[tuple[str, int], ...] = (
    ("BTC-USDT-SWAP", 35), ("ETH-USDT-SWAP", 20), ("SOL-USDT-SWAP", 12),
    ("XRP-USDT-SWAP", 8), ("DOGE-USDT-SWAP", 8), ("BTC-USD-SWAP", 17),
)
"""Instruments with makers and takers by default, and each one's share of the takers."""
BETAS = {"BTC": 1.0, "ETH": 1.3, "SOL": 1.6, "XRP": 1.5, "DOGE": 1.7}
"""Log-return beta of each coin against BTC; others use :data:`DEFAULT_BETA`."""
DEFAULT_BETA = 1.4
IDIO_SIGMA_PER_BAR = 0.0012
IDIO_PERSISTENCE = 0.97
FUND_SEED_USD_PER_TRADER = 150
"""Initial platform injection into each empty active fund, per trader trading it (USD)."""
TAKER_ACTS_PER_TICK = 0.06
"""Share of the population that acts each tick (at least one trader)."""


class CrashScenario:
    """BTC-USDT index per bar: each cycle bridges the :data:`CRASH_ANCHORS` with seeded,
    fat-tailed noise (Student-t with the fitted GARCH ``nu``), then repeats."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.start_ms = SCENARIO_START_MS
        self._buffer: deque[float] = deque()

    def next_price(self) -> float:
        if not self._buffer:
            self._buffer.extend(self._cycle())
        return self._buffer.popleft()

    def _cycle(self) -> list[float]:
        prices: list[float] = []
        for (m0, p0, vol), (m1, p1, _) in itertools.pairwise(CRASH_ANCHORS):
            prices.extend(bridge(self.rng, p0, p1, m1 - m0, CALM_SIGMA_PER_BAR * vol))
        low = CRASH_ANCHORS[2][1]
        first, last = CRASH_FLOOR_WINDOW
        for k in range(first, last):
            if k != CRASH_ANCHORS[2][0]:
                prices[k] = max(prices[k], low * 1.0005)
        return prices


def bridge(rng: np.random.Generator, start: float, end: float, steps: int,
           sigma: float) -> list[float]:
    """``steps`` prices from ``start`` (included) towards ``end`` (excluded): a log-space
    Brownian bridge with per-step volatility ``sigma``."""
    z = standard_t(rng, FITTED_GARCH_DAILY.nu, (steps,)) * sigma
    walk = np.concatenate(([0.0], np.cumsum(z)))
    k = np.arange(steps + 1) / steps
    log_path = math.log(start) + k * (math.log(end) - math.log(start)) + walk - k * walk[-1]
    return [float(x) for x in np.exp(log_path[:-1])]


class KlineReplay:
    """Closes of a kline CSV or Parquet file (``open_time, open, high, low, close``), one per
    tick, from the first bar again after the last."""

    def __init__(self, path: str | Path) -> None:
        ohlc = load_klines(path)
        if ohlc.close.size == 0:
            raise ValueError(f"{path}: no klines")
        self.closes = [float(x) for x in ohlc.close]
        self.start_ms = int(ohlc.time_ms[0])
        self._next = 0

    def next_price(self) -> float:
        price = self.closes[self._next % len(self.closes)]
        self._next += 1
        return price


class FamilyPaths:
    """Every family's index: ``p0·exp(β·(log btc − log btc0) + e)`` with ``e`` a seeded
    AR(1) noise (none for BTC families, which follow the source exactly)."""

    def __init__(self, catalogue: Catalogue, rng: np.random.Generator, btc0: float) -> None:
        self.rng = rng
        self.btc0 = btc0
        families = catalogue.families()
        self.families = sorted(families)
        self.start = {f: btc0 if _coin(f) == "BTC" else float(families[f][0].index_px)
                      for f in self.families}
        self.noise = dict.fromkeys(self.families, 0.0)

    def step(self, btc: float) -> dict[str, float]:
        shocks = self.rng.standard_normal(len(self.families)) * IDIO_SIGMA_PER_BAR
        move = math.log(btc / self.btc0)
        out = {}
        for family, shock in zip(self.families, shocks, strict=True):
            coin = _coin(family)
            if coin != "BTC":
                self.noise[family] = IDIO_PERSISTENCE * self.noise[family] + float(shock)
            beta = BETAS.get(coin, DEFAULT_BETA)
            out[family] = self.start[family] * math.exp(beta * move + self.noise[family])
        return out


def _coin(family: str) -> str:
    return family.split("-", 1)[0]


def index_decimal(px: float) -> Decimal:
    """A model price as an exact decimal for ``SetIndexPrice`` (10 significant digits; the
    engine rounds it half-even to each instrument's tick)."""
    return Decimal(f"{px:.10g}")


@dataclass(frozen=True, slots=True)
class MarketSettings:
    """``speed``: scenario time per real time; ``population``: takers; ``prices``: a kline file
    instead of the crash scenario; ``active``: instruments with makers and takers (and each
    one's share of the takers); ``min_interval_s``: shortest real time between ticks."""

    speed: float = 60.0
    population: int = 200
    seed: int = 0
    prices: Path | None = None
    active: tuple[tuple[str, int], ...] = DEFAULT_ACTIVE
    min_interval_s: float = 0.02

    @property
    def interval_s(self) -> float:
        return max(self.min_interval_s, BAR_MS / 1000 / self.speed)


@dataclass(slots=True)
class MarketDriver:
    """The clock-driven market; :meth:`run` is the task, :meth:`step` one tick."""

    service: ExchangeService
    settings: MarketSettings
    ticks: int = 0
    makers: list[tr.Maker] = field(default_factory=list)
    takers: list[tr.Taker] = field(default_factory=list)
    last_prices: dict[str, float] = field(default_factory=dict)
    rng: random.Random = field(init=False)
    source: CrashScenario | KlineReplay = field(init=False)
    paths: FamilyPaths = field(init=False)
    active: list[tuple[Instrument, int]] = field(init=False)
    scenario_ms: int = field(init=False)
    _pending_first: float = field(init=False)

    def __post_init__(self) -> None:
        seed = self.settings.seed
        self.rng = random.Random(seed)
        price_rng = np.random.default_rng(seed)
        prices = self.settings.prices
        self.source = KlineReplay(prices) if prices is not None else CrashScenario(price_rng)
        self.scenario_ms = self.source.start_ms
        first = self.source.next_price()
        self.paths = FamilyPaths(self.service.catalogue, price_rng, first)
        self._pending_first = first
        self.active = active_instruments(self.service.catalogue, self.settings.active)

    async def run(self) -> None:
        """Set up, then tick until cancelled; a tick that fails is logged and skipped."""
        await self.setup()
        interval = self.settings.interval_s
        while True:
            began = time.monotonic()
            try:
                await self.step()
            except OkxError as exc:
                log.error("market stopped: %s", exc)
                return
            except Exception:
                log.exception("market tick %d failed", self.ticks)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))

    async def setup(self) -> None:
        """Open the makers' and takers' accounts, and seed empty active funds."""
        prices = self.paths.step(self._pending_first)
        self.last_prices = prices
        await self._submit([SetIndexPrice(0, f, index_decimal(p)) for f, p in prices.items()])
        for inst, _share in self.active:
            key = await self.service.create_account(tr.maker_deposits(inst))
            maker = tr.Maker(key.uid, inst.inst_id)
            self.makers.append(maker)
            await self._submit(tr.maker_setup(maker))
        await self._seed_funds()
        for _ in range(self.settings.population):
            await self._seat_taker()

    async def step(self) -> None:
        """One bar of scenario time."""
        self.ticks += 1
        self.scenario_ms += BAR_MS
        prices = self.paths.step(self.source.next_price())
        self.last_prices = prices
        await self._requote(prices)
        await self._submit(self._index_commands(prices))
        await self._takers_act()
        if self.scenario_ms // FUNDING_EVERY_MS != (self.scenario_ms - BAR_MS) // FUNDING_EVERY_MS:
            await self.service.submit(SettleFunding(0))

    def _index_commands(self, prices: dict[str, float]) -> list[Command]:
        active = {inst.inst_family for inst, _ in self.active}
        every = self.ticks % INACTIVE_EVERY == 0
        return [SetIndexPrice(0, f, index_decimal(p)) for f, p in prices.items()
                if f in active or every]

    async def _requote(self, prices: dict[str, float]) -> None:
        state = self.service.exchange.state
        catalogue = self.service.catalogue
        for maker in self.makers:
            inst = catalogue.get(maker.inst_id)
            commands = tr.maker_requote(state, maker, inst, prices[inst.inst_family])
            await self._submit(commands)

    async def _takers_act(self) -> None:
        live = [t for t in self.takers if not t.retired]
        count = min(len(live), max(1, round(len(self.takers) * TAKER_ACTS_PER_TICK)))
        for taker in self.rng.sample(live, count):
            inst = self.service.catalogue.get(taker.inst_id)
            await self._submit(tr.taker_act(self.service.exchange.state, self.rng, taker, inst))
        for taker in [t for t in self.takers if t.retired]:
            self.takers.remove(taker)
            await self._seat_taker()

    async def _seat_taker(self) -> None:
        """A new trader: draw its instrument and terms, open its account, set its leverage."""
        inst = self.rng.choices([i for i, _ in self.active], [w for _, w in self.active])[0]
        btc_usd = self.last_prices.get("BTC-USD", self.last_prices.get("BTC-USDT", 1.0))
        coin_usd = btc_usd if tr.coin_of(inst) == "BTC" else self.last_prices.get(inst.inst_family, 1.0)
        draft = tr.new_taker(self.rng, 0, inst, coin_usd)
        key = await self.service.create_account({inst.settle_ccy: draft.capital})
        taker = tr.Taker(key.uid, draft.inst_id, draft.mgn_mode, draft.lever, draft.capital)
        self.takers.append(taker)
        await self._submit(tr.taker_setup(taker))

    async def _seed_funds(self) -> None:
        """Inject into each active family's fund that is empty, in proportion to its traders."""
        state = self.service.exchange.state
        total = sum(w for _, w in self.active) or 1
        for inst, share in self.active:
            fund = state.funds[state.fund_of[inst.inst_id]]
            if state.ledger.balance(fund_key(fund.fund_id, fund.ccy)):
                continue
            usd = FUND_SEED_USD_PER_TRADER * max(1, self.settings.population * share // total)
            px = self.last_prices.get(inst.inst_family, 1.0)
            amount = Decimal(usd) if inst.is_linear else index_decimal(usd / px).quantize(Decimal("0.0001"))
            await self.service.submit(InjectInsuranceFund(0, inst.inst_family, amount, inst.inst_type))

    async def _submit(self, commands: list[Command]) -> None:
        if commands:
            await self.service.submit_all(commands)


def active_instruments(catalogue: Catalogue,
                       wanted: tuple[tuple[str, int], ...]) -> list[tuple[Instrument, int]]:
    """The wanted instruments present in the catalogue, else its first four (equal shares)."""
    found = [(catalogue.get(i), w) for i, w in wanted if catalogue.get(i) is not None]
    if found:
        return found  # type: ignore[return-value]
    return [(inst, 1) for inst in list(catalogue)[:4]]
