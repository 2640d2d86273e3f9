"""Frozen data: typed ids, instruments and tiers, orders, commands and events. No mutation, no I/O."""
