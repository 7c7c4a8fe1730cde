"""External models through the gateway: a real local OpenAI-compatible stub upstream gets the stored
credentials; answers and streamed chunks pass through; usage is settled and recorded."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from aigc_admin.adapters.db import models as m
from tests.support.api import ApiHarness, unique
from tests.support.redis_server import RedisServer
from tests.support.slapd import free_port

SEEN: list[dict[str, Any]] = []


async def stub(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal OpenAI-compatible upstream (raw ASGI)."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body or b"{}")
    SEEN.append({"path": scope["path"], "auth": dict(scope["headers"]).get(b"authorization", b"").decode(),
                 "body": request})
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    if "reject" in str(request.get("model")):  # an upstream that refuses the stored credentials
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"error": {"message": "bad upstream key"}}'})
        return
    if request.get("stream") and "slow" in str(request.get("model")):  # streams until the client goes away
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        gone = asyncio.ensure_future(receive())
        for _ in range(400):
            if gone.done():
                SEEN.append({"disconnected": True})
                return
            chunk = {"id": "x", "object": "chat.completion.chunk", "model": request["model"],
                     "choices": [{"index": 0, "delta": {"content": "la"}, "finish_reason": None}]}
            await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                        "more_body": True})
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b""})
        return
    if request.get("stream"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for word in ("Hel", "lo", "!"):
            chunk = {"id": "x", "object": "chat.completion.chunk", "model": request["model"],
                     "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                        "more_body": True})
        final = {"id": "x", "object": "chat.completion.chunk", "model": request["model"], "choices": [],
                 "usage": usage}
        await send({"type": "http.response.body", "body": f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode()})
        return
    answer = {"id": "x", "object": "chat.completion", "model": request["model"], "usage": usage,
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}]}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(stub, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


async def test_external_model_through_the_gateway(upstream: str, tmp_path: Path, redis_server: RedisServer) -> None:
    extra = {"gateway.routes.refresh": 0.2, "gateway.usage.flush": 0.2}
    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url, extra=extra) as api:
        tenant = await api.create_tenant(unique("up"))
        _, token = await api.create_user(unique("m"), {tenant: "maintainer"})
        name = unique("gpt")
        model = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                             {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": upstream,
                                    "credentials": "sk-upstream-secret", "tenantIds": [tenant]}}, token=api.admin_token)
        created = await api.ok("mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } } }",
                               {"i": {"modelIds": [model["createModel"]["model"]["id"]], "quota": 1000}},
                               token=token, tenant=tenant)
        key = created["createChannel"]["key"]
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(50):
            listed = (await api.client.get("/v1/models", headers=headers)).json()
            if listed["data"]:
                break
            await asyncio.sleep(0.1)
        assert [d["id"] for d in listed["data"]] == [name]

        SEEN.clear()
        r = await api.client.post("/v1/chat/completions", headers=headers,
                                  json={"model": name, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello!"
        assert SEEN[0]["auth"] == "Bearer sk-upstream-secret"  # the stored credentials, not the channel key
        assert SEEN[0]["body"]["max_tokens"] == 256  # the budget reserved is the budget sent

        async with api.client.stream("POST", "/v1/chat/completions", headers=headers,
                                     json={"model": name, "stream": True, "max_tokens": 5,
                                           "messages": [{"role": "user", "content": "hi"}]}) as s:
            text = "".join([line async for line in s.aiter_lines()])
        assert '"Hel"' in text and "[DONE]" in text
        assert SEEN[-1]["body"]["stream_options"] == {"include_usage": True}  # so the stream can be charged
        assert '"usage"' not in text  # ...but the usage chunk reaches only clients that asked for it

        channel_id = int(created["createChannel"]["channel"]["id"])
        for _ in range(50):
            rows = await m.ChannelUsage.filter(channel_id=channel_id)
            if rows and rows[0].requests == 2:
                break
            await asyncio.sleep(0.1)
        assert rows[0].requests == 2 and rows[0].prompt_tokens == 14 and rows[0].completion_tokens == 6
        unreachable = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://test")
        async with unreachable as c:
            await api.ok("mutation($i: UpdateModelInput!) { updateModel(input: $i) { errors { code } } }",
                         {"i": {"id": model["createModel"]["model"]["id"], "baseUrl": "http://127.0.0.1:9/v1"}},
                         token=api.admin_token)
            await asyncio.sleep(0.5)  # the routing table refreshes every 0.2 s
            r = await c.post("/v1/chat/completions", headers=headers,
                             json={"model": name, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"


async def test_upstream_errors_are_not_confused_with_the_callers_key(upstream: str, tmp_path: Path,
                                                                   redis_server: RedisServer) -> None:
    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url,
                                  extra={"gateway.routes.refresh": 0.2}) as api:
        tenant = await api.create_tenant(unique("rj"))
        _, token = await api.create_user(unique("m"), {tenant: "maintainer"})
        name = unique("reject")
        model = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                             {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}},
                             token=api.admin_token)
        created = await api.ok("mutation($i: ChannelInput!) { createChannel(input: $i) { key } }",
                               {"i": {"modelIds": [model["createModel"]["model"]["id"]]}}, token=token, tenant=tenant)
        headers = {"Authorization": f"Bearer {created['createChannel']['key']}"}
        for _ in range(50):
            if (await api.client.get("/v1/models", headers=headers)).json()["data"]:
                break
            await asyncio.sleep(0.1)
        r = await api.client.post("/v1/chat/completions", headers=headers,
                                  json={"model": name, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"  # not a 401 for the caller


async def _external_channel(api: ApiHarness, upstream: str, name: str, **channel: object) -> tuple[str, int]:
    tenant = await api.create_tenant(unique("edge"))
    _, token = await api.create_user(unique("m"), {tenant: "maintainer"})
    model = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                         {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}},
                         token=api.admin_token)
    created = await api.ok("mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } } }",
                           {"i": {"modelIds": [model["createModel"]["model"]["id"]], **channel}},
                           token=token, tenant=tenant)
    key = created["createChannel"]["key"]
    for _ in range(50):
        if (await api.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).json()["data"]:
            break
        await asyncio.sleep(0.1)
    return key, int(created["createChannel"]["channel"]["id"])


async def test_gateway_http_edges(upstream: str, tmp_path: Path, redis_server: RedisServer,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown routes, wrong methods, oversized and malformed bodies: OpenAI-shaped errors with a trace id."""
    from aigc_admin.gateway import router

    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url,
                                  extra={"gateway.routes.refresh": 0.2}) as api:
        key, _ = await _external_channel(api, upstream, unique("edge"))
        headers = {"Authorization": f"Bearer {key}"}
        r = await api.client.post("/v1/nope", headers=headers, json={})
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url" and r.headers["x-trace-id"]
        r = await api.client.get("/v1/chat/completions", headers=headers)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        r = await api.client.post("/v1/chat/completions", headers=headers, content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        monkeypatch.setattr(router, "MAX_BODY_BYTES", 1000)
        r = await api.client.post("/v1/chat/completions", headers=headers, content=b"x" * 5000)
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        # trace ids differ per request
        a = await api.client.get("/v1/models", headers=headers)
        b = await api.client.get("/v1/models", headers=headers)
        assert a.headers["x-trace-id"] != b.headers["x-trace-id"]


async def test_a_client_leaving_a_stream_frees_the_upstream_and_is_charged(
        upstream: str, tmp_path: Path, redis_server: RedisServer) -> None:
    """Served by a real uvicorn (in this loop): the client reads one event and hangs up; the gateway stops
    reading the upstream (which sees the disconnect) and charges the reservation (no usage chunk came)."""
    extra = {"gateway.routes.refresh": 0.2, "gateway.usage.flush": 0.2}
    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url, extra=extra) as api:
        name = unique("slow")
        key, channel_id = await _external_channel(api, upstream, name, quota=100_000)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_config=None,
                                               lifespan="off"))
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.02)
            SEEN.clear()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c, c.stream(
                    "POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                    json={"model": name, "stream": True, "max_tokens": 50,
                          "messages": [{"role": "user", "content": "hi"}]}) as s:
                async for line in s.aiter_lines():
                    if line.startswith("data: "):
                        break
            for _ in range(60):
                if any(e.get("disconnected") for e in SEEN):
                    break
                await asyncio.sleep(0.05)
            assert any(e.get("disconnected") for e in SEEN)
            for _ in range(60):
                rows = await m.ChannelUsage.filter(channel_id=channel_id)
                if rows:
                    break
                await asyncio.sleep(0.05)
            assert rows and rows[0].requests == 1 and rows[0].prompt_tokens > 50  # the whole reservation
        finally:
            server.should_exit = True
            await serving


