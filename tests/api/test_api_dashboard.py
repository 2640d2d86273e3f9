"""The dashboard in real headless Chromium (Debian's ``chromium`` driven by Playwright): the page
loads, its charts hold data, and a liquidation forced through the admin API appears on it live.

Needs ``apt-get install -y chromium`` and the ``playwright`` Python package; never
``playwright install`` (the system browser is used through ``executable_path``).
"""

from __future__ import annotations

import os
import shutil
from decimal import Decimal

import pytest

from conftest import Client, Server, new_account

CHROMIUM = os.environ.get("BACKSTOP_CHROMIUM", "/usr/bin/chromium")
BTC = "BTC-USDT-SWAP"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
SCREENSHOT = os.environ.get("BACKSTOP_DASHBOARD_SCREENSHOT", "/tmp/backstop-dashboard.png")

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} missing: apt-get install -y chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")


def _ok(response) -> list[dict]:
    body = response.json()
    assert body["code"] == "0", body
    return body["data"]


def _mark(admin: Client) -> Decimal:
    marks = _ok(admin.get(f"/api/v5/public/mark-price?instType=SWAP&instId={BTC}", signed=False))
    return Decimal(marks[0]["markPx"])


def _open_leveraged_long(server: Server, admin: Client, mark: Decimal) -> tuple[Client, Client]:
    """A 10x isolated long of 1 BTC (the first client returned) and a calm cross long of 0.5
    BTC, both against a rich maker, who then bids just above the 10x long's bankruptcy price."""
    whale = new_account(server, "5000000")
    trader = new_account(server, "12000")
    _ok(trader.post("/api/v5/account/set-leverage", {"instId": BTC, "lever": "10", "mgnMode": "isolated"}))
    _ok(whale.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "side": "sell",
                                           "ordType": "limit", "sz": "150", "px": str(mark)}))
    bystander = new_account(server, "100000")
    _ok(bystander.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "side": "buy",
                                               "ordType": "market", "sz": "50"}))
    _ok(trader.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "isolated", "side": "buy",
                                            "ordType": "market", "sz": "100"}))
    bid = (mark * Decimal("0.905")).quantize(Decimal("1"))
    _ok(whale.post("/api/v5/trade/order", {"instId": BTC, "tdMode": "cross", "side": "buy",
                                           "ordType": "limit", "sz": "300", "px": str(bid)}))
    return trader, whale


def _crash_until_liquidated(admin: Client, mark: Decimal) -> None:
    low = str((mark * Decimal("0.85")).quantize(Decimal("1")))
    for _ in range(20):
        result = admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": low})
        if "LiquidationStarted" in result["events"]:
            return
    raise AssertionError("no liquidation after 20 index updates")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=LAUNCH_ARGS, viewport={"width": 1400, "height": 1100})
        yield context
        context.close()


def _count(page, selector: str) -> int:
    return int(page.locator(selector).first.get_attribute("data-count") or 0)


def test_dashboard_charts_live_liquidation(server, admin, browser):
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/", wait_until="domcontentloaded")
    page.wait_for_selector("#status.live", timeout=10_000)
    assert page.locator(".fund").count() >= 25  # one card per insurance fund

    mark = _mark(admin)
    trader, _whale = _open_leveraged_long(server, admin, mark)
    trader_uid = trader.key["uid"]
    page.wait_for_function("document.querySelector('#oi svg')?.dataset.count >= 1", timeout=10_000)
    _crash_until_liquidated(admin, mark)

    row = page.locator("#feed tbody tr", has_text=BTC).filter(has_text=trader_uid)
    row.first.wait_for(timeout=10_000)
    fund_chart = "document.querySelector('.fund[data-fund=\"SWAP:BTC-USDT\"] svg')"
    page.wait_for_function(f"{fund_chart}?.dataset.count >= 1", timeout=10_000)
    page.wait_for_timeout(300)
    assert _count(page, "#oi svg") >= 1
    assert _count(page, "#margin-hist svg") >= 1
    assert _count(page, "#adl-dist svg") >= 1
    assert int(page.locator("#fund-events").get_attribute("data-count")) >= 1
    assert page.locator(".fund[data-fund='SWAP:BTC-USDT'] svg path.line").count() == 1
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert errors == []
    page.close()


def test_dashboard_snapshot_and_assets(server, admin):
    assert admin.http.get("/").headers["content-type"].startswith("text/html")
    for asset in ("dashboard.js", "charts.js", "dashboard.css"):
        assert admin.http.get(f"/dashboard/static/{asset}").status_code == 200
    snapshot = admin.http.get("/dashboard/snapshot").json()
    assert snapshot["type"] == "snapshot"
    assert {f["fundId"] for f in snapshot["funds"]} >= {"SWAP:BTC-USDT"}
    assert len(snapshot["marginHistogram"]["counts"]) == len(snapshot["marginLabels"])
