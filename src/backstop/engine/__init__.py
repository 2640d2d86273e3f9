"""Orchestration: command → staged state changes → events."""
