"""One stress scenario for the exact engine: a price path, a leveraged population, a maker.

- **Price path.** A kline CSV or Parquet file (Binance layout, :func:`paths.load_klines`;
  tardis.dev-style trade files also work, :func:`paths.load_trades`), or a generated path of
  one-minute steps: ``crash`` (the default; the built-in 2025-10-10 crash model of
  :mod:`backstop.sim.price_sources`, 20:30-23:30 UTC, the same one ``backstop serve`` plays),
  or a day from ``gbm``, ``garch`` or ``jump`` with the fitted constants of
  :mod:`backstop.sim.calibrate`. A kline bar is replayed as up to four index updates, 15 s
  apart: open, the nearer extreme, the other extreme, close (an up bar visits the low first).
  ``schedule`` picks which of them the engine gets (consecutive equal prices are skipped):

  - ``ohlc``: all four, every bar;
  - ``bars``: every bar's close, and its low or high first when it is a new extreme of the
    path so far;
  - ``extremes`` (default): only the new extremes, plus a bar close every
    ``heartbeat_minutes``. Every position opens at the first price and only shrinks after,
    so a position that survived the path's running low (high) survives any higher (lower)
    price: the new extremes are the only updates that can trigger its liquidation. This cuts
    the 2025-10-10 replay from 2,524 updates to about 240, which is what keeps a
    1,000-account run near 30 s (the engine's risk pass costs about 0.1 ms per account).
- **Population.** :func:`population.generate_population` draws N accounts (leverage mix,
  Pareto notionals, long/short skew, isolated/cross mix). Each becomes a real engine account:
  a deposit of its margin plus the entry fee, its leverage, and a market order at the path's
  first price that fills against a limit order the maker posts for it.
- **Liquidity.** :class:`backstop.sim.liquidity.Maker` requotes a ladder shaped by the real
  book-depth curves before every index update; see :mod:`backstop.sim.liquidity` for the
  impact model and its scaling to the population.
- **Fund.** ``insurance_fund.initial`` from the policy when it names one, else
  ``fund_share`` of the population's gross notional (an assumption: 0.5 %).

Floats appear only in the path and population models; every command the engine gets holds
exact decimals, so the same spec and seed give the same event log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from backstop.engine.config import EngineConfig
from backstop.engine.exchange import Exchange
from backstop.engine.queries import cross_figures, isolated_equity, unit_equity_and_requirement
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import Command, Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import Event
from backstop.model.instrument import Instrument
from backstop.sim import calibrate, paths, price_sources
from backstop.sim.cascade import Cascade, drawdown, forced_flow_usdt
from backstop.sim.feedback import FeedbackParams
from backstop.sim.impact import load_book_depth
from backstop.sim.liquidity import REFERENCE_OPEN_INTEREST_BTC, DepthSource, Maker
from backstop.sim.population import PopulationSpec, generate_population

INST_ID = "BTC-USDT-SWAP"
INST_FAMILY = "BTC-USDT"
MAKER_UID = 1
FIRST_TRADER_UID = 1000
MODELS = ("crash", "gbm", "garch", "jump")
DEFAULT_MODEL = "crash"
DAY_MINUTES = 1440
SCHEDULES = ("ohlc", "bars", "extremes")
GENERATED_START_MS = 1_760_097_600_000  # 2025-10-10 12:00 UTC, the replay file's start
SUBSTEP_MS = 15_000
MAX_CASCADE_ROUNDS = 200
"""Most index updates one visit sends while a cascade feeds itself (a guard; never reached in
the runs measured)."""


@dataclass(frozen=True)
class ScenarioSpec:
    """Everything that defines a run. ``prices`` xor ``model``; ``steps`` (minutes; default a
    day, or one crash cycle for ``crash``) and ``s0`` (USDT per BTC; not for ``crash``, which
    starts at its anchor) shape a generated path; ``fund_share`` is the default initial fund
    as a share of the population's gross notional; ``depth_file`` is a Binance bookDepth CSV."""

    prices: Path | None = None
    model: str | None = None
    n_accounts: int = 1000
    seed: int = 0
    steps: int | None = None
    s0: float = 121_500.0
    config: EngineConfig = field(default_factory=EngineConfig)
    population: PopulationSpec | None = None
    depth_file: Path | None = None
    fund_share: float = 0.005
    liquidity_multiplier: float = 1.0
    maker_capital_multiple: int = 50
    schedule: str = "extremes"
    heartbeat_minutes: int = 5
    feedback: FeedbackParams | None = None

    def __post_init__(self) -> None:
        ensure_spec_valid(self)


