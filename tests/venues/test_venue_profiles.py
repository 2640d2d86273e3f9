"""Venue profiles: typed, frozen, chosen once; OKX's is the default unchanged; choices are
enums; a maintenance deduction can never make a requirement vanish."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal as D

import pytest

from backstop.engine.config import (
    AdlRanking,
    EngineConfig,
    LiquidationStyle,
    Venue,
    WaterfallStep,
    config_from_dict,
    load_config,
)
from backstop.engine.trigger_index import INF_TICKS, calculate_trigger_ticks, is_isolated_liquidatable_at
from backstop.engine.venues import PROFILES, MarginModel, resolve_venue, venue_profile
from backstop.math.margin import (
    calculate_entry_notional,
    calculate_maintenance_margin,
    calculate_mm_plus_fee,
    is_liquidatable,
)
from backstop.math.values import calculate_fill_value
from backstop.model.catalogue import default_catalogue
from backstop.model.instrument import MmValuation


def test_every_venue_has_a_frozen_profile_with_sources():
    assert set(PROFILES) == set(Venue)
    for venue, profile in PROFILES.items():
        assert profile.venue is venue and profile.config.venue is venue
        assert isinstance(profile.margin_model, MarginModel) and profile.sources
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.config = EngineConfig()  # type: ignore[misc]


def test_okx_profile_is_the_default_config_and_catalogue():
    okx = venue_profile("okx")
    assert okx.config == EngineConfig()
    assert okx.catalogue().instruments == default_catalogue().instruments
    assert all(inst.liq_fee_ppm == inst.taker_fee_ppm for inst in default_catalogue())


def test_profiles_differ_where_the_venues_do():
    binance, hyper, bitmex = (venue_profile(v) for v in ("binance", "hyperliquid", "bitmex"))
    assert binance.config.adl.ranking is AdlRanking.BINANCE
    assert binance.config.liquidation.style is LiquidationStyle.FULL
    assert hyper.config.liquidation.style is LiquidationStyle.PROGRESSIVE
    assert WaterfallStep.VAULT in hyper.config.waterfall.order
    btc = {v: venue_profile(v).catalogue().get("BTC-USDT-SWAP") for v in Venue}
    assert btc[Venue.BINANCE].liq_fee_ppm == 0 and btc[Venue.BITMEX].liq_fee_ppm == 750
    assert btc[Venue.BINANCE].tiers[1].mm_deduction == D(50)
    assert bitmex.margin_model is MarginModel.BITMEX_RISK_LIMITS
    # OKX's fund-decline trigger (rate_adl_start, 30%) is OKX's alone: a share of 1 can never
    # be exceeded by a fund that never goes below zero
    assert venue_profile("okx").config.adl.decline_share == D("0.30")
    assert all(venue_profile(v).config.adl.decline_share == 1 for v in Venue if v is not Venue.OKX)


def test_unknown_venue_and_bad_choices_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="one of okx, binance, bybit, hyperliquid, bitmex"):
        venue_profile("ftx")
    with pytest.raises(ValueError, match=re.escape("liquidation.style must be one of okx_tiers | full")):
        config_from_dict({"liquidation": {"style": "gentle"}})
    with pytest.raises(ValueError, match=re.escape("waterfall.order")):
        config_from_dict({"waterfall": {"order": ["insurance_fund", "prayer"]}})
    with pytest.raises(ValueError, match="expected a list"):
        config_from_dict({"waterfall": {"order": "adl"}})


def test_toml_selects_a_venue_and_sections_override_it(tmp_path):
    path = tmp_path / "binance.toml"
    path.write_text('venue = "binance"\n[adl]\nranking = "pro_rata"\n')
    config = load_config(path)
    assert config.venue is Venue.BINANCE and config.adl.ranking is AdlRanking.PRO_RATA
    assert config.liquidation.style is LiquidationStyle.FULL          # from the profile
    config, catalogue = resolve_venue(None, path)
    assert config.venue is Venue.BINANCE and catalogue.get("BTC-USDT-SWAP").liq_fee_ppm == 0
    with pytest.raises(ValueError, match="--venue bybit but"):
        resolve_venue("bybit", path)
    config, catalogue = resolve_venue("hyperliquid", None)
    assert config == venue_profile("hyperliquid").config
    assert resolve_venue(None, None) == (EngineConfig(), None)


def test_a_deduction_never_lets_a_collapsed_position_escape_liquidation():
    """Attack: a large Binance position is in a bracket with cum 100,016,300; the price falls
    far below the reference the brackets were mapped at, so that bracket's line goes
    negative. The requirement is the largest line up to the size's tier, never below tier 1's
    0.4% of the notional, so an account with negative equity is always liquidatable."""
    inst = venue_profile("binance").catalogue({"BTC-USDT-SWAP": "100000"}).get("BTC-USDT-SWAP")
    size = inst.tiers[-1].max_lots                                    # the top bracket, 50%, cum 100M
    mark = inst.px_to_ticks(D("1000"))                                # a 99% fall
    notional = size * mark * inst.value_k
    assert notional * 500_000 // 1_000_000 < inst.tiers[-1].mm_deduction_units   # that line < 0
    mm = calculate_maintenance_margin(inst, size, mark)
    assert mm >= notional * 4_000 // 1_000_000 > 0
    assert is_liquidatable(-1, calculate_mm_plus_fee(inst, size, mark))


@pytest.mark.parametrize("lots", [40_000, 800_000, 5_000_000])
@pytest.mark.parametrize("long", [True, False])
def test_isolated_trigger_with_deductions_is_the_exact_boundary(lots, long):
    """The screen's isolated trigger, for tiers with a deduction, is the exact check's boundary."""
    inst = venue_profile("binance").catalogue({"BTC-USDT-SWAP": "100000"}).get("BTC-USDT-SWAP")
    size = lots if long else -lots
    cost = size * 1_000_000 * inst.value_k                             # entry 100,000
    margin = abs(cost) // 10
    trigger = calculate_trigger_ticks(inst, size, cost, margin)
    assert 0 < trigger < INF_TICKS

    def liq(px: int) -> bool:
        return is_isolated_liquidatable_at(inst, size, cost, margin, px)

    assert liq(trigger) and not liq(trigger + (1 if long else -1))


def test_only_bybit_values_maintenance_at_entry():
    """The MM valuation is the profile's, chosen once per instrument: Bybit's at entry, every
    other venue's at the mark (OKX's default catalogue unchanged)."""
    for venue in Venue:
        expected = MmValuation.ENTRY if venue is Venue.BYBIT else MmValuation.MARK
        assert {inst.mm_valuation for inst in venue_profile(venue).catalogue()} == {expected}
    assert {inst.mm_valuation for inst in default_catalogue()} == {MmValuation.MARK}


@pytest.mark.parametrize("inst_id", ["BTC-USDT-SWAP", "BTC-USD-SWAP"])
@pytest.mark.parametrize("long", [True, False])
def test_entry_valued_mm_and_its_trigger(inst_id, long):
    """An entry-valued MM does not move with the mark (the fee does), and the isolated trigger
    found for it is the exact check's boundary."""
    inst = venue_profile("bybit").catalogue({inst_id: "100000"}).get(inst_id)
    size, px = (40 if long else -40), inst.px_to_ticks(D("100000"))
    cost = calculate_fill_value(inst, size, px)
    entry = calculate_entry_notional(cost, 1)
    mms = {calculate_maintenance_margin(inst, size, px * f // 10, entry) for f in (5, 10, 20)}
    assert mms == {calculate_maintenance_margin(inst, size, px, entry)}
    assert calculate_maintenance_margin(inst, size, px // 2) != mms.pop()   # the mark's would move
    margin = entry // 20
    trigger = calculate_trigger_ticks(inst, size, cost, margin, entry)
    assert 0 < trigger < INF_TICKS
    step = 1 if long else -1
    assert is_isolated_liquidatable_at(inst, size, cost, margin, trigger, entry)
    assert not is_isolated_liquidatable_at(inst, size, cost, margin, trigger + step, entry)
