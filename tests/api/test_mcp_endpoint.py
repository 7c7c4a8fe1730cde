"""The MCP endpoint (/mcp) of a real `aigc-admin start` server, called with the ``mcp`` SDK's client over HTTP: a
channel key lists the published assistants it may call as tools and runs one (its model an external model
answered by a scripted OpenAI-compatible stub); another key of the tenant, not allowed the model, sees none and
may call none; an unpublished assistant disappears; missing, bad and revoked keys get 401 before the SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from aigc_admin.gateway.router import Gateway
from aigc_admin.web.mcp import McpApp
from tests.support.api import ADMIN_PASSWORD, unique
from tests.support.asgi_stub import chat_answer, read_json, send_json, serving
from tests.support.live import LiveServer, http_gql, http_login, live_server
from tests.support.redis_server import RedisServer

QUESTION_SCHEMA = {"type": "object", "properties": {"question": {"type": "string",
                                                                 "description": "What to ask the assistant"}},
                   "required": ["question"]}
CREATE_ASSISTANT = ("mutation($i: AssistantInput!) { createAssistant(input: $i) { assistant { id name } "
                    "errors { field code message } } }")


def _reply(question: str) -> str:
    return f"The stub's answer to: {question}"


async def scripted(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An OpenAI-compatible upstream: the answer names the last user message; streamed when asked."""
    if scope["type"] != "http":
        return
    request = await read_json(receive)
    question = next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")
    answer = _reply(question)
    if not request.get("stream"):
        await send_json(send, 200, chat_answer(request["model"], answer, 7, 5))
        return

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": request["model"], "choices": choices, **extra}
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    words = answer.split(" ")
    for i, word in enumerate(words):  # in pieces, as a real upstream streams
        piece = word if i == 0 else " " + word
        await send({"type": "http.response.body", "more_body": True,
                    "body": event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])})
    await send({"type": "http.response.body", "more_body": True,
                "body": event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
                + event([], usage={"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12})
                + b"data: [DONE]\n\n"})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(scripted) as url:
        yield url


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra: dict[str, object] = {"gateway.routes.refresh": 0.5, "health.interval": 0, "finetune.interval": 0}
    with live_server(tmp_path_factory.mktemp("mcp-endpoint"), redis_server.url, extra=extra) as server:
        yield server


async def ok(server: LiveServer, token: str, query: str, variables: dict[str, Any] | None = None,
             tenant: str | None = None) -> dict[str, Any]:
    body = await http_gql(server, query, variables, token, tenant=tenant)
    assert not body.get("errors"), body
    return dict(body["data"])


@pytest.fixture(scope="module")
async def world(platform: LiveServer, upstream: str) -> dict[str, Any]:
    """A tenant with two external models (answered by the stub), a key allowed the first (``key``), a key allowed
    only the second (``other_key``), and an assistant on the first model, published."""
    token = await http_login(platform, "admin", ADMIN_PASSWORD)
    created = await ok(platform, token, "mutation($c: String!) { createTenant(input: {name: \"M\", code: $c}) "
                                        "{ tenant { id } } }", {"c": unique("mcp")})
    tenant = created["createTenant"]["tenant"]["id"]
    models = {}
    for role in ("main", "other"):
        name = unique(role)
        body = await ok(platform, token, "mutation($i: CreateModelInput!) { createModel(input: $i) "
                                         "{ model { id } } }",
                        {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}})
        models[role] = (name, body["createModel"]["model"]["id"])
    keys = {}
    for role in ("main", "other"):
        body = await ok(platform, token, "mutation($i: ChannelInput!) { createChannel(input: $i) "
                                         "{ key channel { id } } }",
                        {"i": {"modelIds": [models[role][1]]}}, tenant=tenant)
        keys[role] = (body["createChannel"]["key"], body["createChannel"]["channel"]["id"])
    w = {"token": token, "tenant": tenant, "model": models["main"][0], "key": keys["main"][0],
         "other_key": keys["other"][0], "other_channel": keys["other"][1]}
    async with httpx.AsyncClient(base_url=platform.base_url, timeout=30) as h:
        for _ in range(100):  # the gateway's routing table picks the new model up (refreshed every 0.5 s)
            listed = await h.get("/v1/models", headers={"Authorization": f"Bearer {w['key']}"})
            if w["model"] in [m["id"] for m in listed.json()["data"]]:
                break
            await asyncio.sleep(0.1)
    w["assistant"], w["assistant_id"] = await publish(platform, w, "Answers any question about the platform.")
    return w


async def publish(server: LiveServer, w: dict[str, Any], description: str) -> tuple[str, str]:
    name = unique("helper")
    body = await ok(server, w["token"], CREATE_ASSISTANT,
                    {"i": {"name": name, "modelName": w["model"], "instructions": "Answer briefly.",
                           "description": description, "mode": "NATIVE"}}, tenant=w["tenant"])
    assert not body["createAssistant"]["errors"], body
    assistant_id = body["createAssistant"]["assistant"]["id"]
    published = await ok(server, w["token"], f'mutation {{ publishAssistant(id: "{assistant_id}") '
                                             "{ assistant { publishedVersion } errors { code message } } }",
                         tenant=w["tenant"])
    assert published["publishAssistant"]["assistant"]["publishedVersion"] == 1, published
    return name, assistant_id


@asynccontextmanager
async def mcp_client(server: LiveServer, key: str, mode: str = "auto") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with http, Client(streamable_http_client(server.base_url + "/mcp", http_client=http),
                            cache=None, mode=mode) as client:
        yield client


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content)


