"""The server's hot path (issue 12): orjson rendering that keeps the wire bytes, the group
commit through the log's writer thread (acknowledged means stored), uvloop and the frozen
replayed state."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.responses import JSONResponse

from backstop.api.service import ExchangeService
from backstop.api.wire import OkxError, OkxResponse
from backstop.model import codec
from backstop.model.commands import Deposit
from backstop.serve import build_service, freeze_state, loop_factory
from backstop.store.log import CommandLog

CONTENT = [
    {"code": "0", "msg": "", "data": []},
    {"code": "0", "msg": "", "data": [{"ordId": "12", "px": "98765.4", "sz": "0.01", "ts": "1700000000000",
                                       "flags": [True, False, None], "n": 7, "neg": -3}]},
    {"code": "51000", "msg": "Parameter px error: naïve ünïcode – 価格 \U0001f600", "data": []},
    {"msg": "controls \n\t\r\x00\x1f\x7f \" \\ / \u2028\u2029", "nested": {"a": {"b": [[], {}]}}},
    {"big": 2**63 - 1, "small": -(2**63)},
]


@pytest.mark.parametrize("content", CONTENT)
def test_orjson_rendering_is_byte_identical_to_starlette(content):
    assert OkxResponse(content).body == JSONResponse(content).body


@pytest.mark.parametrize("content", [{"big": 2**64}, {1: "int key"}, {"nested": {2: ["x"]}}])
def test_what_orjson_refuses_is_rendered_as_before(content):
    assert OkxResponse(content).body == JSONResponse(content).body


def test_a_decimal_is_never_put_on_the_wire_as_a_number():
    with pytest.raises(TypeError):
        OkxResponse({"code": "0", "data": [{"px": Decimal("1.5")}]})


def test_a_lone_surrogate_fails_as_before():
    with pytest.raises(UnicodeEncodeError):
        JSONResponse({"msg": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        OkxResponse({"msg": "\ud800"})


class RecordingLog(CommandLog):
    """A real SQLite log that also remembers the size of each stored batch, and can be told
    to fail its next write."""

    batches: list[int]
    fail_next = False

    def append_many(self, rows):
        if self.fail_next:
            raise OSError("disk full")
        self.batches.append(len(rows))
        return super().append_many(rows)


def _service(tmp_path: Path) -> ExchangeService:
    service = build_service(tmp_path / "log.sqlite", data_dir=tmp_path)
    service.log.__class__ = RecordingLog
    service.log.batches = []
    return service


def _stored(service: ExchangeService) -> list[str]:
    return [r.body for r in service.log.records() if r.kind == "command"]


def _writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "backstop-log-writer"}


def test_commands_of_one_turn_share_a_commit_and_are_stored_before_their_ack(tmp_path):
    others = _writer_threads()  # services of earlier tests in this process may hold theirs
    service = _service(tmp_path)

    async def run():
        key = await service.create_account({})
        first = service.log.next_seq
        tasks = [asyncio.ensure_future(service.submit(Deposit(0, key.uid, "USDT", Decimal(n))))
                 for n in range(1, 41)]
        stored_at_ack: dict[int, int] = {}
        for i, task in enumerate(tasks):
            task.add_done_callback(lambda _t, i=i: stored_at_ack.__setitem__(i, len(_stored(service))))
        await asyncio.gather(*tasks)
        await service.drain()
        return first, stored_at_ack

    first, stored_at_ack = asyncio.run(run())
    assert all(stored_at_ack[i] >= i + 1 for i in range(40))  # acknowledged means stored
    assert service.log.batches[-1] == 40  # one transaction for the 40 commands of one turn
    assert service.log.next_seq == first + 40
    amounts = [codec.loads(b).amount for b in _stored(service)]
    assert amounts == [Decimal(n) for n in range(1, 41)]  # in submission order
    assert _writer_threads() <= others  # drain stopped this service's writer
    service.log.close()


def test_a_failed_write_acknowledges_nothing_and_stops_the_service(tmp_path):
    service = _service(tmp_path)

    async def run():
        key = await service.create_account({})
        stored = len(_stored(service))
        service.log.fail_next = True
        results = await asyncio.gather(*(service.submit(Deposit(0, key.uid, "USDT", Decimal(5)))
                                         for _ in range(3)), return_exceptions=True)
        with pytest.raises(OkxError) as later:
            await service.submit(Deposit(0, key.uid, "USDT", Decimal(5)))
        await service.drain()
        return stored, results, later.value

    stored, results, later = asyncio.run(run())
    assert [r.code for r in results] == ["50001"] * 3
    assert later.code == "50001" and service.failed
    assert len(_stored(service)) == stored
    service.log.close()


def test_drain_returns_once_everything_queued_is_stored(tmp_path):
    service = _service(tmp_path)

    async def run():
        key = await service.create_account({})
        tasks = [asyncio.ensure_future(service.submit(Deposit(0, key.uid, "USDT", Decimal(n))))
                 for n in range(1, 11)]
        await asyncio.sleep(0)  # the commands run and wait for the log
        assert len(_stored(service)) == 0
        await service.drain()
        stored = len(_stored(service))
        await asyncio.gather(*tasks)
        return stored

    assert asyncio.run(run()) == 10
    service.log.close()


def test_the_writer_thread_restarts_after_a_drain(tmp_path):
    service = _service(tmp_path)

    async def run():
        key = await service.create_account({})
        await service.drain()
        await service.submit(Deposit(0, key.uid, "USDT", Decimal(7)))
        await service.drain()

    asyncio.run(run())
    assert codec.loads(_stored(service)[-1]).amount == Decimal(7)
    service.log.close()


def test_uvloop_is_the_event_loop_where_installed():
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed on this platform")
    factory = loop_factory()
    assert factory is uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(_loop_type()) is uvloop.Loop


def test_without_uvloop_the_server_uses_asyncios_loop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an import finds on a platform without it
    assert loop_factory() is None
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert runner.run(_loop_type()).__module__.startswith("asyncio")


async def _loop_type():
    return type(asyncio.get_running_loop())


def test_freeze_state_moves_live_objects_out_of_collection():
    state = [{"k": json.dumps([n])} for n in range(1000)]
    try:
        freeze_state()
        assert gc.get_freeze_count() >= len(state)
    finally:
        gc.unfreeze()
