"""Parquet tables of every event type: one file per type, one column per event field.

Money fields stay exact as int64 units of 1e-8 USDT, with a ``<field>_dec`` decimal string
beside each; ``step`` says which step of the run caused the event (``-1`` genesis, ``0``
opening, ``k`` the k-th index update).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from backstop.model.events import Event
from backstop.numeric import money_str

MONEY_FIELDS = frozenset({"amount", "taker_fee", "maker_fee", "cost", "margin", "realized_pnl", "amt",
                          "balance", "max_bal", "fee", "to_fund", "from_fund", "socialized",
                          "upl_taken"})


def event_columns(events: list[Event], steps: list[int]) -> dict[str, dict[str, list]]:
    """Event type name → column name → values, in event order."""
    tables: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for step, event in zip(steps, events, strict=True):
        columns = tables[type(event).__name__]
        columns["step"].append(step)
        for name, value in zip(event._fields, event, strict=True):
            columns[name].append(value)
            if name in MONEY_FIELDS:
                columns[f"{name}_dec"].append(money_str(value))
    return tables


def write_event_tables(events: list[Event], steps: list[int], out_dir: Path) -> dict[str, Path]:
    """Write ``<out_dir>/<EventType>.parquet`` for every type present; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, columns in sorted(event_columns(events, steps).items()):
        path = out_dir / f"{name}.parquet"
        pq.write_table(pa.table({k: _array(v) for k, v in columns.items()}), path)
        written[name] = path
    return written


def _array(values: list) -> pa.Array:
    """int columns as int64, the rest as pyarrow infers them."""
    if values and all(type(v) is int for v in values):
        return pa.array(values, type=pa.int64())
    return pa.array(values)


def write_rows(rows: list[dict], path: Path) -> Path:
    """A list of flat dicts as one Parquet table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_table(path: Path) -> dict[str, list]:
    """A Parquet table back as column name → Python values."""
    return pq.read_table(path).to_pydict()
