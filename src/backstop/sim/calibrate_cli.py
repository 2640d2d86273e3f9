"""``backstop calibrate``: refit the shipped model constants from data files and compare.

Inputs (each optional; defaults are the files in ``shared/data`` when present):

- ``--daily``: daily closes (``unix_timestamp,close``) -> GBM, GARCH(1,1)-t (daily units) and
  Merton jump parameters (:mod:`backstop.sim.calibrate`, from :data:`CALIBRATION_START`);
- ``--funding``: Binance 8-hour funding (``last_funding_rate``) -> mean, std, quantiles;
- ``--depth``: Binance ``bookDepth`` bands -> the day-median depth curve, BTC at ±1..5 %
  (:mod:`backstop.sim.impact`);
- ``--depth`` with ``--klines`` (1-minute klines of the same day) -> the cascade feedback
  parameters (:func:`backstop.sim.feedback.fit_feedback`); and when altcoin klines of the same day
  lie beside the BTC file (``ethusdt-perp-1m-<day>.csv`` and so on, as ``backstop data download``
  names them), each altcoin's volatility ratio and the correlation matrix of the instrument
  universe (:data:`backstop.sim.paths.SHIPPED_UNIVERSE`, otherwise stated assumptions).

:func:`calibrate_rows` returns one :class:`Row` per parameter: fitted value, shipped constant,
source file and the data's date range. :func:`to_toml` writes the fitted values.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from backstop.sim import calibrate as cal
from backstop.sim.feedback import BTC_FEEDBACK, PARAMETERS, fit_feedback
from backstop.sim.impact import DAY_MEDIAN_CURVE, load_book_depth
from backstop.sim.paths import SHIPPED_UNIVERSE, load_klines

SHIPPED_ON = "2026-11-24"  # the date the FITTED_* constants and DAY_MEDIAN_CURVE were fitted
DEFAULT_FILES = {
    "daily": "btcusd-1d-2011-2025.csv",
    "funding": "btcusdt-perp-funding-8h-2020-2026.csv",
    "depth": "btcusdt-perp-bookdepth-2025-10-10.csv",
    "klines": "btcusdt-perp-1m-2025-10-10.csv",
}


@dataclass(frozen=True)
class Row:
    """One parameter: ``group`` (gbm, garch_daily, jump, funding, depth), ``name``, the fitted
    and shipped values (units in :mod:`backstop.sim.calibrate`), source file and data dates."""

    group: str
    name: str
    fitted: float
    shipped: float
    source: str
    dates: str


def shared_data_dir() -> Path | None:
    """``shared/data`` beside the working directory or beside the repository, if present."""
    for base in (Path.cwd().parent, Path(__file__).resolve().parents[4]):
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def resolve_inputs(daily: Path | None, funding: Path | None, depth: Path | None,
                   klines: Path | None = None) -> dict[str, Path]:
    """The files to fit: the given ones (which must exist) or the defaults that exist (none
    when nothing is given and ``shared/data`` is absent). ``--klines`` needs a depth file."""
    given = {"daily": daily, "funding": funding, "depth": depth, "klines": klines}
    data_dir = shared_data_dir()
    files: dict[str, Path] = {}
    for key, path in given.items():
        if path is not None:
            if not Path(path).is_file():
                raise ValueError(f"--{key}: file not found: {path}")
            files[key] = Path(path)
        elif data_dir is not None and (data_dir / DEFAULT_FILES[key]).is_file():
            files[key] = data_dir / DEFAULT_FILES[key]
    return files


def _day(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date().isoformat()


def daily_rows(path: Path) -> list[Row]:
    """GBM, GARCH and jump fits of the daily closes since :data:`cal.CALIBRATION_START`."""
    closes = cal.load_daily_closes(path)
    if closes.size < 30:
        raise ValueError(f"{path}: needs at least 30 daily closes from {cal.CALIBRATION_START}")
    stamps, _ = cal.load_daily_table(path)
    dates = f"{cal.CALIBRATION_START}..{_day(float(stamps.max()))}"
    returns = cal.log_returns(closes)
    gbm, garch, jump = cal.fit_gbm(returns), cal.fit_garch(returns), cal.fit_jump(returns)
    rows = [Row("gbm", n, getattr(gbm, n), getattr(cal.FITTED_GBM, n), path.name, dates)
            for n in ("mu", "sigma")]
    rows += [Row("garch_daily", n, getattr(garch, n), getattr(cal.FITTED_GARCH_DAILY, n), path.name, dates)
             for n in ("omega", "alpha", "beta", "nu")]
    rows += [Row("jump", n, getattr(jump, n), getattr(cal.FITTED_JUMP, n), path.name, dates)
             for n in ("mu", "sigma", "jump_rate", "jump_mean", "jump_std")]
    return rows


def funding_rows(path: Path) -> list[Row]:
    """Mean, std and the 5/50/95 % quantiles of the 8-hour funding rate (fractions)."""
    rates = cal.load_funding_rates(path)
    if rates.size < 2:
        raise ValueError(f"{path}: needs at least 2 funding rates")
    stats = cal.funding_stats(rates)
    shipped = cal.FITTED_FUNDING
    n = f"{rates.size} rows"
    rows = [Row("funding", "mean", stats.mean, shipped.mean, path.name, n),
            Row("funding", "std", stats.std, shipped.std, path.name, n)]
    rows += [Row("funding", f"q{q:g}", stats.quantiles[q], shipped.quantiles[q], path.name, n)
             for q in sorted(shipped.quantiles)]
    return rows


def depth_rows(path: Path) -> list[Row]:
    """Median cumulative depth (BTC) at the ±1..5 % bands over the whole file."""
    book = load_book_depth(path)
    curve = book.summary()
    dates = f"{_day(book.time_ms[0] / 1000)}..{_day(book.time_ms[-1] / 1000)}"
    rows = []
    for side in ("bid", "ask"):
        fitted, shipped = getattr(curve, f"{side}_btc"), getattr(DAY_MEDIAN_CURVE, f"{side}_btc")
        rows += [Row("depth", f"{side}_btc_{k + 1}pct", float(fitted[k]), float(shipped[k]), path.name, dates)
                 for k in range(5)]
    return rows


def feedback_rows(depth: Path, klines: Path) -> list[Row]:
    """The feedback parameters of :func:`fit_feedback` against the shipped BTC ones."""
    ohlc = load_klines(klines)
    fit = fit_feedback(load_book_depth(depth), ohlc, label=f"{depth.name} + {klines.name}")
    dates = f"{_day(ohlc.time_ms[0] / 1000)}..{_day(ohlc.time_ms[-1] / 1000)}"
    return [Row("feedback", name, getattr(fit, name), getattr(BTC_FEEDBACK, name), fit.sources[name], dates)
            for name in PARAMETERS]


def altcoin_files(klines: Path) -> dict[str, Path]:
    """Altcoin klines of the same day beside the BTC file, by instrument id of the universe."""
    name = klines.name.lower()
    if not name.startswith("btc"):
        return {}
    found = {}
    for inst in SHIPPED_UNIVERSE.inst_ids[1:]:
        candidate = klines.parent / (inst.split("-")[0].lower() + name[len("btc"):])
        if candidate.is_file():
            found[inst] = candidate
    return found


def universe_rows(klines: Path, alts: dict[str, Path]) -> list[Row]:
    """Volatility ratio to BTC and correlation with every other instrument, from 1-minute log
    returns over the minutes all files share."""
    series = {"BTC-USDT": load_klines(klines)} | {inst: load_klines(path) for inst, path in alts.items()}
    common = np.array(sorted(set.intersection(*(set(o.time_ms.tolist()) for o in series.values()))))
    if common.size < 60:
        raise ValueError(f"{klines.name} and the altcoin files share fewer than 60 minutes")
    returns = np.array([np.diff(np.log(o.close[np.searchsorted(o.time_ms, common)]))
                        for o in series.values()])
    vol, corr = returns.std(axis=1, ddof=1), np.corrcoef(returns)
    insts = list(series)
    index = {inst: SHIPPED_UNIVERSE.inst_ids.index(inst) for inst in insts}
    source = " + ".join(p.name for p in (klines, *alts.values()))
    dates = f"{_day(common[0] / 1000)}..{_day(common[-1] / 1000)}"
    shipped_vol, shipped_corr = SHIPPED_UNIVERSE.vol_ratio, SHIPPED_UNIVERSE.corr
    rows = [Row("universe", f"vol_ratio_{inst}", float(vol[i] / vol[0]), float(shipped_vol[index[inst]]),
                source, dates) for i, inst in enumerate(insts) if i]
    rows += [Row("universe", f"corr_{a}_{b}", float(corr[i, j]), float(shipped_corr[index[a], index[b]]),
                 source, dates) for i, a in enumerate(insts) for j, b in enumerate(insts) if i < j]
    return rows


def calibrate_rows(files: dict[str, Path]) -> list[Row]:
    """Fit every group whose file is in ``files``; the feedback needs both depth and klines."""
    fitters = {"daily": daily_rows, "funding": funding_rows, "depth": depth_rows}
    rows: list[Row] = []
    for key, path in files.items():
        if key in fitters:
            rows += fitters[key](path)
    if "klines" in files:
        if "depth" not in files:
            raise ValueError("--klines fits the feedback against a book-depth file of the same day: "
                             "add --depth")
        rows += feedback_rows(files["depth"], files["klines"])
        alts = altcoin_files(files["klines"])
        if alts:
            rows += universe_rows(files["klines"], alts)
    return rows


def rows_table(rows: list[Row]) -> Table:
    """The rich table: parameter, fitted, shipped, relative difference, source, dates."""
    table = Table(title=f"Calibration (shipped constants fitted {SHIPPED_ON})")
    for name in ("parameter", "fitted", "shipped", "diff", "source", "data"):
        table.add_column(name, justify="right" if name in ("fitted", "shipped", "diff") else "left")
    for r in rows:
        diff = (r.fitted - r.shipped) / abs(r.shipped) if r.shipped else float("nan")
        table.add_row(f"{r.group}.{r.name}", f"{r.fitted:.6g}", f"{r.shipped:.6g}", f"{diff:+.2%}",
                      r.source, r.dates)
    return table


def to_toml(rows: list[Row]) -> str:
    """Fitted values as TOML tables per group, each with ``source`` and ``data`` keys; a group whose
    parameters have different sources (the feedback) also gets ``[group.sources]``, one per name."""
    lines = [f"# backstop calibrate, run {dt.date.today().isoformat()}"]
    for group in dict.fromkeys(r.group for r in rows):
        members = [r for r in rows if r.group == group]
        lines += ["", f"[{group}]", f"source = {json.dumps(members[0].source)}",
                  f"data = {json.dumps(members[0].dates)}"]
        lines += [f"{r.name} = {r.fitted!r}" for r in members]
        if len({r.source for r in members}) > 1:
            lines += ["", f"[{group}.sources]"] + [f"{r.name} = {json.dumps(r.source)}" for r in members]
    return "\n".join(lines) + "\n"


SHIPPED_SOURCES = {
    "gbm": ("btcusd-1d-2011-2025.csv", "2020-01-01..2025-09-24"),
    "garch_daily": ("btcusd-1d-2011-2025.csv", "2020-01-01..2025-09-24"),
    "jump": ("btcusd-1d-2011-2025.csv", "2020-01-01..2025-09-24"),
    "funding": ("btcusdt-perp-funding-8h-2020-2026.csv", "7,119 rows"),
    "depth": ("btcusdt-perp-bookdepth-2025-10-10.csv", "2025-10-10..2025-10-10"),
}
"""Where each group of shipped constants was fitted from (files of ``shared/data``)."""
NO_DATA_HINT = ("no data files (../shared/data absent): shown are the shipped constants; fit your own "
                "with --daily/--funding/--depth/--klines, e.g. files from `backstop data download`")


def shipped_rows() -> list[Row]:
    """The shipped constants as rows (``fitted`` = ``shipped``), with their source files."""
    rows = [Row(group, name, value, value, *SHIPPED_SOURCES[group])
            for group, fit in (("gbm", cal.FITTED_GBM), ("garch_daily", cal.FITTED_GARCH_DAILY),
                               ("jump", cal.FITTED_JUMP))
            for name, value in fit.__dict__.items()]
    shipped = cal.FITTED_FUNDING
    rows += [Row("funding", "mean", shipped.mean, shipped.mean, *SHIPPED_SOURCES["funding"]),
             Row("funding", "std", shipped.std, shipped.std, *SHIPPED_SOURCES["funding"])]
    for side in ("bid", "ask"):
        curve = getattr(DAY_MEDIAN_CURVE, f"{side}_btc")
        rows += [Row("depth", f"{side}_btc_{k + 1}pct", float(curve[k]), float(curve[k]),
                     *SHIPPED_SOURCES["depth"]) for k in range(5)]
    rows += [Row("feedback", name, getattr(BTC_FEEDBACK, name), getattr(BTC_FEEDBACK, name),
                 BTC_FEEDBACK.sources[name], "2025-10-10") for name in PARAMETERS]
    u = SHIPPED_UNIVERSE
    rows += [Row("universe", f"vol_ratio_{inst}", float(u.vol_ratio[i]), float(u.vol_ratio[i]),
                 u.sources["vol_ratio"], "assumption") for i, inst in enumerate(u.inst_ids) if i]
    rows += [Row("universe", f"corr_{a}_{b}", float(u.corr[i, j]), float(u.corr[i, j]), u.sources["corr"],
                 "assumption") for i, a in enumerate(u.inst_ids) for j, b in enumerate(u.inst_ids) if i < j]
    return rows


def calibrate_command(console: Console, daily: Path | None, funding: Path | None, depth: Path | None,
                      out: Path | None, klines: Path | None = None) -> list[Row]:
    """Fit what the inputs allow and print the comparison; with no input and no ``shared/data``,
    print the shipped constants and how to get data. ``out`` gets the TOML of what is shown."""
    files = resolve_inputs(daily, funding, depth, klines)
    rows = calibrate_rows(files) if files else shipped_rows()
    console.print(rows_table(rows))
    if not files:
        console.print(NO_DATA_HINT, highlight=False, soft_wrap=True)
    if out is not None:
        out.write_text(to_toml(rows))
        console.print(f"wrote {out}", highlight=False, soft_wrap=True)
    return rows
