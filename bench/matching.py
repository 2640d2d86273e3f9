"""Benchmark order matching: the bare book against two PyPI books, and the full engine path.

Run: ``python bench/matching.py`` (200,000 events, 5 timed runs each) or
``python bench/matching.py --quick``. The process pins itself to CPU 0 and reports the median of
the timed runs, by this thread's CPU time (``time.thread_time``: time the core spent on us, which
other work sharing the machine disturbs less) and by wall time. Books are run round-robin so
that noise is spread over all of them; ratios compare medians from the same run.

The stream (seeded, :func:`generate_stream`) is about 60% limit orders within 10 ticks of the
mid (some of them cross), 30% cancels of resting orders and 10% market orders. A plain reference
book generates it, so cancels always name a live order and a market order never asks for more
than the opposite side holds (``lightmatchingengine`` would rest the rest at price 0). Every book
must end with the reference's fills and resting orders.

Figures:
- ``backstop.state.book.OrderBook`` driven through its public API the way the engine drives it:
  ``would_cross`` → ``plan_match`` → ``apply_plan`` → ``rest``; ``cancel``.
- ``limit-order-book`` (C++ core behind ctypes) and ``lightmatchingengine`` (pure Python).
- ``Exchange.execute`` with ``keep_log=True`` and ``check_invariants=False``: the same mix as
  ``PlaceOrder`` / ``CancelOrder`` commands from 1,000 funded accounts (self-trade prevention
  ``cancel_maker``, as the reference applies it), each order margin-checked, matched, charged fees,
  settled in the ledger and reported as events. Its row gives the bare book's rate over the
  engine's from the same run, and (``--breakdown``) one more run timing each command alone by
  thread CPU time: the median µs of a resting limit order, a crossing limit order, a market
  order and a cancel.
Prints Markdown table rows, and the load average before and after.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

LIMIT, CANCEL, MARKET = 0, 1, 2
MID_TICKS = 1_067_546  # BTC-USDT-SWAP's default index, 106754.6 at a 0.1 tick
INST_ID = "BTC-USDT-SWAP"

Event = tuple[int, int, int, int, int, int]
"""``(kind, ord_id, side, px_ticks, lots, owner)``; a cancel's ``ord_id`` is its target."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per book (median)")
    parser.add_argument("--engine-repeat", type=int, default=3, help="timed engine runs (median)")
    parser.add_argument("--accounts", type=int, default=1000, help="owners in the engine stream")
    parser.add_argument("--quick", action="store_true", help="20,000 events, 3 runs")
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time each engine command alone, by kind (median µs)")
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeat, args.engine_repeat = 20_000, 3, 2
    return args


# ----------------------------------------------------------------------------- the stream

@dataclass
class Stream:
    events: list[Event]
    filled_lots: int
    resting: dict[int, int]  # ord_id -> remaining lots at the end
    best_bid: int | None
    best_ask: int | None
    counts: dict[int, int] = field(default_factory=dict)


