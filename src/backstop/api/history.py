"""Each account's bills (``account/bills``) and position history
(``account/positions-history``), built from engine events by :class:`~backstop.api.tracker.Tracker`.

A bill is one change of the account's balance (``cashBal``: cash plus isolated margin) with
OKX's ``type`` and ``subType``: trades (2), liquidation (5), funding fees (8), ADL (9) and
transfers (1). A bill's change is exact money; the balance after it (``bal``) is the running
sum of the account's bills in its currency, so it is computed when listed, with the
instrument's settlement currency (see :meth:`AccountHistory.balances`).

A position's history runs from open to flat; it is listed once part of it has been closed,
with the ``type`` of its latest close. Units: prices in ticks, sizes in lots, money in 1e-8
units.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backstop.model import events as ev

if TYPE_CHECKING:
    from backstop.api.tracker import FillRecord

BILLS_KEPT = 10_000
"""Bills kept per account (the oldest drop off; their sum is kept so ``bal`` stays exact)."""
POSITIONS_KEPT = 1_000
"""Position histories kept per account."""

TRANSFER, TRADE, LIQUIDATION, FUNDING, ADL = "1", "2", "5", "8", "9"
"""OKX bill ``type`` codes."""
TRANSFER_IN, TRANSFER_OUT = "11", "12"
OPEN_LONG, OPEN_SHORT, CLOSE_LONG, CLOSE_SHORT = "3", "4", "5", "6"
PARTIAL_LIQ_LONG, PARTIAL_LIQ_SHORT, LIQ_LONG, LIQ_SHORT = "100", "101", "104", "105"
LIQ_FEES, LIQ_TRANSFER_IN, LIQ_TRANSFER_OUT = "109", "110", "111"
ADL_CLOSE_LONG, ADL_CLOSE_SHORT = "125", "126"
FUNDING_EXPENSE, FUNDING_INCOME = "173", "174"
"""OKX bill ``subType`` codes (also the ``subType`` of ``trade/fills``)."""

CLOSE_PARTLY, CLOSE_ALL, CLOSE_LIQUIDATION, CLOSE_PARTIAL_LIQUIDATION = "1", "2", "3", "4"
CLOSE_ADL_PARTLY, CLOSE_ADL_ALL = "5", "6"
"""OKX ``positions-history`` ``type`` (the latest close)."""


def fill_bill_codes(fill: FillRecord) -> tuple[str, str]:
    """``(type, subType)`` of a fill: a trade opens or closes; a liquidation or ADL close
    names its direction (the position's, before the fill)."""
    long = fill.pos_before > 0
    if fill.category == "full_liquidation":
        return LIQUIDATION, LIQ_LONG if long else LIQ_SHORT
    if fill.category == "partial_liquidation":
        return LIQUIDATION, PARTIAL_LIQ_LONG if long else PARTIAL_LIQ_SHORT
    if fill.category == "adl":
        return ADL, ADL_CLOSE_LONG if long else ADL_CLOSE_SHORT
    if fill.closed_lots:
        return TRADE, CLOSE_LONG if long else CLOSE_SHORT
    return TRADE, OPEN_LONG if fill.side == "buy" else OPEN_SHORT


@dataclass(frozen=True, slots=True)
class BillRecord:
    """One balance change. ``ccy`` is set for transfers; instrument bills name ``inst_id``
    and take the instrument's settlement currency. ``bal_chg``, ``pnl`` and ``fee`` are money
    (``fee`` charged, positive)."""

    bill_id: int
    uid: int
    ts: int
    type: str
    sub_type: str
    bal_chg: int
    ccy: str = ""
    inst_id: str = ""
    mgn_mode: str = ""
    lots: int = 0
    px_ticks: int = 0
    pnl: int = 0
    fee: int = 0
    ord_id: int = 0
    trade_id: int = 0
    exec_type: str = ""
    cl_ord_id: str = ""


@dataclass(slots=True)
class PositionRecord:
    """One position from open to flat. ``open_value``/``close_value`` are Σ px_ticks·lots of
    the opening and closing fills; money fields are 1e-8 units (``fee`` charged, positive;
    ``funding`` received, signed; ``liq_penalty`` charged, positive)."""

    pos_id: int
    uid: int
    inst_id: str
    mgn_mode: str
    direction: str
    c_time: int
    u_time: int
    lever_cents: int | None = None
    open_lots: int = 0
    open_value: int = 0
    max_lots: int = 0
    close_lots: int = 0
    close_value: int = 0
    pnl: int = 0
    fee: int = 0
    funding: int = 0
    liq_penalty: int = 0
    type: str = ""
    open: bool = True


@dataclass(slots=True)
class AccountHistory:
    """Bills and position histories per account."""

    bills: dict[int, deque[BillRecord]] = field(default_factory=dict)
    dropped: dict[tuple[int, str, str], int] = field(default_factory=dict)
    """``(uid, ccy, inst_id)`` → Σ ``bal_chg`` of the bills that dropped off."""
    bill_seq: int = 0
    positions: dict[int, deque[PositionRecord]] = field(default_factory=dict)
    current: dict[tuple[int, str, str], PositionRecord] = field(default_factory=dict)
    """The latest position record of each ``(uid, instId, mgnMode)`` (open or just closed)."""
    position_seq: int = 0
    levers: dict[tuple[int, str, str], int] = field(default_factory=dict)

    def add_bill(self, **fields: object) -> BillRecord:
        self.bill_seq += 1
        bill = BillRecord(self.bill_seq, **fields)  # type: ignore[arg-type]
        kept = self.bills.setdefault(bill.uid, deque())
        kept.append(bill)
        if len(kept) > BILLS_KEPT:
            old = kept.popleft()
            key = (old.uid, old.ccy, old.inst_id)
            self.dropped[key] = self.dropped.get(key, 0) + old.bal_chg
        return bill

    def transfer(self, e: ev.Deposited | ev.Withdrawn, sign: int) -> None:
        self.add_bill(uid=e.uid, ts=e.ts, type=TRANSFER, sub_type=TRANSFER_IN if sign > 0 else TRANSFER_OUT,
                      bal_chg=sign * e.amount, ccy=e.ccy)

    def leverage(self, e: ev.LeverageSet) -> None:
        self.levers[(e.uid, e.inst_id, e.mgn_mode)] = e.lever_cents

    def fill_settled(self, fill: FillRecord) -> None:
        """The fill's bill: realized PnL less the fee."""
        kind, sub = fill_bill_codes(fill)
        bill = self.add_bill(uid=fill.uid, ts=fill.ts, type=kind, sub_type=sub, bal_chg=fill.pnl - fill.fee,
                             inst_id=fill.inst_id, mgn_mode=fill.mgn_mode, lots=fill.lots,
                             px_ticks=fill.px_ticks, pnl=fill.pnl, fee=fill.fee, ord_id=fill.ord_id,
                             trade_id=fill.trade_id, exec_type=fill.exec_type, cl_ord_id=fill.cl_ord_id)
        fill.bill_id = bill.bill_id

    def funding(self, e: ev.FundingPaid) -> None:
        sub_type = FUNDING_INCOME if e.amount > 0 else FUNDING_EXPENSE
        self.add_bill(uid=e.uid, ts=e.ts, type=FUNDING, sub_type=sub_type, bal_chg=e.amount,
                      inst_id=e.inst_id, mgn_mode=e.mgn_mode)
        record = self.current.get((e.uid, e.inst_id, e.mgn_mode))
        if record is not None and record.open:
            record.funding += e.amount

    def liquidation_settled(self, e: ev.LiquidationSettled) -> None:
        """The slice's money: the liquidation fee and any surplus to the fund (out), or the
        deficit paid by the fund or socialized (in)."""
        common = {"uid": e.uid, "ts": e.ts, "type": LIQUIDATION, "inst_id": e.inst_id, "mgn_mode": e.mgn_mode,
                  "lots": e.lots}
        if e.fee:
            self.add_bill(**common, sub_type=LIQ_FEES, bal_chg=-e.fee, fee=e.fee)
        if e.to_fund - e.fee:
            self.add_bill(**common, sub_type=LIQ_TRANSFER_OUT, bal_chg=-(e.to_fund - e.fee))
        if e.from_fund + e.socialized:
            self.add_bill(**common, sub_type=LIQ_TRANSFER_IN, bal_chg=e.from_fund + e.socialized)
        record = self.current.get((e.uid, e.inst_id, e.mgn_mode))
        if record is not None:
            record.liq_penalty += e.fee
            record.u_time = max(record.u_time, e.ts)

    def deficit_covered(self, e: ev.DeficitCovered) -> None:
        """A hole the engine closed before the command returned: the account's own unrealized
        profit settled into cash, then the fund's payment and the socialized share (one
        liquidation transfer in; ``pnl`` is the part from its own profit)."""
        amount = e.settled_from_upl + e.from_fund + e.socialized
        if amount:
            self.add_bill(uid=e.uid, ts=e.ts, type=LIQUIDATION, sub_type=LIQ_TRANSFER_IN, bal_chg=amount,
                          ccy=e.ccy if not e.inst_id else "", inst_id=e.inst_id, mgn_mode=e.mgn_mode,
                          pnl=e.settled_from_upl)

    def position_moved(self, change: ev.PositionChanged, before: int, fill: FillRecord | None,
                       category: str) -> None:
        """Follow a position through a fill (``fill`` given) or another change (a vault
        takeover: sizes only)."""
        key = (change.uid, change.inst_id, change.mgn_mode)
        after = change.size_lots
        record = self.current.get(key)
        if before == 0 and after == 0:
            return
        if record is None or not record.open:
            record = self._opened(key, change.ts, after if before == 0 else before)
        px = fill.px_ticks if fill is not None else 0
        closed = closed_lots(before, after)
        opened = abs(after - before) - closed
        record.u_time = change.ts
        record.pnl += change.realized_pnl
        record.fee += fill.fee if fill is not None else 0
        if closed:
            record.close_lots += closed
            record.close_value += px * closed
            record.type = _close_type(category, after)
        if after == 0 or (before and (after > 0) != (before > 0)):
            record.open = False
        if opened:
            if not record.open:
                record = self._opened(key, change.ts, after)
            record.open_lots += opened
            record.open_value += px * opened
        record.max_lots = max(record.max_lots, abs(after))

    def _opened(self, key: tuple[int, str, str], ts: int, signed_lots: int) -> PositionRecord:
        self.position_seq += 1
        uid, inst_id, mode = key
        record = PositionRecord(self.position_seq, uid, inst_id, mode, "long" if signed_lots > 0 else "short",
                                ts, ts, self.levers.get(key))
        self.current[key] = record
        kept = self.positions.setdefault(uid, deque(maxlen=POSITIONS_KEPT))
        kept.append(record)
        return record

    def account_bills(self, uid: int) -> list[BillRecord]:
        """Oldest first."""
        return list(self.bills.get(uid, ()))

    def balances(self, uid: int, ccy_of: Callable[[str, str], str]) -> dict[int, int]:
        """``bal`` after each kept bill (by bill id): the running sum of the account's bills
        in the bill's currency (``ccy_of(ccy, inst_id)``), from the sum of those that dropped
        off."""
        running: dict[str, int] = {}
        for (owner, ccy_or_empty, inst_id), total in self.dropped.items():
            if owner == uid:
                ccy = ccy_of(ccy_or_empty, inst_id)
                running[ccy] = running.get(ccy, 0) + total
        out = {}
        for bill in self.bills.get(uid, ()):
            ccy = ccy_of(bill.ccy, bill.inst_id)
            running[ccy] = running.get(ccy, 0) + bill.bal_chg
            out[bill.bill_id] = running[ccy]
        return out

    def closed_positions(self, uid: int) -> list[PositionRecord]:
        """Position histories with a close, latest update first."""
        return sorted((r for r in self.positions.get(uid, ()) if r.close_lots),
                      key=lambda r: (r.u_time, r.pos_id), reverse=True)


def closed_lots(before: int, after: int) -> int:
    """Lots of a position change (signed lots, net mode) that closed exposure."""
    if before == 0 or (after != 0 and (after > 0) == (before > 0) and abs(after) >= abs(before)):
        return 0
    if after == 0 or (after > 0) != (before > 0):
        return abs(before)
    return abs(before) - abs(after)


def _close_type(category: str, after: int) -> str:
    if category == "full_liquidation":
        return CLOSE_LIQUIDATION
    if category == "partial_liquidation":
        return CLOSE_PARTIAL_LIQUIDATION
    if category == "adl":
        return CLOSE_ADL_ALL if after == 0 else CLOSE_ADL_PARTLY
    return CLOSE_ALL if after == 0 else CLOSE_PARTLY
