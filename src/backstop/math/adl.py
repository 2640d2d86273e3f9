"""ADL ranking: who is deleveraged first. Pure and exact (scores are ``Fraction``).

Every opposite-side position is ranked by its venue's published formula, losing ones too where
the venue ranks them; the engine then deleverages only positions it can close without a loss
to them (profitable at the mark), so a losing position's rank decides nothing but its display.

- ``okx``: PnL% × effective leverage = (upl / margin) × (notional / equity), where margin is
  the isolated margin or the cross position's IM (OKX ``uplRatio``) (okx.md, "Auto-deleveraging");
- ``bitmex``: PnL% × EffLev when PnL% > 0, else PnL% / EffLev, with PnL% = (mark value −
  entry value) / |entry value| = upl / |cost| and EffLev = |mark value| / (mark value −
  bankrupt value) = notional / equity (BitMEX, "Auto-Deleveraging",
  https://www.bitmex.com/app/autoDeleveraging);
- ``binance``: max(0, upl) / max(1, wallet) × margin ratio, where the margin ratio is
  MM / (wallet + upl), or 0 when wallet + upl ≤ 0; ``1`` is one unit of the settlement
  currency (Binance, "What Is Auto-Deleveraging (ADL)", Leverage PnL ranking);
- ``hyperliquid``: (mark / entry) · (notional / equity) for a long, (entry / mark) · ... for a
  short (Hyperliquid docs, "Auto-deleveraging");
- ``random``: dYdX's random start: positions in account order, rotated to a seeded random start;
- ``pro_rata``: every position shares the cut in proportion to its size.
Ties break by account id then instrument, so the order is total and deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from backstop.numeric import MONEY_SCALE, div_ceil, div_floor


@dataclass(frozen=True, slots=True)
class AdlCandidate:
    """One opposite-side position at the current mark; money in units of 1e-8.

    ``margin``: the isolated margin, or for a cross position its IM at mark. ``equity``: the
    isolated equity, or the account's cross equity. ``wallet``: isolated margin or cash.
    ``entry_num/entry_den``: average open price in ticks as a fraction. ``cost``: the signed
    cost basis (the entry value).
    """

    uid: int
    inst_id: str
    mgn_mode: str
    size_lots: int
    upl: int
    margin: int
    equity: int
    notional: int
    mm: int
    wallet: int
    mark_ticks: int
    entry_num: int
    entry_den: int
    cost: int = 0

    @property
    def sort_key(self) -> tuple[int, str, str]:
        return (self.uid, self.inst_id, self.mgn_mode)


def calculate_adl_score(ranking: str, c: AdlCandidate) -> Fraction:
    """The candidate's score under a ranking; higher is deleveraged first."""
    equity = max(c.equity, 1)
    if ranking == "okx":
        return Fraction(c.upl, max(c.margin, 1)) * Fraction(c.notional, equity)
    if ranking == "bitmex":
        pnl_pct, eff_lev = Fraction(c.upl, max(abs(c.cost), 1)), Fraction(c.notional, equity)
        return pnl_pct * eff_lev if pnl_pct > 0 else pnl_pct / eff_lev
    if ranking == "binance":
        wallet_plus_upl = c.wallet + c.upl
        margin_ratio = Fraction(c.mm, wallet_plus_upl) if wallet_plus_upl > 0 else Fraction(0)
        return Fraction(max(0, c.upl), max(MONEY_SCALE, c.wallet)) * margin_ratio
    if ranking == "hyperliquid":
        entry = Fraction(c.entry_num, c.entry_den)
        price_ratio = Fraction(c.mark_ticks) / entry if c.size_lots > 0 else entry / c.mark_ticks
        return price_ratio * Fraction(c.notional, equity)
    if ranking in ("random", "pro_rata"):
        return Fraction(0)
    raise ValueError(f"unknown ADL ranking {ranking!r}")


def rank_candidates(ranking: str, candidates: list[AdlCandidate],
                    rng: random.Random) -> list[AdlCandidate]:
    """Every candidate, first to be deleveraged first."""
    ordered = sorted(candidates, key=lambda c: c.sort_key)
    if ranking == "random":
        if not ordered:
            return []
        start = rng.randrange(len(ordered))
        return ordered[start:] + ordered[:start]
    if ranking == "pro_rata":
        return ordered
    return sorted(ordered, key=lambda c: adl_rank_key(ranking, c))


def adl_rank_key(ranking: str, c: AdlCandidate) -> tuple[Fraction, tuple[int, str, str]]:
    """A scored ranking's order, smallest first: the highest score, then the tie order
    (unique per position, so the order is total)."""
    return -calculate_adl_score(ranking, c), c.sort_key


def allocate_pro_rata(total_lots: int, sizes: list[int]) -> list[int]:
    """Split ``total_lots`` in proportion to sizes, exactly.

    Each share is rounded down; the leftover units go one each to the largest remainders (ties:
    earlier first), so the shares sum to ``total_lots``. When ``total_lots ≤ Σ sizes`` no share
    exceeds its size (a share gains 1 only when its exact value was not whole).
    """
    whole = sum(sizes)
    if whole == 0:
        return [0 for _ in sizes]
    shares = [div_floor(total_lots * s, whole) for s in sizes]
    remainders = [(total_lots * s) % whole for s in sizes]
    order = sorted(range(len(sizes)), key=lambda i: (-remainders[i], i))
    for i in order[: total_lots - sum(shares)]:
        shares[i] += 1
    return shares


def calculate_quintiles(scores: list[Fraction] | list[float]) -> list[int]:
    """OKX's ``adl`` indicator, 1 (back) to 5 (front), by rank among the scores given: the
    top fifth shows 5 (``ceil((rank + 1) · 5 / n)``, rank 0 the lowest score), so a lone
    winner is at the front."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: scores[i])
    out = [0] * n
    for rank, i in enumerate(order):
        out[i] = div_ceil((rank + 1) * 5, n)
    return out
