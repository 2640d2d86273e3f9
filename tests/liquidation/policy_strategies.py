"""Hypothesis strategies for the engine's liquidation and ADL policy sections, shared by the
property tests that run random crashes under every policy."""

from __future__ import annotations

from hypothesis import strategies as st

liquidation_styles = st.fixed_dictionaries({"style": st.sampled_from(["okx_tiers", "full", "progressive"])})
adl_policies = st.fixed_dictionaries({
    "ranking": st.sampled_from(["okx", "bitmex", "binance", "hyperliquid", "random", "pro_rata"]),
    "price": st.sampled_from(["bankruptcy", "mark"]),
    "seed": st.integers(0, 5)})
