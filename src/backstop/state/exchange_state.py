"""Everything the engine mutates, in one object, with a canonical hash."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from backstop.model.catalogue import Catalogue
from backstop.model.enums import MarginMode
from backstop.state.book import OrderBook
from backstop.state.insurance import InsuranceFund, fund_id_for
from backstop.state.ledger import Ledger, reserved_key
from backstop.state.positions import Position, PositionKey


@dataclass(slots=True)
class OrderInfo:
    """The engine's record of a resting order (the book's ``payload``).

    ``reserved`` is the money set aside for its remaining lots in the account's ``reserved``
    ledger account, ``reserve_per_lot`` for each of them (IM at the order's leverage plus its
    maker fee, each rounded up), in settlement-currency money units.
    """

    ord_id: int
    uid: int
    inst_id: str
    side: str
    ord_type: str
    px_ticks: int
    sz_lots: int
    td_mode: MarginMode
    reduce_only: bool
    cl_ord_id: str
    ccy: str
    reserved: int
    reserve_per_lot: int
    ts: int
    category: str = "normal"


class ExchangeState:
    """Ledger, books, positions, orders, leverage settings and prices."""

    def __init__(self, catalogue: Catalogue, fund_layout: str = "per_family",
                 fund_window_ms: int = 8 * 3600 * 1000, adl_seed: int = 0,
                 fee_share_ppm: int = 0, price_band_ppm: dict[str, int] | None = None) -> None:
        self.catalogue = catalogue
        self.ledger = Ledger()
        self.books: dict[str, OrderBook] = {i.inst_id: OrderBook() for i in catalogue}
        self.positions: dict[PositionKey, Position] = {}
        self.account_positions: dict[int, dict[PositionKey, Position]] = {}
        self.open_orders: dict[int, dict[int, OrderInfo]] = {}
        self.live_cl_ord_ids: dict[tuple[int, str], int] = {}
        """``(uid, clOrdId)`` → ``ordId`` of every resting order that has a client id."""
        self.reduce_only_orders: dict[int, int] = {}
        """How many reduce-only orders each account has resting (absent: none), so that a fill
        looks at an account's orders only when one of them may need trimming."""
        self.leverage: dict[tuple[int, str, MarginMode], int] = {}
        self.index_ticks: dict[str, int] = {}
        self.mark_ticks: dict[str, int] = {}
        for inst in catalogue:
            ticks = inst.px_to_ticks(inst.index_px)
            self.index_ticks[inst.inst_id] = ticks
            self.mark_ticks[inst.inst_id] = ticks
        self.accounts: set[int] = set()
        self.next_ord_id = 1
        self.next_trade_id = 1
        self.funds: dict[str, InsuranceFund] = {}
        self.fund_of: dict[str, str] = {}
        for inst in catalogue:
            fund_id = fund_id_for(inst, fund_layout)
            self.fund_of[inst.inst_id] = fund_id
            if fund_id not in self.funds:
                family = inst.inst_family if fund_layout == "per_family" else "shared"
                self.funds[fund_id] = InsuranceFund(fund_id, inst.inst_type, family,
                                                    inst.settle_ccy, fund_window_ms)
        self.basis_ticks: dict[str, int] = {i.inst_id: 0 for i in catalogue}
        self.premiums_e8: dict[str, list[int]] = {i.inst_id: [] for i in catalogue}
        self.funding_rate_e8: dict[str, int] = {i.inst_id: 0 for i in catalogue}
        self.liquidation_cooldown: dict[PositionKey, int] = {}
        self.warned: set[tuple[int, str, str]] = set()
        self.adl_rank: dict[PositionKey, int] = {}
        self.adl_rng = random.Random(adl_seed)
        self.fee_share_ppm = fee_share_ppm
        self.price_band_ppm: dict[str, int] = price_band_ppm or {}
        """Each instrument's price band (the config's, in ppm): ``buyLmt``/``sellLmt`` are the
        mark ± the band."""
        self.adl_queues: dict[tuple[str, int], list] = {}
        """Ranked ADL queues of the current risk pass only (a cache; empty between commands)."""
        self.fee_share_accrued: dict[str, int] = {}
        """Trading-fee shares owed to each fund, swept in at the next risk check."""

    def position(self, uid: int, inst_id: str, mgn_mode: MarginMode) -> Position:
        """The position for this key, created empty on first use."""
        key = (uid, inst_id, mgn_mode)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(uid, inst_id, mgn_mode)
            self.account_positions.setdefault(uid, {})[key] = pos
        return pos

    def add_open_order(self, info: OrderInfo) -> None:
        """Record a resting order (it is in its book) under its account and client id."""
        self.open_orders.setdefault(info.uid, {})[info.ord_id] = info
        if info.cl_ord_id:
            self.live_cl_ord_ids[(info.uid, info.cl_ord_id)] = info.ord_id
        if info.reduce_only:
            self.reduce_only_orders[info.uid] = self.reduce_only_orders.get(info.uid, 0) + 1

    def remove_open_order(self, info: OrderInfo) -> None:
        """Forget a resting order recorded by :meth:`add_open_order`."""
        del self.open_orders[info.uid][info.ord_id]
        if info.cl_ord_id:
            self.live_cl_ord_ids.pop((info.uid, info.cl_ord_id), None)
        if info.reduce_only:
            left = self.reduce_only_orders[info.uid] - 1
            if left:
                self.reduce_only_orders[info.uid] = left
            else:
                del self.reduce_only_orders[info.uid]

    def reserved(self, uid: int, ccy: str) -> int:
        """Money set aside for the account's resting orders in ``ccy``."""
        return self.ledger.balance(reserved_key(uid, ccy))

    def existing_position(self, uid: int, inst_id: str, mgn_mode: MarginMode) -> Position | None:
        return self.positions.get((uid, inst_id, mgn_mode))

    def apply_drop_position_if_flat(self, pos: Position) -> None:
        """Forget a closed position (its realized figures were reported in events)."""
        if pos.size_lots == 0:
            self.positions.pop(pos.key, None)
            self.account_positions.get(pos.uid, {}).pop(pos.key, None)
            self.adl_rank.pop(pos.key, None)

    def state_hash(self) -> str:
        """SHA-256 over a canonical rendering of every balance, position, order and price."""
        digest = hashlib.sha256()
        for item in self._canonical_items():
            digest.update(repr(item).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def _canonical_items(self):
        yield ("balances", sorted((k, v) for k, v in self.ledger.balances.items() if v))
        yield ("deposited", sorted(self.ledger.deposited.items()))
        yield ("withdrawn", sorted(self.ledger.withdrawn.items()))
        yield ("positions", sorted(p.as_tuple() for p in self.positions.values()))
        yield ("leverage", sorted((u, i, m.value, v) for (u, i, m), v in self.leverage.items()))
        yield ("marks", sorted(self.mark_ticks.items()), sorted(self.index_ticks.items()))
        yield ("counters", self.next_ord_id, self.next_trade_id, sorted(self.accounts))
        yield ("funds", sorted((f.fund_id, f.adl_state, len(f.history)) for f in self.funds.values()))
        yield ("basis", sorted(self.basis_ticks.items()), sorted(self.funding_rate_e8.items()),
               sorted((k, tuple(v)) for k, v in self.premiums_e8.items()))
        yield ("liquidation", sorted(self.liquidation_cooldown.items()), sorted(self.warned))
        yield ("adl_rng", self.adl_rng.getstate())
        yield ("fee_share", sorted(self.fee_share_accrued.items()))
        for inst_id, book in sorted(self.books.items()):
            yield ("book", inst_id, [(o.ord_id, o.owner, o.side, o.px, o.remaining)
                                     for o in book.orders.values()])
