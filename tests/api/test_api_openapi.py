"""The OpenAPI document: every registered route is in it and every documented route is
registered; it is served at ``/api/v5/openapi.json`` and is valid OpenAPI 3.1."""

from __future__ import annotations

import pytest

from backstop.api import openapi


def test_every_route_has_a_spec_and_every_spec_a_route():
    routes = set(openapi.registered_routes())
    assert routes == set(openapi.ENDPOINTS)


def test_document_lists_every_route_with_its_security():
    doc = openapi.build_document()
    listed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops if p != openapi.DOC_PATH}
    assert listed == set(openapi.registered_routes())
    assert doc["paths"]["/api/v5/trade/order"]["post"]["security"] == [{"okx": []}]
    assert doc["paths"]["/backstop/v1/audit"]["get"]["security"] == [{"admin": []}]
    assert doc["paths"]["/api/v5/public/time"]["get"]["security"] == []
    side = doc["paths"]["/api/v5/trade/batch-orders"]["post"]["requestBody"]["content"]["application/json"]
    assert side["schema"]["type"] == "array"
    assert side["schema"]["items"]["properties"]["side"]["enum"] == ["buy", "sell"]


def test_served_document_is_valid_openapi(server):
    import httpx

    schemathesis = pytest.importorskip("schemathesis")
    doc = httpx.get(f"{server.url}{openapi.DOC_PATH}").json()
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(openapi.ENDPOINTS) + 1
    assert doc["openapi"] == "3.1.0"
    assert "/api/v5/account/balance" in doc["paths"]
