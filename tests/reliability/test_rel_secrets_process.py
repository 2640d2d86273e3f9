"""Secrets at rest and process hygiene (issue 10, findings 6 and 8): file modes, sealed API
secrets, the admin token printed only when generated, the data-dir lock, one-line CLI errors,
the header timeout and the connection cap. Real server processes and the real CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from clikit import backstop, one_line_error, populate
from cryptography.fernet import Fernet

from backstop.serve import build_service
from serverkit import ServerProcess, free_port, new_account


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_files_are_private_and_api_secrets_are_sealed(tmp_path):
    server = populate(tmp_path / "data", orders=1)
    key = new_account(server.url).key
    data = server.data_dir
    private = [data / n for n in ("backstop.sqlite", "backstop.sqlite-wal", "backstop.sqlite-head",
                                  "secret.key", "lock")]
    assert mode(data) == 0o700
    assert {p.name: mode(p) for p in private} == {p.name: 0o600 for p in private}
    stored = b"".join(p.read_bytes() for p in data.glob("backstop.sqlite*"))
    assert key["apiKey"].encode() in stored  # the identifier is in clear ...
    assert key["secretKey"].encode() not in stored and key["passphrase"].encode() not in stored
    assert server.terminate() == 0
    with pytest.raises(ValueError, match="cannot decrypt"):
        os.environ["BACKSTOP_SECRET_KEY"] = Fernet.generate_key().decode()
        try:
            build_service(data / "backstop.sqlite", data_dir=data)
        finally:
            del os.environ["BACKSTOP_SECRET_KEY"]
    again = build_service(data / "backstop.sqlite", data_dir=data)
    assert again.keys[key["apiKey"]].secret_key == key["secretKey"]
    again.log.close()


def first_line_of_serve(data_dir: Path) -> str:
    """Start ``backstop serve`` without ``BACKSTOP_ADMIN_TOKEN``, read its banner, stop it."""
    env = {k: v for k, v in os.environ.items() if k != "BACKSTOP_ADMIN_TOKEN"}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from backstop.cli import main; main()", "serve",
                             "--data-dir", str(data_dir), "--port", str(port), "--market", "manual"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = proc.stdout.readline()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # SIGTERM only once uvicorn handles it
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v5/public/time", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        return banner
    finally:
        proc.terminate()
        proc.wait(30)


def test_admin_token_is_printed_only_when_generated(tmp_path):
    banner = first_line_of_serve(tmp_path)
    token = (tmp_path / "admin-token").read_text().strip()
    assert mode(tmp_path / "admin-token") == 0o600
    assert token in banner
    again = first_line_of_serve(tmp_path)
    assert token not in again and "admin token in" in again


def test_a_second_server_on_the_same_data_dir_is_refused_in_one_line(tmp_path):
    server = ServerProcess(tmp_path)
    server.start()
    try:
        line = one_line_error(backstop("serve", "--data-dir", str(tmp_path), "--port", "0",
                                       "--market", "manual"))
        assert f"in use by another backstop serve (pid {server.proc.pid})" in line
        assert httpx.get(f"{server.url}/api/v5/public/time").json()["code"] == "0"
    finally:
        server.stop()


def test_bad_flags_files_and_ports_are_one_line_errors(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "backstop.sqlite").write_bytes(b"not a database" * 100)
    cases = {
        "cannot listen": ["--port", str(busy.getsockname()[1]), "--market", "manual"],
        "is not a TCP port": ["--port", "99999"],
        "--prices": ["--prices", str(tmp_path / "empty.csv"), "--port", "0"],
        "cannot connect to PostgreSQL": ["--db", "postgresql://nobody@127.0.0.1:1/none",
                                         "--market", "manual"],
        "cannot open": ["--data-dir", str(tmp_path / "corrupt"), "--market", "manual"],
    }
    try:
        for expected, args in cases.items():
            own_dir = str(tmp_path / expected.replace(" ", "_"))
            data_dir = [] if "--data-dir" in args else ["--data-dir", own_dir]
            assert expected in one_line_error(backstop("serve", *data_dir, *args))
    finally:
        busy.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("guarded"),
                        limits={"header_timeout_s": 0.5, "max_connections": 16})
    srv.start()
    yield srv
    srv.stop()


def test_a_request_head_that_never_completes_is_cut_off(guarded):
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=5) as slow:
        slow.sendall(b"GET /api/v5/public/time HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert slow.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 3
    assert httpx.get(f"{guarded.url}/api/v5/public/time").json()["code"] == "0"


def test_connections_beyond_the_cap_are_answered_503_and_closed(guarded):
    idle = [socket.create_connection(("127.0.0.1", guarded.port), timeout=5) for _ in range(24)]
    try:
        refused = []
        for sock in idle[16:]:
            reply = sock.recv(4096)
            refused.append(reply)
        assert all(r.startswith(b"HTTP/1.1 503") and b'"50001"' in r for r in refused)
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{guarded.url}/api/v5/public/time").json()["code"] == "0"


def test_an_existing_directory_keeps_its_mode(tmp_path):
    """A log opened in an existing shared directory (as ``/tmp`` is) must not re-mode it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    service = build_service(shared / "backstop.sqlite")
    service.log.close()
    assert mode(shared) == 0o777 and shared.stat().st_mode & 0o1000
    assert mode(shared / "backstop.sqlite") == 0o600


def test_sigterm_right_after_the_banner_shuts_down_cleanly(tmp_path):
    """A SIGTERM before uvicorn installs its handlers used to be swallowed (server kept
    running) or kill the process; now it is a graceful shutdown, exit status 0."""
    proc = subprocess.Popen([sys.executable, "-c", "from backstop.cli import main; main()", "serve",
                             "--data-dir", str(tmp_path), "--port", "0", "--market", "manual"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("backstop serve:")
        proc.terminate()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
