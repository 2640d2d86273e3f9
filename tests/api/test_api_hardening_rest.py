"""REST abuse (issue 10, findings 2-5 and 8) against a real server on loopback: half-applied
batches, duplicate ``clOrdId``, out-of-range and non-ASCII numbers, unbounded integers,
non-ASCII credentials, unknown currencies and malformed HTTP."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from serverkit import ADMIN_TOKEN, ServerProcess, SignedClient, new_account

BTC = "BTC-USDT-SWAP"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("rest-abuse"), limits={"rate_scale": 0})
    srv.start()
    yield srv
    srv.stop()


def order(px: str = "50000", sz: str = "0.01", **extra: str) -> dict[str, str]:
    return {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": sz, "px": px, **extra}


def live_with(client: SignedClient, cl_ord_id: str) -> list[dict]:
    pending = client.get(f"/api/v5/trade/orders-pending?instId={BTC}").json()["data"]
    return [o for o in pending if o["clOrdId"] == cl_ord_id]


def admin_post(server: ServerProcess, path: str, payload: object) -> httpx.Response:
    return httpx.post(f"{server.url}/backstop/v1/{path}", content=json.dumps(payload),
                      headers={"X-Backstop-Admin": ADMIN_TOKEN})


def accounts(server: ServerProcess) -> int:
    return int(SignedClient(server.url).admin("GET", "state")["accounts"])


def test_a_batch_with_an_out_of_range_item_answers_per_item_and_a_retry_places_nothing_twice(server):
    client = new_account(server.url)
    batch = [order(clOrdId="ghost1"), order(sz="1e30", clOrdId="ghost2")]
    answer = client.post("/api/v5/trade/batch-orders", batch)
    assert answer.status_code == 200
    body = answer.json()
    assert body["code"] == "2"
    assert [(i["clOrdId"], i["sCode"]) for i in body["data"]] == [("ghost1", "0"), ("ghost2", "51000")]
    retry = client.post("/api/v5/trade/batch-orders", batch).json()
    assert [i["sCode"] for i in retry["data"]] == ["51016", "51000"]
    assert len(live_with(client, "ghost1")) == 1


def test_duplicate_client_ids_inside_one_batch_are_refused_per_item(server):
    client = new_account(server.url)
    body = client.post("/api/v5/trade/batch-orders", [order(clOrdId="twin"), order(clOrdId="twin")]).json()
    assert [i["sCode"] for i in body["data"]] == ["0", "51016"]
    assert len(live_with(client, "twin")) == 1


def test_concurrent_requests_with_one_client_id_place_one_order(server):
    client = new_account(server.url)

    def place(cl_ord_id: str, codes: list[str]) -> None:
        answer = SignedClient(server.url, client.key).post("/api/v5/trade/order", order(clOrdId=cl_ord_id))
        codes.append(answer.json()["data"][0]["sCode"])

    for trial in range(10):
        cl_ord_id, codes = f"race{trial}", []
        workers = [threading.Thread(target=place, args=(cl_ord_id, codes)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(codes) == ["0", "51016"]
        assert len(live_with(client, cl_ord_id)) == 1


@pytest.mark.parametrize(("field", "value"), [
    ("sz", "1e30"), ("sz", "1" + "0" * 40), ("px", "1e30"), ("sz", "١"), ("sz", "１"), ("sz", "1_0"),
    ("sz", " 1"), ("sz", "1 "), ("px", "NaN"), ("px", "Infinity"), ("sz", "0x10"), ("sz", "1e-99999"),
])
def test_malformed_or_out_of_range_order_numbers_get_51000(server, field, value):
    client = new_account(server.url)
    answer = client.post("/api/v5/trade/order", order(**{field: value}))
    assert answer.status_code == 200
    assert answer.json()["data"][0]["sCode"] == "51000"
    assert client.get(f"/api/v5/trade/orders-pending?instId={BTC}").json()["data"] == []


@pytest.mark.parametrize("lever", ["1e30", "١٠", "10 "])
def test_out_of_range_leverage_gets_51000(server, lever):
    client = new_account(server.url)
    answer = client.post("/api/v5/account/set-leverage", {"instId": BTC, "lever": lever, "mgnMode": "cross"})
    assert (answer.status_code, answer.json()["code"]) == (400, "51000")


@pytest.mark.parametrize("target", [
    f"/api/v5/trade/orders-pending?instId={BTC}&after={'9' * 5000}",
    f"/api/v5/trade/order?instId={BTC}&ordId={'9' * 5000}",
    f"/api/v5/trade/fills?ordId={2**64}",
    f"/api/v5/trade/orders-history?instType=SWAP&instId={BTC}&limit={'9' * 5000}",
])
def test_huge_query_integers_get_51000(server, target):
    answer = new_account(server.url).get(target)
    assert (answer.status_code, answer.json()["code"]) == (400, "51000")


def test_admin_account_with_an_out_of_range_deposit_creates_nothing(server):
    before = accounts(server)
    for deposits in ({"USDT": "1e27"}, {"USDT": "100", "FOO": "1"}, {"USDT": "0.000000001"}):
        answer = admin_post(server, "accounts", {"deposits": deposits})
        assert (answer.status_code, answer.json()["code"]) == (400, "51000")
    assert accounts(server) == before


@pytest.mark.parametrize(("path", "payload"), [
    ("deposit", {"ccy": "FOO", "amt": "1"}),
    ("deposit", {"ccy": "USDT", "amt": "1e20"}),
    ("withdraw", {"ccy": "USDT", "amt": "1" + "0" * 30}),
    ("deposit", {"ccy": "USDT", "amt": "1", "uid": "9" * 5000}),
])
def test_admin_money_refusals(server, path, payload):
    uid = new_account(server.url).uid
    answer = admin_post(server, path, {"uid": str(uid), **payload})
    assert (answer.status_code, answer.json()["code"]) == (400, "51000")


@pytest.mark.parametrize(("header", "value", "code"), [
    ("OK-ACCESS-PASSPHRASE", "pässwörd".encode(), "50105"),
    ("OK-ACCESS-PASSPHRASE", b"\xff\xfe\x80", "50105"),
    ("OK-ACCESS-SIGN", "签名".encode(), "50113"),
    ("OK-ACCESS-TIMESTAMP", "２０２６".encode(), "50112"),
    ("OK-ACCESS-KEY", b"\xc3\x28", "50111"),
])
def test_non_ascii_credentials_get_their_501xx_code(server, header, value, code):
    client = new_account(server.url)
    target = f"/api/v5/trade/orders-pending?instId={BTC}"
    headers = {**client.headers("GET", target, ""), header: value}
    answer = httpx.get(server.url + target, headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (401, code)


def test_non_ascii_admin_token_gets_50111(server):
    answer = httpx.get(f"{server.url}/backstop/v1/state", headers={"X-Backstop-Admin": "tökén".encode()})
    assert (answer.status_code, answer.json()["code"]) == (401, "50111")


def test_malformed_http_gets_an_okx_envelope(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"GET /api/v5/public/time HTTP/1.1\r\nHost: x\r\nBad\x01Header: 1\r\n\r\n")
        reply = raw.recv(65536)
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["code"] == "400"