class _ReferenceBook:
    """The plainest correct book: lists per price, ``min``/``max`` for the best price,
    self-trade prevention ``cancel_maker``. Only the stream generator uses it."""

    def __init__(self) -> None:
        self.sides: dict[int, dict[int, list[list[int]]]] = {1: {}, -1: {}}  # px -> [[id, rem, owner]]
        self.where: dict[int, tuple[int, int]] = {}
        self.live: list[int] = []  # for a uniform random pick
        self.live_pos: dict[int, int] = {}
        self.filled = 0

    def best(self, side: int) -> int | None:
        levels = self.sides[side]
        if not levels:
            return None
        return max(levels) if side == 1 else min(levels)

    def depth(self, side: int) -> int:
        return sum(o[1] for level in self.sides[side].values() for o in level)

    def take(self, side: int, limit: int | None, lots: int, owner: int) -> int:
        """Match a taker; returns its unfilled lots."""
        opposite = -side
        levels = self.sides[opposite]
        remaining = lots
        while remaining and levels:
            px = self.best(opposite)
            assert px is not None
            if limit is not None and (px > limit if side == 1 else px < limit):
                break
            level = levels[px]
            for entry in list(level):
                if remaining == 0:
                    break
                if entry[2] == owner:  # self-trade prevention: cancel the maker
                    self.remove(entry[0])
                    continue
                qty = min(entry[1], remaining)
                entry[1] -= qty
                remaining -= qty
                if entry[1] == 0:
                    self.remove(entry[0])
        self.filled += lots - remaining
        return remaining

    def add(self, ord_id: int, side: int, px: int, lots: int, owner: int) -> None:
        self.sides[side].setdefault(px, []).append([ord_id, lots, owner])
        self.where[ord_id] = (side, px)
        self.live_pos[ord_id] = len(self.live)
        self.live.append(ord_id)

    def remove(self, ord_id: int) -> None:
        side, px = self.where.pop(ord_id)
        level = self.sides[side][px]
        level[:] = [o for o in level if o[0] != ord_id]
        if not level:
            del self.sides[side][px]
        index = self.live_pos.pop(ord_id)
        last = self.live.pop()
        if last != ord_id:
            self.live[index] = last
            self.live_pos[last] = index

    def owner_of(self, ord_id: int) -> int:
        side, px = self.where[ord_id]
        return next(o[2] for o in self.sides[side][px] if o[0] == ord_id)


def generate_stream(n: int, seed: int, n_owners: int | None = None) -> Stream:
    """``n`` events: 30% cancels of a random resting order, 10% market orders of 1–30 lots
    (capped at the opposite depth), the rest limit orders of 1–10 lots priced 0–10 ticks on
    their own side of the mid ``(best bid + best ask) // 2``, which crosses now and then.
    Owners are the order id (no self trades) unless ``n_owners`` is given."""
    rng = random.Random(seed)
    ref = _ReferenceBook()
    events: list[Event] = []
    next_id = 1
    mid = MID_TICKS
    for _ in range(n):
        bid, ask = ref.best(1), ref.best(-1)
        if bid is not None and ask is not None:
            mid = (bid + ask) // 2
        draw = rng.random()
        side = 1 if rng.random() < 0.5 else -1
        owner_draw = rng.randrange(n_owners) + 1 if n_owners else 0
        if draw < 0.3 and ref.live:
            target = ref.live[rng.randrange(len(ref.live))]
            target_side, target_px = ref.where[target]
            owner = ref.owner_of(target)
            ref.remove(target)
            events.append((CANCEL, target, target_side, target_px, 0, owner))
            continue
        ord_id = next_id
        next_id += 1
        owner = owner_draw or ord_id
        depth = ref.depth(-side) if 0.3 <= draw < 0.4 else 0
        if depth:
            lots = min(rng.randint(1, 30), depth)
            ref.take(side, None, lots, owner)
            events.append((MARKET, ord_id, side, 0, lots, owner))
            continue
        px = mid - side * rng.randint(0, 10)
        lots = rng.randint(1, 10)
        left = ref.take(side, px, lots, owner)
        if left:
            ref.add(ord_id, side, px, left, owner)
        events.append((LIMIT, ord_id, side, px, lots, owner))
    resting = {o[0]: o[1] for levels in ref.sides.values() for level in levels.values() for o in level}
    counts = {kind: sum(1 for e in events if e[0] == kind) for kind in (LIMIT, CANCEL, MARKET)}
    return Stream(events, ref.filled, resting, ref.best(1), ref.best(-1), counts)


# ----------------------------------------------------------------------------- adapters

@dataclass
class Outcome:
    """What a replay left, for the correctness check."""

    filled_lots: int | None
    resting_count: int
    resting_lots: int
    best_bid: int | None
    best_ask: int | None
    resting: dict[int, int] | None = None
    crossed: bool = False


