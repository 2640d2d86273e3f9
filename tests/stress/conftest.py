"""Stress fixtures: the crash day, real (``../shared/data``) or generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_data import crash_day


@pytest.fixture(scope="session")
def crash_files(tmp_path_factory) -> tuple[Path, Path, bool]:
    """``(klines, depth, real)``, see :func:`shared_data.crash_day`."""
    return crash_day(tmp_path_factory.mktemp("crash-day"))
