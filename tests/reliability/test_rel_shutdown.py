"""Graceful shutdown (issue 6, item 4): SIGTERM during an order load drains the group-commit
writer, closes connections and exits 0; after a restart every acknowledged order is there and
the audit is exact."""

from __future__ import annotations

import threading

import httpx

from backstop.serve import build_service
from serverkit import ServerProcess, SignedClient, new_account

INST = "BTC-USDT-SWAP"


def _load(client: SignedClient, side: str, acked: list[tuple[int, int]], stop: threading.Event) -> None:
    px = 100000 if side == "buy" else 110000
    while not stop.is_set():
        order = {"instId": INST, "tdMode": "cross", "side": side, "ordType": "limit", "sz": "0.01",
                 "px": str(px)}
        try:
            body = client.post("/api/v5/trade/order", order).json()
        except (httpx.HTTPError, ValueError):
            return
        if body["code"] == "0":
            acked.append((client.uid, int(body["data"][0]["ordId"])))


def test_sigterm_during_load_flushes_log_and_exits_0(tmp_path):
    server = ServerProcess(tmp_path)
    server.start()
    try:
        clients = [new_account(server.url) for _ in range(3)]
        acked: list[tuple[int, int]] = []
        stop = threading.Event()
        threads = [threading.Thread(target=_load, args=(c, s, acked, stop), daemon=True)
                   for c, s in zip(clients, ("buy", "sell", "buy"), strict=True)]
        for thread in threads:
            thread.start()
        while len(acked) < 60:
            threading.Event().wait(0.02)
        assert server.terminate(30) == 0
        stop.set()
        for thread in threads:
            thread.join(10)
        replay = build_service(server.log_target, data_dir=server.data_dir)  # what the next start sees
        try:
            missing = [o for uid, o in acked if getattr(replay.tracker.orders.get(o), "uid", None) != uid]
        finally:
            replay.log.close()
        assert missing == []
        server.start()
        assert SignedClient(server.url).admin("GET", "audit")["ok"] is True
    finally:
        server.stop()
