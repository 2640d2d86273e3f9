"""The pictures in docs/ show what the code gives today: their runs' verdicts are re-derived.

The runs go in a fresh interpreter, exactly as ``python -m backstop.lab.pictures`` makes them,
so nothing an earlier test left in this process can move their figures.
"""

from __future__ import annotations

import subprocess
import sys

from backstop.lab.pictures import DOCS

DERIVE = """
import sys
from pathlib import Path
from backstop.lab.pictures import monte_carlo_report, replay_report, verdicts_text
out = Path(sys.argv[1])
sys.stdout.write(verdicts_text(replay_report(out / "replay"), monte_carlo_report(out / "mc")))
"""


def test_docs_pictures_are_current(tmp_path):
    run = subprocess.run([sys.executable, "-c", DERIVE, str(tmp_path)], capture_output=True, text=True,
                         timeout=600, check=True)
    shown = (DOCS / "pictures.txt").read_text()
    assert shown == run.stdout, "docs/ pictures are stale: run `python -m backstop.lab.pictures`"
    assert (DOCS / "report.png").stat().st_size > 10_000
    assert (DOCS / "montecarlo.png").stat().st_size > 10_000