def ensure_spec_valid(spec: ScenarioSpec) -> None:
    """Raise ``ValueError`` naming the first impossible parameter."""
    if (spec.prices is None) == (spec.model is None):
        raise ValueError(f"give one of --prices FILE or --model {'|'.join(MODELS)}, not both")
    if spec.model is not None and spec.model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {spec.model!r}")
    if spec.prices is not None and not Path(spec.prices).is_file():
        raise ValueError(f"price file not found: {spec.prices}")
    if spec.depth_file is not None and not Path(spec.depth_file).is_file():
        raise ValueError(f"depth file not found: {spec.depth_file}")
    if spec.schedule not in SCHEDULES or spec.heartbeat_minutes < 1:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, heartbeat_minutes >= 1")
    if spec.n_accounts < 1:
        raise ValueError(f"--accounts must be >= 1, got {spec.n_accounts}")
    if (spec.steps is not None and spec.steps < 1) or spec.s0 <= 0:
        raise ValueError("steps must be >= 1 and s0 > 0")
    if not 0 <= spec.fund_share < 1 or spec.liquidity_multiplier <= 0:
        raise ValueError("fund_share must be in [0, 1) and liquidity_multiplier > 0")
    if spec.feedback is not None and spec.feedback.inst_id != INST_FAMILY:
        raise ValueError(f"feedback parameters are for {spec.feedback.inst_id}, "
                         f"the scenario trades {INST_ID}")


@dataclass(frozen=True)
class PricePath:
    """Index updates: ``times_ms`` (epoch ms) and exact ``prices``; ``bar_close`` (float USDT)
    per bar, for the realized volatility; ``bar_minutes`` is a bar's length.

    With feedback, the updates are every visit of every bar (the *exogenous* prices, before
    impact): ``kept[k]`` says the schedule keeps visit ``k`` and ``closes[k]`` that it closes its
    bar; without, both are empty and every update is sent."""

    times_ms: list[int]
    prices: list[Decimal]
    bar_close: np.ndarray
    bar_minutes: float = 1.0
    kept: tuple[bool, ...] = ()
    closes: tuple[bool, ...] = ()


def build_price_path(spec: ScenarioSpec, inst: Instrument, rng: np.random.Generator) -> PricePath:
    """The run's index updates from the file or the model, thinned by ``spec.schedule``."""
    if spec.prices is not None:
        bars = _load_bars(Path(spec.prices))
    else:
        closes = _generate_closes(spec, rng)
        start = price_sources.SCENARIO_START_MS if spec.model == "crash" else GENERATED_START_MS
        times = start + paths.MINUTE_MS * np.arange(closes.size, dtype=np.int64)
        bars = paths.Ohlc(times, np.r_[closes[0], closes[:-1]], closes, closes, closes)
    return _scheduled_path(bars, inst, spec.schedule, spec.heartbeat_minutes,
                           every_visit=spec.feedback is not None)


def _load_bars(path: Path) -> paths.Ohlc:
    try:
        bars = paths.load_klines(path)
    except ValueError as kline_error:
        try:
            bars = paths.load_trades(path)
        except ValueError:
            raise kline_error from None
    if bars.close.size < 2 or not np.all(np.isfinite(bars.close)) or np.any(bars.low <= 0):
        raise ValueError(f"{path}: need at least 2 bars of positive prices")
    return bars


def _scheduled_path(bars: paths.Ohlc, inst: Instrument, schedule: str, heartbeat: int,
                    every_visit: bool = False) -> PricePath:
    """Index updates from bars: see the module docstring for the schedules. ``every_visit``
    (feedback on) keeps all four visits of every bar, repeats included, with ``kept`` marking
    those the schedule keeps and ``closes`` each bar's close."""
    times: list[int] = []
    prices: list[Decimal] = []
    kept: list[bool] = []
    closes: list[bool] = []
    low, high = bars.open[0], bars.open[0]
    for i in range(bars.close.size):
        for j, value, keep in _bar_visits(bars, i, schedule, low, high, heartbeat):
            px = _to_px(value, inst)
            if every_visit or (keep and (not prices or px != prices[-1])):
                times.append(int(bars.time_ms[i]) + j * SUBSTEP_MS)
                prices.append(px)
                kept.append(keep)
                closes.append(j == 3)
        low, high = min(low, bars.low[i]), max(high, bars.high[i])
    if not every_visit:
        return PricePath(times, prices, bars.close)
    return PricePath(times, prices, bars.close, kept=tuple(kept), closes=tuple(closes))


