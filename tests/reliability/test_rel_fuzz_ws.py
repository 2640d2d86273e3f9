"""Fuzzing the WebSockets (issue 6, item 2) with hypothesis, against a real server on 127.0.0.1.

Malformed frames go to ``/ws/v5/public`` and ``/ws/v5/private`` (before and after login):
garbage JSON (wrong types, huge and negative numbers, ``NaN``/``Infinity``, unicode, deep
nesting), ``op`` messages with invalid ops, channels and args, raw text and binary frames.
After each frame the client sends ``ping`` and reads up to the ``pong``; everything the
server said in between must be an acknowledgement (``subscribe``/``unsubscribe``/``login``),
a push, or an OKX error event (``{"event":"error","code":<digits>}``), and a frame that is not
a valid request must get an error event. The connection must stay open, except for frames
over the transport limit (closed with 1009). Afterwards the audit is exact and the server
answers.

Size: ``BACKSTOP_FUZZ_EXAMPLES`` × 6 frames per connection kind (default 12 → 72).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from serverkit import ServerProcess, new_account, sign

EXAMPLES = int(os.environ.get("BACKSTOP_FUZZ_EXAMPLES", "12"))
ACKS = {"subscribe", "unsubscribe", "login"}
TRADE_OPS = {"order", "batch-orders", "cancel-order", "batch-cancel-orders", "amend-order"}
"""Answered asynchronously (OKX's ``{"id","op","code","msg","data"}``), maybe after the pong."""
CHANNELS = ("tickers", "books", "books5", "mark-price", "funding-rate", "liquidation-orders", "adl-warning",
            "orders", "positions", "balance_and_position", "liquidation-warning", "", "TICKERS", "candle1m",
            "tickers ", "😀", "x" * 300)
OPS = ("subscribe", "unsubscribe", "login", "", "SUBSCRIBE", "order", "ping", "logout", "😀")

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=False),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1", "", "BTC-USDT-SWAP", "SWAP", "ANY",
                     "\u0000", "😀", "٣", "9" * 300]),
    st.text(max_size=30),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=10)
ARG = st.dictionaries(st.sampled_from(("channel", "instId", "instType", "instFamily", "apiKey", "passphrase",
                                       "timestamp", "sign", "uid")),
                      st.one_of(st.sampled_from(CHANNELS), SCALARS), max_size=5)
OP_MESSAGE = st.fixed_dictionaries({"op": st.one_of(st.sampled_from(OPS), SCALARS)},
                                   optional={"args": st.one_of(st.lists(ARG, max_size=3), JSON),
                                             "id": SCALARS})
TEXT_FRAMES = st.one_of(
    OP_MESSAGE.map(json.dumps), JSON.map(json.dumps), st.text(max_size=60),
    st.sampled_from(['{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT-SWAP"}]',
                     "[" * 3000 + "]" * 3000, '{"op":' * 2000 + '"x"' + "}" * 2000,
                     '{"op":"subscribe","args":NaN}', '{"op":"login","args":[{"timestamp":1e400}]}',
                     '{"op":"login","args":[{"apiKey":"k","passphrase":"p","sign":"s","timestamp":"1e400"}]}',
                     '{"op":"login","args":[{"apiKey":"k","passphrase":"p","sign":"s","timestamp":"nan"}]}',
                     '{"op":"subscribe","args":[]}', "PING", "x" * 70_000]),
).filter(lambda text: text != "ping")
FRAMES = st.one_of(TEXT_FRAMES, TEXT_FRAMES, TEXT_FRAMES, st.binary(max_size=100))


def login_frame(key: dict[str, str]) -> str:
    ts = str(int(time.time()))
    signature = sign(key["secretKey"], ts + "GET/users/self/verify")
    return json.dumps({"op": "login", "args": [{"apiKey": key["apiKey"], "passphrase": key["passphrase"],
                                                "timestamp": ts, "sign": signature}]})


