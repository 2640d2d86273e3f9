"""Binance USDⓈ-M futures archives (data.binance.vision): fetch, verify, convert.

Layout (Binance's ``binance-public-data`` README and download scripts): every archive is a
zip holding one CSV, next to a ``<archive>.CHECKSUM`` file whose text is
``<sha256 hex>  <archive name>``.

- ``klines``: ``data/futures/um/daily/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY-MM-DD>.zip``;
  a calendar month wholly inside the range comes from the monthly archive instead
  (``.../monthly/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY-MM>.zip``)
- ``bookDepth``: ``data/futures/um/daily/bookDepth/<SYMBOL>/<SYMBOL>-bookDepth-<YYYY-MM-DD>.zip``
- ``fundingRate`` (monthly only):
  ``data/futures/um/monthly/fundingRate/<SYMBOL>/<SYMBOL>-fundingRate-<YYYY-MM>.zip``

:func:`download` fetches every archive of a date range into a cache (``<cache>/binance/<key>``),
checks each against its published SHA-256, and only then writes one converted CSV, the layout
``--prices``, ``--depth`` and ``--funding`` read (the layout of ``../shared/data``). A file is
written to a temporary name and renamed into place, so a bad checksum, a missing day or a
malformed archive raises ``ValueError`` (or ``OSError`` for the network) and leaves nothing
half-written: no unverified archive in the cache and no converted file.

The base URL is ``base_url``, else ``$BACKSTOP_BINANCE_URL``, else :data:`DEFAULT_BASE_URL`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE_URL = "https://data.binance.vision"
BASE_URL_ENV = "BACKSTOP_BINANCE_URL"
CACHE_ENV = "BACKSTOP_CACHE"
KINDS = ("klines", "bookDepth", "fundingRate")
KLINE_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
HEADERS = {
    "klines": "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
              "taker_buy_quote_volume,ignore",
    "bookDepth": "timestamp,percentage,depth,notional",
    "fundingRate": "calc_time,funding_interval_hours,last_funding_rate",
}
MAX_ARCHIVES = 400
"""Archives one command may fetch (about a year of daily files)."""
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
"""Largest archive, and largest CSV inside one, accepted (a guard against a hostile server)."""
TIMEOUT_S = 60.0
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Request:
    """What to fetch: ``symbol`` (e.g. ``BTCUSDT``), ``kind`` (:data:`KINDS`), the UTC days
    ``start``..``end`` (both included) and the kline ``interval``."""

    symbol: str
    kind: str
    start: dt.date
    end: dt.date
    interval: str = "1m"


def parse_request(symbol: str, kind: str, start: str, end: str | None,
                  interval: str | None) -> Request:
    """Validate the CLI's values; raise ``ValueError`` naming the first bad one.

    ``end`` defaults to ``start``; ``interval`` applies to ``klines`` only (default ``1m``)."""
    symbol = symbol.strip().upper()
    if not _SYMBOL.match(symbol):
        raise ValueError(f"--symbol must be 2-30 letters or digits (e.g. BTCUSDT), got {symbol!r}")
    if kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if interval is not None and kind != "klines":
        raise ValueError(f"--interval applies to --kind klines only, not {kind}")
    interval = interval or "1m"
    if interval not in KLINE_INTERVALS:
        raise ValueError(f"--interval must be one of {', '.join(KLINE_INTERVALS)}, got {interval!r}")
    first, last = _date("--start", start), _date("--end", end or start)
    if last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    request = Request(symbol, kind, first, last, interval)
    if len(archive_keys(request)) > MAX_ARCHIVES:
        raise ValueError(f"{first}..{last} needs more than {MAX_ARCHIVES} archives; split the range")
    return request


def _date(flag: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{flag} must be a date YYYY-MM-DD, got {text!r}") from None


def archive_keys(request: Request) -> list[str]:
    """The archive paths under the base URL, in date order."""
    s, kind = request.symbol, request.kind
    if kind == "fundingRate":
        return [f"data/futures/um/monthly/fundingRate/{s}/{s}-fundingRate-{y:04d}-{m:02d}.zip"
                for y, m in _by_month(request.start, request.end)]
    if kind == "bookDepth":
        return [f"data/futures/um/daily/bookDepth/{s}/{s}-bookDepth-{d}.zip"
                for d in _days(request.start, request.end)]
    i = request.interval
    keys = []
    for (y, m), days in _by_month(request.start, request.end).items():
        if days[0].day == 1 and (days[-1] + dt.timedelta(days=1)).day == 1:
            keys.append(f"data/futures/um/monthly/klines/{s}/{i}/{s}-{i}-{y:04d}-{m:02d}.zip")
        else:
            keys += [f"data/futures/um/daily/klines/{s}/{i}/{s}-{i}-{d}.zip" for d in days]
    return keys


def _by_month(start: dt.date, end: dt.date) -> dict[tuple[int, int], list[dt.date]]:
    months: dict[tuple[int, int], list[dt.date]] = {}
    for day in _days(start, end):
        months.setdefault((day.year, day.month), []).append(day)
    return months


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]


def output_name(request: Request) -> str:
    """The converted file's name, as in ``../shared/data``: ``btcusdt-perp-1m-2025-10-10.csv``,
    ``...-bookdepth-...``, ``...-funding-...``; a range reads ``<start>_<end>``."""
    label = {"klines": request.interval, "bookDepth": "bookdepth", "fundingRate": "funding"}[request.kind]
    days = str(request.start) if request.start == request.end else f"{request.start}_{request.end}"
    return f"{request.symbol.lower()}-perp-{label}-{days}.csv"


def default_cache_dir() -> Path:
    """``$BACKSTOP_CACHE``, else ``$XDG_CACHE_HOME/backstop``, else ``~/.cache/backstop``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "backstop"