def _bar_visits(bars: paths.Ohlc, i: int, schedule: str, low: float, high: float,
                heartbeat: int) -> list[tuple[int, float, bool]]:
    """``(sub-step, price, kept)`` of bar ``i``'s four visits; ``kept``: the schedule keeps it
    (``low`` and ``high`` are the path's extremes before the bar)."""
    up = bars.close[i] >= bars.open[i]
    extremes = (bars.low[i], bars.high[i]) if up else (bars.high[i], bars.low[i])
    visits = [(0, bars.open[i]), (1, extremes[0]), (2, extremes[1]), (3, bars.close[i])]
    if schedule == "ohlc" or i == 0:
        return [(j, v, True) for j, v in visits]
    close = schedule == "bars" or i % heartbeat == 0 or i == bars.close.size - 1
    return [(0, visits[0][1], False), *((j, v, bool(v < low or v > high)) for j, v in visits[1:3]),
            (3, visits[3][1], close)]


def generated_minutes(spec: ScenarioSpec) -> int:
    """Length of a generated path: ``spec.steps``, else one crash cycle or one day."""
    if spec.steps is not None:
        return spec.steps
    return price_sources.CRASH_CYCLE_MINUTES if spec.model == "crash" else DAY_MINUTES


def _generate_closes(spec: ScenarioSpec, rng: np.random.Generator) -> np.ndarray:
    steps = generated_minutes(spec)
    if spec.model == "crash":
        return price_sources.crash_closes(rng, steps)
    if spec.model == "gbm":
        fit = calibrate.FITTED_GBM
        out = paths.gbm_paths(rng, spec.s0, 1, steps, paths.MINUTE_YEARS, fit.mu, fit.sigma)
    elif spec.model == "garch":
        params = calibrate.FITTED_GARCH_DAILY.rescaled(paths.MINUTE_DAYS)
        out = paths.garch_paths(rng, spec.s0, 1, steps, params)
    else:
        j = calibrate.FITTED_JUMP
        out = paths.merton_paths(rng, spec.s0, 1, steps, paths.MINUTE_YEARS, j.mu, j.sigma,
                                 j.jump_rate, j.jump_mean, j.jump_std)
    return out[0]


def _to_px(value: float, inst: Instrument) -> Decimal:
    """A float price (USDT) as an exact decimal on the instrument's tick."""
    return max(inst.tick_sz, Decimal(f"{float(value):.8f}").quantize(inst.tick_sz, rounding=ROUND_HALF_EVEN))


def _usdt_up(value: float) -> Decimal:
    """A float amount of USDT as a decimal, rounded up to the cent."""
    return Decimal(f"{float(value):.8f}").quantize(Decimal("0.01"), rounding=ROUND_CEILING)


