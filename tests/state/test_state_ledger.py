"""The double-entry ledger: each currency sums to zero; deposits and withdrawals are counted."""

from __future__ import annotations

from collections import defaultdict

import pytest

from backstop.state.ledger import (
    Ledger,
    cash_key,
    clearing_key,
    external_key,
    fees_key,
    fund_key,
    isolated_key,
)


def _sums(ledger: Ledger) -> dict[str, int]:
    sums: defaultdict[str, int] = defaultdict(int)
    for (_kind, _owner, ccy), value in ledger.balances.items():
        sums[ccy] += value
    return dict(sums)


def test_keys_carry_kind_owner_and_currency():
    assert cash_key(7, "USDT") == ("cash", "7", "USDT")
    assert isolated_key(7, "BTC-USDT-SWAP", "USDT") == ("isolated", "7/BTC-USDT-SWAP", "USDT")
    assert fund_key("SWAP:BTC-USDT", "USDT") == ("fund", "SWAP:BTC-USDT", "USDT")
    assert fees_key("BTC") == ("fees", "exchange", "BTC")
    assert clearing_key("BTC-USD-SWAP", "BTC") == ("clearing", "BTC-USD-SWAP", "BTC")
    assert external_key("USDT") == ("external", "world", "USDT")


def test_double_entry_sums_to_zero_per_currency():
    ledger = Ledger()
    ledger.apply_deposit(cash_key(1, "USDT"), 1_000)
    ledger.apply_deposit(cash_key(2, "BTC"), 50)
    ledger.transfer(cash_key(1, "USDT"), isolated_key(1, "BTC-USDT-SWAP", "USDT"), 300)
    ledger.transfer(cash_key(1, "USDT"), fees_key("USDT"), 7)
    ledger.transfer(clearing_key("BTC-USD-SWAP", "BTC"), cash_key(2, "BTC"), 11)
    ledger.transfer(cash_key(1, "USDT"), fund_key("SWAP:BTC-USDT", "USDT"), -5)   # reverse direction
    ledger.apply_withdrawal(cash_key(2, "BTC"), 20)
    assert _sums(ledger) == {"USDT": 0, "BTC": 0}
    # 1,000 − 300 − 7 + 5 (the negative transfer moved 5 back to cash)
    assert ledger.balance(cash_key(1, "USDT")) == 698
    assert ledger.balance(fund_key("SWAP:BTC-USDT", "USDT")) == -5
    assert ledger.balance(cash_key(2, "BTC")) == 50 + 11 - 20
    assert ledger.balance(clearing_key("BTC-USD-SWAP", "BTC")) == -11
    assert ledger.deposited == {"USDT": 1_000, "BTC": 50}
    assert ledger.withdrawn == {"BTC": 20}
    assert ledger.total_by_kind("cash", "USDT") == 698
    assert ledger.total_by_kind("isolated", "USDT") == 300
    assert ledger.currencies() == {"USDT", "BTC"}


def test_cross_currency_transfer_raises_and_changes_nothing():
    ledger = Ledger()
    ledger.apply_deposit(cash_key(1, "USDT"), 100)
    before = dict(ledger.balances)
    with pytest.raises(AssertionError, match="cross-currency"):
        ledger.transfer(cash_key(1, "USDT"), cash_key(1, "BTC"), 10)
    assert dict(ledger.balances) == before


def test_zero_transfer_creates_no_entries():
    ledger = Ledger()
    ledger.transfer(cash_key(1, "USDT"), fees_key("USDT"), 0)
    assert ledger.balance(cash_key(1, "USDT")) == 0
    assert not any(ledger.balances.values())


def test_balance_of_an_unknown_key_is_zero_and_not_created():
    ledger = Ledger()
    assert ledger.balance(cash_key(99, "ETH")) == 0
    assert cash_key(99, "ETH") not in ledger.balances
