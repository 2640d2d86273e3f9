"""Random liquidation cascades under random policies: conservation after every step (the
exchange checks its invariants), no fund below zero, ADL only against profitable opposite
positions and never more than needed, and an exact replay."""

from __future__ import annotations

import os
from collections import defaultdict
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_strategies import adl_policies, liquidation_styles

from backstop.engine.config import config_from_dict
from backstop.engine.exchange import Exchange
from backstop.math.values import calculate_upl
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import (
    CancelOrder,
    Deposit,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    SettleFunding,
)
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import (
    AutoDeleveraged,
    Filled,
    LiquidationStarted,
    MarkPriceUpdated,
    PositionChanged,
)

BTC = "BTC-USDT-SWAP"
MAKER = 100
CATALOGUE = default_catalogue().subset([BTC])
EXAMPLES = int(os.environ.get("BACKSTOP_HYPOTHESIS_EXAMPLES", "60"))

accounts = st.lists(st.tuples(
    st.sampled_from([MarginMode.CROSS, MarginMode.ISOLATED]),
    st.integers(5, 50),                      # leverage
    st.sampled_from([Side.BUY, Side.BUY, Side.BUY, Side.SELL]),  # long-skewed
    st.integers(1, 60),                      # contracts
), min_size=3, max_size=7)
moves = st.lists(st.tuples(st.one_of(st.integers(-40, 25), st.sampled_from([-150, -200, 120])),
                           st.sampled_from(["quote", "quote", "pull", "deep"])),
                 min_size=4, max_size=12)   # per-mille steps with crashes and spikes; book mode
policies = st.fixed_dictionaries({
    "liquidation": liquidation_styles,
    "adl": adl_policies,
    "waterfall": st.sampled_from([
        {"order": ["insurance_fund", "adl"]},
        {"order": ["insurance_fund", "vault", "adl"], "vault_capital": {"USDT": "30000"}},
        {"order": ["insurance_fund", "socialize"]},
    ]),
    "insurance_fund": st.sampled_from([{}, {"initial": {"BTC-USDT": "2000"}},
                                       {"initial": {"BTC-USDT": "200000"}}]),
    "mark": st.sampled_from([{"smoothing": "0"}, {"smoothing": "0.3"}]),
})


def _ladder(ex, ts, px, mode="quote", deep_last=True):
    """The maker cancels its orders and quotes 5 levels each side, 0.4% apart ("deep": 4%
    apart, "pull": no quotes at all)."""
    events = []
    for ord_id in sorted(ex.state.open_orders.get(MAKER, {})):
        events += ex.execute(CancelOrder(ts, MAKER, BTC, ord_id))
    for k in range(1, 6) if mode != "pull" else ():
        step = px * D(4 * k if mode == "quote" else 40 * k) / 1000
        for side, level in ((Side.BUY, px - step), (Side.SELL, px + step)):
            size = D(30) if k < 5 or not deep_last else D(3000)  # the last level is deep enough for everyone
            events += ex.execute(PlaceOrder(ts, MAKER, BTC, side, OrderType.LIMIT, size,
                                            level.quantize(D("0.1"))))
    return events


class Tracker:
    """Follows positions through PositionChanged events to check each ADL trade."""

    def __init__(self, ex):
        self.pos = {(p.uid, p.mgn_mode.value): (p.size_lots, p.cost)
                    for p in ex.state.positions.values()}
        self.prev = {}
        self.mark = ex.state.mark_ticks[BTC]
        self.inst = CATALOGUE.get(BTC)

    def check(self, events):
        started = {}
        adl_lots = defaultdict(int)
        closed = defaultdict(int)
        for e in events:
            if isinstance(e, MarkPriceUpdated):
                self.mark = e.mark_ticks
            elif isinstance(e, PositionChanged):
                key = (e.uid, e.mgn_mode)
                self.prev[key] = self.pos.get(key, (0, 0))
                self.pos[key] = (e.size_lots, e.cost)
            elif isinstance(e, LiquidationStarted):
                started[(e.uid, e.mgn_mode)] = (e.lots, self.pos[(e.uid, e.mgn_mode)][0])
            elif isinstance(e, AutoDeleveraged):
                size, cost = self.prev[(e.uid, e.mgn_mode)]
                liq_lots, liq_size = next(v for (u, _m), v in started.items() if u == e.liquidated_uid)
                assert size * liq_size < 0, "ADL on the same side"
                assert calculate_upl(self.inst, size, cost, self.mark) > 0, "ADL of a loser"
                assert e.lots <= abs(size)
                adl_lots[e.liquidated_uid] += e.lots
                assert adl_lots[e.liquidated_uid] <= liq_lots, "ADL closed more than needed"
            elif isinstance(e, Filled) and e.category != "normal":
                closed[e.taker_uid] += e.lots
        for uid, lots in closed.items():
            assert lots <= sum(v[0] for (u, _m), v in started.items() if u == uid)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accounts=accounts, moves=moves, policy=policies)
def test_random_cascades(accounts, moves, policy):
    _run_cascade(accounts, moves, policy)


