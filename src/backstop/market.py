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

Price sources (:mod:`backstop.sim.price_sources`): :class:`CrashScenario` (default; a model of
2025-10-10 20:30–23:30 UTC, looped) or :class:`KlineReplay` (any kline CSV or Parquet file,
looped). This module lives beside ``serve.py`` because it drives the API service; the
simulation models under ``sim/`` do not import the API.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from backstop.api.service import ExchangeService
from backstop.api.wire import OkxError
from backstop.engine.queries import fund_balance
from backstop.model.catalogue import Catalogue
from backstop.model.commands import Command, InjectInsuranceFund, SetIndexPrice, SettleFunding
from backstop.model.instrument import Instrument
from backstop.numeric import round_to
from backstop.sim import traders as tr
from backstop.sim.price_sources import BAR_MS, CrashScenario, FamilyPaths, KlineReplay, index_decimal

log = logging.getLogger("backstop.market")

FUNDING_EVERY_MS = 8 * 3600 * 1000
INACTIVE_EVERY = 10
DEFAULT_ACTIVE: tuple[tuple[str, int], ...] = (
    ("BTC-USDT-SWAP", 35), ("ETH-USDT-SWAP", 20), ("SOL-USDT-SWAP", 12),
    ("XRP-USDT-SWAP", 8), ("DOGE-USDT-SWAP", 8), ("BTC-USD-SWAP", 17),
)
"""Instruments with makers and takers by default, and each one's share of the takers."""
FUND_SEED_USD_PER_TRADER = 150
"""Initial platform injection into each empty active fund, per trader trading it (USD)."""
TAKER_ACTS_PER_TICK = 0.06
"""Share of the population that acts each tick (at least one trader)."""



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
            if fund_balance(state, fund):
                continue
            usd = FUND_SEED_USD_PER_TRADER * max(1, self.settings.population * share // total)
            px = self.last_prices.get(inst.inst_family, 1.0)
            amount = Decimal(usd) if inst.is_linear else round_to(index_decimal(usd / px), Decimal("0.0001"))
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
