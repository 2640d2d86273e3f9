"""The risk pass through the screen gives exactly what the exact scan gives: the same events
(liquidations, ADL, warnings in order, ADL end), and after every command the same warned
set, progressive-liquidation freezes, fund ADL states and ADL indicators; under OKX's
profile with several policies, and under Bybit's (MM valued at the entry value).

Two exchanges, one on each path, run the same seeded random market in lockstep (the chaos
market of :mod:`backstop.sim.chaos`: a maker's ladder, leveraged cross and isolated takers,
crashes with the book pulled, funding, withdrawals)."""

from __future__ import annotations

import random
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backstop.engine.config import EngineConfig
from backstop.engine.exchange import Exchange
from backstop.engine.unit_finder import OpeningOrder
from backstop.engine.venues import venue_profile
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import CheckRisk, Deposit, PlaceOrder, SetIndexPrice, SetLeverage
from backstop.model.enums import MarginMode, OrderType, Side
from backstop.model.events import LiquidationWarning
from backstop.sim.chaos import INSTRUMENTS, _Market, _opening, _round

POLICIES = {
    "okx": {},
    "progressive_hyperliquid": {"liquidation": {"style": "progressive"}, "adl": {"ranking": "hyperliquid"}},
    "binance_ranking": {"adl": {"ranking": "binance"}, "liquidation": {"warning_ratio": "1.5"}},
    "bitmex_adl_only": {"adl": {"ranking": "bitmex"}, "waterfall": {"order": ["adl"]},
                        "liquidation": {"warning_ratio": "8"}},
}


def _config(screen: str, policy: dict, base: EngineConfig | None = None) -> EngineConfig:
    return (base or EngineConfig()).with_overrides(
        risk={"screen": screen},
        insurance_fund={"initial": {"BTC-USDT": "300", "ETH-USDT": "100", "BTC-USD": "0.005"}},
        **policy)


def _observed(ex: Exchange) -> tuple:
    state = ex.state
    shown = {key: rank for key, rank in state.adl_rank.items() if rank}  # absent reads as 0
    return (set(state.warned), dict(state.liquidation_cooldown), shown,
            {f.fund_id: f.adl_state for f in state.funds.values()}, ex.state_hash())


def run_lockstep(seed: int, policy: dict, accounts: int, rounds: int,
                 venue: str = "okx") -> dict[str, int]:
    """Run both paths command by command under a venue profile; assert equality after each;
    count event kinds (and the commands after which a progressive liquidation was frozen)."""
    profile = venue_profile(venue)
    cat = profile.catalogue().subset(list(INSTRUMENTS))
    exact = Exchange(cat, _config("exact", policy, profile.config), keep_log=False)
    screened = Exchange(cat, _config("vectorised", policy, profile.config), keep_log=False)
    market = _Market(exact, random.Random(seed), {i.inst_family: i.index_px for i in cat})
    kinds: dict[str, int] = {}

    def step(command) -> None:
        events = exact.execute(command)
        assert screened.execute(command) == events, command
        assert _observed(screened) == _observed(exact), command
        for event in events:
            kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1
        kinds["frozen after a command"] = kinds.get("frozen after a command", 0) + \
            bool(exact.state.liquidation_cooldown)

    for command in _opening(market, accounts):
        step(command)
    for _ in range(rounds):
        for command in _round(market, accounts):
            step(command)
    assert screened.units.screen is not None  # the screen path really ran
    return kinds


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_screen_pass_equals_exact_pass(name):
    kinds = run_lockstep(seed=5, policy=POLICIES[name], accounts=40, rounds=120)
    # the run exercised what the pass decides
    for kind in ("LiquidationWarning", "LiquidationStarted"):
        assert kinds.get(kind, 0) > 0, kind
    if "progressive" in name:
        assert kinds["frozen after a command"] > 0


@pytest.mark.parametrize("warning_ratio", ["1.5", "3.0"])
def test_screen_pass_equals_exact_pass_with_mm_at_entry(warning_ratio):
    """Bybit's profile values MM at the entry value (linear and inverse): the screen's kernels
    take each slot's entry notional for the MM term, and still give the exact pass's events."""
    assert {i.mm_valuation.value for i in venue_profile("bybit").catalogue()} == {"entry"}
    kinds = run_lockstep(seed=5, policy={"liquidation": {"warning_ratio": warning_ratio}},
                         accounts=40, rounds=120, venue="bybit")
    for kind in ("LiquidationWarning", "LiquidationStarted"):
        assert kinds.get(kind, 0) > 0, kind


def test_the_runs_reach_adl_and_its_end():
    kinds = run_lockstep(seed=11, policy=POLICIES["bitmex_adl_only"], accounts=40, rounds=200)
    assert kinds.get("AutoDeleveraged", 0) > 0
    assert kinds.get("AdlStateChanged", 0) > 1  # ADL starts, and ends


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), policy=st.sampled_from(sorted(POLICIES)),
       accounts=st.integers(3, 30), warning_ratio=st.sampled_from(["1.01", "1.2", "3.0", "12"]),
       venue=st.sampled_from(["okx", "bybit"]))
def test_property_random_markets_both_ways(seed, policy, accounts, warning_ratio, venue):
    overrides = {**POLICIES[policy]}
    overrides["liquidation"] = {**overrides.get("liquidation", {}), "warning_ratio": warning_ratio}
    run_lockstep(seed, overrides, accounts, rounds=25, venue=venue)


