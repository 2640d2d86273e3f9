"""Venue profiles: one frozen object per venue, chosen once, that sets the engine's policies
and the instruments' margin tables.

A :class:`VenueProfile` carries the margin model (the rule its tiers follow), the engine
config (liquidation style, fund layout, ADL trigger thresholds, ranking and price, price
band, liquidation fee) and its catalogue (the venue's BTC and ETH perpetual margin tables,
fees and liquidation-fee rule; :mod:`backstop.model.venue_specs`). ``okx`` is the default and
is exactly backstop's default config and catalogue.

Where a venue's rule has no published figure backstop can use, the profile says so in
``reconstructed``; ``sources`` lists the pages each setting comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from backstop.engine.config import EngineConfig, Venue, config_from_dict, read_config_data
from backstop.model.catalogue import Catalogue, catalogue_from_specs, default_catalogue
from backstop.model.venue_specs import venue_specs


class MarginModel(StrEnum):
    """How a venue's maintenance margin grows with the position."""

    OKX_TIERS = "okx_tiers"
    """Tiers by contracts, MM = notional × mmr; the trigger adds the taker fee (okx.md)."""
    BINANCE_BRACKETS = "binance_brackets"
    """Notional brackets, MM = notional × mmr − cum; the trigger is MM alone."""
    BYBIT_RISK_LIMITS = "bybit_risk_limits"
    """Risk-limit steps, MM = entry value × mmr − MM deduction (``MmValuation.ENTRY``); the
    trigger is MM alone (USDT), MM plus the fee to close (inverse)."""
    HYPERLIQUID_MAINTENANCE_LEVERAGE = "hyperliquid_maintenance_leverage"
    """mmr = 1/(2 × max leverage) per margin tier, with a deduction at tier bounds."""
    BITMEX_RISK_LIMITS = "bitmex_risk_limits"
    """Risk-limit steps raising mmr on the whole position; MM counts the taker fee to close."""


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """One venue's rules. ``catalogue()`` builds its instruments; ``index_px`` (instId →
    price) moves the reference price its notional brackets are mapped to contracts at."""

    venue: Venue
    margin_model: MarginModel
    config: EngineConfig
    sources: tuple[str, ...]
    reconstructed: tuple[str, ...]

    def catalogue(self, index_px: dict[str, str] | None = None) -> Catalogue:
        if self.venue is Venue.OKX and not index_px:
            return default_catalogue()
        return catalogue_from_specs(venue_specs(self.venue.value, index_px))


def _profile(venue: Venue, model: MarginModel, sections: dict[str, Any], sources: tuple[str, ...],
             reconstructed: tuple[str, ...]) -> VenueProfile:
    config = config_from_dict(sections)
    return VenueProfile(venue, model, _with_venue(config, venue), sources, reconstructed)


def _with_venue(config: EngineConfig, venue: Venue) -> EngineConfig:
    return replace(config, venue=venue)


NO_DECLINE_TRIGGER = "1"
"""``adl.decline_share`` for venues that publish no fund-decline trigger (OKX's
``rate_adl_start``): only a fund that cannot pay (or a book that cannot absorb) starts ADL."""

