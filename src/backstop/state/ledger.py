"""A double-entry ledger in integer money units (1e-8 of each currency).

Every movement is a :meth:`Ledger.transfer` from one book account to another in one currency,
so the balances of each currency always sum to zero. Deposits and withdrawals move money
to and from the ``external`` account and are also counted separately, so conservation can be
checked against an independent figure.
"""

from __future__ import annotations

from collections import defaultdict

LedgerKey = tuple[str, str, str]
"""``(kind, owner, currency)``: kinds are ``cash``, ``reserved``, ``isolated``, ``fund``,
``fees``, ``clearing`` and ``external``. ``reserved`` is an account's money set aside for its
resting orders: it is still the account's (``cash + reserved`` is its wallet), but nothing but
the orders it backs can spend it."""


def cash_key(uid: int, ccy: str) -> LedgerKey:
    return ("cash", str(uid), ccy)


def reserved_key(uid: int, ccy: str) -> LedgerKey:
    return ("reserved", str(uid), ccy)


def isolated_key(uid: int, inst_id: str, ccy: str) -> LedgerKey:
    return ("isolated", f"{uid}/{inst_id}", ccy)


def fund_key(fund_id: str, ccy: str) -> LedgerKey:
    return ("fund", fund_id, ccy)


def fees_key(ccy: str) -> LedgerKey:
    return ("fees", "exchange", ccy)


def clearing_key(inst_id: str, ccy: str) -> LedgerKey:
    return ("clearing", inst_id, ccy)


def external_key(ccy: str) -> LedgerKey:
    return ("external", "world", ccy)


class Ledger:
    """Balances by key, and per-currency deposit and withdrawal totals."""

    __slots__ = ("balances", "deposited", "withdrawn")

    def __init__(self) -> None:
        self.balances: defaultdict[LedgerKey, int] = defaultdict(int)
        self.deposited: defaultdict[str, int] = defaultdict(int)
        self.withdrawn: defaultdict[str, int] = defaultdict(int)

    def balance(self, key: LedgerKey) -> int:
        return self.balances.get(key, 0)

    def transfer(self, source: LedgerKey, target: LedgerKey, amount: int) -> None:
        """Move ``amount`` (may be negative: the reverse direction) in one currency."""
        if source[2] != target[2]:
            raise AssertionError(f"cross-currency transfer {source} -> {target}")
        if amount:
            balances = self.balances
            balances[source] -= amount
            balances[target] += amount

    def apply_deposit(self, target: LedgerKey, amount: int) -> None:
        """Money entering from outside (a user deposit or a platform injection)."""
        self.transfer(external_key(target[2]), target, amount)
        self.deposited[target[2]] += amount

    def apply_withdrawal(self, source: LedgerKey, amount: int) -> None:
        self.transfer(source, external_key(source[2]), amount)
        self.withdrawn[source[2]] += amount

    def total_by_kind(self, kind: str, ccy: str) -> int:
        return sum(v for (k, _o, c), v in self.balances.items() if k == kind and c == ccy)

    def currencies(self) -> set[str]:
        return {c for (_k, _o, c) in self.balances} | set(self.deposited)
