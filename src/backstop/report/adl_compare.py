"""ADL policy comparison: one scenario, each ADL policy, a fund forced small.

The policies are the ranking queues (``okx`` ... ``pro_rata``: close ranked winners' positions)
and the profit haircuts (``haircut_pro_rata``, ``haircut_leverage`` and the benchmark
``haircut_min_overshoot``: winners keep their positions, :mod:`backstop.engine.haircut`).
Per policy, from the run's events (money in USDT, floats only here, in reporting):

- **needed**: the bankrupt deficit ADL covered, what the fund would otherwise have paid: for
  each queue close, how far its ADL price lies beyond the mark, times the lots
  (``max(0, AutoDeleveraged.upl_taken)``); for a haircut, the amount taken (the allocators take
  exactly the shortfall, or all the profit there is);
- **taken**: the money winners paid: ``Σ max(0, AutoDeleveraged.upl_taken)`` (the profit a
  queue winner gave up against the mark; a close at a price better than the mark is a gift,
  not a negative take) plus ``Σ ProfitHaircut.amount``;
- **profit closed**: the winners' unrealized profit at the mark on the lots ADL closed (what
  the close realized plus what it gave up against the mark: the upside they lost, the measure
  behind the Hyperliquid queue's "$60M removed"; 0 for a haircut);
- **overshoot** = profit removed − needed, where profit removed is the haircuts plus the profit
  closed (a close's gap is part of the profit it closes). This is Chitra's wealth-space
  overshoot (arXiv 2512.01112: the queue takes each ranked winner's whole profit until the
  deficit is covered), ≥ 0; a haircut allocator's is 0, the minimum any policy can reach;
- **removed / needed**: how many times the need the winners lost (Chitra's "overutilization");
- **max haircut %**: the largest share of one account's profit at the mark removed in one step
  (100 % when the queue closes a whole profitable position);
- **accounts touched**, and the **Gini** of the profit removed per account over the eligible
  winners: every trader on the deleveraged side still open when ADL first struck (untouched
  ones count as 0), plus any other account ADL touched (the maker);
- **fund revenue**: the net of the scenario's fund movements during the path (surplus and
  liquidation fees in, bankruptcy losses out, trading-fee shares in);
- **exchange revenue**: the trading fees of the path's fills that the exchange keeps (all fees
  charged, less the shares swept into funds). Both leave out the opening of the positions,
  which is the same for every policy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np

from backstop.engine.config import ADL_RANKINGS, AdlHaircut
from backstop.model.events import (
    AutoDeleveraged,
    Event,
    Filled,
    InsuranceFundChanged,
    LiquidationStarted,
    PositionChanged,
    ProfitHaircut,
)
from backstop.numeric import MONEY_SCALE
from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress

COMPARE_FUND_SHARE = 0.0002
"""The forced-small fund: 0.02 % of the population's gross notional."""
HAIRCUT_PREFIX = "haircut_"
ADL_POLICIES = (*(r.value for r in ADL_RANKINGS),
                *(HAIRCUT_PREFIX + h.value for h in AdlHaircut if h != AdlHaircut.NONE))
"""Every policy the comparison runs: the ranking queues, then the profit haircuts."""
COMPARE_COLUMNS = ("policy", "needed_usdt", "taken_usdt", "overshoot_usdt", "profit_closed_usdt",
                   "removed_over_needed", "max_haircut_pct", "accounts_touched", "gini",
                   "fund_revenue_usdt", "exchange_revenue_usdt")
"""The comparison's columns, in the order the terminal and the report show them."""