class Scenario:
    """A built run: the exchange, the maker, the path and the population, ready to step."""

    def __init__(self, spec: ScenarioSpec) -> None:
        path_seed, population_seed = np.random.SeedSequence(spec.seed).spawn(2)
        self.spec = spec
        self.inst = default_catalogue().instruments[INST_ID]  # type: ignore[index]
        self.path = build_price_path(spec, self.inst, np.random.default_rng(path_seed))
        pop_spec = replace(spec.population or PopulationSpec(), n_accounts=spec.n_accounts)
        self.population = generate_population(pop_spec, np.random.default_rng(population_seed))
        self.gross_notional_usdt = float(self.population.notional_usdt.sum())
        self.config = _with_fund(spec.config, self.inst, spec.fund_share * self.gross_notional_usdt)
        self.exchange = Exchange(config=self.config, keep_log=False)
        depth = DepthSource(load_book_depth(spec.depth_file) if spec.depth_file else None)
        start = float(self.path.prices[0])
        scale = self.gross_notional_usdt / start / REFERENCE_OPEN_INTEREST_BTC * spec.liquidity_multiplier
        self.maker = Maker(MAKER_UID, self.inst, depth, scale)
        self.cascade = None if spec.feedback is None else Cascade.for_population(
            spec.feedback, self.gross_notional_usdt, spec.liquidity_multiplier)
        self.observed_ticks: list[int] = []
        """With feedback: the index (exogenous × impact, ticks) at every visit of the path so far."""
        self._sent: tuple[int, int, int] | None = None  # last, lowest and highest index sent, ticks

    @property
    def n_steps(self) -> int:
        return len(self.path.prices)

    def opening_commands(self) -> list[Command]:
        """Fund the maker, set the first index, then open every account's position."""
        ts = self.path.times_ms[0] - 60_000
        px = self.path.prices[0]
        capital = _usdt_up(self.gross_notional_usdt * self.spec.maker_capital_multiple + 1e6)
        commands: list[Command] = [Deposit(ts, MAKER_UID, "USDT", capital),
                                   SetIndexPrice(ts, self.inst.inst_family, px)]
        for i in range(self.population.size):
            commands.extend(self._open_account(i, px, ts))
        return commands

    def _open_account(self, i: int, px: Decimal, ts: int) -> list[Command]:
        pop, inst = self.population, self.inst
        uid = FIRST_TRADER_UID + i
        lots = int(pop.notional_usdt[i] / float(px) / float(inst.ct_val * inst.lot_sz))
        if lots < 1:
            return []
        lever = min(inst.max_lever, max(Decimal(1), Decimal(f"{pop.leverage[i]:.2f}")))
        mode = MarginMode.ISOLATED if pop.isolated[i] else MarginMode.CROSS
        notional = float(inst.lots_to_sz(lots) * inst.ct_val * px)
        margin = notional * (1.01 / float(lever) if pop.isolated[i] else float(pop.margin_frac[i]))
        deposit = _usdt_up(margin + notional * 0.001)
        side, maker_side = (Side.BUY, Side.SELL) if pop.side[i] > 0 else (Side.SELL, Side.BUY)
        sz = inst.lots_to_sz(lots)
        return [Deposit(ts, uid, "USDT", deposit), SetLeverage(ts, uid, inst.inst_id, mode, lever),
                PlaceOrder(ts, MAKER_UID, inst.inst_id, maker_side, OrderType.LIMIT, sz, px),
                PlaceOrder(ts, uid, inst.inst_id, side, OrderType.MARKET, sz, td_mode=mode)]

    def step_commands(self, k: int) -> list[Command]:
        """Step ``k`` of an open-loop path: the maker requotes round the new index, then the
        index moves."""
        return self._index_commands(self.path.times_ms[k], self.path.prices[k])

    def _index_commands(self, ts: int, px: Decimal, share: float = 1.0) -> list[Command]:
        return [*self.maker.requote(self.exchange.state, px, ts, share),
                SetIndexPrice(ts, self.inst.inst_family, px)]

    def run_step(self, k: int) -> list[Event]:
        """Execute step ``k``; returns its events. Without feedback: :meth:`step_commands`.

        With feedback (:mod:`backstop.sim.cascade`), visit ``k`` of the path:

        1. the outstanding forced flow decays to the visit's time;
        2. the index is the exogenous price times the impact, on the tick toward the exogenous
           price; it is sent when the schedule keeps the visit or it is a new low or high of
           the indices sent so far (only those can liquidate: positions only shrink), and not
           equal to the last one sent;
        3. the flow the engine's liquidations and ADL made moves the impact at once, and the
           moved index is sent again at the same time, until a round adds no flow or the
           index is no new extreme (at most :data:`MAX_CASCADE_ROUNDS` rounds): the cascade
           runs to its end within the visit;
        4. at a bar's close the realized volatility takes the observed close, and makers'
           depth follows it at the next visit.

        The maker's ladder is scaled by the resting share when it stands on the fallback curve;
        a real depth snapshot already shows how much depth the makers withdrew.
        """
        if self.cascade is None:
            return self.exchange.execute_all(self.step_commands(k))
        cascade, ts = self.cascade, self.path.times_ms[k]
        exogenous = self.inst.px_to_ticks(self.path.prices[k])
        cascade.advance(ts)
        share = 1.0 if self.maker.depth.covers(ts, ts) else cascade.share
        events: list[Event] = []
        send = self.path.kept[k]
        for _ in range(MAX_CASCADE_ROUNDS):
            ticks = cascade.observed_ticks(exogenous)
            if not self._is_worth_sending(ticks, send):
                break
            self._record_sent(ticks)
            done = self.exchange.execute_all(self._index_commands(ts, self.inst.ticks_to_px(ticks), share))
            events.extend(done)
            flow = forced_flow_usdt(done, self.inst.inst_id, self._usdt_per_lot_tick, self.trader_side)
            if not flow:
                break
            cascade.absorb(flow)
            send = False
        self.observed_ticks.append(cascade.observed_ticks(exogenous))
        if self.path.closes[k]:
            cascade.close_bar(exogenous * math.exp(cascade.impact), 60.0 * self.path.bar_minutes)
        return events

    def drawdowns(self) -> tuple[float, float]:
        """With feedback: the largest fall from a running peak (a fraction) of the exogenous path
        and of the index after impact, over the visits run so far (the amplification's terms)."""
        n = len(self.observed_ticks)
        exogenous = np.array([float(p) for p in self.path.prices[:n]])
        observed = np.array(self.observed_ticks, dtype=np.float64) * float(self.inst.tick_sz)
        return drawdown(exogenous), drawdown(observed)

    def _is_worth_sending(self, ticks: int, kept: bool) -> bool:
        """Whether an index of ``ticks`` goes to the engine: the first, or one that differs from
        the last sent and is kept by the schedule or a new low or high of those sent."""
        if self._sent is None:
            return True
        last, low, high = self._sent
        return ticks != last and (kept or ticks < low or ticks > high)

    def _record_sent(self, ticks: int) -> None:
        low, high = (ticks, ticks) if self._sent is None else self._sent[1:]
        self._sent = (ticks, min(low, ticks), max(high, ticks))

    @property
    def _usdt_per_lot_tick(self) -> float:
        inst = self.inst
        return float(inst.ct_val * inst.lot_sz * inst.tick_sz)

    def trader_side(self, uid: int) -> int:
        """+1 long, −1 short for a trader's opening position (0 for the maker)."""
        i = uid - FIRST_TRADER_UID
        return int(self.population.side[i]) if 0 <= i < self.population.size else 0

    def account_equity(self, uid: int) -> int:
        """An account's total equity in USDT money units: cash and cross upl, plus the equity
        of each isolated position."""
        state, inst = self.exchange.state, self.inst
        total = cross_figures(state, uid, inst.settle_ccy).equity
        for pos in state.account_positions.get(uid, {}).values():
            if pos.is_isolated and pos.size_lots:
                total += isolated_equity(state, pos, inst)
        return total

    def margin_ratios(self) -> np.ndarray:
        """Margin ratio (equity / (MM + liquidation fee)) of every trader's open unit, floats
        for the report."""
        state = self.exchange.state
        out = []
        for pos in state.positions.values():
            if pos.uid == MAKER_UID or not pos.size_lots:
                continue
            equity, need = unit_equity_and_requirement(state, pos)  # the unit's, as the engine
            if need:
                out.append(equity / need)
        return np.array(out, dtype=np.float64)


