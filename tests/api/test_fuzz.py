"""A property-based fuzz of the whole GraphQL schema and of the /v1 request bodies: whatever a client sends, the
answer is never an internal error nor a 5xx. Generated from the exported SDL, so fields added later are fuzzed
without editing this test. The budget is bounded for CI (FUZZ_EXAMPLES to run more)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from aigc_admin.resolvers.root import export_sdl
from tests.integration.test_gateway_upstream import upstream  # noqa: F401  (the stub upstream fixture)
from tests.support.api import ApiHarness, unique

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
SCHEMA = graphql.build_schema(export_sdl())
SCALARS = {
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
    "Date": st.dates().map(lambda d: nodes.String(d.isoformat())),
    "JSON": st.just(nodes.String("{}")),
}
# uploadFile takes a multipart request (its file part cannot be sent as JSON): tests/api/test_files.py covers it
FIELDS = sorted({*SCHEMA.query_type.fields, *SCHEMA.mutation_type.fields} - {"uploadFile"})  # type: ignore[union-attr]
DOCUMENTS = st.one_of(
    from_schema(SCHEMA, fields=FIELDS, custom_scalars=SCALARS, allow_x00=False),
    from_schema(SCHEMA, fields=FIELDS, custom_scalars=SCALARS, allow_x00=False, mode=Mode.NEGATIVE),
)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


def no_internal_error(status: int, body: Any, sent: str) -> None:
    assert status < 500, (status, body, sent)
    errors = body.get("errors") or [] if isinstance(body, dict) else []
    codes = [(e.get("extensions") or {}).get("code") for e in errors]
    assert "INTERNAL_ERROR" not in codes, (body, sent)


@pytest.fixture(scope="module")
async def callers(api: ApiHarness) -> dict[str, dict[str, str]]:
    """Headers of the three kinds of callers: a platform admin in a tenant, a maintainer there, nobody."""
    tenant = await api.create_tenant(unique("fuzz"))
    _, token = await api.create_user(unique("fuzzer"), {tenant: "maintainer"})
    return {"admin": {"Authorization": f"Bearer {api.admin_token}", "X-Tenant-Id": tenant},
            "member": {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}, "anonymous": {}}


@pytest.mark.parametrize("caller", ["admin", "member", "anonymous"])
@FUZZ
@given(document=DOCUMENTS)
async def test_no_graphql_document_gets_an_internal_error(api: ApiHarness, callers: dict[str, dict[str, str]],
                                                         caller: str, document: str) -> None:
    r = await api.client.post("/graphql", json={"query": document}, headers=callers[caller])
    no_internal_error(r.status_code, r.json(), document)


MODEL = "fuzz-upstream"  # an external model whose upstream is a real (stub) server: requests go all the way
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(
    max_size=20)
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                         max_size=4), max_leaves=12)
MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]),
                                           "content": JSON}), max_size=3)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries({"model": st.sampled_from([MODEL, MODEL, "no-such-model", ""]) | JSON}, optional={
        "messages": MESSAGES | JSON, "prompt": JSON, "input": JSON, "stream": JSON, "max_tokens": JSON,
        "temperature": JSON, "stream_options": JSON, "n": JSON, "stop": JSON}),
)


@pytest.fixture(scope="module")
async def key(api: ApiHarness, callers: dict[str, dict[str, str]], upstream: str) -> str:  # noqa: F811
    """A channel key that may call MODEL, an external model answered by the stub upstream."""
    tenant = callers["member"]["X-Tenant-Id"]
    model = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                         {"i": {"name": MODEL, "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}},
                         token=api.admin_token)
    created = await api.ok("mutation($i: ChannelInput!) { createChannel(input: $i) { key } }",
                           {"i": {"modelIds": [model["createModel"]["model"]["id"]]}}, token=api.admin_token,
                           tenant=tenant)
    key = str(created["createChannel"]["key"])
    for _ in range(100):  # the routing table picks the model up
        if (await api.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).json()["data"]:
            break
        await asyncio.sleep(0.1)
    return key


@FUZZ
@given(path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"]),
       body=BODIES)
async def test_no_v1_body_gets_a_server_error(api: ApiHarness, key: str, path: str, body: Any) -> None:
    r = await api.client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code < 500, (r.status_code, r.text, body)
    if r.headers.get("content-type", "").startswith("application/json"):
        answer = r.json()
        assert r.status_code == 200 or set(answer["error"]) >= {"message", "type", "code"}, answer
