"""Assistants and tools through the API, with real servers this module starts: an HTTP tool server, an MCP server
built with the ``mcp`` SDK and an OpenAI-compatible upstream scripted to emit ``tool_calls``. The whole loop
(model → HTTP tool → model, model → MCP tool → model) as a published assistant called with the ``openai`` SDK,
plain and streamed; runs stored in threads; egress refusals as tool failures in the audit log; bad input (a
schema that is not JSON Schema, an OpenAPI document that does not parse, an MCP server that is down, unsupported
tool types, other tenants' ids): clear typed errors, nothing created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from aigc_admin.adapters.db import models as m
from tests.support.api import ApiHarness, unique
from tests.support.asgi_stub import serving
from tests.support.mcp_server import McpTestServer
from tests.support.tool_server import ToolServer, tool_server
from tests.support.tool_upstream import tool_upstream

API_SETTINGS = {"egress.allow.networks": "127.0.0.1/32"}  # the test servers listen on loopback
TOOL = "tool { id name source http { url method secretHeaderNames headers parameters } }"
CREATE_TOOL = f"mutation($i: ToolInput!) {{ createTool(input: $i) {{ {TOOL} errors {{ field code message }} }} }}"
ASSISTANT = ("assistant { id name modelName publishedVersion publishedModel toolIds mcpServerIds "
             "tools { name } }")
CREATE_ASSISTANT = (f"mutation($i: AssistantInput!) {{ createAssistant(input: $i) {{ {ASSISTANT} "
                    "errors { field code message } } }")
WEATHER = {"name": "weather", "description": "The weather in a city",
           "http": {"url": "", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                              "required": ["city"]},
                    "secretHeaders": {"Authorization": "Bearer tool-secret"}, "extract": "/data"}}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ToolServer, str, str]]:
    with tool_server() as tools, serving(tool_upstream) as upstream, McpTestServer() as mcp:
        yield tools, upstream, mcp.url


async def ok(api: ApiHarness, query: str, variables: dict[str, Any] | None = None,
             tenant: str | None = None) -> dict[str, Any]:
    return await api.ok(query, variables, token=api.admin_token, tenant=tenant)


@pytest.fixture(scope="module")
async def world(api: ApiHarness, servers: tuple[ToolServer, str, str]) -> dict[str, Any]:
    tools, upstream, mcp_url = servers
    tenant = await api.create_tenant(unique("as"))
    model = await ok(api, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id name } } }",
                     {"i": {"name": unique("gpt"), "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}})
    model_id, model_name = model["createModel"]["model"]["id"], model["createModel"]["model"]["name"]
    channel = await ok(api, "mutation($i: ChannelInput!) { createChannel(input: $i) { channel { id } key } }",
                       {"i": {"modelIds": [model_id]}}, tenant=tenant)
    weather = await ok(api, CREATE_TOOL, {"i": {**WEATHER, "http": {**WEATHER["http"],
                                                                   "url": f"{tools.url}/weather/{{city}}"}}},
                       tenant=tenant)
    assert not weather["createTool"]["errors"], weather
    mcp = await ok(api, "mutation($i: McpServerInput!) { createMcpServer(input: $i) { mcpServer { id name "
                        "tools { name qualifiedName } } errors { code message } } }",
                   {"i": {"name": "calc", "url": mcp_url}}, tenant=tenant)
    assert not mcp["createMcpServer"]["errors"], mcp
    await api.services().gateway.routes.refresh()  # the model is routable at once (not at the next refresh)
    return {"tenant": tenant, "model": model_name, "model_id": model_id,
            "channel": channel["createChannel"]["channel"]["id"], "key": channel["createChannel"]["key"],
            "weather": weather["createTool"]["tool"]["id"], "mcp": mcp["createMcpServer"]["mcpServer"],
            "tools": tools}


def openai_client(api: ApiHarness, key: str) -> AsyncOpenAI:
    http = httpx.AsyncClient(transport=api.client._transport, base_url="http://test")  # the app, in process
    return AsyncOpenAI(api_key=key, base_url="http://test/v1", http_client=http)


async def test_tools_never_show_their_secrets(api: ApiHarness, world: dict[str, Any]) -> None:
    shown = await ok(api, f'{{ tool(id: "{world["weather"]}") {{ name http {{ secretHeaderNames headers }} }} }}',
                     tenant=world["tenant"])
    assert shown["tool"]["http"] == {"secretHeaderNames": ["Authorization"], "headers": {}}
    row = await m.Tool.get(id=int(world["weather"]))
    assert "tool-secret" not in row.metadata and "tool-secret" not in row.secret_headers  # encrypted at rest
    audit = await m.SysAudit.filter(operation="createTool").order_by("-id").first()
    assert audit is not None and "tool-secret" not in audit.variables
    # an update without secretHeaders keeps them; the tool server sees the header on a call
    changed = await ok(api, f'mutation($i: ToolInput!) {{ updateTool(id: "{world["weather"]}", input: $i) '
                            f'{{ {TOOL} errors {{ code }} }} }}',
                       {"i": {**WEATHER, "description": "Weather now", "http": {
                           **{k: v for k, v in WEATHER["http"].items() if k != "secretHeaders"},
                           "url": f"{world['tools'].url}/weather/{{city}}"}}}, tenant=world["tenant"])
    assert changed["updateTool"]["tool"]["http"]["secretHeaderNames"] == ["Authorization"]
    mcp_names = [t["qualifiedName"] for t in world["mcp"]["tools"]]
    assert "calc__add" in mcp_names and "calc__echo" in mcp_names


async def test_bad_tools_are_refused_with_typed_errors(api: ApiHarness, world: dict[str, Any]) -> None:
    tenant = world["tenant"]
    before = await m.Tool.filter(tenant_id=int(tenant)).count()

    async def error(data: dict[str, Any]) -> dict[str, Any]:
        body = await ok(api, CREATE_TOOL, {"i": data}, tenant=tenant)
        assert body["createTool"]["tool"] is None
        return dict(body["createTool"]["errors"][0])

    http = {"url": "https://api.example.com/x"}
    assert (await error({"name": "s", "http": {**http, "parameters": {"type": 12}}}))["code"] == "INVALID_SCHEMA"
    assert (await error({"name": "s", "http": {**http, "parameters": "nope"}}))["code"] == "INVALID_SCHEMA"
    unsupported = await error({"name": "ci", "toolType": "CODE_INTERPRETER"})
    assert unsupported["code"] == "UNSUPPORTED_TOOL_TYPE" and "not supported" in unsupported["message"]
    assert (await error({"name": "r", "toolType": "RETRIEVAL", "http": http}))["code"] == "UNSUPPORTED_TOOL_TYPE"
    assert (await error({"name": "u", "http": {"url": "file:///etc/passwd"}}))["field"] == "url"
    assert (await error({"name": "bad name!", "http": http}))["field"] == "name"
    assert (await error({"name": "weather", "http": http}))["code"] == "DUPLICATE"
    assert (await error({"name": "h", "http": {**http, "secretHeaders": {"X": 1}}}))["field"] == "secretHeaders"
    assert await m.Tool.filter(tenant_id=int(tenant)).count() == before


async def test_openapi_import_creates_one_tool_per_operation_and_reimport_updates(
        api: ApiHarness, world: dict[str, Any]) -> None:
    tenant = world["tenant"]
    doc = {"openapi": "3.0.3", "info": {"title": "w", "version": "1"},
           "servers": [{"url": f"{world['tools'].url}"}],
           "paths": {"/weather/{city}": {"get": {"operationId": "cityWeather", "summary": "Weather of a city",
                                                 "parameters": [{"name": "city", "in": "path", "required": True,
                                                                 "schema": {"type": "string"}}]}},
                     "/echo": {"post": {"operationId": "echoIt", "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"type": "object"}}}}}}}}
    query = ("mutation($i: ImportOpenApiInput!) { importOpenApiTools(input: $i) { created { name source http "
             "{ url method } } updated { name } errors { field code message } } }")
    first = (await ok(api, query, {"i": {"document": json.dumps(doc)}}, tenant=tenant))["importOpenApiTools"]
    assert sorted(t["name"] for t in first["created"]) == ["cityWeather", "echoIt"] and not first["errors"]
    doc["paths"]["/weather/{city}"]["get"]["summary"] = "Weather, updated"
    again = (await ok(api, query, {"i": {"document": json.dumps(doc)}}, tenant=tenant))["importOpenApiTools"]
    assert (again["created"], sorted(t["name"] for t in again["updated"])) == ([], ["cityWeather", "echoIt"])
    broken = (await ok(api, query, {"i": {"document": "openapi: [3.0"}}, tenant=tenant))["importOpenApiTools"]
    assert broken["errors"][0]["code"] == "INVALID_OPENAPI" and broken["created"] == []
    swagger = (await ok(api, query, {"i": {"document": '{"swagger": "2.0", "paths": {}}'}},
                        tenant=tenant))["importOpenApiTools"]
    assert swagger["errors"][0]["code"] == "INVALID_OPENAPI" and "OpenAPI 3" in swagger["errors"][0]["message"]


async def test_mcp_servers_that_are_down_are_not_registered(api: ApiHarness, world: dict[str, Any]) -> None:
    from aigc_admin.adapters.net import free_port

    query = ("mutation($i: McpServerInput!) { createMcpServer(input: $i) { mcpServer { id } "
             "errors { field code message } } }")
    down = await ok(api, query, {"i": {"name": "down", "url": f"http://127.0.0.1:{free_port()}/mcp",
                                       "timeoutSeconds": 2}}, tenant=world["tenant"])
    assert down["createMcpServer"]["errors"][0]["code"] == "MCP_UNAVAILABLE"
    metadata = await ok(api, query, {"i": {"name": "meta", "url": "http://169.254.169.254/mcp"}},
                        tenant=world["tenant"])
    error = metadata["createMcpServer"]["errors"][0]
    assert error["code"] == "MCP_UNAVAILABLE" and "link-local" in error["message"]
    assert not await m.McpServer.filter(name__in=["down", "meta"]).exists()
    refreshed = await ok(api, f'mutation {{ refreshMcpServer(id: "{world["mcp"]["id"]}") {{ mcpServer {{ '
                              f'lastError tools {{ name }} }} errors {{ code }} }} }}', tenant=world["tenant"])
    assert refreshed["refreshMcpServer"]["mcpServer"]["lastError"] == ""


async def test_assistants_refuse_models_and_tools_the_tenant_does_not_have(
        api: ApiHarness, world: dict[str, Any]) -> None:
    other = await api.create_tenant(unique("as-other"))

    async def error(tenant: str, **fields: Any) -> dict[str, Any]:
        data = {"name": unique("a").replace("-", "_"), "modelName": world["model"], **fields}
        body = await ok(api, CREATE_ASSISTANT, {"i": data}, tenant=tenant)
        assert body["createAssistant"]["assistant"] is None
        return dict(body["createAssistant"]["errors"][0])

    assert (await error(world["tenant"], modelName="no-such-model"))["code"] == "MODEL_NOT_ALLOWED"
    assert (await error(other))["code"] == "MODEL_NOT_ALLOWED"  # the model is not the other tenant's
    assert (await error(world["tenant"], toolIds=["999999"]))["field"] == "toolIds"
    assert (await error(world["tenant"], maxSteps=0))["field"] == "maxSteps"
    assert (await error(world["tenant"], channelIds=["999999"]))["field"] == "channelIds"
    # another tenant sees none of this tenant's tools, servers or assistants
    seen = await ok(api, f'{{ tool(id: "{world["weather"]}") {{ id }} tools {{ totalCount }} '
                         f'mcpServers {{ totalCount }} }}', tenant=other)
    assert seen == {"tool": None, "tools": {"totalCount": 0}, "mcpServers": {"totalCount": 0}}


async def test_a_published_assistant_answers_any_openai_client_with_its_tools(
        api: ApiHarness, world: dict[str, Any]) -> None:
    tenant = world["tenant"]
    name = unique("helper").replace("-", "_")
    created = await ok(api, CREATE_ASSISTANT, {"i": {
        "name": name, "modelName": world["model"], "instructions": "Use the tools.", "mode": "NATIVE",
        "toolIds": [world["weather"]], "mcpServerIds": [world["mcp"]["id"]], "maxSteps": 3}}, tenant=tenant)
    assistant = created["createAssistant"]["assistant"]
    assert assistant["tools"] == [{"name": "weather"}] and assistant["publishedModel"] is None
    client = openai_client(api, world["key"])
    with pytest.raises(openai.NotFoundError, match=r"no published assistant"):  # not published yet
        await client.chat.completions.create(model=f"assistant::{name}", messages=[{"role": "user", "content": "x"}])
    published = await ok(api, f'mutation {{ publishAssistant(id: "{assistant["id"]}") {{ {ASSISTANT} }} }}',
                         tenant=tenant)
    assert published["publishAssistant"]["assistant"]["publishedModel"] == f"assistant::{name}"
    models = [x.id async for x in client.models.list()]
    assert f"assistant::{name}" in models

    calls_before = len(world["tools"].requests)
    reply = await client.chat.completions.create(
        model=f"assistant::{name}", messages=[{"role": "user", "content": 'call weather {"city": "oslo"}'}])
    assert reply.choices[0].message.content == \
        'Result: {"city": "oslo", "temperature_c": 21, "sky": "clear"}'
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    hit = world["tools"].requests[calls_before]
    assert hit["path"] == "/weather/oslo" and hit["headers"]["authorization"] == "Bearer tool-secret"

    stream = await client.chat.completions.create(
        model=f"assistant::{name}", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": 'call calc__add {"a": 2, "b": 3}'}])
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(pieces).strip() == "Result: 5" and usage is not None and usage.completion_tokens == 8

    runs = await ok(api, f'{{ assistantRuns(assistantId: "{assistant["id"]}") {{ totalCount items {{ threadId '
                         f'request response status stopReason version steps }} }} }}', tenant=tenant)
    items = runs["assistantRuns"]["items"]
    assert runs["assistantRuns"]["totalCount"] == 2 and all(r["version"] == 1 for r in items)
    latest = items[0]
    assert (latest["status"], latest["stopReason"], latest["response"]) == ("completed", "completed", "Result: 5")
    kinds = [s["kind"] for s in latest["steps"]]
    assert kinds == ["tool_call", "tool_result", "final"] and latest["steps"][0]["tool"] == "calc__add"

    # a channel that may call neither the model nor the assistant is refused
    other = await ok(api, "mutation($i: ChannelInput!) { createChannel(input: $i) { key } }", {"i": {}},
                     tenant=tenant)
    with pytest.raises(openai.PermissionDeniedError, match=r"may not use"):
        await openai_client(api, other["createChannel"]["key"]).chat.completions.create(
            model=f"assistant::{name}", messages=[{"role": "user", "content": "hi"}])


async def test_bounds_and_refusals_reach_the_caller_and_the_audit_log(api: ApiHarness, world: dict[str, Any]) -> None:
    tenant = world["tenant"]
    private = await ok(api, CREATE_TOOL, {"i": {"name": "metadata", "http": {
        "url": "http://169.254.169.254/latest/meta-data/"}}}, tenant=tenant)
    name = unique("bounded").replace("-", "_")
    created = await ok(api, CREATE_ASSISTANT, {"i": {
        "name": name, "modelName": world["model"], "mode": "NATIVE", "maxSteps": 2,
        "toolIds": [private["createTool"]["tool"]["id"], world["weather"]]}}, tenant=tenant)
    assistant_id = created["createAssistant"]["assistant"]["id"]
    await ok(api, f'mutation {{ publishAssistant(id: "{assistant_id}") {{ errors {{ code }} }} }}', tenant=tenant)
    client = openai_client(api, world["key"])
    refused = await client.chat.completions.create(
        model=f"assistant::{name}", messages=[{"role": "user", "content": "call metadata {}"}])
    assert "ADDRESS_NOT_ALLOWED" in (refused.choices[0].message.content or "")
    audit = await m.SysAudit.filter(operation="egressRefused", tenant_id=int(tenant)).order_by("-id").first()
    assert audit is not None and not audit.success and "link-local" in audit.error
    assert json.loads(audit.variables)["tool"] == "metadata"

    looped = await client.chat.completions.create(
        model=f"assistant::{name}", messages=[{"role": "user", "content": 'loop weather {"city": "rome"}'}])
    about = looped.model_extra["assistant"] if looped.model_extra else {}
    assert about["stop_reason"] == "max_steps" and about["tool_calls"] == 2
    bad_args = await client.chat.completions.create(
        model=f"assistant::{name}", messages=[{"role": "user", "content": 'call weather {"town": 1}'}])
    assert "INVALID_ARGUMENTS" in (bad_args.choices[0].message.content or "")

    # the working copy changes; the published version does not, until published again
    await ok(api, f'mutation($i: AssistantInput!) {{ updateAssistant(id: "{assistant_id}", input: $i) '
                  f'{{ errors {{ code }} }} }}',
             {"i": {"name": name, "modelName": world["model"], "mode": "NATIVE", "maxSteps": 2, "toolIds": []}},
             tenant=tenant)
    still = await client.chat.completions.create(
        model=f"assistant::{name}", messages=[{"role": "user", "content": 'call weather {"city": "bern"}'}])
    assert (still.choices[0].message.content or "").startswith("Result:")


async def test_egress_allow_list_is_per_tenant_and_checked(api: ApiHarness, world: dict[str, Any]) -> None:
    query = ("mutation($h: [String!]!) { setEgressHosts(hosts: $h) { hosts errors { field code message } } }")
    bad = await ok(api, query, {"h": ["not a host"]}, tenant=world["tenant"])
    assert bad["setEgressHosts"]["errors"][0]["field"] == "hosts"
    saved = await ok(api, query, {"h": ["API.example.com", "*.example.org"]}, tenant=world["tenant"])
    assert saved["setEgressHosts"]["hosts"] == ["*.example.org", "api.example.com"]
    transport = api.services().tool_transport
    from aigc_admin.domain.assistants.entities import HttpSpec

    outcome = await transport.call_http(HttpSpec(url=f"{world['tools'].url}/weather/x"), {},
                                        tenant_id=int(world["tenant"]))
    assert outcome.error_code == "HOST_NOT_ALLOWED"
    await ok(api, query, {"h": []}, tenant=world["tenant"])
    assert (await transport.call_http(HttpSpec(url=f"{world['tools'].url}/weather/x"), {},
                                      tenant_id=int(world["tenant"]))).ok


async def test_tools_are_attached_and_detached(api: ApiHarness, world: dict[str, Any]) -> None:
    tenant = world["tenant"]
    created = await ok(api, CREATE_ASSISTANT, {"i": {"name": unique("att").replace("-", "_"),
                                                     "modelName": world["model"]}}, tenant=tenant)
    assistant_id = created["createAssistant"]["assistant"]["id"]
    attach = ("mutation($id: ID!, $t: [ID!], $s: [ID!]) { attachAssistantTools(id: $id, toolIds: $t, "
              f"mcpServerIds: $s) {{ {ASSISTANT} errors {{ field code }} }} }}")
    done = await ok(api, attach, {"id": assistant_id, "t": [world["weather"]], "s": [world["mcp"]["id"]]},
                    tenant=tenant)
    shown = done["attachAssistantTools"]["assistant"]
    assert (shown["toolIds"], shown["mcpServerIds"]) == ([world["weather"]], [world["mcp"]["id"]])
    again = await ok(api, attach, {"id": assistant_id, "t": [world["weather"]]}, tenant=tenant)  # no duplicate
    assert again["attachAssistantTools"]["assistant"]["toolIds"] == [world["weather"]]
    missing = await ok(api, attach, {"id": assistant_id, "t": ["99999999"]}, tenant=tenant)
    assert missing["attachAssistantTools"]["errors"] == [{"field": "toolIds", "code": "NOT_FOUND"}]
    detached = await ok(api, attach.replace("attachAssistantTools", "detachAssistantTools"),
                        {"id": assistant_id, "t": [world["weather"]]}, tenant=tenant)
    shown = detached["detachAssistantTools"]["assistant"]
    assert (shown["toolIds"], shown["mcpServerIds"]) == ([], [world["mcp"]["id"]])