def replay_backstop(events: list[Event]) -> Outcome:
    """Our book, through its public API, as ``engine/orders.py`` drives it."""
    from backstop.state.book import OrderBook, RestingOrder

    book = OrderBook()
    would_cross, plan_match, apply_plan = book.would_cross, book.plan_match, book.apply_plan
    rest, cancel = book.rest, book.cancel
    filled = 0
    for kind, ord_id, side, px, lots, owner in events:
        if kind == LIMIT:
            if would_cross(side, px):
                plan = plan_match(side, px, lots, owner)
                apply_plan(plan)
                filled += plan.filled_lots
                if plan.filled_lots < lots and not plan.taker_stp_cancelled:
                    rest(RestingOrder(ord_id, owner, side, px, lots - plan.filled_lots))
            else:
                rest(RestingOrder(ord_id, owner, side, px, lots))
        elif kind == CANCEL:
            cancel(ord_id)
        else:
            plan = plan_match(side, None, lots, owner)
            apply_plan(plan)
            filled += plan.filled_lots
    resting = {o.ord_id: o.remaining for o in book.orders.values()}
    return Outcome(filled, len(resting), sum(resting.values()), book.best_bid(), book.best_ask(),
                   resting, book.is_crossed())


def replay_limit_order_book(events: list[Event]) -> Outcome:
    """``limit-order-book``: ``limit(is_buy, id, qty, px)`` matches then rests; ``market``."""
    from limit_order_book import LimitOrderBook

    book = LimitOrderBook()
    limit, cancel, market = book.limit, book.cancel, book.market
    for kind, ord_id, side, px, lots, _owner in events:
        if kind == LIMIT:
            limit(side == 1, ord_id, lots, px)
        elif kind == CANCEL:
            cancel(ord_id)
        else:
            market(side == 1, ord_id, lots)
    return Outcome(None, book.count(), book.volume(), book.best_buy() or None, book.best_sell() or None)


def replay_lightmatchingengine(events: list[Event]) -> Outcome:
    """``lightmatchingengine``: ``add_order(instmt, px, qty, 1 buy | 2 sell)`` (px 0 = market);
    it numbers orders itself, 1, 2, ... in arrival order, as the stream does."""
    from lightmatchingengine.lightmatchingengine import LightMatchingEngine

    engine = LightMatchingEngine()
    add, cancel = engine.add_order, engine.cancel_order
    filled = 0
    for kind, ord_id, side, px, lots, _owner in events:
        if kind == LIMIT:
            order, _trades = add("X", px, lots, 1 if side == 1 else 2)
            filled += order.cum_qty
        elif kind == CANCEL:
            cancel(ord_id, "X")
        else:
            order, _trades = add("X", 0, lots, 1 if side == 1 else 2)
            filled += order.cum_qty
    book = engine.order_books["X"]
    orders = [o for side in (book.bids, book.asks) for level in side.values() for o in level]
    return Outcome(filled, len(orders), sum(o.leaves_qty for o in orders),
                   max(book.bids) if book.bids else None, min(book.asks) if book.asks else None)


def check(name: str, outcome: Outcome, stream: Stream) -> str:
    """Compare a replay with the reference; returns "ok" or raises."""
    expected_lots = sum(stream.resting.values())
    problems = []
    if outcome.filled_lots is not None and outcome.filled_lots != stream.filled_lots:
        problems.append(f"filled {outcome.filled_lots} != {stream.filled_lots}")
    if (outcome.resting_count, outcome.resting_lots) != (len(stream.resting), expected_lots):
        problems.append(f"resting {outcome.resting_count}/{outcome.resting_lots} != "
                        f"{len(stream.resting)}/{expected_lots}")
    if (outcome.best_bid, outcome.best_ask) != (stream.best_bid, stream.best_ask):
        problems.append(f"best {outcome.best_bid}/{outcome.best_ask} != {stream.best_bid}/{stream.best_ask}")
    if outcome.resting is not None and outcome.resting != stream.resting:
        problems.append("resting orders differ from the reference")
    if outcome.crossed:
        problems.append("book crossed")
    if problems:
        raise AssertionError(f"{name}: " + "; ".join(problems))
    return "ok"


# ----------------------------------------------------------------------------- engine path

