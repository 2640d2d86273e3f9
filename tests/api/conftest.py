"""A real backstop server on a free loopback port (a subprocess), and a small signed client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from serverkit import ServerProcess

ADMIN_TOKEN = "test-admin-token"


class Server(ServerProcess):
    """The shared test server (``tests/serverkit.py``) with this suite's admin token; extra
    keyword arguments go to ``run_server`` (e.g. ``market="replay"``)."""

    def __init__(self, data_dir: Path, db: str | None = None, **run_kwargs: Any) -> None:
        super().__init__(data_dir, db, admin_token=ADMIN_TOKEN, **run_kwargs)


class Client:
    """Signs requests exactly as OKX documents, for raw HTTP tests."""

    def __init__(self, url: str, key: dict[str, str] | None = None) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.key = key

    def headers(self, method: str, target: str, body: str, when: datetime | None = None) -> dict[str, str]:
        assert self.key is not None
        ts = (when or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        mac = hmac.new(self.key["secretKey"].encode(), (ts + method + target + body).encode(), hashlib.sha256)
        return {"OK-ACCESS-KEY": self.key["apiKey"], "OK-ACCESS-PASSPHRASE": self.key["passphrase"],
                "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": base64.b64encode(mac.digest()).decode(),
                "Content-Type": "application/json", "x-simulated-trading": "1"}

    def get(self, target: str, signed: bool = True) -> httpx.Response:
        headers = self.headers("GET", target, "") if signed else {}
        return self.http.get(target, headers=headers)

    def post(self, target: str, payload: object) -> httpx.Response:
        body = json.dumps(payload)
        return self.http.post(target, content=body, headers=self.headers("POST", target, body))

    def admin(self, method: str, path: str, payload: object | None = None) -> dict:
        response = self.http.request(method, f"/backstop/v1/{path}",
                                     headers={"X-Backstop-Admin": ADMIN_TOKEN},
                                     content=None if payload is None else json.dumps(payload))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["code"] == "0", body
        return body["data"][0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("serve"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server) -> Client:
    return Client(server.url)


def new_account(server: Server, usdt: str = "100000") -> Client:
    key = Client(server.url).admin("POST", "accounts", {"deposits": {"USDT": usdt, "BTC": "10"}})
    return Client(server.url, key)


@pytest.fixture
def account(server):
    """A factory of funded accounts with signed clients."""
    return lambda usdt="100000": new_account(server, usdt)
