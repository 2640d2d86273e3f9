"""Insurance funds: one per (instType, instFamily) by default, or one shared per currency.

A fund's balance lives in the ledger (``fund`` key); this object keeps its published history
(OKX ``public/insurance-fund`` rows) and the peak over the trailing window that the
``rate_adl_start`` trigger reads. Decline rates are decimals for display and the trigger
compares exactly: ``(peak − balance) · 1 > share · peak``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from backstop.model.instrument import Instrument


@dataclass(frozen=True, slots=True)
class FundRecord:
    """One ``details[]`` row: ``type`` is ``liquidation_balance_deposit``, ``bankruptcy_loss``,
    ``platform_revenue``, ``adl`` or ``regular_update``; money in units of 1e-8 ``ccy``."""

    ts: int
    type: str
    amt: int
    balance: int
    max_bal: int
    max_bal_ts: int
    adl_type: str = ""


_NO_SUCCESSOR = 1 << 62
"""``next_ts`` of the latest record: later than any time (ms) the engine reaches."""


def fund_id_for(inst: Instrument, layout: str) -> str:
    """``SWAP:BTC-USDT`` per family, or ``SWAP:shared:USDT`` for a shared pool."""
    if layout == "shared":
        return f"{inst.inst_type}:shared:{inst.settle_ccy}"
    return f"{inst.inst_type}:{inst.inst_family}"


class InsuranceFund:
    """History and trailing peak of one fund."""

    __slots__ = (
        "_maxima",
        "adl_state",
        "ccy",
        "fund_id",
        "history",
        "inst_family",
        "inst_type",
        "window_ms",
    )

    def __init__(self, fund_id: str, inst_type: str, inst_family: str, ccy: str,
                 window_ms: int) -> None:
        self.fund_id = fund_id
        self.inst_type = inst_type
        self.inst_family = inst_family
        self.ccy = ccy
        self.window_ms = window_ms
        self.history: list[FundRecord] = []
        self.adl_state = ""  # "" | "rate_adl_start" | "bal_adl_start" | "pos_adl_start"
        self._maxima: deque[list[int]] = deque()

    def apply_record(self, ts: int, kind: str, amt: int, balance: int,
                     adl_type: str = "") -> FundRecord:
        """Append a movement (``balance`` is the ledger balance after it); ``ts`` never goes
        back from the previous record's."""
        self._push(ts, balance)
        peak, peak_ts = self.peak(ts)
        record = FundRecord(ts, kind, amt, balance, peak, peak_ts, adl_type)
        self.history.append(record)
        return record

    def _push(self, ts: int, balance: int) -> None:
        """Keep only the records no later one equals or beats (``[ts, balance, next_ts]``,
        balances strictly falling), noting the new record's time as its predecessor's
        successor; amortised O(1)."""
        maxima = self._maxima
        if maxima:
            maxima[-1][2] = ts
        while maxima and maxima[-1][1] <= balance:
            maxima.pop()
        maxima.append([ts, balance, _NO_SUCCESSOR])

    def peak(self, now: int) -> tuple[int, int]:
        """Highest balance within the trailing window ``[now − window, now]`` and its time
        (the later one on a tie); amortised O(1).

        The balance carried into the window (the last record before it starts) counts, as of
        the window's start: a fund that sat at 1,000 for nine hours and then fell to 600 has
        a peak of 1,000, not 600. The front of the maxima is that carried record when its
        successor is inside the window; a front whose successor is not can never be carried
        again and is dropped. A carried record that a later one beat is not kept, and need
        not be: the later one is inside the window and at least as high.
        """
        maxima, start = self._maxima, now - self.window_ms
        while len(maxima) > 0 and maxima[0][2] <= start:
            maxima.popleft()
        if not maxima:
            return 0, now
        ts, balance, _ = maxima[0]
        return balance, max(ts, start)

    def is_declining_too_fast(self, now: int, balance: int, share: Decimal) -> bool:
        """Whether the balance is more than ``share`` below the window's peak."""
        peak, _ = self.peak(now)
        return peak > 0 and Decimal(peak - balance) > share * peak

    @staticmethod
    def decline_rate(record: FundRecord) -> Decimal:
        if record.max_bal <= 0:
            return Decimal(0)
        return Decimal(record.max_bal - record.balance) / Decimal(record.max_bal)