def find_shared_data(name: str) -> Path | None:
    """``shared/data/<name>`` next to the working directory or the repository, if present."""
    here = Path(__file__).resolve()
    for root in (Path.cwd(), Path.cwd().parent, here.parents[3], here.parents[4]):
        candidate = root / "shared" / "data" / name
        if candidate.is_file():
            return candidate
    return None


def _with_fund(config: EngineConfig, inst: Instrument, default_usdt: float) -> EngineConfig:
    """The policy with an initial fund for the instrument's family unless it names one."""
    if config.insurance_fund.initial:
        return config
    return config.with_overrides(insurance_fund={"initial": {inst.inst_family: _usdt_up(default_usdt)}})


def parse_policy(text: str, base: EngineConfig) -> EngineConfig:
    """``--policy``: an ADL ranking name (``pro_rata``), or ``section.key=value`` pairs joined by
    commas (``adl.ranking=random,liquidation.style=full``). A list value joins its items with
    ``+`` (``waterfall.order=insurance_fund+adl``); ``insurance_fund.initial=VALUE`` sets the
    BTC-USDT fund. Raises ``ValueError`` on anything unknown or impossible."""
    from backstop.engine.config import ADL_RANKINGS, config_from_dict

    text = text.strip()
    if text in ADL_RANKINGS:
        return config_from_dict({"adl": {"ranking": text}}, base)
    sections: dict[str, dict[str, object]] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--policy: expected a ranking ({', '.join(ADL_RANKINGS)}) or "
                             f"section.key=value, got {pair!r}")
        sections.setdefault(section, {})[name] = _policy_value(section, name, value.strip())
    return config_from_dict(sections, base)


def _policy_value(section: str, name: str, value: str) -> object:
    if (section, name) == ("insurance_fund", "initial"):
        return {"BTC-USDT": value}
    if (section, name) == ("waterfall", "order"):
        return tuple(v for v in value.split("+") if v)
    return value
