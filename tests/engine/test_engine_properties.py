"""Property tests: random command sequences keep every invariant, replay and codec hold.

A Hypothesis state machine drives 4 accounts through deposits, withdrawals, orders of every
type (cross and isolated, linear BTC-USDT-SWAP and inverse BTC-USD-SWAP, prices within ±20
ticks of the mark, sizes on the lot grid plus invalid ones), cancels (own and foreign),
leverage changes, margin adjustments and index moves of up to ±3%. The exchange runs with
``check_invariants=True`` so every invariant is checked after every command.

``BACKSTOP_HYPOTHESIS_EXAMPLES`` overrides the number of examples (default 200, the CI floor).
"""

from __future__ import annotations

import os
import re
from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from backstop.engine.exchange import Exchange
from backstop.model import codec
from backstop.model.catalogue import default_catalogue
from backstop.model.commands import (
    AdjustMargin,
    CancelOrder,
    Deposit,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    Withdraw,
)
from backstop.model.enums import MarginMode, OrderType, SelfTradeMode, Side
from backstop.model.events import Rejected
from backstop.state.invariants import ensure_invariants

EXAMPLES = int(os.environ.get("BACKSTOP_HYPOTHESIS_EXAMPLES", "200"))
CAT = default_catalogue().subset(["BTC-USDT-SWAP", "BTC-USD-SWAP"])
INSTS = {"BTC-USDT-SWAP": ("BTC-USDT", "USDT"), "BTC-USD-SWAP": ("BTC-USD", "BTC")}
UIDS = st.integers(1, 4)
CODE = re.compile(r"\d{5}")

# money: up to 8 decimals, mostly valid, sometimes zero/negative/too precise
amounts = st.one_of(
    st.integers(1, 10**12).map(lambda u: Decimal(u).scaleb(-8)),          # up to 10,000
    st.integers(1, 10**5).map(Decimal),                                   # whole units
    st.sampled_from([Decimal("0"), Decimal("-1"), Decimal("0.000000001")]),
)
# sizes in lots, and a few invalid sizes in contracts (zero, negative, off the lot grid)
lot_counts = st.one_of(st.integers(1, 300), st.integers(1, 300), st.sampled_from([100_000, 200_001]))
bad_sizes = st.sampled_from([Decimal("0"), Decimal("-0.1"), Decimal("0.001"), Decimal("0.15")])
levers = st.sampled_from(["1", "2", "3", "5", "10", "20", "50", "66.66", "75", "100", "125", "0.5"])


class ExchangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ex = Exchange(CAT, check_invariants=True)
        self.ts = 0
        self.new_events: list = []

    def run(self, make) -> list:
        self.ts += 1
        events = self.ex.execute(make(self.ts))
        self.new_events.extend(events)
        return events

    # ------------------------------------------------------------------ rules

    @rule(uid=UIDS, ccy=st.sampled_from(["USDT", "BTC"]), amount=amounts)
    def deposit(self, uid, ccy, amount):
        if ccy == "BTC" and amount > 10:
            amount = amount / 10_000 if amount == amount.to_integral_value() else amount
        self.run(lambda ts: Deposit(ts, uid, ccy, amount))

    @rule(uid=UIDS, ccy=st.sampled_from(["USDT", "BTC"]), amount=amounts)
    def withdraw(self, uid, ccy, amount):
        self.run(lambda ts: Withdraw(ts, uid, ccy, amount))

    @initialize(usdt=st.integers(1_000, 200_000), btc=st.integers(1, 300))
    def fund_everyone(self, usdt, btc):
        for uid in range(1, 5):
            self.run(lambda ts, uid=uid: Deposit(ts, uid, "USDT", Decimal(usdt)))
            self.run(lambda ts, uid=uid: Deposit(ts, uid, "BTC", Decimal(btc) / 100))

    def _place(self, uid, inst_id, side, ord_type, mode, offset, sz, reduce_only=False,
               stp=SelfTradeMode.CANCEL_MAKER):
        inst = CAT.get(inst_id)
        mark = self.ex.state.mark_ticks[inst_id]
        px = None if ord_type is OrderType.MARKET else inst.ticks_to_px(max(1, mark + offset))
        self.run(lambda ts: PlaceOrder(ts, uid, inst_id, side, ord_type, sz, px, mode,
                                       reduce_only, f"c{ts}", stp))

    @rule(uid=UIDS, inst_id=st.sampled_from(sorted(INSTS)), side=st.sampled_from(Side),
          ord_type=st.sampled_from(OrderType), mode=st.sampled_from(MarginMode),
          offset=st.integers(-20, 20), lots=lot_counts, bad=st.one_of(st.none(), bad_sizes),
          reduce_only=st.booleans(), stp=st.sampled_from(SelfTradeMode))
    def place_any(self, uid, inst_id, side, ord_type, mode, offset, lots, bad, reduce_only, stp):
        """Any order, including invalid sizes, reduce-only and every STP mode."""
        sz = bad if bad is not None else CAT.get(inst_id).lots_to_sz(lots)
        self._place(uid, inst_id, side, ord_type, mode, offset, sz, reduce_only, stp)

    @rule(uid=UIDS, inst_id=st.sampled_from(sorted(INSTS)), side=st.sampled_from(Side),
          ord_type=st.sampled_from([OrderType.LIMIT, OrderType.POST_ONLY]),
          mode=st.sampled_from(MarginMode), offset=st.integers(-20, 20), lots=st.integers(1, 300))
    def place_resting(self, uid, inst_id, side, ord_type, mode, offset, lots):
        """A valid limit or post-only order (builds the book)."""
        self._place(uid, inst_id, side, ord_type, mode, offset, CAT.get(inst_id).lots_to_sz(lots))

    @rule(uid=UIDS, inst_id=st.sampled_from(sorted(INSTS)), side=st.sampled_from(Side),
          ord_type=st.sampled_from([OrderType.MARKET, OrderType.IOC, OrderType.FOK, OrderType.LIMIT]),
          mode=st.sampled_from(MarginMode), offset=st.integers(0, 20), lots=st.integers(1, 300),
          reduce_only=st.booleans())
    def take(self, uid, inst_id, side, ord_type, mode, offset, lots, reduce_only):
        """A valid aggressive order priced through the mark (trades when the book has depth);
        reduce-only closes the account's own position in that mode."""
        pos = self.ex.state.existing_position(uid, inst_id, mode)
        if reduce_only and pos is not None and pos.size_lots:
            side = Side.SELL if pos.size_lots > 0 else Side.BUY
            lots = min(lots, abs(pos.size_lots))
        else:
            reduce_only = False
        signed_offset = offset if side is Side.BUY else -offset
        self._place(uid, inst_id, side, ord_type, mode, signed_offset,
                    CAT.get(inst_id).lots_to_sz(lots), reduce_only)

    @rule(maker=UIDS, taker=UIDS, inst_id=st.sampled_from(sorted(INSTS)), side=st.sampled_from(Side),
          ord_type=st.sampled_from([OrderType.MARKET, OrderType.IOC, OrderType.FOK, OrderType.LIMIT]),
          maker_mode=st.sampled_from(MarginMode), taker_mode=st.sampled_from(MarginMode),
          offset=st.integers(-20, 20), maker_lots=st.integers(1, 3000), taker_lots=st.integers(1, 3000))
    def trade(self, maker, taker, inst_id, side, ord_type, maker_mode, taker_mode, offset,
              maker_lots, taker_lots):
        """One account rests an order, another (or the same: STP) takes at its price."""
        inst = CAT.get(inst_id)
        px_ticks = max(1, self.ex.state.mark_ticks[inst_id] + offset)
        self.run(lambda ts: PlaceOrder(ts, maker, inst_id, side.opposite, OrderType.LIMIT,
                                       inst.lots_to_sz(maker_lots), inst.ticks_to_px(px_ticks),
                                       maker_mode))
        px = None if ord_type is OrderType.MARKET else inst.ticks_to_px(px_ticks)
        self.run(lambda ts: PlaceOrder(ts, taker, inst_id, side, ord_type,
                                       inst.lots_to_sz(taker_lots), px, taker_mode))

    @rule(pick=st.integers(0, 10**6), own=st.booleans(), other=UIDS)
    def cancel(self, pick, own, other):
        orders = sorted((o.uid, o.ord_id, o.inst_id)
                        for by_uid in self.ex.state.open_orders.values() for o in by_uid.values())
        if not orders:
            self.run(lambda ts: CancelOrder(ts, other, "BTC-USDT-SWAP", pick))
            return
        owner, ord_id, inst_id = orders[pick % len(orders)]
        uid = owner if own else (owner % 4) + 1          # a different account when foreign
        events = self.run(lambda ts: CancelOrder(ts, uid, inst_id, ord_id))
        if not own:
            assert isinstance(events[0], Rejected) and events[0].code == "51400"
        else:
            assert events[0].reason == "user"

    @rule(uid=UIDS, inst_id=st.sampled_from(sorted(INSTS)), mode=st.sampled_from(MarginMode),
          lever=levers)
    def set_leverage(self, uid, inst_id, mode, lever):
        self.run(lambda ts: SetLeverage(ts, uid, inst_id, mode, Decimal(lever)))

    @rule(uid=UIDS, inst_id=st.sampled_from(sorted(INSTS)), amount=amounts, add=st.booleans())
    def adjust_margin(self, uid, inst_id, amount, add):
        if INSTS[inst_id][1] == "BTC":
            amount = amount / 100_000
            amount = amount.quantize(Decimal("0.00000001")) if amount else amount
        signed = amount if add else -amount
        self.run(lambda ts: AdjustMargin(ts, uid, inst_id, signed))

    @rule(inst_id=st.sampled_from(sorted(INSTS)), bps=st.integers(-300, 300))
    def move_index(self, inst_id, bps):
        inst = CAT.get(inst_id)
        now = inst.ticks_to_px(self.ex.state.mark_ticks[inst_id])
        px = (now * (10_000 + bps) / 10_000).quantize(inst.tick_sz, rounding=ROUND_HALF_EVEN)
        self.run(lambda ts: SetIndexPrice(ts, INSTS[inst_id][0], px))

    # ------------------------------------------------------------------ checks

    @invariant()
    def invariants_hold_and_rejections_carry_codes(self):
        ensure_invariants(self.ex.state)
        for event in self.new_events:
            if isinstance(event, Rejected):
                assert CODE.fullmatch(event.code), event
        self.new_events.clear()

    def teardown(self):
        # replay: the log rebuilds the same state (and, commands re-run, the same events)
        replayed = Exchange.replay(self.ex.log, CAT)
        assert replayed.state_hash() == self.ex.state_hash()
        # codec: every command and event survives a JSON round trip unchanged
        for entry in self.ex.log:
            assert codec.loads(codec.dumps(entry.command)) == entry.command
            for event in entry.events:
                assert codec.loads(codec.dumps(event)) == event


ExchangeMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestExchangeMachine = ExchangeMachine.TestCase


# ---------------------------------------------------------------------- determinism

def _commands():
    """A flat random command list over the same two instruments (prices near the seed)."""
    inst_ids = sorted(INSTS)
    order = st.builds(
        lambda ts, uid, i, side, t, mode, off, lots: PlaceOrder(
            ts, uid, inst_ids[i], side, t, CAT.get(inst_ids[i]).lots_to_sz(lots),
            None if t is OrderType.MARKET else CAT.get(inst_ids[i]).ticks_to_px(
                CAT.get(inst_ids[i]).px_to_ticks(CAT.get(inst_ids[i]).index_px) + off), mode),
        st.just(0), UIDS, st.integers(0, 1), st.sampled_from(Side), st.sampled_from(OrderType),
        st.sampled_from(MarginMode), st.integers(-20, 20), st.integers(1, 300))
    funding = st.builds(lambda uid, usdt: Deposit(0, uid, "USDT" if usdt else "BTC",
                                                  Decimal(10_000 if usdt else 1)),
                        UIDS, st.booleans())
    cancel = st.builds(lambda uid, n: CancelOrder(0, uid, inst_ids[n % 2], n), UIDS, st.integers(1, 40))
    return st.lists(st.one_of(funding, order, order, order, cancel), min_size=5, max_size=40)


@settings(max_examples=min(EXAMPLES, 100), deadline=None)
@given(cmds=_commands())
def test_same_commands_give_identical_events_and_replay_rebuilds_the_state(cmds):
    first, second = Exchange(CAT, check_invariants=True), Exchange(CAT)
    events_a = [first.execute(c) for c in cmds]
    events_b = [second.execute(c) for c in cmds]
    assert events_a == events_b
    assert [codec.dumps(e) for evs in events_a for e in evs] == [
        codec.dumps(e) for evs in events_b for e in evs]           # byte for byte
    assert first.state_hash() == second.state_hash()
    assert Exchange.replay(first.log, CAT).state_hash() == first.state_hash()


def test_state_hash_changes_when_the_state_does():
    ex = Exchange(CAT)
    before = ex.state_hash()
    ex.execute(Deposit(0, 1, "USDT", Decimal("1")))
    assert ex.state_hash() != before
