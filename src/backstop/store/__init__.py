"""The event log: every accepted command (and API key record), in order, durably stored.

SQLite by default (WAL, ``synchronous=FULL``); a ``postgresql://`` URL uses psycopg. The log is
the source of truth: on start the server replays it through a fresh engine.
"""

from backstop.store.log import CommandLog, Record, open_log

__all__ = ["CommandLog", "Record", "open_log"]