def engine_commands(stream: Stream) -> list[object]:
    """The stream as commands for ``BTC-USDT-SWAP`` (0.1 tick, 0.01 lot)."""
    from backstop.model.commands import CancelOrder, PlaceOrder
    from backstop.model.enums import OrderType, Side

    commands: list[object] = []
    for ts, (kind, ord_id, side, px, lots, owner) in enumerate(stream.events, start=1):
        if kind == CANCEL:
            commands.append(CancelOrder(ts, owner, INST_ID, ord_id))
            continue
        sz = Decimal(lots).scaleb(-2)
        side_enum = Side.BUY if side == 1 else Side.SELL
        if kind == LIMIT:
            commands.append(PlaceOrder(ts, owner, INST_ID, side_enum, OrderType.LIMIT, sz,
                                       Decimal(px).scaleb(-1)))
        else:
            commands.append(PlaceOrder(ts, owner, INST_ID, side_enum, OrderType.MARKET, sz))
    return commands


def funded_exchange(n_accounts: int):
    from backstop.engine.exchange import Exchange
    from backstop.model.catalogue import default_catalogue
    from backstop.model.commands import Deposit

    exchange = Exchange(default_catalogue().subset([INST_ID]), keep_log=True, check_invariants=False)
    for uid in range(1, n_accounts + 1):
        exchange.execute(Deposit(0, uid, "USDT", Decimal(10_000_000)))
    return exchange


def check_engine(exchange, stream: Stream) -> str:
    from backstop.model.events import Filled, Rejected

    filled = rejected = 0
    for entry in exchange.log:
        for event in entry.events:
            if isinstance(event, Filled):
                filled += event.lots
            elif isinstance(event, Rejected):
                rejected += 1
    book = exchange.state.books[INST_ID]
    resting = {o.ord_id: o.remaining for o in book.orders.values()}
    problems = []
    if rejected:
        problems.append(f"{rejected} commands rejected")
    if filled != stream.filled_lots:
        problems.append(f"filled {filled} != {stream.filled_lots}")
    if resting != stream.resting:
        problems.append("resting orders differ from the reference")
    if book.is_crossed():
        problems.append("book crossed")
    if problems:
        raise AssertionError("engine: " + "; ".join(problems))
    return "ok"


# ----------------------------------------------------------------------------- timing

@dataclass
class Runner:
    name: str
    replay: Callable[[list[Event]], Outcome]
    note: str
    times: list[float] = field(default_factory=list)  # CPU seconds
    walls: list[float] = field(default_factory=list)
    outcome: Outcome | None = None
    status: str = ""


def time_once(fn: Callable[[], object]) -> tuple[float, float, object]:
    """CPU seconds of this thread, wall seconds, and the result of one call."""
    gc.collect()
    cpu, wall = time.thread_time(), time.perf_counter()
    result = fn()
    return time.thread_time() - cpu, time.perf_counter() - wall, result


def available_runners() -> list[Runner]:
    runners = [Runner("backstop OrderBook (pure Python)", replay_backstop, "this project")]
    for name, module, replay in (
        ("limit-order-book 2.0.0 (C++ via ctypes)", "limit_order_book", replay_limit_order_book),
        ("lightmatchingengine (pure Python)", "lightmatchingengine", replay_lightmatchingengine),
    ):
        try:
            __import__(module)
        except ImportError as exc:  # reported in the table instead of a figure
            runners.append(Runner(name, replay, f"not installed: {exc}", status="missing"))
            continue
        runners.append(Runner(name, replay, "PyPI"))
    return runners


def engine_breakdown(commands: list[object], stream: Stream, n_accounts: int) -> dict[str, list[int]]:
    """Thread CPU nanoseconds of each command of one engine run, by kind: a limit order that
    rests without a fill, a limit order that fills, a market order, a cancel."""
    from backstop.model.events import Filled

    exchange = funded_exchange(n_accounts)
    execute, clock = exchange.execute, time.thread_time_ns
    kinds: dict[str, list[int]] = {"limit, rests": [], "limit, fills": [], "market": [], "cancel": []}
    gc.collect()
    for event, command in zip(stream.events, commands, strict=True):
        start = clock()
        events = execute(command)
        spent = clock() - start
        if event[0] == CANCEL:
            kinds["cancel"].append(spent)
        elif event[0] == MARKET:
            kinds["market"].append(spent)
        else:
            fills = any(type(e) is Filled for e in events)
            kinds["limit, fills" if fills else "limit, rests"].append(spent)
    return kinds


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def spread(times: list[float]) -> str:
    med = statistics.median(times)
    return f"{(max(times) - min(times)) / med * 100:.0f}%"


