"""Recovery: a restart replays the log to the same state; ``kill -9`` keeps every
acknowledged order."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

from backstop.model.commands import PlaceOrder, SetIndexPrice
from backstop.model.enums import OrderType, Side
from backstop.serve import build_service
from backstop.state.invariants import conservation_reports
from conftest import Client, Server, new_account

BTC = "BTC-USDT-SWAP"


def _trade(service, uid_a: int, uid_b: int) -> None:
    async def run() -> None:
        await service.submit(SetIndexPrice(0, "BTC-USDT", Decimal("100000")))  # the price band
        await service.submit(PlaceOrder(0, uid_a, BTC, Side.BUY, OrderType.LIMIT, Decimal("2"),
                                        Decimal("100000")))
        await service.submit(PlaceOrder(0, uid_b, BTC, Side.SELL, OrderType.MARKET, Decimal("1")))
        await service.submit(SetIndexPrice(0, "BTC-USDT", Decimal("99000")))
    asyncio.run(run())


def test_restart_recovers_state_hash_audit_and_keys(tmp_path):
    check_restart_recovers(tmp_path / "log.sqlite")


def check_restart_recovers(db) -> None:
    """Trade, close, reopen the log at ``db`` (a path or URL): same hash, audit and keys."""
    clock = iter(range(1_000, 10_000_000, 7))
    service = build_service(db, clock=lambda: next(clock))
    alice = asyncio.run(service.create_account({"USDT": Decimal("50000")}))
    bob = asyncio.run(service.create_account({"USDT": Decimal("50000")}))
    _trade(service, alice.uid, bob.uid)
    before = (service.exchange.state_hash(), conservation_reports(service.exchange.state), dict(service.keys))
    service.log.close()
    again = build_service(db)
    assert (again.exchange.state_hash(), conservation_reports(again.exchange.state), again.keys) == before
    assert again.tracker.account_orders(alice.uid)[0].state == "partially_filled"
    again.log.close()


def test_kill_9_during_order_load_keeps_every_acknowledged_order(tmp_path):
    check_kill_9_keeps_acknowledged_orders(Server(tmp_path))


def check_kill_9_keeps_acknowledged_orders(server: Server) -> None:
    """Order load from three clients, ``kill -9``, restart: every acknowledged order is there
    and the audit is exact."""
    server.start()
    try:
        clients = [new_account(server) for _ in range(3)]
        acked: list[tuple[Client, str]] = []
        stop = threading.Event()

        def load(client: Client, side: str) -> None:
            price = 90000 if side == "buy" else 120000
            while not stop.is_set():
                try:
                    order = {"instId": BTC, "tdMode": "cross", "side": side, "ordType": "limit",
                             "sz": "0.01", "px": str(price)}
                    body = client.post("/api/v5/trade/order", order).json()
                except Exception:  # the server died mid-request: that order was never acknowledged
                    return
                if body["code"] == "0":
                    acked.append((client, body["data"][0]["ordId"]))
                price += 1 if side == "buy" else -1

        sides = ("buy", "sell", "buy")
        threads = [threading.Thread(target=load, args=pair) for pair in zip(clients, sides, strict=True)]
        for thread in threads:
            thread.start()
        while len(acked) < 60:
            threading.Event().wait(0.02)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(10)
        before_hash_count = len(acked)
        server.start()
        for client, ord_id in acked:
            fresh = Client(server.url, client.key)
            body = fresh.get(f"/api/v5/trade/order?instId={BTC}&ordId={ord_id}").json()
            assert body["code"] == "0", (ord_id, body)
        assert before_hash_count >= 60
        assert Client(server.url).admin("GET", "audit")["ok"] is True
    finally:
        server.stop()
