"""Typed ids. They are plain ``int``/``str`` at run time, distinct types for the checker."""

from __future__ import annotations

from typing import NewType

AccountId = NewType("AccountId", int)
"""An account (OKX ``uid``)."""

InstrumentId = NewType("InstrumentId", str)
"""An instrument (OKX ``instId``), e.g. ``BTC-USDT-SWAP``."""

InstrumentFamily = NewType("InstrumentFamily", str)
"""Underlying plus settlement currency (OKX ``instFamily``), e.g. ``BTC-USDT``."""

OrderId = NewType("OrderId", int)
"""An order (OKX ``ordId``), unique and increasing within one exchange."""

Currency = NewType("Currency", str)
"""A currency code, e.g. ``USDT`` or ``BTC``."""