def _run_cascade(accounts, moves, policy, deep_last=True):
    config = config_from_dict(policy)
    ex = Exchange(CATALOGUE, config, check_invariants=True)
    ts, px = 0, D(100_000)
    ex.execute(SetIndexPrice(ts, "BTC-USDT", px))
    ex.execute(Deposit(ts, MAKER, "USDT", D(50_000_000)))
    _ladder(ex, ts, px, deep_last=deep_last)
    for uid, (mode, lever, side, contracts) in enumerate(accounts, start=1):
        # enough for the IM and fees with a little spare
        need = D(contracts) * px / 100 / lever * D("1.05") + 50
        ex.execute(Deposit(ts, uid, "USDT", need.quantize(D("0.01"))))
        ex.execute(SetLeverage(ts, uid, BTC, mode, D(lever)))
        ex.execute(PlaceOrder(ts, uid, BTC, side, OrderType.MARKET, D(contracts), td_mode=mode))
        _ladder(ex, ts, px, deep_last=deep_last)
    tracker = Tracker(ex)
    for i, (move, book) in enumerate(moves):
        ts += 60_000
        px = max(D(1000), (px * (1000 + move) / 1000).quantize(D("0.1")))
        events = ex.execute(SetIndexPrice(ts, "BTC-USDT", px))
        tracker.check(events)
        if i % 4 == 3:
            tracker.check(ex.execute(SettleFunding(ts, BTC)))
        tracker.check(_ladder(ex, ts, px, book, deep_last))
        for (kind, owner, _c), value in ex.state.ledger.balances.items():
            assert kind != "fund" or value >= 0, (owner, value)
        longs = sum(p.size_lots for p in ex.state.positions.values() if p.size_lots > 0)
        shorts = -sum(p.size_lots for p in ex.state.positions.values() if p.size_lots < 0)
        assert longs == shorts
    assert Exchange.replay(ex.log, CATALOGUE, config).state_hash() == ex.state_hash()


def test_isolated_partly_closed_liquidation_leaves_no_negative_cash():
    # regression found by test_random_cascades (fixed in src meanwhile): account 3 (isolated
    # 7x, 49 contracts) is liquidated at 85,000 but the book and the socialize step close only
    # 48 contracts; the slice is not a
    # whole unit, so only the fee is settled and its realized loss stays as negative cash,
    # which the next step's whole-unit settlement (a delta from that cash) never covers.
    cross, iso = MarginMode.CROSS, MarginMode.ISOLATED
    _run_cascade([(cross, 7, Side.BUY, 45), (cross, 7, Side.BUY, 57), (iso, 7, Side.BUY, 49)],
                 [(0, "quote"), (0, "deep"), (-150, "quote"), (0, "quote")],
                 {"liquidation": {"style": "okx_tiers"},
                  "adl": {"ranking": "okx", "price": "bankruptcy", "seed": 0},
                  "waterfall": {"order": ["insurance_fund", "socialize"]},
                  "insurance_fund": {}, "mark": {"smoothing": "0"}}, deep_last=False)


# -- endogenous cascades: forced flow moves the index (sim/cascade.py) -------------------------

@settings(max_examples=max(3, EXAMPLES // 10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(oi_share=st.sampled_from([0.003, 0.03, 0.3, 1.0]), lever=st.sampled_from([0.5, 1.0, 3.0]),
       seed=st.integers(0, 50), ranking=st.sampled_from(["okx", "pro_rata", "random"]),
       fund=st.sampled_from(["0", "500", "1000000"]))
def test_endogenous_cascades_keep_every_invariant(tmp_path_factory, oi_share, lever, seed, ranking, fund):
    # A crash with the population's flow fed back, up to the population being the whole market:
    # the engine checks every invariant after every command, and each index it got is the
    # exogenous price moved by the impact, rounded toward the exogenous tick.
    from backstop.sim.amplification import cell_spec
    from backstop.sim.feedback import BTC_FEEDBACK
    from backstop.sim.scenario import Scenario, ScenarioSpec
    from backstop.sim.stress import run_stress
    from shared_data import crash_closes, write_klines

    klines = write_klines(tmp_path_factory.mktemp("crash") / "k.csv", crash_closes(90))
    policy = config_from_dict({"adl": {"ranking": ranking},
                               "insurance_fund": {"initial": {"BTC-USDT": fund}}})
    spec = cell_spec(ScenarioSpec(prices=klines, n_accounts=30, seed=seed, config=policy), BTC_FEEDBACK,
                     oi_share, lever)
    scenario = Scenario(spec)
    scenario.exchange = Exchange(scenario.exchange.catalogue, scenario.config, check_invariants=True,
                                 keep_log=False)
    result = run_stress(scenario, progress=False, full_check_every=1)
    assert result.checks.violations == []
    sent = [e.mark_ticks for e in result.events if isinstance(e, MarkPriceUpdated)]
    assert sent and min(sent) >= 1
    exogenous = [scenario.inst.px_to_ticks(p) for p in scenario.path.prices]
    assert len(scenario.observed_ticks) == len(exogenous)
    assert min(scenario.observed_ticks) <= min(exogenous)  # forced selling never lifts the low
    exogenous_fall, cascade_fall = scenario.drawdowns()
    assert cascade_fall >= exogenous_fall - 1e-12
