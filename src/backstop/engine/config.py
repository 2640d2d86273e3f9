"""Policies, chosen by configuration; every default is OKX's.

One TOML file drives the library, ``serve``, ``stress`` and ``sweep``::

    venue = "okx"              # okx | binance | bybit | hyperliquid | bitmex: start from a profile
    [liquidation]
    style = "okx_tiers"        # okx_tiers | full | progressive
    fee_rate = "taker"         # or a decimal, e.g. "0.001"
    warning_ratio = "3.0"      # liquidation-warning below a 300% margin ratio
    price_band = "0.03"        # a liquidation order fills at most 3% beyond the mark
    progressive_share = "0.2"  # progressive: share of the position per step
    progressive_cooldown_ms = 30000

    [insurance_fund]
    layout = "per_family"      # per_family | shared
    trading_fee_share = "0"
    initial = { "BTC-USDT" = "5000000" }

    [price_limit]
    band = "0.05"              # orders lie within 5% of the mark (OKX buyLmt/sellLmt)
    per_instrument = { "DOGE-USDT-SWAP" = "0.1" }

    [adl]
    ranking = "okx"            # okx | bitmex | binance | hyperliquid | random | pro_rata
    price = "auto"             # auto (mark while the fund can pay the gap) | bankruptcy | mark
    haircut = "none"           # none (close ranked positions) | pro_rata | leverage | min_overshoot
    decline_share = "0.30"     # rate_adl_start: fund down 30% from its peak ...
    decline_window_ms = 28800000   # ... within 8 hours

    [waterfall]
    order = ["insurance_fund", "adl"]   # or [..., "vault", "adl"], or [..., "socialize"]
    vault_capital = { "USDT" = "1000000" }   # the backstop vault's capital per currency
    vault_cap_share = "0.5"    # the vault takes over at most this share of its equity in IM
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from backstop.numeric import PPM


class LiquidationStyle(StrEnum):
    """How much of a liquidatable position is cut at once."""

    OKX_TIERS = "okx_tiers"
    FULL = "full"
    PROGRESSIVE = "progressive"


class FundLayout(StrEnum):
    PER_FAMILY = "per_family"
    SHARED = "shared"


class AdlRanking(StrEnum):
    OKX = "okx"
    BITMEX = "bitmex"
    BINANCE = "binance"
    HYPERLIQUID = "hyperliquid"
    RANDOM = "random"
    PRO_RATA = "pro_rata"


class AdlHaircut(StrEnum):
    """ADL by closing ranked positions (``none``), or by a profit haircut that leaves every
    winner's position open (:mod:`backstop.engine.haircut`): ``pro_rata`` (the same share of
    every winner's profit), ``leverage`` (risk-aware: profit × leverage, capped at profit) or
    ``min_overshoot`` (the water-filling benchmark: the largest profits shaved to a level)."""

    NONE = "none"
    PRO_RATA = "pro_rata"
    LEVERAGE = "leverage"
    MIN_OVERSHOOT = "min_overshoot"


class AdlPrice(StrEnum):
    AUTO = "auto"
    BANKRUPTCY = "bankruptcy"
    MARK = "mark"


class WaterfallStep(StrEnum):
    INSURANCE_FUND = "insurance_fund"
    VAULT = "vault"
    ADL = "adl"
    SOCIALIZE = "socialize"


class Venue(StrEnum):
    """A venue profile (:mod:`backstop.engine.venues`): its margin tables, fees and policies."""

    OKX = "okx"
    BINANCE = "binance"
    BYBIT = "bybit"
    HYPERLIQUID = "hyperliquid"
    BITMEX = "bitmex"


class ScreenMode(StrEnum):
    AUTO = "auto"
    EXACT = "exact"
    VECTORISED = "vectorised"


LIQUIDATION_STYLES = tuple(LiquidationStyle)
FUND_LAYOUTS = tuple(FundLayout)
ADL_RANKINGS = tuple(AdlRanking)
ADL_PRICES = tuple(AdlPrice)
ADL_HAIRCUTS = tuple(AdlHaircut)
WATERFALL_STEPS = tuple(WaterfallStep)


@dataclass(frozen=True, slots=True)
class LiquidationPolicy:
    style: LiquidationStyle = LiquidationStyle.OKX_TIERS
    fee_rate: str = "taker"
    warning_ratio: Decimal = Decimal("3.0")
    price_band: Decimal = Decimal("0.03")
    progressive_share: Decimal = Decimal("0.2")
    progressive_cooldown_ms: int = 30_000

    @property
    def fee_ppm(self) -> int | None:
        """``fee_rate`` in ppm (exact: config validation keeps it on the grid), or ``None`` for
        ``"taker"``: the instrument's
        own liquidation fee rate (OKX: its taker fee; a venue profile's ``liqFeeRate``)."""
        return None if self.fee_rate == "taker" else int(Decimal(self.fee_rate) * PPM)


@dataclass(frozen=True, slots=True)
class FundPolicy:
    layout: FundLayout = FundLayout.PER_FAMILY
    trading_fee_share: Decimal = Decimal("0")
    initial: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriceLimitPolicy:
    """OKX's price limit: every user order lies within ``band`` of the mark (``buyLmt`` =
    mark·(1 + band), ``sellLmt`` = mark·(1 − band)); ``per_instrument`` overrides it by
    ``instId``. OKX publishes no single formula, so the width is configuration."""

    band: Decimal = Decimal("0.05")
    per_instrument: dict[str, Decimal] = field(default_factory=dict)

    def band_ppm(self, inst_id: str) -> int:
        """The instrument's band in parts per million, rounded down (never wider than set)."""
        return int(self.per_instrument.get(inst_id, self.band) * PPM)


@dataclass(frozen=True, slots=True)
class AdlPolicy:
    """``price``: ``auto`` (OKX: the mark while the fund can pay the gap to the bankruptcy
    price, else the bankruptcy price), ``bankruptcy`` or ``mark``. Either way a winner closes
    between the mark and the liquidated position's own bankruptcy price, never past its own
    entry price (see :mod:`backstop.engine.adl`). ``haircut``: other than ``none``, winners
    keep their positions and pay the deficit from profit instead (``ranking`` then only sets
    the displayed ``adl`` indicator)."""

    ranking: AdlRanking = AdlRanking.OKX
    price: AdlPrice = AdlPrice.AUTO
    haircut: AdlHaircut = AdlHaircut.NONE
    decline_share: Decimal = Decimal("0.30")
    decline_window_ms: int = 8 * 3600 * 1000
    seed: int = 0


@dataclass(frozen=True, slots=True)
class WaterfallPolicy:
    order: tuple[WaterfallStep, ...] = (WaterfallStep.INSURANCE_FUND, WaterfallStep.ADL)
    vault_capital: dict[str, Decimal] = field(default_factory=dict)
    vault_cap_share: Decimal = Decimal("0.5")


@dataclass(frozen=True, slots=True)
class MarkPolicy:
    """Mark = index + EMA of the book basis (mid − index), clamped to ``basis_clamp`` of the
    index. ``smoothing`` is the EMA weight of each new sample (0 keeps the mark on the index)."""

    smoothing: Decimal = Decimal("0.2")
    basis_clamp: Decimal = Decimal("0.005")
    funding_interest: Decimal = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """How a mark update finds liquidatable units: ``exact`` (a Python scan), ``vectorised``
    (the numpy/numba screen, confirmed exactly), or ``auto`` (vectorised once the book holds
    ``vectorised_from`` open positions). All three give the same events and state. The
    screen already costs no more than the scan at ~200 positions (``bench/stress_engine.py
    --accounts 200``, issue 12), hence the default."""

    screen: ScreenMode = ScreenMode.AUTO
    vectorised_from: int = 500


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Every policy; ``venue`` names the profile the policies started from (its instrument
    margin tables come from :func:`backstop.engine.venues.venue_catalogue`)."""

    venue: Venue = Venue.OKX
    liquidation: LiquidationPolicy = field(default_factory=LiquidationPolicy)
    insurance_fund: FundPolicy = field(default_factory=FundPolicy)
    adl: AdlPolicy = field(default_factory=AdlPolicy)
    waterfall: WaterfallPolicy = field(default_factory=WaterfallPolicy)
    price_limit: PriceLimitPolicy = field(default_factory=PriceLimitPolicy)
    mark: MarkPolicy = field(default_factory=MarkPolicy)
    risk: RiskPolicy = field(default_factory=RiskPolicy)

    def with_overrides(self, **sections: dict[str, Any]) -> EngineConfig:
        """A copy with some keys of some sections replaced, validated."""
        return config_from_dict({name: {**_section_dict(getattr(self, name)), **values}
                                 for name, values in sections.items() if name != "venue"}, base=self)


def _section_dict(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in fields(section)}


def load_config(path: str | Path) -> EngineConfig:
    """Read a TOML policy file; unknown sections or keys and bad values raise ``ValueError``."""
    return config_from_dict(read_config_data(path))


def read_config_data(path: str | Path) -> dict[str, Any]:
    """A TOML policy file's tables, unchecked; a missing or malformed file raises ``ValueError``."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"config file not found: {file}")
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config {file} is not valid TOML: {exc}") from exc


def config_from_dict(data: dict[str, Any], base: EngineConfig | None = None) -> EngineConfig:
    """A config from TOML-shaped data on top of ``base``; a top-level ``venue = "NAME"``
    starts from that venue's profile (then the sections override it)."""
    data = dict(data)
    if "venue" in data:
        from backstop.engine.venues import venue_profile

        base = venue_profile(str(data.pop("venue"))).config
    base = base or EngineConfig()
    sections = {}
    for name, values in data.items():
        current = getattr(base, name, None)
        if current is None or not isinstance(values, dict):
            raise ValueError(f"unknown config section [{name}]")
        sections[name] = _coerce_section(name, current, values)
    config = replace(base, **sections)
    ensure_config_valid(config)
    return config


def _coerce_section(name: str, current: Any, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(current)}
    updates = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"unknown config key {name}.{key}")
        updates[key] = _coerce(getattr(current, key), value, f"{name}.{key}")
    return replace(current, **updates)