def resolve_base_url(base_url: str | None) -> str:
    """``base_url``, else ``$BACKSTOP_BINANCE_URL``, else Binance's; must be http(s)."""
    url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--base-url must start with http:// or https://, got {url!r}")
    return url


def download(request: Request, out_dir: Path, cache_dir: Path | None = None,
             base_url: str | None = None, timeout_s: float = TIMEOUT_S) -> Path:
    """Fetch and verify every archive of ``request``, then write the converted CSV into
    ``out_dir``; returns its path. Archives already in the cache are re-verified, not fetched."""
    url = resolve_base_url(base_url)
    cache = (cache_dir or default_cache_dir()) / "binance"
    archives = [fetch_verified(url, key, cache, timeout_s) for key in archive_keys(request)]
    rows = _convert(request, archives)
    if not rows:
        raise ValueError(f"no {request.kind} rows for {request.symbol} in {request.start}..{request.end}")
    target = Path(out_dir) / output_name(request)
    _write_atomic(target, ("\n".join([HEADERS[request.kind], *rows]) + "\n").encode())
    return target


def fetch_verified(base_url: str, key: str, cache: Path, timeout_s: float = TIMEOUT_S) -> Path:
    """The archive ``key`` in ``cache``, checked against its ``.CHECKSUM``; fetched when absent
    or when the cached copy no longer matches. Raises ``ValueError`` on a mismatch."""
    target = cache / key
    expected = parse_checksum(_get(f"{base_url}/{key}.CHECKSUM", timeout_s), target.name)
    if target.is_file() and _sha256(target.read_bytes()) == expected:
        return target
    body = _get(f"{base_url}/{key}", timeout_s)
    actual = _sha256(body)
    if actual != expected:
        raise ValueError(f"checksum mismatch for {target.name}: published {expected[:16]}…, "
                         f"downloaded {actual[:16]}…; nothing written")
    _write_atomic(target, body)
    return target


def parse_checksum(text: bytes, name: str) -> str:
    """The SHA-256 hex digest from a ``.CHECKSUM`` file's ``<hex>  <name>`` line."""
    parts = text.decode("utf-8", "replace").split()
    if len(parts) != 2 or not _SHA256.match(parts[0].lower()) or parts[1].lstrip("*") != name:
        raise ValueError(f"{name}.CHECKSUM is not '<sha256>  {name}'")
    return parts[0].lower()


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _get(url: str, timeout_s: float) -> bytes:
    """The body at ``url``; HTTP errors become ``ValueError``, network errors ``OSError``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read(MAX_ARCHIVE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        reason = "not published" if exc.code == 404 else f"HTTP {exc.code}"
        raise ValueError(f"{url}: {reason}") from None
    except urllib.error.URLError as exc:
        raise OSError(f"cannot reach {url}: {exc.reason}") from None
    if len(body) > MAX_ARCHIVE_BYTES:
        raise ValueError(f"{url}: larger than {MAX_ARCHIVE_BYTES:,} bytes")
    return body


def _write_atomic(target: Path, body: bytes) -> None:
    """Write ``body`` to a temporary file beside ``target`` and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def csv_lines(archive: Path) -> list[str]:
    """The lines of the one CSV inside ``archive`` (without a header, if it has one)."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            if len(members) != 1 or not members[0].filename.endswith(".csv"):
                raise ValueError(f"{archive.name}: expected one CSV inside, found "
                                 f"{[m.filename for m in members]}")
            if members[0].file_size > MAX_ARCHIVE_BYTES:
                raise ValueError(f"{archive.name}: CSV larger than {MAX_ARCHIVE_BYTES:,} bytes")
            text = bundle.read(members[0]).decode("utf-8")
    except zipfile.BadZipFile:
        raise ValueError(f"{archive.name}: not a zip archive") from None
    lines = [line.strip() for line in io.StringIO(text) if line.strip()]
    if lines and lines[0][:1].isalpha():
        lines = lines[1:]  # a header row (newer archives have one)
    return lines


def _convert(request: Request, archives: list[Path]) -> list[str]:
    """Rows of the converted file: checked field counts; klines sorted by open time without
    duplicates; funding kept within the requested days; book-depth times as
    ``YYYY-MM-DD HH:MM:SS`` UTC (an archive that gives epoch seconds or ms is converted)."""
    width = len(HEADERS[request.kind].split(","))
    timed = request.kind != "bookDepth"
    rows: list[str] = []
    for archive in archives:
        for number, line in enumerate(csv_lines(archive), 1):
            fields = line.split(",")
            if len(fields) < width or (timed and not fields[0].isdigit()):
                raise ValueError(f"{archive.name} row {number}: not a {request.kind} row: {line[:60]!r}")
            if not timed:
                fields[0] = _depth_time(fields[0])
            rows.append(",".join(fields[:width]))
    if request.kind == "klines":
        by_time = {int(r.split(",", 1)[0]): r for r in rows}
        return [by_time[t] for t in sorted(by_time)]
    if request.kind == "fundingRate":
        lo = _epoch_ms(request.start)
        hi = _epoch_ms(request.end + dt.timedelta(days=1))
        return [r for r in rows if lo <= int(r.split(",", 1)[0]) < hi]
    return rows


def _depth_time(text: str) -> str:
    """A bookDepth timestamp as ``YYYY-MM-DD HH:MM:SS`` UTC: kept when already so, converted
    from epoch seconds or milliseconds (13 digits or more) when it is a number."""
    text = text.strip()
    if not text.isdigit():
        return text
    seconds = int(text) / 1000 if len(text) >= 13 else int(text)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _epoch_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