PROFILES: dict[Venue, VenueProfile] = {
    Venue.OKX: _profile(
        Venue.OKX, MarginModel.OKX_TIERS, {},
        ("shared/reference/okx.md (OKX v5 docs, recorded positions, 2023-06-15 BTC-USD-SWAP tiers)",),
        ("USDT-swap tiers above tier 1 (OKX's published pattern)", "liquidation fee = taker fee",
         "partial liquidation by two tiers")),
    Venue.BINANCE: _profile(
        Venue.BINANCE, MarginModel.BINANCE_BRACKETS,
        {"liquidation": {"style": "full", "price_band": "0.05"},
         "adl": {"ranking": "binance", "price": "bankruptcy", "decline_share": NO_DECLINE_TRIGGER},
         "price_limit": {"band": "0.05"}},
        ("https://www.binance.com/en/futures/trading-rules/perpetual/leverage-margin",
         "https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93",
         "https://www.binance.com/en/support/faq/360033525471 (ADL ranking)"),
        ("brackets mapped to contracts at the reference price", "price band 5%",
         "no clearance fee: the remaining margin goes to the fund through the takeover")),
    Venue.BYBIT: _profile(
        Venue.BYBIT, MarginModel.BYBIT_RISK_LIMITS,
        {"liquidation": {"style": "full"},
         "adl": {"ranking": "okx", "price": "bankruptcy", "decline_share": NO_DECLINE_TRIGGER}},
        ("https://www.bybit.com/en/help-center/article/Liquidation-Price-USDT-Contract",
         "https://help.bybit.com/hc/en-us/articles/360039261334-How-to-calculate-Liquidation-Price-Inverse-Contract-",
         "https://www.bybit.com/en/help-center/article/Auto-Deleveraging-ADL (PnL% × leverage ranking)"),
        ("risk-limit steps above tier 1 (USDT and inverse)",
         "ranking: OKX's formula, which Bybit publishes too",
         "inverse fee to close (0.075%) taken at the mark, not at the bankruptcy price "
         "(its inverse cross example moves by 0.0002%)")),
    Venue.HYPERLIQUID: _profile(
        Venue.HYPERLIQUID, MarginModel.HYPERLIQUID_MAINTENANCE_LEVERAGE,
        {"liquidation": {"style": "progressive", "progressive_share": "0.2",
                         "progressive_cooldown_ms": 30000},
         "adl": {"ranking": "hyperliquid", "price": "mark", "decline_share": NO_DECLINE_TRIGGER},
         "waterfall": {"order": ["insurance_fund", "vault", "adl"],
                       "vault_capital": {"USDT": "10000000"}}},
        ("https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations",
         "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers",
         "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/auto-deleveraging"),
        ("the liquidator vault (HLP) as backstop's vault with 10M USDT",
         "the book step keeps backstop's fund gate (Hyperliquid has no fund)",
         "ETH's 15× tier mmr 1/30 rounded up to 0.033334")),
    Venue.BITMEX: _profile(
        Venue.BITMEX, MarginModel.BITMEX_RISK_LIMITS,
        {"liquidation": {"style": "full"},
         "adl": {"ranking": "bitmex", "price": "bankruptcy", "decline_share": NO_DECLINE_TRIGGER}},
        ("https://www.bitmex.com/app/riskLimitsExamples", "https://www.bitmex.com/app/liquidation",
         "https://www.bitmex.com/app/liquidationExamples", "https://www.bitmex.com/app/adl"),
        ("linear BTC/ETH contracts stand in for XBTUSD and ETHUSD", "base limits and steps",
         "funding is not added to the maintenance margin")),
}


def venue_profile(name: str | Venue) -> VenueProfile:
    """The profile called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return PROFILES[Venue(str(name))]
    except ValueError:
        raise ValueError(f"unknown venue {name!r}; one of {', '.join(v.value for v in Venue)}") from None


def resolve_venue(venue: str | None, config_path: Path | None) -> tuple[EngineConfig, Catalogue | None]:
    """``--venue`` and ``--config`` together: the venue's config with the file's sections on
    top, and the venue's catalogue (``None`` for OKX: the default). The venue is ``--venue``,
    else the file's ``venue``, else OKX; a file naming another venue than ``--venue`` is
    refused (``ValueError``)."""
    data = read_config_data(config_path) if config_path else {}
    named = data.get("venue")
    if venue is not None and named is not None and venue_profile(named) is not venue_profile(venue):
        raise ValueError(f"--venue {venue} but {config_path} says venue = {named!r}")
    if venue is not None:
        data = {**data, "venue": venue}
    config = config_from_dict(data)
    return config, None if config.venue is Venue.OKX else venue_profile(config.venue).catalogue()
