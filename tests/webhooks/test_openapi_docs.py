"""The HTTP docs: the intake webhook's real request schemas and a response model for every route in the OpenAPI;
`/docs` loads Swagger UI from OrderHub itself (no CDN: blank in mainland China and offline otherwise)."""

from __future__ import annotations

import re

import httpx


async def test_openapi_has_the_order_schemas_and_a_response_model_for_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert {"OrderData", "TmallTrade", "OrderBatch", "Customer", "Item"} <= set(schemas)
    assert {"external_id", "customer", "items", "amount"} <= set(schemas["OrderData"]["required"])
    body = spec["paths"]["/webhooks/orders/{channel}"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] != {}
    assert body["examples"]["generic"]["value"]["customer"]["name"] == "王女士"
    assert "receiver_city" in body["examples"]["tmall"]["value"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            schema = next(iter(ok["content"].values()))["schema"]
            assert schema != {} and schema != {"type": "string"} or path == "/metrics", (method, path, schema)
    order = schemas["OrderOut"]["properties"]
    assert {"remark", "exception_notes"} <= set(order) and "notes" not in order


async def test_docs_page_names_no_external_host_and_its_assets_load(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    hosts = re.findall(r"https?://([^/\"']+)", page.text)
    assert hosts == [], hosts
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        resp = await client.get(asset)
        assert resp.status_code == 200 and len(resp.content) > 100, asset
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would load from a CDN
