"""OpenTelemetry traces received by a real OTLP/HTTP receiver this test runs: one trace spans the GraphQL mutation in
the API process, the RQ job it enqueued in the worker's job process, and the runtime call that job made; a gateway
request's span carries the GenAI attributes (operation, model, token usage)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.api import unique
from tests.support.asgi_stub import read_body, serving, start
from tests.support.engine import tiny_model_path
from tests.support.live import ADMIN_PASSWORD, LiveServer, TenantClient, http_gql, http_login, live_server
from tests.support.redis_server import RedisServer
from tests.support.tool_upstream import tool_upstream

SPANS: list[dict[str, Any]] = []


async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """OTLP/HTTP traces (protobuf), kept in SPANS."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    for resource_spans in request.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {a.key: (a.value.string_value or a.value.int_value) for a in span.attributes}
                SPANS.append({"name": span.name, "trace": span.trace_id.hex(), "id": span.span_id.hex(),
                              "parent": span.parent_span_id.hex(), "process": resource.get("aigc.process"),
                              "attributes": attributes})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf")]})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def collector() -> Iterator[str]:
    url, server = start(receiver)
    yield url.removesuffix("/v1") + "/v1/traces"
    server.should_exit = True


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(tool_upstream) as url:
        yield url


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory,
             collector: str) -> Iterator[LiveServer]:
    extra = {"tracer.enable": True, "tracer.otlp.endpoint": collector, "tracer.jaeger.type": "const",
             "tracer.jaeger.param": 1, "engine.start.timeout": 3, "gateway.routes.refresh": 0.5}
    with live_server(tmp_path_factory.mktemp("tracing"), redis_server.url, extra=extra, worker=True) as server:
        yield server


async def _until(check: Any, what: str, timeout: float = 60) -> Any:
    for _ in range(int(timeout / 0.25)):
        found = check()
        if found:
            return found
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what}: {[(s['name'], s['process']) for s in SPANS]}")


async def test_one_trace_from_the_api_through_the_job_to_the_runtime(platform: LiveServer) -> None:
    token = await http_login(platform, "admin", ADMIN_PASSWORD)
    made = await http_gql(platform, 'mutation($c: String!) { createTenant(input: {name: "T", code: $c}) '
                          "{ tenant { id } } }", {"c": unique("tr")}, token)
    c = TenantClient(platform, token, made["data"]["createTenant"]["tenant"]["id"])
    model = await c.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": unique("tiny"), "modelPath": str(tiny_model_path()), "tenantIds": [c.tenant]}})
    await c.gql("mutation Deploy($i: DeployModelInput!) { deployModel(input: $i) { deployment { id } } }",
                {"i": {"modelId": model["createModel"]["model"]["id"]}})

    def traced() -> list[dict[str, Any]] | None:
        for runtime in (s for s in SPANS if s["name"].startswith("runtime.start")):
            trace = [s for s in SPANS if s["trace"] == runtime["trace"]]
            if any(s["name"] == "graphql mutation Deploy" for s in trace):
                return trace
        return None

    trace = await _until(traced, "a trace from deployModel to the runtime")
    by_id = {s["id"]: s for s in trace}
    operation = next(s for s in trace if s["name"] == "graphql mutation Deploy")
    job = next(s for s in trace if s["name"] == "job deployments.deploy")
    runtime = next(s for s in trace if s["name"].startswith("runtime.start"))
    assert (operation["process"], job["process"], runtime["process"]) == ("api", "job", "job")
    assert job["parent"] == operation["id"]  # the job continues the operation that enqueued it
    chain, span = [], runtime
    while span["parent"] in by_id:
        span = by_id[span["parent"]]
        chain.append(span["name"])
    assert chain.index("job deployments.deploy") < chain.index("graphql mutation Deploy")  # up to the HTTP request


async def test_gateway_requests_carry_the_genai_attributes(platform: LiveServer, upstream: str) -> None:
    token = await http_login(platform, "admin", ADMIN_PASSWORD)
    made = await http_gql(platform, 'mutation($c: String!) { createTenant(input: {name: "G", code: $c}) '
                          "{ tenant { id } } }", {"c": unique("gt")}, token)
    c = TenantClient(platform, token, made["data"]["createTenant"]["tenant"]["id"])
    name = unique("ext")
    model = await c.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [c.tenant]}})
    channel = await c.gql("mutation($i: ChannelInput!) { createChannel(input: $i) { key } }",
                          {"i": {"modelIds": [model["createModel"]["model"]["id"]]}})
    await asyncio.sleep(1.5)  # the routing table sees the model
    async with httpx.AsyncClient(base_url=platform.base_url) as h:
        r = await h.post("/v1/chat/completions", headers={"Authorization": f"Bearer {channel['createChannel']['key']}"},
                         json={"model": name, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    span = await _until(lambda: next((s for s in SPANS if s["name"] == f"chat {name}"), None), "the gateway span")
    attributes = span["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat" and attributes["gen_ai.request.model"] == name
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (7, 4)
    assert attributes["aigc.trace_id"] == r.headers["x-trace-id"]