@dataclass
class _Tracker:
    """Follows one run's events to measure its ADL."""

    scenario: Scenario
    needed: int = 0
    taken: int = 0
    haircuts: int = 0
    profit_closed: int = 0
    haircut_max: float = 0.0
    per_account: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    liquidated: set[int] = field(default_factory=set)
    eligible: set[int] | None = None
    last_change: dict[tuple, PositionChanged] = field(default_factory=dict)
    fund_flow: int = 0
    fees_charged: int = 0
    fee_shares: int = 0

    def on_step(self, step: int, events: list[Event]) -> None:
        removed_now: dict[int, int] = defaultdict(int)
        share_now: dict[int, float] = defaultdict(float)
        for event in events:
            if isinstance(event, PositionChanged):  # an ADL close's comes just before its event
                self.last_change[(event.uid, event.mgn_mode)] = event
            elif isinstance(event, LiquidationStarted):
                self.liquidated.add(event.uid)
            elif isinstance(event, AutoDeleveraged):
                change = self.last_change[(event.uid, event.mgn_mode)]
                self._first_strike(event.uid, change.size_lots)
                removed_now[event.uid] += self._adl(event, change)
                # the share of the position's profit closed: its lots over the lots held before
                share_now[event.uid] += event.lots / (event.lots + abs(change.size_lots))
            elif isinstance(event, ProfitHaircut):
                self._first_strike(event.uid, -self.scenario.trader_side(event.liquidated_uid))
                removed_now[event.uid] += event.amount
                share_now[event.uid] += event.amount / event.profit
                self.needed += event.amount
                self.taken += event.amount
                self.haircuts += event.amount
                self.per_account[event.uid] += event.amount
            elif isinstance(event, Filled):
                self.fees_charged += event.taker_fee + event.maker_fee
            elif isinstance(event, InsuranceFundChanged):
                self._fund(event)
        for uid, amount in removed_now.items():
            if amount > 0:
                self.haircut_max = max(self.haircut_max, min(1.0, share_now[uid]))

    def _first_strike(self, uid: int, held_lots: int) -> None:
        """Fix the eligible winners when ADL first strikes: the traders of the struck side
        not liquidated so far."""
        if self.eligible is None:
            side = self.scenario.trader_side(uid) or (1 if held_lots > 0 else -1)
            self.eligible = {u for u in self._traders() if self.scenario.trader_side(u) == side
                             and u not in self.liquidated}

    def _adl(self, event: AutoDeleveraged, change: PositionChanged) -> int:
        """Count one queue close; returns the profit it removed: the slice's profit at the mark,
        what it realized at the ADL price plus what it gave up against the mark."""
        gap = max(0, event.upl_taken)  # the deficit this close covered: the need it met
        self.needed += gap
        self.taken += gap
        closed = max(0, change.realized_pnl + event.upl_taken)
        self.profit_closed += closed
        self.per_account[event.uid] += closed
        return closed

    def _fund(self, event: InsuranceFundChanged) -> None:
        if event.type == "platform_revenue":
            self.fee_shares += event.amt
        if event.fund_id == self.scenario.exchange.state.fund_of[self.scenario.inst.inst_id]:
            self.fund_flow += event.amt

    def _traders(self) -> range:
        from backstop.sim.scenario import FIRST_TRADER_UID
        return range(FIRST_TRADER_UID, FIRST_TRADER_UID + self.scenario.population.size)

    def row(self, policy: str) -> dict:
        eligible = (self.eligible or set()) | set(self.per_account)
        amounts = np.array([self.per_account.get(uid, 0) for uid in sorted(eligible)], dtype=float)
        usdt = float(MONEY_SCALE)
        removed = self.haircuts + self.profit_closed
        return {"policy": policy, "needed_usdt": self.needed / usdt, "taken_usdt": self.taken / usdt,
                "overshoot_usdt": (removed - self.needed) / usdt,
                "profit_closed_usdt": self.profit_closed / usdt,
                "removed_over_needed": removed / self.needed if self.needed else float("nan"),
                "max_haircut_pct": 100.0 * self.haircut_max,
                "accounts_touched": sum(1 for v in self.per_account.values() if v),
                "adl_accounts": len(self.per_account), "gini": gini(amounts),
                "eligible_winners": len(eligible), "fund_revenue_usdt": self.fund_flow / usdt,
                "exchange_revenue_usdt": (self.fees_charged - self.fee_shares) / usdt}


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative amounts (0: equal, → 1: one account takes all)."""
    if values.size == 0 or values.sum() <= 0:
        return 0.0
    x = np.sort(np.clip(values, 0, None))
    n = x.size
    return float((2.0 * np.sum(np.arange(1, n + 1) * x) / (n * x.sum())) - (n + 1) / n)


def policy_overrides(policy: str) -> dict[str, str]:
    """The ``[adl]`` keys that select a comparison policy: a ranking queue (``okx``), or a
    profit haircut (``haircut_pro_rata``); anything else raises ``ValueError``."""
    if policy not in ADL_POLICIES:
        raise ValueError(f"unknown ADL policy {policy!r}: one of {', '.join(ADL_POLICIES)}")
    if policy.startswith(HAIRCUT_PREFIX):
        return {"haircut": policy.removeprefix(HAIRCUT_PREFIX)}
    return {"ranking": policy, "haircut": AdlHaircut.NONE.value}


def compare_adl(spec: ScenarioSpec, policies: tuple[str, ...] = ADL_POLICIES,
                fund_share: float = COMPARE_FUND_SHARE, progress: bool = True) -> list[dict]:
    """One row per ADL policy; the spec's own fund is replaced by the small one."""
    rows = []
    for policy in policies:
        config = spec.config.with_overrides(adl=policy_overrides(policy), insurance_fund={"initial": {}})
        scenario = Scenario(replace(spec, config=config, fund_share=fund_share))
        tracker = _Tracker(scenario)
        result = run_stress(scenario, progress=progress, keep_events=False, on_step=tracker.on_step,
                            full_check_every=10**9)
        row = tracker.row(policy)
        row["conservation_ok"] = result.checks.ok
        rows.append(row)
        if result.interrupted:
            break
    return rows


def overshoot_sentence(rows: list[dict], queue: str = "okx",
                       haircut: str = HAIRCUT_PREFIX + AdlHaircut.PRO_RATA.value) -> str:
    """One line comparing the queue's profit removed and overshoot with the pro-rata
    haircut's and with the least overshoot of any policy run."""
    by = {r["policy"]: r for r in rows}
    if queue not in by or haircut not in by:
        return ""
    q, h = by[queue], by[haircut]
    floor = min(r["overshoot_usdt"] for r in rows)
    return (f"ADL overshoot: the {queue} queue removed {fmt_usdt(_removed(q))} USDT of winners' profit, "
            f"{_times(q)} the {fmt_usdt(q['needed_usdt'])} it needed (overshoot "
            f"{fmt_usdt(q['overshoot_usdt'])}); the pro-rata haircut removed {fmt_usdt(_removed(h))}, "
            f"{_times(h)} its {fmt_usdt(h['needed_usdt'])} (overshoot {fmt_usdt(h['overshoot_usdt'])}; "
            f"the least of any policy: {fmt_usdt(floor)})")


def _removed(row: dict) -> float:
    return row["needed_usdt"] + row["overshoot_usdt"]


def _times(row: dict) -> str:
    ratio = row["removed_over_needed"]
    return "with nothing needed of" if ratio != ratio else f"{ratio:,.2f}×"  # NaN: none needed


def fmt_usdt(value: float) -> str:
    return f"{Decimal(str(round(value, 2))):,.2f}"
