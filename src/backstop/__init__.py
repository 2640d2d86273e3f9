"""backstop: a clearing and risk engine for perpetual futures, modelled on OKX.

The one entry point of the library is :class:`Exchange`: it takes commands and returns the
events they caused.
"""

from backstop.engine.exchange import Exchange

__all__ = ["Exchange"]
