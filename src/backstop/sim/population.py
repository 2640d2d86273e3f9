"""Synthetic populations of leveraged BTC-USDT perpetual accounts (structure of arrays).

Default distributions (plausible, not fitted: no account-level data is public):

- side: long with probability ``long_share`` (0.6: the crowd was long into 2025-10-10);
- leverage: a mixture of log-uniform ranges, ``leverage_mix`` rows ``(weight, low, high)``:
  80 % at 2-10x, 15 % at 10-25x, 5 % at 25-100x (100x is BTC-USDT-SWAP's tier-1 cap);
- notional (USDT): Pareto with scale ``notional_min_usdt`` = 1,000 and tail index
  ``notional_alpha`` = 1.5 (median about 1,590; a heavy tail), capped at 5,000,000;
- margin mode: isolated with probability ``isolated_share`` (0.5). A cross account is one
  position plus free collateral of ``buffer × initial margin`` with buffer ~ Exponential
  (mean ``cross_buffer_mean`` = 1.0); it is treated as isolated with that larger margin;
- entry: at a step drawn uniformly from ``0..entry_window_steps`` (default 0: all at the
  start), at that step's close on each path;
- maintenance margin rate 0.004 (OKX BTC-USDT tier 1) and taker fee 0.0005 (OKX Lv1).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

MAX_LEVERAGE = 100.0


@dataclass(frozen=True)
class PopulationSpec:
    """Parameters of :func:`generate_population`; see the module docstring for meanings."""

    n_accounts: int = 10_000
    long_share: float = 0.6
    isolated_share: float = 0.5
    leverage_mix: tuple[tuple[float, float, float], ...] = (
        (0.80, 2.0, 10.0),
        (0.15, 10.0, 25.0),
        (0.05, 25.0, 100.0),
    )
    notional_min_usdt: float = 1_000.0
    notional_alpha: float = 1.5
    notional_max_usdt: float = 5_000_000.0
    cross_buffer_mean: float = 1.0
    entry_window_steps: int = 0
    mmr: float = 0.004
    taker_fee: float = 0.0005

    def __post_init__(self) -> None:
        mix = tuple(tuple(map(float, row)) for row in self.leverage_mix)
        object.__setattr__(self, "leverage_mix", mix)
        problems = self._problems()
        if problems:
            raise ValueError(f"population spec: {problems[0]}")

    def _problems(self) -> list[str]:
        problems = []
        if self.n_accounts < 0:
            problems.append(f"n_accounts must be >= 0, got {self.n_accounts}")
        for name in ("long_share", "isolated_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {value}")
        for row in self.leverage_mix:
            if len(row) != 3:
                problems.append(f"leverage_mix rows are (weight, low, high), got {row}")
                continue
            weight, low, high = row
            if weight < 0 or not 1.0 <= low <= high <= MAX_LEVERAGE:
                problems.append(
                    f"leverage_mix row ({weight}, {low}, {high}) needs weight >= 0 and "
                    f"1 <= low <= high <= {MAX_LEVERAGE:g}"
                )
        if not self.leverage_mix or sum(row[0] for row in self.leverage_mix) <= 0:
            problems.append("leverage_mix needs a positive total weight")
        if not 0 < self.notional_min_usdt <= self.notional_max_usdt:
            problems.append("need 0 < notional_min_usdt <= notional_max_usdt")
        for name in (
            "notional_alpha",
            "cross_buffer_mean",
            "entry_window_steps",
            "mmr",
            "taker_fee",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        return problems

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PopulationSpec:
        """Build from a mapping; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"population spec: unknown keys {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> PopulationSpec:
        """Build from the ``[population]`` table of a TOML file (or its top level)."""
        data = tomllib.loads(Path(path).read_text())
        return cls.from_dict(data.get("population", data))


