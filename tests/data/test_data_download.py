"""``backstop data download`` against a real HTTP server on loopback serving generated archives
in Binance's data.binance.vision layout (zip + ``.CHECKSUM``); no test touches the internet."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backstop.cli import app
from backstop.data.binance import archive_keys, parse_request
from backstop.sim.calibrate import load_funding_rates
from backstop.sim.impact import load_book_depth
from backstop.sim.paths import load_klines
from shared_data import crash_closes, write_book_depth, write_klines

DAY_MS = 86_400_000
OCT10_MS = 1_760_054_400_000  # 2025-10-10 00:00 UTC


@pytest.fixture
def archive(tmp_path):
    """A loopback HTTP server over ``tmp_path / "site"``; yields ``(base_url, publish)``."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def publish(key: str, csv_text: str, checksum: str | None = None, name: str | None = None) -> Path:
        """Write ``key`` (a zip of one CSV) and its ``.CHECKSUM`` (the true digest unless given)."""
        path = site / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as bundle:
            bundle.writestr(name or path.with_suffix(".csv").name, csv_text)
        digest = checksum or hashlib.sha256(path.read_bytes()).hexdigest()
        Path(f"{path}.CHECKSUM").write_text(f"{digest}  {path.name}\n")
        return path

    yield base, publish
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _kline_csv(tmp_path: Path, start_ms: int, closes: np.ndarray, header: bool = True) -> str:
    text = write_klines(tmp_path / f"k{start_ms}.csv", closes, start_ms).read_text()
    return text if header else text.split("\n", 1)[1]


def _download(base: str, tmp_path: Path, *args: str):
    argv = ["data", "download", "--base-url", base, "--out", str(tmp_path / "out"),
            "--cache", str(tmp_path / "cache"), *args]
    return CliRunner().invoke(app, argv, env={"COLUMNS": "300"})


def _klines_key(day: str, symbol: str = "BTCUSDT", interval: str = "1m") -> str:
    return f"data/futures/um/daily/klines/{symbol}/{interval}/{symbol}-{interval}-{day}.zip"


def test_two_days_of_klines_become_one_prices_file(archive, tmp_path):
    base, publish = archive
    publish(_klines_key("2025-10-10"), _kline_csv(tmp_path, OCT10_MS, crash_closes(60)))
    # Older archives have no header row: the converter must take both.
    publish(_klines_key("2025-10-11"), _kline_csv(tmp_path, OCT10_MS + DAY_MS, np.full(30, 110_000.0), False))
    result = _download(base, tmp_path, "--start", "2025-10-10", "--end", "2025-10-11")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "btcusdt-perp-1m-2025-10-10_2025-10-11.csv"
    assert str(out) in result.output
    bars = load_klines(out)
    assert bars.time_ms.size == 90 and bars.time_ms[0] == OCT10_MS
    assert bars.time_ms[-1] == OCT10_MS + DAY_MS + 29 * 60_000
    assert out.read_text().startswith("open_time,open,high,low,close,volume,close_time")
    # The converted file is what --prices reads: the exact engine replays it.
    run = CliRunner().invoke(app, ["stress", "--prices", str(out), "--accounts", "10", "--out",
                                   str(tmp_path / "run")])
    assert run.exit_code == 0, run.output


def test_book_depth_becomes_a_depth_file(archive, tmp_path):
    base, publish = archive
    source = write_book_depth(tmp_path / "d.csv", snapshots=5, start="2025-10-10 00:00:07").read_text()
    publish("data/futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2025-10-10.zip", source)
    result = _download(base, tmp_path, "--start", "2025-10-10", "--kind", "bookDepth")
    assert result.exit_code == 0, result.output
    book = load_book_depth(tmp_path / "out" / "btcusdt-perp-bookdepth-2025-10-10.csv")
    assert book.time_ms.size == 5
    np.testing.assert_array_equal(book.bid_btc[0], [100, 300, 600, 1000, 1500])


def test_funding_comes_from_the_monthly_archive_cut_to_the_days(archive, tmp_path):
    base, publish = archive
    rows = [f"{OCT10_MS + k * 8 * 3_600_000},8,{k * 1e-5:.8f}" for k in range(-3, 9)]  # Oct 9 .. Oct 12
    publish("data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2025-10.zip",
            "calc_time,funding_interval_hours,last_funding_rate\n" + "\n".join(rows) + "\n")
    result = _download(base, tmp_path, "--start", "2025-10-10", "--end", "2025-10-11",
                       "--kind", "fundingRate")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "btcusdt-perp-funding-2025-10-10_2025-10-11.csv"
    rates = load_funding_rates(out)
    np.testing.assert_allclose(rates, [k * 1e-5 for k in range(0, 6)])  # the six settlements of 10 and 11
    calibrated = CliRunner().invoke(app, ["calibrate", "--funding", str(out)], env={"COLUMNS": "200"})
    assert calibrated.exit_code == 0 and "funding.mean" in calibrated.output