def test_switching_to_the_screen_mid_run_keeps_the_warned_set():
    """``auto`` builds the screen once the book holds enough positions, with warnings already
    given: its flags start from the warned set (units gone by then are dropped next pass)."""
    policy = {"risk": {"vectorised_from": 60}}
    cat = default_catalogue().subset(list(INSTRUMENTS))
    exact = Exchange(cat, _config("exact", {}), keep_log=False)
    auto = Exchange(cat, EngineConfig().with_overrides(
        insurance_fund={"initial": {"BTC-USDT": "300", "ETH-USDT": "100", "BTC-USD": "0.005"}},
        **policy), keep_log=False)
    market = _Market(exact, random.Random(3), {i.inst_family: i.index_px for i in cat})
    switched_with_warnings = False
    for command in [*_opening(market, 40), *(c for _ in range(80) for c in _round(market, 40))]:
        before = auto.units.screen is None and bool(auto.state.warned)
        assert auto.execute(command) == exact.execute(command), command
        assert _observed(auto) == _observed(exact), command
        switched_with_warnings |= before and auto.units.screen is not None
    assert switched_with_warnings


def _isolated_long(ex: Exchange, ts: int, uid: int, lever: str, sz: str) -> None:
    inst = ex.catalogue.get("BTC-USDT-SWAP")
    px = inst.index_px
    ex.execute_all([Deposit(ts, uid, "USDT", Decimal("100000")),
                    SetLeverage(ts, uid, inst.inst_id, MarginMode.ISOLATED, Decimal(lever)),
                    PlaceOrder(ts, 1, inst.inst_id, Side.SELL, OrderType.LIMIT, Decimal(sz), px),
                    PlaceOrder(ts, uid, inst.inst_id, Side.BUY, OrderType.MARKET, Decimal(sz),
                               td_mode=MarginMode.ISOLATED)])


@pytest.mark.parametrize("screen", ["exact", "vectorised"])
def test_a_warned_position_closed_by_a_trade_leaves_the_warned_set(screen):
    ex = Exchange(default_catalogue(), _config(screen, {}))
    inst = ex.catalogue.get("BTC-USDT-SWAP")
    ex.execute(Deposit(0, 1, "USDT", Decimal("10000000")))
    _isolated_long(ex, 0, 2, "100", "1")  # 100x: under a 300% margin ratio at once
    _isolated_long(ex, 0, 3, "2", "1")  # 2x: far above it
    events = ex.execute(CheckRisk(1))
    assert [(e.uid, e.inst_id, e.mgn_mode) for e in events if isinstance(e, LiquidationWarning)] == \
        [(2, inst.inst_id, "isolated")]
    assert ex.state.warned == {(2, inst.inst_id, "isolated")}
    ex.execute_all([PlaceOrder(2, 1, inst.inst_id, Side.BUY, OrderType.LIMIT, Decimal("1"), inst.index_px),
                    PlaceOrder(2, 2, inst.inst_id, Side.SELL, OrderType.MARKET, Decimal("1"),
                               td_mode=MarginMode.ISOLATED)])
    assert ex.state.existing_position(2, inst.inst_id, MarginMode.ISOLATED) is None
    assert ex.state.warned  # a warning state changes in risk passes only
    ex.execute(CheckRisk(3))
    assert ex.state.warned == set()
    _isolated_long(ex, 4, 2, "100", "1")  # reopened: warned again, once
    assert sum(isinstance(e, LiquidationWarning) for e in ex.execute(CheckRisk(5))) == 1


@pytest.mark.parametrize("screen", ["exact", "vectorised"])
def test_tied_scores_rank_in_the_order_the_positions_were_opened(screen):
    """Identical positions score exactly alike: the indicator orders them as they were opened
    (not by account id), on both paths."""
    ex = Exchange(default_catalogue(), _config(screen, {}))
    inst = ex.catalogue.get("BTC-USDT-SWAP")
    ex.execute(Deposit(0, 1, "USDT", Decimal("10000000")))
    opened = [9, 3, 7, 5, 12, 4, 11, 6, 10, 8]
    for uid in opened:
        _isolated_long(ex, 0, uid, "10", "1")
    ex.execute(SetIndexPrice(1, inst.inst_family, inst.index_px * Decimal("1.01")))
    ranks = [ex.state.adl_rank[(uid, inst.inst_id, MarginMode.ISOLATED)] for uid in opened]
    assert ranks == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=300), tail=st.integers(1, 8))
def test_opening_order_is_the_dicts_order_through_opens_closes_and_rebuilds(ops, tail):
    """``OpeningOrder`` answers as a scan of ``state.positions`` would, after any sequence of
    positions opened (appended) and closed (removed), across index rebuilds."""
    state = SimpleNamespace(positions={})  # only the positions dict is read
    order = OpeningOrder()
    order.TAIL = tail
    for opened, k in ops:
        key = (k, "X", MarginMode.CROSS)
        if opened and key not in state.positions:
            state.positions[key] = object()
        elif not opened:
            state.positions.pop(key, None)
        live = list(state.positions)
        asked = live[::2]
        answer = order.of(state, asked)
        assert sorted(asked, key=answer.__getitem__) == asked
