"""Money invariants at scale: at least 1,000,000 engine events through liquidations, ADL,
funding and withdrawals, with conservation checked exactly after every command and every
invariant every 500 commands (issue 6, item 6).

Run: ``python bench/money_at_scale.py`` (1,000,000 events over six policy segments) or
``--events N``. Prints the counts of events, checks and violations per segment and in total.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from backstop.engine.config import EngineConfig
from backstop.sim.chaos import run_chaos

SEGMENTS: list[tuple[str, dict]] = [
    ("okx defaults", {}),
    ("adl only, okx ranking", {"waterfall": {"order": ["adl"]}}),
    ("adl only, pro-rata", {"waterfall": {"order": ["adl"]}, "adl": {"ranking": "pro_rata"}}),
    ("fund → socialize", {"waterfall": {"order": ["insurance_fund", "socialize"]}}),
    ("fund → vault → adl, random", {"waterfall": {"order": ["insurance_fund", "vault", "adl"],
                                                  "vault_capital": {"USDT": "200000", "BTC": "2"}},
                                    "adl": {"ranking": "random"}}),
    ("progressive, hyperliquid ranking", {"liquidation": {"style": "progressive"},
                                          "waterfall": {"order": ["adl"]},
                                          "adl": {"ranking": "hyperliquid"}}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    per_segment = -(-args.events // len(SEGMENTS))
    totals: Counter = Counter()
    kinds: Counter = Counter()
    print("| segment | events | commands | conservation checks | full checks | violations | s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for number, (name, overrides) in enumerate(SEGMENTS):
        config = EngineConfig().with_overrides(
            insurance_fund={"initial": {"BTC-USDT": "300", "ETH-USDT": "100", "BTC-USD": "0.005"}},
            **overrides)
        start = time.perf_counter()
        report = run_chaos(per_segment, args.seed + number, config=config)
        seconds = time.perf_counter() - start
        totals.update(events=report.events, commands=report.commands,
                      checks=report.conservation_checks, full=report.full_checks,
                      violations=len(report.violations))
        kinds.update(report.event_kinds)
        print(f"| {name} | {report.events:,} | {report.commands:,} | {report.conservation_checks:,} "
              f"| {report.full_checks:,} | {len(report.violations)} | {seconds:.0f} |")
        for message in report.violations[:5]:
            print(f"  violation: {message}")
    print(f"| **total** | **{totals['events']:,}** | {totals['commands']:,} | {totals['checks']:,} "
          f"| {totals['full']:,} | **{totals['violations']}** | |")
    interesting = ("Filled", "LiquidationSettled", "AutoDeleveraged", "FundingPaid", "Withdrawn",
                   "InsuranceFundChanged", "AdlStateChanged", "Rejected")
    print("\nevents by kind: " + ", ".join(f"{k} {kinds[k]:,}" for k in interesting))


if __name__ == "__main__":
    main()