async def test_the_model_call_port_takes_the_gateway_path_to_an_external_model(
        upstream: str, tmp_path: Path, redis_server: RedisServer) -> None:
    """What the playground, evaluation and assistants use: the channel's allowed models, limits and usage apply
    as on /v1, and the upstream's events come back as structured chunks (with the usage, asked for)."""
    from aigc_admin.domain.model_calls import ChatChunk, ModelCallError, ModelCallErrorCode, Usage

    extra = {"gateway.routes.refresh": 0.2, "gateway.usage.flush": 0.2}
    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url, extra=extra) as api:
        name = unique("gpt")
        _, channel_id = await _external_channel(api, upstream, name, rpmLimit=3)
        tenant_id = (await m.ChatChannel.get(id=channel_id)).tenant_id  # type: ignore[attr-defined]
        calls = api.services().model_calls
        body = {"model": name, "messages": [{"role": "user", "content": "hi"}]}
        reply = await calls.chat(body, tenant_id=tenant_id, channel_id=channel_id)
        assert reply.content == "Hello!" and reply.finish_reason == "stop" and reply.usage == Usage(7, 3)
        chunks = [c async for c in await calls.stream_chat(body, tenant_id=tenant_id, channel_id=channel_id)]
        assert [c.content for c in chunks if c.content] == ["Hel", "lo", "!"]
        assert chunks[-1] == ChatChunk(usage=Usage(7, 3))
        with pytest.raises(ModelCallError) as refused:  # the model exists, but this channel may not call it
            await calls.chat({**body, "model": unique("other")}, tenant_id=tenant_id, channel_id=channel_id)
        assert refused.value.code in (ModelCallErrorCode.NOT_FOUND, ModelCallErrorCode.NOT_ALLOWED)
        with pytest.raises(ModelCallError) as foreign:  # a channel of another tenant is not found
            await calls.chat(body, tenant_id=tenant_id + 1000, channel_id=channel_id)
        assert foreign.value.code == ModelCallErrorCode.NOT_FOUND
        await calls.chat(body, tenant_id=tenant_id, channel_id=channel_id)
        with pytest.raises(ModelCallError) as limited:  # rpmLimit 3: the fourth call in the minute
            await calls.chat(body, tenant_id=tenant_id, channel_id=channel_id)
        assert limited.value.code == ModelCallErrorCode.RATE_LIMITED and limited.value.retry_after
        for _ in range(50):
            rows = await m.ChannelUsage.filter(channel_id=channel_id)
            if rows and rows[0].requests == 3:
                break
            await asyncio.sleep(0.1)
        assert rows[0].requests == 3 and rows[0].prompt_tokens == 21  # charged like /v1 requests