@dataclass(frozen=True)
class Population:
    """N accounts, one linear BTC-USDT position each; arrays of shape (N,).

    ``side`` is +1 long / -1 short (int8); ``leverage`` is x; ``notional_usdt`` is the
    position value at entry; ``margin_frac`` is margin / notional at entry (1/leverage for
    isolated, more for cross); ``entry_step`` indexes the path. ``mmr`` and ``taker_fee``
    are fractions of notional.
    """

    side: np.ndarray
    leverage: np.ndarray
    notional_usdt: np.ndarray
    isolated: np.ndarray
    margin_frac: np.ndarray
    entry_step: np.ndarray
    mmr: float
    taker_fee: float

    @property
    def size(self) -> int:
        return int(self.side.size)

    @property
    def initial_margin_usdt(self) -> np.ndarray:
        """Initial margin = notional / leverage (USDT)."""
        return self.notional_usdt / self.leverage

    @property
    def margin_usdt(self) -> np.ndarray:
        """Collateral behind each position (USDT): initial margin, plus the buffer if cross."""
        return self.notional_usdt * self.margin_frac

    def entry_prices(self, close: np.ndarray) -> np.ndarray:
        """Entry prices from closes ``(..., n_steps + 1)`` -> ``(..., N)`` (USDT per BTC)."""
        return close[..., self.entry_step]

    def bankruptcy_ratio(self) -> np.ndarray:
        """Bankruptcy price / entry price: ``1 - margin_frac`` long, ``1 + margin_frac`` short."""
        return 1.0 - self.side * self.margin_frac

    def liquidation_ratio(self) -> np.ndarray:
        """Liquidation price / entry price, OKX linear isolated with ``r = mmr + taker_fee``.

        Long ``(1 - m)/(1 - r)``, short ``(1 + m)/(1 + r)`` where ``m = margin_frac``.
        """
        return liquidation_ratio(self.side, self.margin_frac, self.mmr, self.taker_fee)


def liquidation_ratio(side: np.ndarray, margin_frac: np.ndarray, mmr: float, taker_fee: float) -> np.ndarray:
    """Liquidation price / entry price of an isolated linear position: ``(1 - side·m)/(1 - side·r)``
    with ``m`` = margin / notional at entry and ``r = mmr + taker_fee`` (OKX)."""
    return (1.0 - side * margin_frac) / (1.0 - side * (mmr + taker_fee))


def _draw_leverage(rng: np.random.Generator, spec: PopulationSpec, n: int) -> np.ndarray:
    mix = np.array(spec.leverage_mix)
    component = rng.choice(len(mix), size=n, p=mix[:, 0] / mix[:, 0].sum())
    log_low, log_high = np.log(mix[component, 1]), np.log(mix[component, 2])
    return np.exp(log_low + (log_high - log_low) * rng.random(n))


def _draw_notional(rng: np.random.Generator, spec: PopulationSpec, n: int) -> np.ndarray:
    pareto = spec.notional_min_usdt * (1.0 + rng.pareto(spec.notional_alpha, n))
    return np.minimum(pareto, spec.notional_max_usdt)


def generate_population(spec: PopulationSpec, rng: np.random.Generator) -> Population:
    """Draw ``spec.n_accounts`` accounts; the same seed gives identical arrays."""
    n = spec.n_accounts
    side = np.where(rng.random(n) < spec.long_share, 1, -1).astype(np.int8)
    leverage = _draw_leverage(rng, spec, n)
    notional = _draw_notional(rng, spec, n)
    isolated = rng.random(n) < spec.isolated_share
    buffer = np.where(isolated, 0.0, rng.exponential(spec.cross_buffer_mean, n))
    entry_step = rng.integers(0, spec.entry_window_steps + 1, n)
    return Population(
        side=side,
        leverage=leverage,
        notional_usdt=notional,
        isolated=isolated,
        margin_frac=(1.0 + buffer) / leverage,
        entry_step=entry_step,
        mmr=spec.mmr,
        taker_fee=spec.taker_fee,
    )


@dataclass(frozen=True)
class BookSpec:
    """A multi-instrument population: ``base`` gives the account count and every per-position
    distribution of :class:`PopulationSpec` (side, leverage, notional, isolated share, cross
    buffer, mmr, fee; entries are all at step 0). ``inst_weights``: the chance a position is in
    each instrument (assumption: BTC 40 %, ETH 25 %, the altcoins 35 %, roughly their open-interest
    shares). A cross account holds ``cross_legs`` = (low, high) positions, a uniform count in that
    range capped at the instrument count, in distinct instruments drawn by weight; an isolated
    account holds one."""

    base: PopulationSpec = PopulationSpec()
    inst_weights: tuple[float, ...] = (0.40, 0.25, 0.15, 0.10, 0.10)
    cross_legs: tuple[int, int] = (2, 4)

    def __post_init__(self) -> None:
        if self.base.entry_window_steps != 0:
            raise ValueError("multi-instrument population: entries are at step 0 (entry_window_steps 0)")
        if not self.inst_weights or min(self.inst_weights) < 0 or sum(self.inst_weights) <= 0:
            raise ValueError("inst_weights must be >= 0 with a positive total")
        if not 1 <= self.cross_legs[0] <= self.cross_legs[1]:
            raise ValueError(f"cross_legs needs 1 <= low <= high, got {self.cross_legs}")

    def for_instruments(self, n: int) -> BookSpec:
        """The same spec over the first ``n`` instruments."""
        return replace(self, inst_weights=self.inst_weights[:n])