async def test_a_key_lists_the_assistants_it_may_call_and_runs_one(platform: LiveServer,
                                                                    world: dict[str, Any]) -> None:
    async with mcp_client(platform, world["key"]) as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == [world["assistant"]]
        assert tools[0].description == "Answers any question about the platform."
        assert tools[0].input_schema == QUESTION_SCHEMA

        result = await client.call_tool(world["assistant"], {"question": "What is MCP?"})
        assert not result.is_error, result
        assert text_of(result) == _reply("What is MCP?")

        missing = await client.call_tool(world["assistant"], {})
        assert missing.is_error and "question" in text_of(missing)
        not_text = await client.call_tool(world["assistant"], {"question": 42})
        assert not_text.is_error and "question" in text_of(not_text)
        unknown = await client.call_tool("no-such-assistant", {"question": "hi"})
        assert unknown.is_error and "no published assistant" in text_of(unknown)


async def test_a_client_of_the_older_protocol_is_served_too(platform: LiveServer, world: dict[str, Any]) -> None:
    """The listing handshake (protocols before 2026-07-28) on the stateless endpoint: same tools, same run."""
    async with mcp_client(platform, world["key"], mode="legacy") as client:
        assert [t.name for t in (await client.list_tools()).tools] == [world["assistant"]]
        result = await client.call_tool(world["assistant"], {"question": "And before?"})
        assert not result.is_error and text_of(result) == _reply("And before?")


async def test_a_key_not_allowed_the_model_sees_no_tool_and_may_call_none(platform: LiveServer,
                                                                           world: dict[str, Any]) -> None:
    async with mcp_client(platform, world["other_key"]) as client:
        assert (await client.list_tools()).tools == []
        refused = await client.call_tool(world["assistant"], {"question": "hi"})
        assert refused.is_error and "may not use" in text_of(refused)


async def test_an_unpublished_assistant_disappears(platform: LiveServer, world: dict[str, Any]) -> None:
    name, assistant_id = await publish(platform, world, "Soon gone.")
    async with mcp_client(platform, world["key"]) as client:
        assert name in [t.name for t in (await client.list_tools()).tools]
        await ok(platform, world["token"], f'mutation {{ unpublishAssistant(id: "{assistant_id}") '
                                           "{ assistant { publishedVersion } } }", tenant=world["tenant"])
        assert name not in [t.name for t in (await client.list_tools()).tools]
        gone = await client.call_tool(name, {"question": "still there?"})
        assert gone.is_error and "no published assistant" in text_of(gone)


async def test_missing_bad_and_revoked_keys_get_401(platform: LiveServer, world: dict[str, Any]) -> None:
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=platform.base_url, timeout=30) as h:
        bare = await h.post("/mcp", json=listing, headers=headers)
        assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
        assert bare.json()["error"]["code"] == "invalid_api_key" and "Bearer" in bare.json()["error"]["message"]
        bad = await h.post("/mcp/", json=listing, headers={**headers, "Authorization": "Bearer sk-" + "x" * 48})
        assert bad.status_code == 401 and bad.json()["error"]["message"] == "Incorrect API key provided"

    with pytest.raises(Exception):  # noqa: B017 (the client fails; its exception type is the SDK's business)
        async with mcp_client(platform, "sk-" + "x" * 48) as client:
            await client.list_tools()

    key, channel_id = world["other_key"], world["other_channel"]
    await ok(platform, world["token"], "mutation($i: UpdateChannelInput!) { updateChannel(input: $i) "
                                       "{ channel { enabled } } }",
             {"i": {"id": channel_id, "enabled": False}}, tenant=world["tenant"])
    async with httpx.AsyncClient(base_url=platform.base_url, timeout=30) as h:
        for _ in range(50):  # the key cache hears of the change through Redis: at once, give or take a moment
            revoked = await h.post("/mcp", json=listing, headers={**headers, "Authorization": f"Bearer {key}"})
            if revoked.status_code == 401:
                break
            await asyncio.sleep(0.1)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]


async def test_before_start_the_endpoint_answers_503() -> None:
    """No gateway yet (the platform is starting), or the SDK's manager not running: 503, nothing reaches the SDK."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}"}

    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": [(b"authorization", b"Bearer sk-x")]}
    starting = McpApp(lambda: None)  # no gateway yet: the platform is starting
    idle = McpApp(lambda: cast(Gateway, object()))  # a gateway, but the lifespan has not started the SDK's manager
    for app in (starting, idle):
        sent.clear()
        await app(scope, receive, send)
        assert sent[0]["status"] == 503 and b"starting" in sent[1]["body"]


async def test_the_sdk_manager_may_be_started_and_stopped_by_different_tasks() -> None:
    """A lifespan may be entered and left by different tasks (an in-process test app's is): the SDK's task group
    lives in a task of its own, stopped with nothing left running; a second start builds a new manager."""
    app = McpApp(lambda: None)
    for _ in range(2):
        running = app.running()
        await asyncio.create_task(running.__aenter__())
        assert app._manager is not None
        await asyncio.create_task(running.__aexit__(None, None, None))
        assert app._manager is None
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "mcp-sessions"]