def test_bad_checksum_is_one_line_and_writes_nothing(archive, tmp_path):
    base, publish = archive
    publish(_klines_key("2025-10-10"), _kline_csv(tmp_path, OCT10_MS, crash_closes(30)))
    publish(_klines_key("2025-10-11"), _kline_csv(tmp_path, OCT10_MS + DAY_MS, crash_closes(30)),
            checksum="0" * 64)  # tampered in transit, or a broken mirror
    result = _download(base, tmp_path, "--start", "2025-10-10", "--end", "2025-10-11")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "checksum mismatch" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert cached == ["BTCUSDT-1m-2025-10-10.zip"]  # only the verified archive, no partial file


def test_missing_day_is_one_line(archive, tmp_path):
    base, publish = archive
    publish(_klines_key("2025-10-10"), _kline_csv(tmp_path, OCT10_MS, crash_closes(30)))
    result = _download(base, tmp_path, "--start", "2025-10-10", "--end", "2025-10-12")
    assert result.exit_code == 1
    assert "BTCUSDT-1m-2025-10-11.zip.CHECKSUM: not published" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cached_archives_are_reverified_and_a_corrupted_copy_is_refetched(archive, tmp_path):
    base, publish = archive
    publish(_klines_key("2025-10-10"), _kline_csv(tmp_path, OCT10_MS, crash_closes(30)))
    assert _download(base, tmp_path, "--start", "2025-10-10").exit_code == 0
    cached = next((tmp_path / "cache").rglob("*.zip"))
    cached.write_bytes(b"corrupted")
    again = _download(base, tmp_path, "--start", "2025-10-10")
    assert again.exit_code == 0, again.output
    assert zipfile.is_zipfile(cached)


def test_base_url_comes_from_the_environment(archive, tmp_path, monkeypatch):
    base, publish = archive
    publish(_klines_key("2025-10-10"), _kline_csv(tmp_path, OCT10_MS, crash_closes(30)))
    argv = ["data", "download", "--start", "2025-10-10", "--out", str(tmp_path / "out"),
            "--cache", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, argv, env={"BACKSTOP_BINANCE_URL": base})
    assert result.exit_code == 0, result.output


def test_an_archive_that_is_not_one_csv_is_refused(archive, tmp_path):
    base, publish = archive
    publish(_klines_key("2025-10-10"), "not,a,kline\n", name="../../evil.txt")
    result = _download(base, tmp_path, "--start", "2025-10-10")
    assert result.exit_code == 1 and "expected one CSV" in result.stderr
    assert not (tmp_path / "evil.txt").exists()


def test_malformed_rows_are_refused(archive, tmp_path):
    base, publish = archive
    publish(_klines_key("2025-10-10"), "1760054400000,1,2\n")
    result = _download(base, tmp_path, "--start", "2025-10-10")
    assert result.exit_code == 1 and "row 1: not a klines row" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["--symbol", "../../etc", "--start", "2025-10-10"], "--symbol"),
    (["--start", "2025-10-11", "--end", "2025-10-10"], "before --start"),
    (["--start", "yesterday"], "--start"),
    (["--start", "2025-10-10", "--kind", "trades"], "--kind"),
    (["--start", "2025-10-10", "--kind", "bookDepth", "--interval", "1h"], "--interval applies"),
    (["--start", "2024-01-01", "--end", "2025-12-31", "--kind", "bookDepth"], "archives"),
])
def test_bad_requests_are_refused_before_any_fetch(args, words, tmp_path):
    result = _download("http://127.0.0.1:9", tmp_path, *args)  # nothing listens on port 9
    assert result.exit_code == 1 and words in result.stderr, result.output
    assert "Traceback" not in result.output


def test_unreachable_server_is_one_line(tmp_path):
    result = _download("http://127.0.0.1:9", tmp_path, "--start", "2025-10-10")
    assert result.exit_code == 1 and "cannot reach" in result.stderr


def test_request_layout_matches_binance():
    request = parse_request("btcusdt", "klines", "2025-10-10", None, "1h")
    assert request.symbol == "BTCUSDT" and request.interval == "1h" and request.end == request.start


def test_whole_months_of_klines_come_from_the_monthly_archive():
    keys = archive_keys(parse_request("BTCUSDT", "klines", "2025-09-30", "2025-11-01", "1d"))
    root = "data/futures/um"
    assert keys == [f"{root}/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2025-09-30.zip",
                    f"{root}/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2025-10.zip",
                    f"{root}/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2025-11-01.zip"]
    # Six years of daily closes for `calibrate --daily` fit in one request.
    assert len(archive_keys(parse_request("BTCUSDT", "klines", "2020-01-01", "2025-09-30", "1d"))) == 69


def test_book_depth_with_epoch_timestamps_is_normalised(archive, tmp_path):
    base, publish = archive
    rows = [f"{1_760_054_407 + 30 * k},{pct},{10.0 * abs(pct)},{1e6 * abs(pct)}"
            for k in range(2) for pct in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)]
    publish("data/futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2025-10-10.zip",
            "timestamp,percentage,depth,notional\n" + "\n".join(rows) + "\n")
    result = _download(base, tmp_path, "--start", "2025-10-10", "--kind", "bookDepth")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "btcusdt-perp-bookdepth-2025-10-10.csv"
    assert out.read_text().splitlines()[1].startswith("2025-10-10 00:00:07,-5,")
    book = load_book_depth(out)
    np.testing.assert_array_equal(book.time_ms, [1_760_054_407_000, 1_760_054_437_000])
