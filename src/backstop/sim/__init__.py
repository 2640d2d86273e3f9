"""Stress lab: price paths, calibration, market impact, populations and Monte Carlo."""
