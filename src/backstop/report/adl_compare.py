"""ADL policy comparison: one scenario, each ranking policy, a fund forced small.

Per policy, from the run's events (money in USDT, floats only here, in reporting):

- **needed**: the bankrupt deficits ADL covered, what the fund would have paid: for each
  ADL trade, ``max(0, loss at the mark)`` of the deleveraged slice, i.e. how far its
  bankruptcy price lies beyond the mark, times the lots;
- **taken**: ``Σ max(0, AutoDeleveraged.upl_taken)`` (the engine's figure: the profit a winner
  gave up against the mark; a close at a price better than the mark is a gift, not a
  negative take); **overshoot** = taken − needed (≥ 0; 0 when ADL runs at the bankruptcy
  price, which takes exactly the deficit);
- **profit closed**: the winners' unrealized profit on the lots ADL closed (the upside they
  lost, the measure behind the Hyperliquid queue's "$60M removed");
- **max haircut %**: the largest ``taken / equity before`` of one account in one step;
- **accounts touched**, and the **Gini** of total taken per account over the eligible
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

from backstop.engine.config import ADL_RANKINGS
from backstop.model.events import (
    AutoDeleveraged,
    Event,
    Filled,
    InsuranceFundChanged,
    LiquidationStarted,
    MarkPriceUpdated,
    PositionChanged,
)
from backstop.numeric import MONEY_SCALE
from backstop.sim.scenario import Scenario, ScenarioSpec
from backstop.sim.stress import run_stress

COMPARE_FUND_SHARE = 0.0002
"""The forced-small fund: 0.02 % of the population's gross notional."""
COMPARE_COLUMNS = ("policy", "needed_usdt", "taken_usdt", "overshoot_usdt", "profit_closed_usdt",
                   "max_haircut_pct", "accounts_touched", "gini", "fund_revenue_usdt",
                   "exchange_revenue_usdt")
"""The comparison's columns, in the order the terminal and the report show them."""


@dataclass
class _Tracker:
    """Follows one run's events to measure its ADL."""

    scenario: Scenario
    needed: int = 0
    taken: int = 0
    profit_closed: int = 0
    haircut_max: float = 0.0
    per_account: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    liquidated: set[int] = field(default_factory=set)
    eligible: set[int] | None = None
    positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    fund_flow: int = 0
    fees_charged: int = 0
    fee_shares: int = 0

    def on_step(self, step: int, events: list[Event]) -> None:
        mark = self.scenario.exchange.state.mark_ticks[self.scenario.inst.inst_id]
        taken_now: dict[int, int] = defaultdict(int)
        before = dict(self.positions)
        for event in events:
            if isinstance(event, MarkPriceUpdated):
                mark = event.mark_ticks
            elif isinstance(event, PositionChanged):
                self.positions[(event.uid, event.mgn_mode)] = (event.size_lots, event.cost)
            elif isinstance(event, LiquidationStarted):
                self.liquidated.add(event.uid)
            elif isinstance(event, AutoDeleveraged):
                self._adl(event, mark, before.get((event.uid, event.mgn_mode), (0, 0)), taken_now)
            elif isinstance(event, Filled):
                self.fees_charged += event.taker_fee + event.maker_fee
            elif isinstance(event, InsuranceFundChanged):
                self._fund(event)
        for uid, amount in taken_now.items():
            equity_before = self.scenario.account_equity(uid) + amount
            if equity_before > 0:
                self.haircut_max = max(self.haircut_max, amount / equity_before)

    def _adl(self, event: AutoDeleveraged, mark: int, held: tuple[int, int],
             taken_now: dict[int, int]) -> None:
        if self.eligible is None:
            side = self.scenario.trader_side(event.uid) or (1 if held[0] > 0 else -1)
            self.eligible = {uid for uid in self._traders() if self.scenario.trader_side(uid) == side
                             and uid not in self.liquidated}
        side = 1 if held[0] > 0 else -1
        value = self._money(event.lots, mark - event.px_ticks)  # per long: mark − price
        self.needed += max(0, side * value)
        self.taken += max(0, event.upl_taken)
        taken_now[event.uid] += side * value
        self.per_account[event.uid] += max(0, event.upl_taken)
        if held[0]:
            upl = self._money(held[0], mark) - held[1]
            self.profit_closed += max(0, upl * event.lots // abs(held[0]))

    def _fund(self, event: InsuranceFundChanged) -> None:
        if event.type == "platform_revenue":
            self.fee_shares += event.amt
        if event.fund_id == self.scenario.exchange.state.fund_of[self.scenario.inst.inst_id]:
            self.fund_flow += event.amt

    def _money(self, lots: int, ticks: int) -> int:
        inst = self.scenario.inst
        return int(inst.lots_to_sz(lots) * inst.ct_val * inst.ticks_to_px(ticks) * MONEY_SCALE)

    def _traders(self) -> range:
        from backstop.sim.scenario import FIRST_TRADER_UID
        return range(FIRST_TRADER_UID, FIRST_TRADER_UID + self.scenario.population.size)

    def row(self, policy: str) -> dict:
        eligible = (self.eligible or set()) | set(self.per_account)
        amounts = np.array([self.per_account.get(uid, 0) for uid in sorted(eligible)], dtype=float)
        usdt = float(MONEY_SCALE)
        return {"policy": policy, "needed_usdt": self.needed / usdt, "taken_usdt": self.taken / usdt,
                "overshoot_usdt": (self.taken - self.needed) / usdt,
                "profit_closed_usdt": self.profit_closed / usdt,
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


def compare_adl(spec: ScenarioSpec, policies: tuple[str, ...] = ADL_RANKINGS,
                fund_share: float = COMPARE_FUND_SHARE, progress: bool = True) -> list[dict]:
    """One row per ranking policy; the spec's own fund is replaced by the small one."""
    rows = []
    for policy in policies:
        config = spec.config.with_overrides(adl={"ranking": policy},
                                            insurance_fund={"initial": {}})
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


def fmt_usdt(value: float) -> str:
    return f"{Decimal(str(round(value, 2))):,.2f}"
