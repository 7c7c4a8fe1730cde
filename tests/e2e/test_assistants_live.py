"""Assistants on a real platform process (aigc-admin start, managed FastChat): the playground's whole loop
(model → HTTP tool → model → answer) streamed over a WebSocket with the scripted tool-calling upstream, the run
stored in its thread and a second turn that goes on with it; an unsubscribe mid-run stops it; the ReAct path on
the tiny local model (its output is random: the loop must end within its bounds and say why); and a published
assistant called with the ``openai`` SDK over HTTP, plain and streamed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.support.api import unique
from tests.support.asgi_stub import serving
from tests.support.engine import tiny_model_path
from tests.support.live import (
    ADMIN_PASSWORD,
    LiveServer,
    TenantClient,
    complete,
    expect_ack,
    http_gql,
    http_login,
    live_server,
    managed_fastchat,
    recv,
    ws_session,
)
from tests.support.redis_server import RedisServer
from tests.support.tool_server import ToolServer, tool_server
from tests.support.tool_upstream import tool_upstream

RUN = ("subscription($i: AssistantRunInput!) { assistantRun(input: $i) { runId threadId kind step content tool "
       "arguments ok errorCode promptTokens completionTokens stopReason } }")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ToolServer, str]]:
    with tool_server() as tools, serving(tool_upstream) as upstream:
        yield tools, upstream


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = managed_fastchat(**{"gateway.routes.refresh": 0.5, "engine.start.timeout": 120,
                                "egress.allow.networks": "127.0.0.1/32"})
    with live_server(tmp_path_factory.mktemp("assistants"), redis_server.url, extra=extra, worker=True) as server:
        yield server


class Client(TenantClient):
    async def run(self, variables: dict[str, Any], stop_after: str | None = None) -> list[dict[str, Any]]:
        """The events of one assistantRun over a WebSocket (until it completes, or ``stop_after`` that kind)."""
        events: list[dict[str, Any]] = []
        async with ws_session(self.server, {"Authorization": f"Bearer {self.token}",
                                            "X-Tenant-Id": self.tenant}) as ws:
            await expect_ack(ws)
            await ws.send(json.dumps({"id": "r", "type": "subscribe",
                                                    "payload": {"query": RUN, "variables": {"i": variables}}}))
            while True:
                message = await recv(ws, timeout=180)
                if message["type"] == "complete":
                    break
                assert message["type"] == "next", message
                events.append(message["payload"]["data"]["assistantRun"])
                if stop_after and events[-1]["kind"] == stop_after:
                    await complete(ws, "r")
                    break
        return events


@pytest.fixture(scope="module")
async def world(platform: LiveServer, servers: tuple[ToolServer, str]) -> dict[str, Any]:
    tools, upstream = servers
    token = await http_login(platform, "admin", ADMIN_PASSWORD)
    created = await http_gql(platform, 'mutation($c: String!) { createTenant(input: {name: "A", code: $c}) '
                             "{ tenant { id } } }", {"c": unique("al")}, token)
    c = Client(platform, token, created["data"]["createTenant"]["tenant"]["id"])
    ext = await c.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id name } } }",
                      {"i": {"name": unique("gpt"), "provider": "EXTERNAL", "baseUrl": upstream,
                             "tenantIds": [c.tenant]}})
    tiny = await c.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id name } } }",
                       {"i": {"name": unique("tiny"), "modelPath": str(tiny_model_path()), "tenantIds": [c.tenant]}})
    ext_model, tiny_model = ext["createModel"]["model"], tiny["createModel"]["model"]
    channel = await c.gql("mutation($i: ChannelInput!) { createChannel(input: $i) { channel { id } key } }",
                          {"i": {"modelIds": [ext_model["id"], tiny_model["id"]]}})
    tool = await c.gql("mutation($i: ToolInput!) { createTool(input: $i) { tool { id } errors { message } } }",
                       {"i": {"name": "weather", "description": "The weather in a city", "http": {
                           "url": f"{tools.url}/weather/{{city}}", "extract": "/data",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                          "required": ["city"]}}}})
    await asyncio.sleep(1.5)  # the routing table (refreshed every 0.5 s here) sees the new external model
    return {"c": c, "ext": ext_model, "tiny": tiny_model, "channel": channel["createChannel"]["channel"]["id"],
            "key": channel["createChannel"]["key"], "tool": tool["createTool"]["tool"]["id"]}


async def _assistant(c: Client, **fields: Any) -> dict[str, Any]:
    data = await c.gql("mutation($i: AssistantInput!) { createAssistant(input: $i) { assistant { id name } "
                       "errors { message } } }", {"i": {"name": unique("a").replace("-", "_"), **fields}})
    assert data["createAssistant"]["errors"] == [], data
    return dict(data["createAssistant"]["assistant"])


async def test_the_playground_streams_each_step_and_keeps_the_thread(world: dict[str, Any]) -> None:
    c = world["c"]
    assistant = await _assistant(c, modelName=world["ext"]["name"], toolIds=[world["tool"]], mode="AUTO")
    events = await c.run({"assistantId": assistant["id"], "channelId": world["channel"],
                          "messages": [{"role": "user", "content": 'call weather {"city": "lima"}'}]})
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "final", kinds
    assert "tool_call" in kinds and "tool_result" in kinds, (events[-1]["content"], events[-1]["stopReason"])
    call = next(e for e in events if e["kind"] == "tool_call")
    result = next(e for e in events if e["kind"] == "tool_result")
    assert (call["tool"], call["arguments"]) == ("weather", '{"city": "lima"}')
    assert result["ok"] and '"city": "lima"' in result["content"]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("text")  # model → tool → model
    final = events[-1]
    assert final["stopReason"] == "completed" and final["content"].startswith("Result: {")
    assert final["promptTokens"] > 0 and final["completionTokens"] == 8
    thread = final["threadId"]

    second = await c.run({"assistantId": assistant["id"], "channelId": world["channel"], "threadId": thread,
                          "messages": [{"role": "user", "content": "thanks"}]})
    assert second[-1]["threadId"] == thread and second[-1]["content"] == "You said: thanks"
    runs = await c.gql(f'{{ assistantRuns(assistantId: "{assistant["id"]}", threadId: "{thread}") {{ totalCount '
                       "items { request response status steps } } }")
    assert runs["assistantRuns"]["totalCount"] == 2
    assert [r["request"] for r in runs["assistantRuns"]["items"]] == ["thanks", 'call weather {"city": "lima"}']

    # unsubscribing mid-run stops it: stored as stopped (cancelled)
    looping = await _assistant(c, modelName=world["ext"]["name"], toolIds=[world["tool"]], maxSteps=20)
    cut = await c.run({"assistantId": looping["id"], "channelId": world["channel"],
                       "messages": [{"role": "user", "content": 'loop weather {"city": "x"}'}]}, stop_after="tool_call")
    assert cut[-1]["kind"] == "tool_call"
    await asyncio.sleep(1)
    stored = await c.gql(f'{{ assistantRuns(assistantId: "{looping["id"]}") {{ items {{ status stopReason }} }} }}')
    assert stored["assistantRuns"]["items"] == [{"status": "stopped", "stopReason": "cancelled"}]


async def test_react_on_the_tiny_local_model_ends_within_its_bounds(world: dict[str, Any]) -> None:
    c = world["c"]
    deployed = await c.gql('mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id } } }',
                           {"i": {"modelId": world["tiny"]["id"]}})
    deployment = deployed["deployModel"]["deployment"]["id"]
    for _ in range(600):
        status = (await c.gql(f'{{ deployment(id: "{deployment}") {{ status }} }}'))["deployment"]["status"]
        if status in ("RUNNING", "FAILED"):
            break
        await asyncio.sleep(0.3)
    assert status == "RUNNING", c.server.log_tail()
    await asyncio.sleep(1.5)  # the gateway's routing table sees the worker
    assistant = await _assistant(c, modelName=world["tiny"]["name"], toolIds=[world["tool"]], maxSteps=3,
                                 maxTokens=48, timeoutSeconds=60)
    events = await c.run({"assistantId": assistant["id"], "channelId": world["channel"], "temperature": 0.7,
                          "messages": [{"role": "user", "content": "What is the weather in Paris?"}]})
    final = events[-1]
    assert final["kind"] == "final", events
    assert final["stopReason"] in ("completed", "max_steps", "max_tokens", "timeout"), final
    steps = {e["step"] for e in events if e["kind"] in ("text", "tool_call")}
    assert steps and max(steps) <= 3
    assert final["completionTokens"] > 0 and final["completionTokens"] <= 48 + 16  # the budget, give or take a step
    runs = await c.gql(f'{{ assistantRuns(assistantId: "{assistant["id"]}") {{ items {{ status stopReason }} }} }}')
    assert runs["assistantRuns"]["items"][0]["stopReason"] == final["stopReason"]


async def test_a_published_assistant_through_the_openai_sdk(world: dict[str, Any]) -> None:
    c = world["c"]
    assistant = await _assistant(c, modelName=world["ext"]["name"], toolIds=[world["tool"]],
                                 description="Knows the weather")
    await c.gql(f'mutation {{ publishAssistant(id: "{assistant["id"]}") {{ errors {{ message }} }} }}')
    client = AsyncOpenAI(api_key=world["key"], base_url=c.server.base_url + "/v1")
    model = f"assistant::{assistant['name']}"
    reply = await client.chat.completions.create(model=model, messages=[
        {"role": "user", "content": 'call weather {"city": "quito"}'}])
    assert (reply.choices[0].message.content or "").startswith('Result: {"city": "quito"')
    stream = await client.chat.completions.create(model=model, stream=True, messages=[
        {"role": "user", "content": 'call weather {"city": "cusco"}'}])
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text.strip().startswith('Result: {"city": "cusco"')
