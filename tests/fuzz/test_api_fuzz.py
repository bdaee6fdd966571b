"""Property over the whole OpenAPI document: every operation, with parameters and bodies drawn from its own schema
and from what an attacker sends instead, answers without a 500, with JSON, errors as `{"error", "detail"}` (issue 9).

An equivalent of schemathesis written with hypothesis: the operations and their parameters are read from the app's
OpenAPI at run time, so a new route is fuzzed without touching this file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.wiring.runtime import Runtime
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from tests.fuzz.strategies import FUZZ, big_ints, datetimes, numbers, text
from webhooks.app import create_app

COUNTS: dict[str, int] = {}


def for_schema(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema allows, values just beyond its bounds, and hostile text: the route must refuse, not fail."""
    if "$ref" in schema:
        return for_schema(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "anyOf" in schema:
        return st.one_of([for_schema(s, components) for s in schema["anyOf"]])
    kind = schema.get("type")
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), text)
    if kind == "integer":
        lo, hi = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        return st.one_of(st.integers(lo, hi), st.sampled_from([lo - 1, hi + 1, 2**63, -(2**63) - 1]), big_ints)
    if kind == "number":
        return st.one_of(numbers, st.sampled_from(["1e20", "NaN", "Infinity", "-0"]))
    if kind == "boolean":
        return st.one_of(st.booleans(), text)
    if schema.get("format") == "date-time":
        return st.one_of(datetimes, st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00"]))
    return st.one_of(text, st.just("1"), st.just("generic:G00000001"), st.just("2147483648"))


def body_for(op: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any] | None:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return None
    schema = content["schema"]
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    props = schema.get("properties", {})
    fields = st.fixed_dictionaries({}, optional={k: for_schema(v, components) for k, v in props.items()})
    return st.one_of(fields, st.dictionaries(text, text, max_size=2), st.lists(st.integers(), max_size=2), st.none())


def stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@st.composite
def requests(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[str, str, dict[str, str], Any]:
    components = spec.get("components", {}).get("schemas", {})
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]
    method, path, op = draw(st.sampled_from(ops))
    url, query = path, {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", quote(stringify(draw(for_schema(param["schema"],
                                                                                           components))), safe=":",
                                                               errors="surrogatepass"))
        elif param["in"] == "query" and draw(st.booleans()):
            query[param["name"]] = stringify(draw(for_schema(param["schema"], components)))
    if query:  # encoded here: invalid UTF-8 (an unpaired surrogate) is a byte sequence an attacker can send
        url += "?" + "&".join(f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in query.items())
    strategy = body_for(op, components)
    return method, url, {}, draw(strategy) if strategy is not None else None


@pytest.fixture
async def world(runtime: Runtime) -> tuple[dict[str, Any], dict[str, str]]:
    app = create_app(runtime.app_services())
    _, token = await runtime.users.add("ops", "admin", [], None, None, datetime.now(UTC))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        body, headers = signed(SECRETS["generic"], {"orders": [order_json(i) for i in range(3)]})
        assert (await client.post("/webhooks/orders/generic", content=body, headers=headers)).status_code == 202
    await runtime.intake_worker().run(burst=True)
    return app.openapi(), {"Authorization": f"Bearer {token}"}


def _spec() -> dict[str, Any]:
    """The OpenAPI of the app as `serve` builds it (the staff API included); read at collection time."""
    from unittest.mock import MagicMock

    from webhooks.services import AppServices, WebhookConfig

    services = AppServices(config=WebhookConfig({}), intake=MagicMock(), adapters={}, queue_depth=MagicMock(),
                           api=MagicMock(), logistics=MagicMock(), tracking=MagicMock())
    return create_app(services).openapi()


SPEC = _spec()


@FUZZ
@given(req=requests(SPEC))
async def test_every_operation_answers_without_a_500(runtime: Runtime, world: tuple[dict[str, Any], dict[str, str]],
                                                     req: tuple[str, str, dict[str, str], Any]) -> None:
    spec, auth = world
    assert set(spec["paths"]) == set(SPEC["paths"])
    method, url, query, body = req
    app = create_app(runtime.app_services())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        resp = await client.request(method, url, params=query, json=body, headers=auth)
    COUNTS[str(resp.status_code)] = COUNTS.get(str(resp.status_code), 0) + 1
    assert resp.status_code < 500 or (url.startswith("/healthz") and resp.status_code == 503), (method, url, query, body,
                                                                                        resp.text[:300])
    if url.startswith("/metrics") or 300 <= resp.status_code < 400:  # a trailing slash is redirected, without a body
        return
    payload = resp.json()
    assert isinstance(payload, dict), payload
    if resp.status_code >= 400:
        assert isinstance(payload.get("error"), str) and isinstance(payload.get("detail"), str), payload


def teardown_module() -> None:
    print(f"\napi fuzz status counts: {COUNTS}")
