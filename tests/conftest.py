"""Shared fixtures for the clearing-core tests (math, state, engine, model).

Units used throughout the tests (see ``backstop.numeric``):
- money: integer units of 1e-8 of the settlement currency, so 1 USDT = 100_000_000 units;
- BTC-USDT-SWAP: ctVal 0.01 BTC, tickSz 0.1, lotSz 0.01 -> 1 contract = 100 lots,
  price 100,000.0 = 1,000,000 ticks, value_k = 0.01·0.01·0.1/1e-8 = 1,000 units per lot·tick;
- BTC-USD-SWAP: ctVal 100 USD, tickSz 0.1, lotSz 0.1 -> 1 contract = 10 lots,
  value_k = 100·0.1/(0.1·1e-8) = 1e10, inverse value = lots·1e10/ticks units of BTC.
"""

from __future__ import annotations

import pytest

from backstop.engine.exchange import Exchange
from backstop.model.catalogue import Catalogue, default_catalogue

USDT = 100_000_000  # money units per 1 USDT (or per 1 BTC)

_DEFAULT = default_catalogue()


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    """The built-in catalogue (built once)."""
    return _DEFAULT


@pytest.fixture
def ex(catalogue: Catalogue) -> Exchange:
    """A fresh exchange on the default catalogue, every invariant checked after every step."""
    return Exchange(catalogue, check_invariants=True)