def main() -> None:
    args = parse_args()
    pinned = "not pinned"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
        pinned = "pinned to CPU 0"
    cpus = os.cpu_count()
    print(f"# matching bench: {args.events:,} events, seed {args.seed}, median of {args.repeat} runs, "
          f"{pinned} ({cpus} CPUs), Python {platform.python_version()} on {platform.machine()}; "
          f"load average {load_average()} (1/5/15 min)")
    stream = generate_stream(args.events, args.seed)
    c = stream.counts
    n = len(stream.events)
    print(f"# stream: {c[LIMIT] / n:.0%} limit, {c[CANCEL] / n:.0%} cancel, {c[MARKET] / n:.0%} market; "
          f"{stream.filled_lots:,} lots filled; {len(stream.resting):,} orders rest at the end")
    runners = available_runners()
    gc.collect()
    gc.freeze()  # the stream itself is not the books' garbage
    for _ in range(args.repeat):
        for runner in runners:
            if runner.status == "missing":
                continue
            cpu, wall, outcome = time_once(lambda r=runner: r.replay(stream.events))
            runner.times.append(cpu)
            runner.walls.append(wall)
            runner.outcome = outcome  # type: ignore[assignment]
    ours = statistics.median(runners[0].times)
    print()
    ours_wall = statistics.median(runners[0].walls)
    print("| book | events/s, CPU time (median) | events/s, wall (median) | spread (CPU) | "
          "ours ÷ it (CPU) | ours ÷ it (wall) | check |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for runner in runners:
        if runner.status == "missing":
            print(f"| {runner.name} | — | — | — | — | — | {runner.note} |")
            continue
        assert runner.outcome is not None
        status = check(runner.name, runner.outcome, stream)
        med, med_wall = statistics.median(runner.times), statistics.median(runner.walls)
        print(f"| {runner.name} | {n / med:,.0f} | {n / med_wall:,.0f} | {spread(runner.times)} | "
              f"{med / ours:.2f} | {med_wall / ours_wall:.2f} | {status} |")
    if args.skip_engine:
        return
    engine_stream = generate_stream(args.events, args.seed, n_owners=args.accounts)
    commands = engine_commands(engine_stream)
    times, walls = [], []
    for _ in range(args.engine_repeat):
        exchange = funded_exchange(args.accounts)
        execute = exchange.execute

        def run(cmds=commands, execute=execute) -> None:
            for command in cmds:
                execute(command)

        cpu, wall, _ = time_once(run)
        times.append(cpu)
        walls.append(wall)
        status = check_engine(exchange, engine_stream)
    med, med_wall = statistics.median(times), statistics.median(walls)
    places = len(commands) - engine_stream.counts[CANCEL]
    print()
    print("| engine path | orders/s, CPU time (median) | orders/s, wall (median) | spread (CPU) | "
          "bare book ÷ engine (CPU) | bare book ÷ engine (wall) | check |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print(f"| Exchange.execute, keep_log=True, check_invariants=False ({places:,} places + "
          f"{engine_stream.counts[CANCEL]:,} cancels, {args.accounts:,} accounts) | {n / med:,.0f} | "
          f"{n / med_wall:,.0f} | {spread(times)} | {med / ours:.1f} | {med_wall / ours_wall:.1f} | "
          f"{status} |")
    if args.breakdown:
        print()
        print("| engine command (timed alone) | count | median µs (CPU) | share of the run's CPU |")
        print("|---|---:|---:|---:|")
        kinds = engine_breakdown(commands, engine_stream, args.accounts)
        total = sum(sum(v) for v in kinds.values())
        for name, spent in kinds.items():
            if spent:
                print(f"| {name} | {len(spent):,} | {statistics.median(spent) / 1000:.1f} | "
                      f"{sum(spent) / total:.0%} |")
    print(f"\n# load average after: {load_average()}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
