"""Regenerate the pictures in ``docs/`` from fixed, seeded runs: ``python -m backstop.lab.pictures``.

Each picture is a screenshot of the ``report.html`` of a run that needs no data beside the
checkout (the built-in 2025-10-10 crash model), so anyone can remake it:

- ``docs/report.png``: ``backstop stress --accounts 1000 --seed 0``;
- ``docs/montecarlo.png``: ``backstop stress --paths 1000 --accounts 2000 --fund 1000 --seed 0``.

``docs/pictures.txt`` keeps the verdict each run states; ``tests/stress/test_docs_pictures.py``
re-runs the scenarios and fails when the text, hence the pictures, no longer matches what the
code gives. Screenshots use Debian's ``chromium`` through Playwright (the test extra), as the
dashboard test does; ``$BACKSTOP_CHROMIUM`` names another browser binary.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from backstop.lab.stress_command import StressFlags, build_spec
from backstop.report.build import write_outputs
from backstop.report.montecarlo import write_mc_report
from backstop.report.summary import verdict
from backstop.sim.mc_cli import run_paths
from backstop.sim.scenario import Scenario
from backstop.sim.stress import run_stress

DOCS = Path(__file__).resolve().parents[3] / "docs"
REPLAY = StressFlags(model="crash", accounts=1000, seed=0)
MONTE_CARLO = {"paths": 1000, "model": "crash", "accounts": 2000, "seed": 0, "fund_usdt": 1000.0}
VIEWPORT = {"width": 1200, "height": 1500}


def replay_report(out: Path) -> str:
    """Run :data:`REPLAY` (shared depth file ignored, so every checkout gives the same run);
    write its outputs into ``out``; return its verdict."""
    spec = replace(build_spec(REPLAY), depth_file=None)
    result = run_stress(Scenario(spec), progress=False)
    return verdict(result, write_outputs(result, out, history=None))


def monte_carlo_report(out: Path) -> str:
    """Run :data:`MONTE_CARLO`, write ``out/report.html``, return its verdict."""
    return write_mc_report(out / "report.html", run_paths(**MONTE_CARLO))


def verdicts_text(replay: str, monte_carlo: str) -> str:
    """The content of ``docs/pictures.txt``."""
    return f"report.png: {replay}\nmontecarlo.png: {monte_carlo}\n"


def screenshot(page_path: Path, png: Path) -> None:
    """A viewport-sized PNG of ``page_path`` once plotly has drawn."""
    try:
        from playwright import sync_api
    except ImportError:
        raise ImportError("screenshots need Playwright: pip install -e '.[test]'") from None
    chromium = os.environ.get("BACKSTOP_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        raise OSError(f"{chromium} not found: apt-get install -y chromium (or set BACKSTOP_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        page.wait_for_selector(".plot-container", timeout=30_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(png))
        browser.close()


def main(docs: Path = DOCS) -> None:
    """Run both scenarios, screenshot their reports into ``docs``, write ``pictures.txt``."""
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        replay_dir, mc_dir = Path(tmp) / "replay", Path(tmp) / "mc"
        replay = replay_report(replay_dir)
        monte_carlo = monte_carlo_report(mc_dir)
        screenshot(replay_dir / "report.html", docs / "report.png")
        screenshot(mc_dir / "report.html", docs / "montecarlo.png")
    (docs / "pictures.txt").write_text(verdicts_text(replay, monte_carlo))
    console.print(f"wrote {docs / 'report.png'}, {docs / 'montecarlo.png'}, {docs / 'pictures.txt'}",
                  highlight=False, soft_wrap=True)


if __name__ == "__main__":
    try:
        main()
    except (ImportError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