class Peer:
    """One fuzzed connection; reopened (and logged in again) if the server closes it."""

    def __init__(self, url: str, key: dict[str, str] | None = None) -> None:
        self.url, self.key = url, key
        self.ws: ClientConnection | None = None
        self.reopened = 0
        self._context: Any = None

    def open(self) -> ClientConnection:
        if self.ws is None:
            self._context = connect(self.url, max_size=None, open_timeout=10)
            self.ws = self._context.__enter__()
            if self.key is not None:
                self.ws.send(login_frame(self.key))
                answer = json.loads(self.ws.recv(timeout=10))
                assert answer.get("event") == "login", answer
        return self.ws

    def exchange(self, frame: str | bytes) -> list[Any]:
        """Send ``frame`` then ``ping``; what came back before the ``pong`` (parsed), and for a
        trading op up to its answer, which may come after the ``pong``."""
        ws = self.open()
        said: list[Any] = []
        ponged = False
        try:
            ws.send(frame)
            ws.send("ping")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                text = ws.recv(timeout=15)
                if text == "pong":
                    ponged = True
                else:
                    said.append(json.loads(text))
                if ponged and (not is_trade_op(frame) or any("op" in m for m in said)):
                    return said
        except ConnectionClosed as exc:
            self.close()
            self.reopened += 1
            raise AssertionError(f"connection closed ({exc}) after {frame[:100]!r}") from exc
        raise AssertionError(f"no pong after {frame[:100]!r}")

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
        self.ws = self._context = None


def is_trade_op(frame: str | bytes) -> bool:
    try:
        message = json.loads(frame)
    except (ValueError, TypeError, RecursionError):
        return False
    return isinstance(message, dict) and isinstance(message.get("op"), str) and message["op"] in TRADE_OPS


def check_answer(frame: str | bytes, said: list[Any]) -> None:
    """Every event is an ack or an OKX error event; an invalid request got an error event; a
    trade op got its ``op`` response with a numeric code."""
    events = [m for m in said if isinstance(m, dict) and "event" in m]
    for message in said:
        assert isinstance(message, dict), message
        if "op" in message and "event" not in message:
            assert str(message.get("code", "")).isdigit(), message
        elif "event" not in message:
            assert "arg" in message and "data" in message, message
    if any("op" in m and "event" not in m for m in said):
        return
    for event in events:
        if event["event"] == "error":
            assert str(event.get("code", "")).isdigit(), event
        else:
            assert event["event"] in ACKS and event.get("code", "0") == "0", event
    if not any(e["event"] in ACKS for e in events):
        assert any(e["event"] == "error" for e in events), f"no error event for {frame[:200]!r}: {said[:3]}"


@pytest.fixture(scope="module")
def ws_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("fuzzws"))
    server.start()
    account = new_account(server.url)
    yield server, account
    server.stop()


def ws_url(server: ServerProcess, kind: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/v5/{kind}"


@pytest.mark.parametrize("kind", ["public", "private-anonymous", "private-logged-in"])
def test_malformed_frames_get_okx_error_events(ws_server, kind):
    server, account = ws_server
    path = "public" if kind == "public" else "private"
    peer = Peer(ws_url(server, path), account.key if kind == "private-logged-in" else None)
    answered = []

    @settings(max_examples=EXAMPLES * 6, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(frame=FRAMES)
    def run(frame: str | bytes) -> None:
        said = peer.exchange(frame)
        check_answer(frame, said)
        answered.append(len(said))

    try:
        run()
    finally:
        peer.close()
    print(f"\n{kind}: {len(answered)} frames answered, {sum(answered)} messages, reopened {peer.reopened}")
    assert_healthy(server, account)


def test_frames_over_the_transport_limit_close_cleanly(ws_server):
    server, account = ws_server
    with connect(ws_url(server, "public"), max_size=None) as ws:
        ws.send("x" * (70 * 1024))
        answer = json.loads(ws.recv(timeout=10))
        assert answer["event"] == "error" and answer["code"] == "60012"
        ws.send("x" * (2 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert_healthy(server, account)


def assert_healthy(server: ServerProcess, account) -> None:
    assert server.proc is not None and server.proc.poll() is None, "server died"
    assert account.admin("GET", "audit")["ok"] is True
    with connect(ws_url(server, "public")) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "pong"
