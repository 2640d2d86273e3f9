"""OKX request signing, checked exactly as OKX does.

``OK-ACCESS-SIGN = base64(HMAC_SHA256(secret, timestamp + METHOD + requestPath + body))``,
where ``requestPath`` includes the query string and ``body`` is the raw request bytes.
``OK-ACCESS-TIMESTAMP`` is ISO 8601 UTC with milliseconds and must lie within 30 seconds of the
server's wall clock. WebSocket login signs ``timestamp + "GET" + "/users/self/verify"`` with a
timestamp in epoch seconds.

Credentials are compared as UTF-8 bytes (:func:`same_text`), so any header or JSON value,
ASCII or not (even a lone surrogate), is an ordinary mismatch answered with its code, never
an exception.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from datetime import datetime

from backstop.api.service import ApiKey
from backstop.api.wire import OkxError

WINDOW_MS = 30_000


def to_bytes(text: str) -> bytes:
    """Any Python string as bytes (lone surrogates included)."""
    return text.encode("utf-8", "surrogatepass")


def same_text(given: str, expected: str) -> bool:
    """Constant-time equality of two strings of any characters."""
    return hmac.compare_digest(to_bytes(given), to_bytes(expected))


def calculate_sign(secret: str, prehash: bytes) -> str:
    """Base64 of HMAC-SHA256 over the prehash bytes."""
    return base64.b64encode(hmac.digest(secret.encode(), prehash, "sha256")).decode()


def parse_iso_ms(text: str) -> int:
    """``2020-12-08T09:08:57.715Z`` → epoch ms; 50112 when malformed."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP") from exc
    if when.tzinfo is None:
        raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP")
    return int(when.timestamp() * 1000)


def _header(headers: Mapping[str, str], name: str, empty_code: str) -> str:
    value = headers.get(name, "")
    if not value:
        raise OkxError(empty_code, f"Request header {name} can not be empty")
    return value


def authenticate_rest(keys: Mapping[str, ApiKey], headers: Mapping[str, str], method: str,
                      request_path: str, body: bytes, now_ms: int) -> ApiKey:
    """The key that signed this request, or :class:`OkxError` (50102–50113, HTTP 401)."""
    api_key = _header(headers, "OK-ACCESS-KEY", "50103")
    passphrase = _header(headers, "OK-ACCESS-PASSPHRASE", "50104")
    sign = _header(headers, "OK-ACCESS-SIGN", "50106")
    timestamp = _header(headers, "OK-ACCESS-TIMESTAMP", "50107")
    if abs(now_ms - parse_iso_ms(timestamp)) > WINDOW_MS:
        raise OkxError("50102", "Timestamp request expired")
    key = keys.get(api_key)
    if key is None or not key.secret_key:
        raise OkxError("50111", "Invalid OK-ACCESS-KEY")
    if not same_text(passphrase, key.passphrase):
        raise OkxError("50105", "Request header OK-ACCESS-PASSPHRASE incorrect")
    prehash = to_bytes(timestamp + method.upper() + request_path) + body
    if not same_text(sign, calculate_sign(key.secret_key, prehash)):
        raise OkxError("50113", "Invalid Sign")
    return key


def authenticate_ws(keys: Mapping[str, ApiKey], arg: Mapping[str, str], now_ms: int) -> ApiKey:
    """WebSocket login (``op: login``): epoch-seconds timestamp within 30 s, same HMAC."""
    api_key, passphrase = str(arg.get("apiKey", "")), str(arg.get("passphrase", ""))
    timestamp, sign = str(arg.get("timestamp", "")), str(arg.get("sign", ""))
    if not (api_key and passphrase and timestamp and sign):
        raise OkxError("60009", "Login failed.")
    try:
        if not timestamp.isascii() or len(timestamp) > 32:
            raise ValueError(timestamp)
        ts_ms = int(float(timestamp) * 1000)  # display clock only: seconds with optional fraction
    except (ValueError, OverflowError) as exc:
        raise OkxError("60004", "Invalid timestamp") from exc
    if abs(now_ms - ts_ms) > WINDOW_MS:
        raise OkxError("60006", "Timestamp request expired")
    key = keys.get(api_key)
    if key is None or not key.secret_key:
        raise OkxError("60005", "Invalid apiKey")
    if not same_text(passphrase, key.passphrase):
        raise OkxError("60024", "Wrong passphrase")
    expected = calculate_sign(key.secret_key, to_bytes(timestamp + "GET" + "/users/self/verify"))
    if not same_text(sign, expected):
        raise OkxError("60007", "Invalid sign")
    return key
