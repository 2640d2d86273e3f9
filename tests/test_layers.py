"""The layer rules of ``shared/DESIGN.md`` as import-linter contracts (``pyproject.toml``):
the core points inward, knows no edge, and the API and the reports only ask the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold(monkeypatch, capsys):
    use_cases = pytest.importorskip("importlinter.application.use_cases",
                                    reason="import-linter is not installed (pip install -e '.[test]')")
    monkeypatch.chdir(ROOT)
    kept = use_cases.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_logo=True,
                                  cache_dir=None)
    assert kept, capsys.readouterr().out
