"""CI-sized crash recovery (issue 6, item 1): 3 ``kill -9``\\ s under order load per backend.
The full size (25 kills per backend) is ``bench/crash_harness.py``; figures in RELIABILITY.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pg_server import PG_MISSING, pg_available

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from crash_harness import run


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_under_load_loses_nothing_and_replays_exactly(backend, tmp_path):
    if backend == "postgres" and not pg_available():
        pytest.skip(PG_MISSING)
    report = run(backend, kills=3, seed=7, clients=3, window=(0.3, 0.8), workdir=tmp_path)
    assert report.failures == []
    assert report.kills == 3
    assert report.orders_acknowledged > 50
    assert report.orders_lost == 0
    assert report.audit_ok and report.hash_match
