"""The pictures in docs/ show what the code gives today: their runs' verdicts are re-derived."""

from __future__ import annotations

from backstop.lab.pictures import DOCS, monte_carlo_report, replay_report, verdicts_text


def test_docs_pictures_are_current(tmp_path):
    expected = verdicts_text(replay_report(tmp_path / "replay"), monte_carlo_report(tmp_path / "mc"))
    shown = (DOCS / "pictures.txt").read_text()
    assert shown == expected, "docs/ pictures are stale: run `python -m backstop.lab.pictures`"
    assert (DOCS / "report.png").stat().st_size > 10_000
    assert (DOCS / "montecarlo.png").stat().st_size > 10_000