def _coerce(example: Any, value: Any, where: str) -> Any:
    if isinstance(example, StrEnum):
        return _choice(type(example), value, where)
    if isinstance(example, tuple) and example and isinstance(example[0], StrEnum):
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            raise ValueError(f"config {where}: expected a list, got {value!r}")
        return tuple(_choice(type(example[0]), v, where) for v in value)
    try:
        if isinstance(example, Decimal):
            return Decimal(str(value))
        if isinstance(example, bool):
            return bool(value)
        if isinstance(example, int):
            return int(value)
        if isinstance(example, tuple):
            return tuple(str(v) for v in value)
        if isinstance(example, dict):
            return {str(k): Decimal(str(v)) for k, v in value.items()}
        return str(value)
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise ValueError(f"config {where}: bad value {value!r}") from exc


def ensure_config_valid(config: EngineConfig) -> None:
    """Raise ``ValueError`` naming the first impossible setting."""
    liq, adl, wf = config.liquidation, config.adl, config.waterfall
    checks = [
        (all(Decimal(0) < b < 1 for b in (config.price_limit.band,
                                            *config.price_limit.per_instrument.values())),
         "price_limit bands must be in (0, 1)"),
        (isinstance(liq.style, LiquidationStyle), f"liquidation.style must be one of {LIQUIDATION_STYLES}"),
        (liq.fee_rate == "taker" or _is_rate(liq.fee_rate),
         "liquidation.fee_rate: 'taker' or a rate in [0, 1) with at most 6 decimals"),
        (Decimal(0) < liq.price_band < 1, "liquidation.price_band must be in (0, 1)"),
        (Decimal(0) < liq.progressive_share <= 1, "liquidation.progressive_share in (0, 1]"),
        (liq.progressive_cooldown_ms >= 0, "liquidation.progressive_cooldown_ms must be >= 0"),
        (isinstance(config.insurance_fund.layout, FundLayout), f"insurance_fund.layout in {FUND_LAYOUTS}"),
        (Decimal(0) <= config.insurance_fund.trading_fee_share <= 1,
         "insurance_fund.trading_fee_share in [0, 1]"),
        (all(v >= 0 for v in config.insurance_fund.initial.values()),
         "insurance_fund.initial amounts must be >= 0"),
        (isinstance(adl.ranking, AdlRanking), f"adl.ranking must be one of {ADL_RANKINGS}"),
        (isinstance(adl.price, AdlPrice), f"adl.price must be one of {ADL_PRICES}"),
        (isinstance(adl.haircut, AdlHaircut), f"adl.haircut must be one of {ADL_HAIRCUTS}"),
        (Decimal(0) < adl.decline_share <= 1, "adl.decline_share in (0, 1]"),
        (adl.decline_window_ms > 0, "adl.decline_window_ms must be > 0"),
        (Decimal(0) <= config.mark.smoothing <= 1, "mark.smoothing in [0, 1]"),
        (isinstance(config.risk.screen, ScreenMode), "risk.screen: auto | exact | vectorised"),
        (config.risk.vectorised_from >= 0, "risk.vectorised_from must be >= 0"),
        (Decimal(0) <= config.mark.basis_clamp < 1, "mark.basis_clamp in [0, 1)"),
        (bool(wf.order) and all(isinstance(s, WaterfallStep) for s in wf.order),
         f"waterfall.order steps must be from {WATERFALL_STEPS}"),
        (all(v >= 0 for v in wf.vault_capital.values()) and Decimal(0) < wf.vault_cap_share <= 1,
         "waterfall.vault_capital >= 0 and vault_cap_share in (0, 1]"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"config: {message}")


def _choice(kind: type[StrEnum], value: Any, where: str) -> Any:
    """``value`` as a member of ``kind``; anything else raises ``ValueError`` naming the choices."""
    try:
        return kind(str(value))
    except ValueError:
        choices = " | ".join(m.value for m in kind)
        raise ValueError(f"config {where} must be one of {choices}, got {value!r}") from None


def _is_rate(text: str) -> bool:
    """A rate in [0, 1) on the ppm grid (so ``fee_ppm`` is exact)."""
    try:
        rate = Decimal(text)
        return Decimal(0) <= rate < 1 and (rate * PPM) == (rate * PPM).to_integral_value()
    except ArithmeticError:
        return False
