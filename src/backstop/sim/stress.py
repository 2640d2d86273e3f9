"""Run one :class:`~backstop.sim.scenario.Scenario` through the exact engine.

Every event is kept with the step that caused it (``-1``: the config's genesis, ``0``: the
opening of positions, ``k + 1``: index update ``k``). After every step the conservation
audit and the cheap invariants of :mod:`backstop.state.invariants` run (conservation, book
not crossed, orders and frozen margin consistent, closed positions hold no margin); the full
:func:`ensure_invariants` (which adds the no-negative-equity check, a pass over every account)
runs every ``full_check_every`` steps and after the last.
A breach is counted and recorded, not raised, so a report still comes out.

Ctrl-C sets a flag that the loop reads between steps: the run stops after the step in
progress, with a consistent engine state, and keeps what is done.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from backstop.model.codec import dumps
from backstop.model.events import Event
from backstop.sim.scenario import Scenario
from backstop.state import invariants

CHEAP_CHECKS: tuple[Callable, ...] = (
    invariants.ensure_conservation,
    invariants.ensure_books_uncrossed,
    invariants.ensure_orders_consistent,
    invariants.ensure_closed_positions_hold_no_margin,
    invariants.ensure_no_negative_money,
)
SNAPSHOTS = 6
"""Margin-ratio snapshots: the opening, evenly spaced steps, the path's low, the end."""


@dataclass
class Checks:
    """Invariant bookkeeping: how many audits ran and every breach as ``(step, message)``."""

    conservation: int = 0
    full: int = 0
    violations: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class StressResult:
    """What a run produced; ``events[i]`` was caused by step ``steps[i]``."""

    scenario: Scenario
    events: list[Event] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    checks: Checks = field(default_factory=Checks)
    snapshots: dict[str, np.ndarray] = field(default_factory=dict)
    steps_done: int = 0
    interrupted: bool = False
    runtime_s: float = 0.0

    def add(self, step: int, events: list[Event]) -> None:
        self.events.extend(events)
        self.steps.extend([step] * len(events))

    def log_hash(self) -> str:
        """SHA-256 of the canonical JSON of every event, in order."""
        digest = hashlib.sha256()
        for event in self.events:
            digest.update(dumps(event).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def run_stress(scenario: Scenario, *, progress: bool = True, full_check_every: int = 25,
               keep_events: bool = True,
               on_step: Callable[[int, list[Event]], None] | None = None) -> StressResult:
    """Open the population, step the path, check after every step; see the module docstring.

    ``on_step(step, events)`` runs after each index update, with the engine state as it left
    it (read it, never change it)."""
    result = StressResult(scenario)
    started = time.perf_counter()
    exchange = scenario.exchange
    result.add(-1, list(exchange.genesis))
    result.add(0, exchange.execute_all(scenario.opening_commands()))
    _check(result, 0, full=True)
    result.snapshots["opening"] = scenario.margin_ratios()
    snap_at = _snapshot_steps(scenario)
    with _stop_flag() as stop, _progress_bar(progress, scenario.n_steps) as advance:
        for k in range(scenario.n_steps):
            if stop.is_set():
                result.interrupted = True
                break
            events = scenario.run_step(k)
            if keep_events:
                result.add(k + 1, events)
            else:
                result.add(k + 1, [e for e in events if type(e).__name__ not in _BULKY])
            if on_step is not None:
                on_step(k + 1, events)
            if events:  # a visit that sent nothing left the checked state as it was
                _check(result, k + 1, full=(k + 1) % full_check_every == 0)
            if k in snap_at:
                result.snapshots[snap_at[k]] = scenario.margin_ratios()
            result.steps_done = k + 1
            advance()
    _check(result, result.steps_done, full=True)
    result.snapshots.setdefault("end", scenario.margin_ratios())
    result.runtime_s = time.perf_counter() - started
    return result


_BULKY = frozenset({"OrderPlaced", "OrderCancelled"})


def _check(result: StressResult, step: int, full: bool) -> None:
    state = result.scenario.exchange.state
    checks = (invariants.ensure_invariants,) if full else CHEAP_CHECKS
    for check in checks:
        try:
            check(state)
        except AssertionError as exc:
            result.checks.violations.append((step, str(exc)))
            break
    result.checks.conservation += 1
    result.checks.full += int(full)


def _snapshot_steps(scenario: Scenario) -> dict[int, str]:
    """Step index → label for the margin-ratio snapshots."""
    n = scenario.n_steps
    prices = scenario.path.prices
    out = {int(k): f"step {int(k)}" for k in np.linspace(0, n - 1, SNAPSHOTS)[1:-1]}
    low = min(range(n), key=lambda k: (prices[k], k))
    out[low] = f"path low ({prices[low]})"
    out[n - 1] = "end"
    return out


@contextmanager
def _stop_flag() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (SIGINT) while the block runs; the old handler comes back."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress_bar(show: bool, total: int) -> Iterator[Callable[[], None]]:
    columns = (TextColumn("stress"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TimeRemainingColumn())
    with Progress(*columns, disable=not show, transient=False) as bar:
        task = bar.add_task("stress", total=total)
        yield lambda: bar.advance(task)
