"""An adversarial trader crowd for fuzzing the engine's money rules.

:class:`Adversary` turns a random source into commands that try to break the money: every
command type, both margin modes, linear and inverse instruments, leverage from 1× to the
maximum, margin reductions at and just past the limit, withdrawals of exactly the maximum
and one unit more, prices inside and outside the band, reduce-only and duplicate client ids,
index jumps from −99% to +1000%, funding, fund injections, and malformed numbers and ids.

The same class drives the Hypothesis state machine in the tests (with Hypothesis's shrinkable
``random``) and ``bench/fuzz_money.py`` for long runs (with a seeded ``random.Random``), so
both explore one space. :func:`random_policy` draws a policy combination.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backstop.engine.config import (
    ADL_PRICES,
    ADL_RANKINGS,
    FUND_LAYOUTS,
    LIQUIDATION_STYLES,
    EngineConfig,
    config_from_dict,
)
from backstop.engine.exchange import Exchange
from backstop.engine.queries import max_margin_reduction, max_withdrawal
from backstop.model import commands as c
from backstop.model.catalogue import Catalogue, default_catalogue
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.events import (
    AutoDeleveraged,
    DeficitCovered,
    Event,
    LiquidationSettled,
    LiquidationStarted,
    Rejected,
)
from backstop.numeric import money_to_decimal, round_to

INSTRUMENTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP")
"""Two linear instruments in one currency (cross contagion) and an inverse one."""
KINDS = ("deposit", "withdraw", "order", "order", "order", "order", "cancel", "leverage",
         "margin", "index", "index", "funding", "inject", "check", "garbage")
"""Command kinds, orders and index moves weighted up."""
BAD_NUMBERS = (Decimal("1e30"), Decimal("1e1000"), Decimal("NaN"), Decimal("sNaN"),
               Decimal("-Infinity"), Decimal("0"), Decimal("-5"), Decimal("0.000000001"),
               "7", None, 1.5)
WATERFALLS = (("insurance_fund", "adl"), ("insurance_fund", "vault", "adl"),
              ("insurance_fund", "socialize"), ("insurance_fund", "vault", "socialize"))


def catalogue_for_fuzzing() -> Catalogue:
    return default_catalogue().subset(list(INSTRUMENTS))


def random_policy(rnd: random.Random) -> dict[str, Any]:
    """One policy combination as a config dict (fund sizes from empty to rich)."""
    fund = rnd.choice(["0", "0", "50", "5000", "5000000"])
    return {
        "liquidation": {"style": rnd.choice(LIQUIDATION_STYLES),
                        "progressive_cooldown_ms": rnd.choice([0, 1_000, 30_000])},
        "insurance_fund": {"layout": rnd.choice(FUND_LAYOUTS),
                           "initial": {} if rnd.random() < 0.3 else
                           {"BTC-USDT": fund, "ETH-USDT": fund, "BTC-USD": "1"}},
        "adl": {"ranking": rnd.choice(ADL_RANKINGS), "price": rnd.choice(ADL_PRICES),
                "seed": rnd.randrange(1000)},
        "waterfall": {"order": list(rnd.choice(WATERFALLS)),
                      "vault_capital": {"USDT": rnd.choice(["1000", "100000"]), "BTC": "1"}},
        "price_limit": {"band": rnd.choice(["0.02", "0.05", "0.2"])},
        "risk": {"screen": rnd.choice(["exact", "vectorised"])},
        "mark": {"smoothing": rnd.choice(["0", "0.2"])},
    }


def build_config(policy: dict[str, Any]) -> EngineConfig:
    """A config from :func:`random_policy`, with shared funds keyed by their shared id."""
    if policy["insurance_fund"]["layout"] == "shared" and policy["insurance_fund"]["initial"]:
        initial = policy["insurance_fund"]["initial"]
        policy = {**policy, "insurance_fund": {
            **policy["insurance_fund"],
            "initial": {"SWAP:shared:USDT": initial["BTC-USDT"],
                        "SWAP:shared:BTC": initial["BTC-USD"]}}}
    return config_from_dict(policy)


@dataclass
class Tally:
    """What a run exercised."""

    commands: int = 0
    rejected: int = 0
    events: Counter = field(default_factory=Counter)
    liquidations: int = 0
    adl_trades: int = 0
    socialized_events: int = 0
    deficits_covered: int = 0

    def add(self, events: list[Event]) -> None:
        self.commands += 1
        for event in events:
            self.events[type(event).__name__] += 1
            if isinstance(event, Rejected):
                self.rejected += 1
            elif isinstance(event, LiquidationStarted):
                self.liquidations += 1
            elif isinstance(event, AutoDeleveraged):
                self.adl_trades += 1
            elif isinstance(event, LiquidationSettled) and event.socialized:
                self.socialized_events += 1
            elif isinstance(event, DeficitCovered):
                self.deficits_covered += 1
                self.socialized_events += bool(event.socialized)

    def merge(self, other: Tally) -> None:
        self.commands += other.commands
        self.rejected += other.rejected
        self.events.update(other.events)
        self.liquidations += other.liquidations
        self.adl_trades += other.adl_trades
        self.socialized_events += other.socialized_events
        self.deficits_covered += other.deficits_covered


class Adversary:
    """Commands against one exchange, chosen by the ``rnd`` passed to each call."""

    def __init__(self, exchange: Exchange, accounts: int = 6) -> None:
        self.ex = exchange
        self.uids = list(range(1, accounts + 1))
        self.ts = 0
        self.families = sorted({i.inst_family for i in exchange.catalogue})
        self.cl_ids = ["a", "b", "c"]

    def fund_everyone(self, rnd: random.Random) -> list[Event]:
        """Opening deposits, so that the crowd can trade from the first command."""
        events: list[Event] = []
        for uid in self.uids:
            events += self.ex.execute(c.Deposit(self.ts, uid, "USDT", self._money(rnd, 20_000)))
            events += self.ex.execute(c.Deposit(self.ts, uid, "BTC", self._money(rnd, 1)))
        return events

    def step(self, rnd: random.Random, kind: str | None = None) -> tuple[c.Command, list[Event]]:
        """Make one command of ``kind`` (random when ``None``), run it, return both."""
        self.ts += rnd.choice([1, 10, 1_000, 60_000, 3_600_000])
        command = getattr(self, f"_{kind or rnd.choice(KINDS)}")(rnd)
        return command, self.ex.execute(command)

    # -- helpers ------------------------------------------------------------------------------
    def _uid(self, rnd: random.Random) -> int:
        return rnd.choice(self.uids)

    def _inst(self, rnd: random.Random):
        return self.ex.catalogue.get(rnd.choice(INSTRUMENTS))

    def _money(self, rnd: random.Random, scale: int) -> Decimal:
        """A valid amount around ``scale`` units, 8 decimals at most."""
        return Decimal(rnd.randrange(1, scale * 10**8)).scaleb(-8)

    def _mark_px(self, inst) -> Decimal:
        return self.ex.state.mark_ticks[inst.inst_id] * inst.tick_sz

    # -- commands ----------------------------------------------------------------------------
    def _deposit(self, rnd: random.Random) -> c.Command:
        ccy = rnd.choice(["USDT", "USDT", "BTC"])
        return c.Deposit(self.ts, self._uid(rnd), ccy, self._money(rnd, 5_000 if ccy == "USDT" else 1))

    def _withdraw(self, rnd: random.Random) -> c.Command:
        uid, ccy = self._uid(rnd), rnd.choice(["USDT", "BTC"])
        limit = max_withdrawal(self.ex.state, uid, ccy)
        units = rnd.choice([limit, limit + 1, rnd.randrange(limit + 2)])
        return c.Withdraw(self.ts, uid, ccy, money_to_decimal(units))

    def _order(self, rnd: random.Random) -> c.Command:
        inst = self._inst(rnd)
        ord_type = rnd.choice(list(OrderType))
        # a price up to ±25% around the mark, on the tick grid, often near the mark
        spread = rnd.choice([0.0005, 0.002, 0.01, 0.05, 0.25])
        px = round_to(self._mark_px(inst) * Decimal(1 + rnd.uniform(-spread, spread)), inst.tick_sz)
        lots = rnd.choice([inst.min_lots, rnd.randrange(1, 50) * inst.min_lots,
                           rnd.randrange(1, 2_000) * inst.min_lots])
        limit_px = None if ord_type is OrderType.MARKET else max(px, inst.tick_sz)
        return c.PlaceOrder(self.ts, self._uid(rnd), inst.inst_id, rnd.choice(list(Side)), ord_type,
                            lots * inst.lot_sz, limit_px, rnd.choice(list(MarginMode)),
                            rnd.random() < 0.15, rnd.choice(["", "", *self.cl_ids]),
                            rnd.choice(list(SelfTradeMode)))

    def _cancel(self, rnd: random.Random) -> c.Command:
        uid = self._uid(rnd)
        mine = sorted(self.ex.state.open_orders.get(uid, {}).values(), key=lambda o: o.ord_id)
        if mine and rnd.random() < 0.8:
            info = rnd.choice(mine)
            return c.CancelOrder(self.ts, uid, info.inst_id, info.ord_id)
        ord_id = rnd.randrange(1, self.ex.state.next_ord_id + 2)
        return c.CancelOrder(self.ts, uid, self._inst(rnd).inst_id, ord_id)

    def _leverage(self, rnd: random.Random) -> c.Command:
        inst = self._inst(rnd)
        lever = rnd.choice(["1", "2", "5", "10", "20", "50", "66.66", "100", str(inst.max_lever)])
        mode = rnd.choice(list(MarginMode))
        return c.SetLeverage(self.ts, self._uid(rnd), inst.inst_id, mode, Decimal(lever))

    def _margin(self, rnd: random.Random) -> c.Command:
        uid, inst = self._uid(rnd), self._inst(rnd)
        pos = self.ex.state.existing_position(uid, inst.inst_id, MarginMode.ISOLATED)
        limit = max_margin_reduction(self.ex.state, pos, inst) if pos is not None and pos.size_lots else 0
        units = rnd.choice([-limit, -limit - 1, -rnd.randrange(limit + 2), rnd.randrange(1, 10**11)])
        return c.AdjustMargin(self.ts, uid, inst.inst_id, money_to_decimal(units) if units else Decimal(1))

    def _index(self, rnd: random.Random) -> c.Command:
        family = rnd.choice(self.families)
        inst = next(i for i in self.ex.catalogue if i.inst_family == family)
        move = rnd.choice([rnd.uniform(-0.02, 0.02), rnd.uniform(-0.15, 0.15),
                           rnd.choice([-0.99, -0.5, 0.5, 2.0, 10.0])])
        px = round_to(max(self._mark_px(inst) * Decimal(1 + move), inst.tick_sz), inst.tick_sz)
        return c.SetIndexPrice(self.ts, family, px)

    def _funding(self, rnd: random.Random) -> c.Command:
        return c.SettleFunding(self.ts, rnd.choice(["", *INSTRUMENTS]))

    def _inject(self, rnd: random.Random) -> c.Command:
        return c.InjectInsuranceFund(self.ts, rnd.choice(self.families), self._money(rnd, 1_000))

    def _check(self, rnd: random.Random) -> c.Command:
        return c.CheckRisk(self.ts)

    def _garbage(self, rnd: random.Random) -> c.Command:
        """A command with one malformed field."""
        bad = rnd.choice(BAD_NUMBERS)
        inst = self._inst(rnd).inst_id
        uid = rnd.choice([self._uid(rnd), 0, -3, True, "1"])
        return rnd.choice([
            c.Deposit(self.ts, uid, rnd.choice(["USDT", "FOO", ""]), bad),
            c.Withdraw(self.ts, self._uid(rnd), "USDT", bad),
            c.PlaceOrder(self.ts, self._uid(rnd), inst, Side.BUY, OrderType.LIMIT, bad, Decimal(100)),
            c.PlaceOrder(self.ts, self._uid(rnd), inst, Side.SELL, OrderType.LIMIT, Decimal(1), bad),
            c.PlaceOrder(self.ts, self._uid(rnd), inst, Side.SELL, OrderType.MARKET, Decimal(1),
                         cl_ord_id="x" * 40),
            c.SetLeverage(self.ts, self._uid(rnd), inst, MarginMode.CROSS, bad),
            c.AdjustMargin(self.ts, self._uid(rnd), inst, bad),
            c.SetIndexPrice(self.ts, rnd.choice(self.families), bad),
            c.InjectInsuranceFund(self.ts, rnd.choice(self.families), bad),
        ])


def run_episode(seed: int, commands: int, accounts: int = 6) -> Tally:
    """One fuzzing episode: a policy and a command stream drawn from ``seed``, every
    invariant checked after every command, then the log replayed to the same state hash.

    Raises ``AssertionError`` (``Invariant: ...``, with the seed and step) on any breach.
    """
    rnd = random.Random(seed)
    catalogue = catalogue_for_fuzzing()
    config = build_config(random_policy(rnd))
    exchange = Exchange(catalogue, config, check_invariants=True)
    adversary = Adversary(exchange, accounts)
    tally = Tally()
    adversary.fund_everyone(rnd)
    for step in range(commands):
        try:
            _command, events = adversary.step(rnd)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (seed {seed}, step {step})") from exc
        tally.add(events)
    replayed = Exchange.replay(exchange.log, catalogue, config)
    if replayed.state_hash() != exchange.state_hash():
        raise AssertionError(f"Invariant: replay of seed {seed} gave another state hash")
    return tally