@dataclass(frozen=True)
class Book:
    """Accounts and their positions (legs) over several instruments; floats, simulation only.

    Accounts (A,): ``isolated``, ``collateral_usdt`` (isolated: the position's margin; cross: the
    legs' initial margins times ``1 + buffer``) and ``leg_start`` (A + 1,), the CSR offsets of each
    account's legs. Legs (L,): ``account``, ``inst`` (index into the universe), ``side`` (+1/-1),
    ``qty`` (coins), ``entry_price`` (USDT per coin, the start price), ``notional_usdt``.
    ``mmr`` and ``taker_fee`` are fractions of notional; ``r = mmr + taker_fee`` is the
    maintenance rate of :meth:`Population.liquidation_ratio`.
    """

    isolated: np.ndarray
    collateral_usdt: np.ndarray
    leg_start: np.ndarray
    account: np.ndarray
    inst: np.ndarray
    side: np.ndarray
    qty: np.ndarray
    entry_price: np.ndarray
    notional_usdt: np.ndarray
    mmr: float
    taker_fee: float

    @property
    def n_accounts(self) -> int:
        return int(self.isolated.size)

    @property
    def n_legs(self) -> int:
        return int(self.account.size)

    def gross_notional_usdt(self, n_inst: int) -> np.ndarray:
        """Entry notional per instrument, both sides (USDT), shape (n_inst,)."""
        return np.bincount(self.inst, weights=self.notional_usdt, minlength=n_inst)

    def isolated_liquidation_prices(self) -> np.ndarray:
        """Per leg, the price where an isolated account's equity meets maintenance (NaN for cross
        legs): :meth:`Population.liquidation_ratio` times the entry price."""
        iso = self.isolated[self.account]
        margin_frac = self.collateral_usdt[self.account] / self.notional_usdt
        ratio = liquidation_ratio(self.side, margin_frac, self.mmr, self.taker_fee)
        return np.where(iso, self.entry_price * ratio, np.nan)


def generate_book(spec: BookSpec, s0: np.ndarray, rng: np.random.Generator) -> Book:
    """Draw ``spec.base.n_accounts`` accounts over instruments priced ``s0`` (USDT per coin) at step 0.

    Each position draws side, leverage and notional as :func:`generate_population` does; the same
    seed gives identical arrays.
    """
    base, n_inst = spec.base, len(spec.inst_weights)
    if s0.shape != (n_inst,):
        raise ValueError(f"s0 needs one price per instrument ({n_inst}), got shape {s0.shape}")
    n = base.n_accounts
    isolated = rng.random(n) < base.isolated_share
    low, high = min(spec.cross_legs[0], n_inst), min(spec.cross_legs[1], n_inst)
    legs = np.where(isolated, 1, rng.integers(low, high + 1, n))
    weights = np.asarray(spec.inst_weights, dtype=np.float64) / sum(spec.inst_weights)
    inst = np.concatenate([_distinct(rng, weights, k) for k in legs]) if n else np.zeros(0, np.int64)
    n_legs = int(legs.sum())
    side = np.where(rng.random(n_legs) < base.long_share, 1, -1).astype(np.int8)
    leverage = _draw_leverage(rng, base, n_legs)
    notional = _draw_notional(rng, base, n_legs)
    leg_start = np.r_[0, np.cumsum(legs)]
    account = np.repeat(np.arange(n), legs)
    margin = np.bincount(account, weights=notional / leverage, minlength=n)
    buffer = np.where(isolated, 0.0, rng.exponential(base.cross_buffer_mean, n))
    return Book(
        isolated=isolated, collateral_usdt=margin * (1.0 + buffer), leg_start=leg_start,
        account=account, inst=inst.astype(np.int64), side=side, qty=notional / s0[inst],
        entry_price=s0[inst].astype(np.float64), notional_usdt=notional, mmr=base.mmr,
        taker_fee=base.taker_fee,
    )


def _distinct(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct instrument indices drawn by ``weights`` without replacement."""
    return rng.choice(weights.size, size=k, replace=False, p=weights)
