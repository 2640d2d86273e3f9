"""REST over real loopback HTTP: envelope, public data, auth errors, orders, isolation, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

BTC = "BTC-USDT-SWAP"


def test_public_endpoints_use_okx_envelope_and_strings(admin):
    body = admin.get("/api/v5/public/instruments?instType=SWAP", signed=False).json()
    assert body["code"] == "0" and body["msg"] == ""
    btc = next(i for i in body["data"] if i["instId"] == BTC)
    assert (btc["ctVal"], btc["tickSz"], btc["lotSz"]) == ("0.01", "0.1", "0.01")
    for inst_type in ("SPOT", "FUTURES", "OPTION"):
        listed = admin.get(f"/api/v5/public/instruments?instType={inst_type}", signed=False)
        assert listed.json()["data"] == []
    tiers = admin.get(f"/api/v5/public/position-tiers?instType=SWAP&tdMode=cross&instId={BTC}",
                      signed=False).json()["data"]
    assert tiers[0]["mmr"] == "0.004" and tiers[0]["maxSz"] == "1000"
    mark = admin.get("/api/v5/public/mark-price?instType=SWAP", signed=False).json()["data"]
    assert all(isinstance(m["markPx"], str) for m in mark)
    funding = admin.get(f"/api/v5/public/funding-rate?instId={BTC}", signed=False).json()["data"][0]
    assert int(funding["fundingTime"]) % (8 * 3600 * 1000) == 0
    assert admin.get("/api/v5/public/time", signed=False).json()["data"][0]["ts"].isdigit()


def test_parameter_errors_have_okx_codes_and_statuses(admin):
    missing = admin.get("/api/v5/public/instruments", signed=False)
    assert missing.status_code == 400 and missing.json()["code"] == "50014"
    unknown = admin.get("/api/v5/market/ticker?instId=NOPE-USDT-SWAP", signed=False)
    assert unknown.status_code == 200 and unknown.json()["code"] == "51001"
    bad = admin.get(f"/api/v5/market/books?instId={BTC}&sz=abc", signed=False)
    assert bad.status_code == 400 and bad.json()["code"] == "51000"
    assert admin.get("/api/v5/nothing/here", signed=False).status_code == 404


def test_auth_failures(account, admin):
    client = account()
    assert client.get("/api/v5/account/balance").json()["code"] == "0"
    unsigned = admin.get("/api/v5/account/balance", signed=False)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "50103"
    old = client.headers("GET", "/api/v5/account/balance", "", datetime.now(UTC) - timedelta(seconds=40))
    expired = client.http.get("/api/v5/account/balance", headers=old)
    assert expired.status_code == 401 and expired.json()["code"] == "50102"
    headers = client.headers("GET", "/api/v5/account/balance", "")
    for name, code in (("OK-ACCESS-KEY", "50111"), ("OK-ACCESS-SIGN", "50113")):
        forged = client.http.get("/api/v5/account/balance", headers={**headers, name: "x"})
        assert forged.json()["code"] == code
    wrong = {**headers, "OK-ACCESS-PASSPHRASE": "x"}
    assert client.http.get("/api/v5/account/balance", headers=wrong).json()["code"] == "50105"
    signed_for_other_path = client.headers("GET", "/api/v5/account/positions", "")
    assert client.http.get("/api/v5/account/balance", headers=signed_for_other_path).json()["code"] == "50113"


def test_orders_items_isolation_and_audit(account, admin):
    alice, bob = account(), account()
    admin.admin("POST", "index-price", {"instFamily": "BTC-USDT", "px": "100000"})  # the band
    order = {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "1", "px": "100000"}
    placed = alice.post("/api/v5/trade/order", {**order, "clOrdId": "a1"}).json()
    assert placed["code"] == "0" and placed["data"][0]["sCode"] == "0"
    ord_id = placed["data"][0]["ordId"]
    batch = alice.post("/api/v5/trade/batch-orders", [order, {**order, "sz": "0.001"}]).json()
    assert batch["code"] == "2" and [d["sCode"] for d in batch["data"]] == ["0", "51121"]
    both_bad = [{**order, "sz": "0"}, {**order, "instId": "X"}]
    failed = alice.post("/api/v5/trade/batch-orders", both_bad).json()
    assert failed["code"] == "1" and [d["sCode"] for d in failed["data"]] == ["51000", "51001"]
    assert bob.get(f"/api/v5/trade/order?instId={BTC}&ordId={ord_id}").json()["code"] == "51603"
    refused = bob.post("/api/v5/trade/cancel-order", {"instId": BTC, "ordId": ord_id}).json()
    assert refused["code"] == "1" and refused["data"][0]["sCode"] == "51400"
    assert bob.get("/api/v5/trade/orders-pending").json()["data"] == []
    pending = alice.get(f"/api/v5/trade/orders-pending?instId={BTC}").json()["data"]
    assert {p["ordId"] for p in pending} >= {ord_id}
    fetched = alice.get(f"/api/v5/trade/order?instId={BTC}&clOrdId=a1").json()["data"][0]
    assert (fetched["ordId"], fetched["state"], fetched["px"]) == (ord_id, "live", "100000")
    sell = {"instId": BTC, "tdMode": "cross", "side": "sell", "ordType": "market", "sz": "1"}
    assert bob.post("/api/v5/trade/order", sell).json()["code"] == "0"
    done = alice.get(f"/api/v5/trade/order?instId={BTC}&ordId={ord_id}").json()["data"][0]
    assert done["state"] == "filled"
    fills = alice.get(f"/api/v5/trade/fills?ordId={ord_id}").json()["data"]
    assert fills[0]["execType"] == "M" and fills[0]["fillPx"] == "100000"
    positions = alice.get("/api/v5/account/positions").json()["data"]
    assert (positions[0]["pos"], positions[0]["posSide"], positions[0]["avgPx"]) == ("1", "net", "100000")
    books = admin.get(f"/api/v5/market/books?instId={BTC}&sz=5", signed=False).json()["data"][0]
    assert all(len(level) == 4 and level[2] == "0" for level in books["bids"] + books["asks"])
    config = alice.get("/api/v5/account/config").json()["data"][0]
    assert (config["acctLv"], config["posMode"]) == ("2", "net_mode")
    audit = admin.admin("GET", "audit")
    assert audit["ok"] is True and all(c["difference"] == "0" for c in audit["currencies"])


def test_leverage_and_isolated_margin(account):
    client = account()
    body = {"instId": BTC, "lever": "5", "mgnMode": "isolated"}
    assert client.post("/api/v5/account/set-leverage", body).json()["data"][0]["lever"] == "5"
    info = client.get(f"/api/v5/account/leverage-info?instId={BTC}&mgnMode=isolated").json()["data"][0]
    assert info["lever"] == "5"
    too_high = client.post("/api/v5/account/set-leverage", {**body, "lever": "1000"}).json()
    assert too_high["code"] == "51000"
    no_position = client.post("/api/v5/account/position/margin-balance",
                              {"instId": BTC, "posSide": "net", "type": "add", "amt": "10"})
    assert no_position.json()["code"] == "51000"
    empty = client.http.post("/api/v5/account/set-leverage", content=b"",
                             headers=client.headers("POST", "/api/v5/account/set-leverage", ""))
    assert empty.status_code == 400 and empty.json()["code"] == "50000"
